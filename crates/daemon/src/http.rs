//! The HTTP API as a subsystem: bound before the daemon reports itself ready, served until the
//! stop, then drained (requests in progress finish; new connections are refused).

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_api::AppState;

use crate::supervisor::{Run, Subsystem};

/// The bound, not yet serving, HTTP API.
pub struct HttpServer {
    listener: TcpListener,
    state: AppState,
}

impl HttpServer {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr, state: AppState) -> anyhow::Result<HttpServer> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        Ok(HttpServer { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }
}

impl Subsystem for HttpServer {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Run {
        Box::pin(async move {
            let router = vigil_api::router(self.state);
            axum::serve(self.listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("serving HTTP")
        })
    }
}
