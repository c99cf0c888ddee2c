//! Feeding the camera's `recording` and `upload` status history in the index.
//!
//! - `upload` ("video reached the centre") goes up at the receive time of the first frame
//!   after a start or an interruption and down at the interruption.
//! - `recording` goes up at the wall-clock start of the first fragment that is durably
//!   written and down at the end of the last one (when the run ends: interruption, gap, write
//!   failure). Segment rotation and parameter changes inside a run do not touch it.
//!
//! Instants are clamped so that a history never goes back (the host clock may; a recovery may
//! have closed an interval later than a new source's first frame); transitions run on the
//! blocking pool. A camera the index does not know (not registered yet) is
//! recorded anyway; its status is skipped with one log line.

use std::sync::Arc;

use vigil_core::id::GbId;
use vigil_core::model::ModelError;
use vigil_core::status::StatusKind;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::{Index, IndexError};

pub(crate) struct StatusFeed {
    index: Arc<Index>,
    camera: GbId,
    recording: Option<Timestamp>,
    recording_last: Timestamp,
    upload: Option<Timestamp>,
    upload_last: Timestamp,
    warned_unknown: bool,
}

impl StatusFeed {
    /// A feed that continues the camera's stored history: transitions never go before the
    /// latest instant already recorded (after a restart, a backwards host clock or a
    /// recovery that closed intervals later than the new source's first frame).
    pub(crate) fn new(index: Arc<Index>, camera: GbId) -> Self {
        let latest = |kind| {
            index
                .status_history(&camera, kind, &Interval::open(Timestamp::MIN))
                .ok()
                .and_then(|h| h.last().map(|iv| iv.end_if_closed().unwrap_or(iv.start())))
                .unwrap_or(Timestamp::MIN)
        };
        StatusFeed {
            recording: None,
            recording_last: latest(StatusKind::Recording),
            upload: None,
            upload_last: latest(StatusKind::Upload),
            warned_unknown: false,
            index,
            camera,
        }
    }

    /// Whether a recording interval is open.
    pub(crate) fn recording_open(&self) -> bool {
        self.recording.is_some()
    }

    /// Notes that the recording interval was opened at `at` by the commit that made the
    /// first fragment durable (the commit job wrote the transition itself).
    pub(crate) fn recording_opened(&mut self, at: Timestamp) {
        self.recording = Some(at);
        self.recording_last = self.recording_last.max(at);
    }

    /// The instant to use for opening a recording interval at `at`.
    pub(crate) fn recording_open_at(&self, at: Timestamp) -> Timestamp {
        at.max(self.recording_last)
    }

    pub(crate) async fn recording(&mut self, at: Timestamp, up: bool) {
        if self.recording.is_some() == up {
            return;
        }
        let at = at.max(self.recording_last);
        self.recording = up.then_some(at);
        self.recording_last = at;
        self.send(StatusKind::Recording, at, up).await;
    }

    pub(crate) async fn upload(&mut self, at: Timestamp, up: bool) {
        if self.upload.is_some() == up {
            return;
        }
        let at = at.max(self.upload_last);
        self.upload = up.then_some(at);
        self.upload_last = at;
        self.send(StatusKind::Upload, at, up).await;
    }

    async fn send(&mut self, kind: StatusKind, at: Timestamp, up: bool) {
        let index = self.index.clone();
        let camera = self.camera;
        let res =
            tokio::task::spawn_blocking(move || index.set_status(&camera, kind, at, up)).await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.report(kind, e),
            Err(e) => tracing::error!(%kind, error = %e, "status update task failed"),
        }
    }

    pub(crate) fn report(&mut self, kind: StatusKind, e: IndexError) {
        match e {
            IndexError::Invalid(ModelError::UnknownCamera { .. }) => {
                if !self.warned_unknown {
                    self.warned_unknown = true;
                    tracing::warn!(
                        "camera is not registered in the index: recording without status history"
                    );
                }
            }
            other => tracing::error!(%kind, error = %other, "could not record status history"),
        }
    }
}
