//! What a puller is doing, published on a `watch` channel for the API and the daemon.

use serde::{Serialize, Serializer};
use vigil_core::time::Timestamp;
use vigil_media::VideoCodec;

use crate::error::PullError;
use crate::ingest::SessionCounters;

/// The state of one camera's puller.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PullerState {
    /// Opening the RTSP session (`attempt` 1 is the first try after start or after a
    /// healthy session). `last_error` is why the previous attempt failed, when this is a retry:
    /// a camera that keeps failing spends much of its time here, and its state must still say
    /// what is wrong.
    Connecting {
        attempt: u32,
        since: Timestamp,
        last_error: Option<PullError>,
    },
    /// Frames are arriving.
    Streaming(Box<Streaming>),
    /// The last attempt failed; the next one is scheduled.
    Retrying {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// When the last attempt failed.
        failed_at: Timestamp,
        next_attempt_at: Timestamp,
        last_error: PullError,
    },
    /// The puller ended and will not retry.
    Stopped { at: Timestamp, reason: StopReason },
}

/// Why a puller ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Stopped by its owner (registry stop/restart, daemon shutdown).
    Cancelled,
    /// The receiver of its events was dropped.
    ConsumerGone,
}

/// A streaming session: the stream's parameters and counters since it started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Streaming {
    /// When the session's `PLAY` succeeded.
    pub since: Timestamp,
    #[serde(serialize_with = "codec_name")]
    pub codec: VideoCodec,
    pub rfc6381_codec: String,
    pub width: u32,
    pub height: u32,
    /// Frame rate measured from timestamps over the last second, if known yet.
    pub fps: Option<f64>,
    /// Frame rate the SPS declares, if it does.
    pub declared_fps: Option<f64>,
    /// Received bit rate over the last second, if known yet.
    pub bitrate_bps: Option<u64>,
    #[serde(flatten)]
    pub counters: SessionCounters,
    /// What ended the previous attempt, when this session is a reconnection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_error: Option<PullError>,
}

fn codec_name<S: Serializer>(codec: &VideoCodec, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(codec)
}

impl PullerState {
    /// Whether frames are flowing.
    pub fn is_streaming(&self) -> bool {
        matches!(self, PullerState::Streaming(_))
    }

    /// The error of a `Retrying` state, or of the attempt before a `Connecting` one.
    pub fn last_error(&self) -> Option<&PullError> {
        match self {
            PullerState::Retrying { last_error, .. } => Some(last_error),
            PullerState::Connecting { last_error, .. } => last_error.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_for_the_api() {
        let state = PullerState::Streaming(Box::new(Streaming {
            since: Timestamp::from_millis(0),
            codec: VideoCodec::H265,
            rfc6381_codec: "hvc1.1.6.L93.B0".into(),
            width: 1280,
            height: 720,
            fps: Some(25.0),
            declared_fps: None,
            bitrate_bps: Some(2_000_000),
            counters: SessionCounters {
                frames: 10,
                ..SessionCounters::default()
            },
            previous_error: None,
        }));
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["state"], "streaming");
        assert_eq!(json["codec"], "H.265");
        assert_eq!(json["frames"], 10);
        assert_eq!(json["since"], "1970-01-01T00:00:00.000Z");

        let retrying = PullerState::Retrying {
            attempt: 3,
            failed_at: Timestamp::from_millis(0),
            next_attempt_at: Timestamp::from_millis(4_000),
            last_error: PullError::NotFound { path: "/x".into() },
        };
        let json = serde_json::to_value(&retrying).unwrap();
        assert_eq!(json["state"], "retrying");
        assert_eq!(json["last_error"]["kind"], "not_found");
        assert_eq!(
            retrying.last_error().map(PullError::kind),
            Some(crate::ErrorKind::NotFound)
        );
        assert!(!retrying.is_streaming());
    }
}
