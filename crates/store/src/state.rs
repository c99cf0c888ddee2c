//! What a camera's recorder is doing, for operators (`GET /cameras/{id}/recorder`) and tests.

use std::path::PathBuf;

use vigil_core::time::Timestamp;
use vigil_index::StreamInfo;

/// The recorder's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecorderStatus {
    /// Nothing to record: no recorder task yet, or the source stopped or was interrupted
    /// (`reason` says why, in the source's words).
    Idle {
        /// Why, if known.
        reason: Option<String>,
    },
    /// Frames arrive but recording can only start at a key frame.
    WaitingForKeyFrame,
    /// Frames are being written.
    Recording,
    /// Writing failed; the recorder retries at a later key frame. Other cameras are not
    /// affected.
    Error {
        /// What failed, naming the file and the OS error.
        reason: String,
    },
}

impl RecorderStatus {
    /// Stable code for APIs: `idle`, `waiting_for_key_frame`, `recording`, `error`.
    pub fn code(&self) -> &'static str {
        match self {
            RecorderStatus::Idle { .. } => "idle",
            RecorderStatus::WaitingForKeyFrame => "waiting_for_key_frame",
            RecorderStatus::Recording => "recording",
            RecorderStatus::Error { .. } => "error",
        }
    }
}

/// A snapshot of one camera's recorder.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderState {
    /// Current condition.
    pub status: RecorderStatus,
    /// When the condition began (the source's receive clock).
    pub since: Timestamp,
    /// The segment being written, if any.
    pub segment: Option<PathBuf>,
    /// Bytes of that segment that are fsynced and indexed.
    pub committed_len: u64,
    /// Wall-clock end of the last fsynced and indexed fragment.
    pub committed_end: Option<Timestamp>,
    /// What the camera sends (from the latest parameters).
    pub stream: Option<StreamInfo>,
    /// Frames received from the source.
    pub frames_received: u64,
    /// Frames durably written.
    pub frames_recorded: u64,
    /// Fragments durably written.
    pub fragments_written: u64,
    /// Bytes durably written (all segments).
    pub bytes_written: u64,
    /// Segment files started.
    pub segments_started: u64,
    /// Failed fragment writes.
    pub write_errors: u64,
    /// Camera or host clock discontinuities absorbed or turned into gaps.
    pub clock_discontinuities: u64,
    /// The last write error and when it happened (kept after recording resumes).
    pub last_error: Option<(Timestamp, String)>,
    /// The last index update that failed (the files stay authoritative; recovery re-indexes).
    pub index_error: Option<String>,
}

impl RecorderState {
    pub(crate) fn idle(since: Timestamp) -> Self {
        RecorderState {
            status: RecorderStatus::Idle { reason: None },
            since,
            segment: None,
            committed_len: 0,
            committed_end: None,
            stream: None,
            frames_received: 0,
            frames_recorded: 0,
            fragments_written: 0,
            bytes_written: 0,
            segments_started: 0,
            write_errors: 0,
            clock_discontinuities: 0,
            last_error: None,
            index_error: None,
        }
    }
}
