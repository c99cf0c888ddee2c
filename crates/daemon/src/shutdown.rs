//! Graceful shutdown: the first SIGINT/SIGTERM asks every task to stop; the caller then flushes
//! the index and the store before the process exits.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        // Cancel before logging: nothing that happens while logging may keep the daemon up.
        let signal = tokio::select! {
            _ = ctrl_c => "SIGINT",
            _ = terminate => "SIGTERM",
        };
        cancel.cancel();
        tracing::info!("{signal} received, shutting down");
    });
    token
}
