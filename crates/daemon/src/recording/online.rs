//! A pulled camera's `online` status history, fed from its RTSP puller's state: online from
//! the moment its session starts streaming, offline from the moment it stops (a failure, a
//! reconnect, a stop). This is what vigil observed of the camera; the `recording` and
//! `upload` histories are the store's (see `vigil_store`'s recorder).
//!
//! Instants never go back in a history: a transition earlier than the latest one recorded
//! (an earlier run closed its interval at its stop, or the host clock stepped back) is moved
//! to that instant.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use vigil_core::id::GbId;
use vigil_core::status::StatusKind;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::Index;
use vigil_rtsp::PullerState;

/// Follows `states` until the puller is gone, recording `camera`'s online transitions.
pub fn follow(
    index: Arc<Index>,
    camera: GbId,
    states: watch::Receiver<PullerState>,
) -> JoinHandle<()> {
    let span = tracing::info_span!("online", camera = %camera);
    tokio::spawn(run(index, camera, states).instrument(span))
}

async fn run(index: Arc<Index>, camera: GbId, mut states: watch::Receiver<PullerState>) {
    let mut feed = {
        let index = index.clone();
        match tokio::task::spawn_blocking(move || Feed::new(index, camera)).await {
            Ok(feed) => feed,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the online history");
                return;
            }
        }
    };
    loop {
        let change = match &*states.borrow_and_update() {
            PullerState::Streaming(s) => Some((s.since, true)),
            PullerState::Connecting { since, .. } => Some((*since, false)),
            PullerState::Retrying { failed_at, .. } => Some((*failed_at, false)),
            PullerState::Stopped { at, .. } => Some((*at, false)),
        };
        if let Some((at, up)) = change {
            feed = feed.set(at, up).await;
        }
        if states.changed().await.is_err() {
            return;
        }
    }
}

/// The camera's online history as far as this task knows it.
struct Feed {
    index: Arc<Index>,
    camera: GbId,
    up: bool,
    last: Timestamp,
}

impl Feed {
    /// Reads where the history stands (blocking).
    fn new(index: Arc<Index>, camera: GbId) -> Feed {
        let last = index
            .status_history(&camera, StatusKind::Online, &Interval::open(Timestamp::MIN))
            .ok()
            .and_then(|h| h.last().copied());
        Feed {
            up: last.is_some_and(|iv| iv.is_open()),
            last: last.map_or(Timestamp::MIN, |iv| {
                iv.end_if_closed().unwrap_or(iv.start())
            }),
            index,
            camera,
        }
    }

    async fn set(mut self, at: Timestamp, up: bool) -> Feed {
        if self.up == up {
            return self;
        }
        let at = at.max(self.last);
        self.up = up;
        self.last = at;
        let index = self.index.clone();
        let camera = self.camera;
        let done = tokio::task::spawn_blocking(move || {
            index.set_status(&camera, StatusKind::Online, at, up)
        })
        .await;
        match done {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, up, "cannot record the online status"),
            Err(e) => tracing::error!(error = %e, "online status task failed"),
        }
        self
    }
}
