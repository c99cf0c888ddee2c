//! `vigil run`: the service.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::commands::data_dir;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::{service, shutdown};

/// Options of `vigil run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address to listen on; overrides `http.listen` (port 0: any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// Serves until SIGTERM/SIGINT. Prints `vigil listening on http://<addr>/api/v1` on stdout
/// once the API accepts connections.
pub async fn run(config: Config, dir: Option<PathBuf>, args: RunArgs) -> anyhow::Result<()> {
    let dir = data_dir(&config, dir);
    let data = DataDir::lock(&dir, "vigil run")?;
    let listen = args.listen.unwrap_or(config.http.listen);
    let started = service::start(config, data, listen).await?;
    let stop = shutdown::on_signal();
    announce(&format!(
        "vigil listening on http://{}/api/v1",
        started.addr()
    ));
    started.serve(stop).await
}

/// Prints a line on stdout for whoever started the daemon. A closed stdout (the reader went
/// away) is no reason to stop serving.
pub fn announce(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        tracing::warn!(error = %e, "cannot print on stdout: {text}");
    }
}
