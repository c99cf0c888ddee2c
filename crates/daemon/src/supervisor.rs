//! Running the daemon's subsystems side by side and stopping them together.
//!
//! A subsystem is a long-running part of the daemon with its own configuration section: today
//! the HTTP API ([`crate::http`]) and the heartbeat ([`crate::service`]); the recording store
//! with its RTSP pullers and the GB/T 28181 server plug in the same way — implement
//! [`Subsystem`], build it in `service::start` from its config section, and (if the API should
//! see it) hand a handle to `vigil_api::Subsystems`.
//!
//! Rules: when the stop token is cancelled (SIGTERM/SIGINT, or another subsystem failed) every
//! subsystem finishes its work in progress and returns; a subsystem that fails or returns on
//! its own stops the whole daemon (a daemon half running is worse than one that restarts);
//! whatever has not returned `grace` after the stop is aborted.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A boxed future a subsystem runs as.
pub type Run = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A long-running part of the daemon (see the module docs).
pub trait Subsystem: Send {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// Runs until `stop` is cancelled, then releases its resources and returns.
    fn run(self: Box<Self>, stop: CancellationToken) -> Run;
}

/// Runs `subsystems` until `stop` is cancelled or one of them ends; returns the first failure.
pub async fn supervise(
    subsystems: Vec<Box<dyn Subsystem>>,
    stop: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut set = JoinSet::new();
    for s in subsystems {
        let name = s.name();
        let token = stop.clone();
        set.spawn(async move { (name, s.run(token).await) });
    }
    let mut failure: Option<anyhow::Error> = None;
    loop {
        let next = if stop.is_cancelled() {
            match tokio::time::timeout(grace, set.join_next()).await {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(
                        remaining = set.len(),
                        grace_secs = grace.as_secs(),
                        "subsystems did not stop within the grace period; aborting them"
                    );
                    set.abort_all();
                    while set.join_next().await.is_some() {}
                    break;
                }
            }
        } else {
            tokio::select! {
                next = set.join_next() => next,
                () = stop.cancelled() => continue,
            }
        };
        let Some(joined) = next else { break };
        match joined {
            Ok((name, Ok(()))) => {
                if !stop.is_cancelled() {
                    tracing::warn!(subsystem = name, "subsystem ended on its own; stopping");
                    stop.cancel();
                } else {
                    tracing::debug!(subsystem = name, "subsystem stopped");
                }
            }
            Ok((name, Err(e))) => {
                tracing::error!(
                    subsystem = name,
                    error = format!("{e:#}"),
                    "subsystem failed; stopping"
                );
                failure.get_or_insert(e.context(format!("subsystem {name} failed")));
                stop.cancel();
            }
            Err(e) => {
                tracing::error!(error = %e, "a subsystem task panicked; stopping");
                failure.get_or_insert(anyhow::anyhow!("a subsystem panicked: {e}"));
                stop.cancel();
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct UntilStop(Arc<AtomicBool>);
    impl Subsystem for UntilStop {
        fn name(&self) -> &'static str {
            "until-stop"
        }
        fn run(self: Box<Self>, stop: CancellationToken) -> Run {
            Box::pin(async move {
                stop.cancelled().await;
                self.0.store(true, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    struct Fails;
    impl Subsystem for Fails {
        fn name(&self) -> &'static str {
            "fails"
        }
        fn run(self: Box<Self>, _: CancellationToken) -> Run {
            Box::pin(async { Err(anyhow::anyhow!("port in use")) })
        }
    }

    struct Stuck;
    impl Subsystem for Stuck {
        fn name(&self) -> &'static str {
            "stuck"
        }
        fn run(self: Box<Self>, _: CancellationToken) -> Run {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_failure_stops_the_others_and_is_reported() {
        let stopped = Arc::new(AtomicBool::new(false));
        let e = supervise(
            vec![Box::new(UntilStop(stopped.clone())), Box::new(Fails)],
            CancellationToken::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(format!("{e:#}").contains("port in use"), "{e:#}");
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_stop_request_ends_everything_and_stragglers_are_aborted() {
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        });
        supervise(
            vec![Box::new(UntilStop(stopped.clone())), Box::new(Stuck)],
            stop,
            Duration::from_millis(50),
        )
        .await
        .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
    }
}
