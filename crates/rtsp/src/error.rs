//! Why a camera is not streaming, classified for operators.
//!
//! retina's `Error` is opaque (only `status_code()` is public; its authors ask users to file
//! an issue rather than inspect it), so transport failures are classified from the first line
//! of its message. The prefixes relied on are pinned by tests against the real retina
//! (`classify_*` below and the integration tests against a refusing port and GStreamer).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::source::Redactor;

/// The step of the RTSP exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// TCP connect and `DESCRIBE` (retina does both in one call).
    Describe,
    Setup,
    Play,
    /// Receiving media after `PLAY`.
    Streaming,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Describe => "connect/DESCRIBE",
            Stage::Setup => "SETUP",
            Stage::Play => "PLAY",
            Stage::Streaming => "streaming",
        })
    }
}

/// A failure of one attempt to pull a camera's stream. Each message is written for the
/// operator who has to fix the camera, the network or the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error(
        "connection refused by {authority}: nothing listens on that port \
         (camera off or rebooting, wrong port, or RTSP disabled)"
    )]
    Refused { authority: String },
    /// `after` is our limit, or `None` when the operating system gave up connecting.
    #[error("{stage} timed out{}", after.map(|a| format!(" after {} s", secs(a))).unwrap_or_default())]
    Timeout {
        stage: Stage,
        after: Option<Duration>,
    },
    #[error("cannot reach {authority}: {detail}")]
    Unreachable { authority: String, detail: String },
    #[error("authentication failed (401): wrong user name or password{}", user_hint(user.as_deref()))]
    AuthFailed { user: Option<String> },
    #[error("not found (404): the camera has no stream at path {path}")]
    NotFound { path: String },
    #[error("the camera answered {stage} with status {status}: {detail}")]
    Status {
        stage: Stage,
        status: u16,
        detail: String,
    },
    #[error("the camera offers no video stream (it offers: {offered})")]
    NoVideoStream { offered: String },
    #[error("unsupported video codec `{encoding}`: only H.264 and H.265 are recorded")]
    UnsupportedCodec { encoding: String },
    #[error("no key frame within {} s of the start of the stream", secs(*waited))]
    NoKeyFrame { waited: Duration },
    #[error("stalled: no video frame for {} s", secs(*after))]
    Stall { after: Duration },
    #[error("bad data from the camera: {detail}")]
    BadData { detail: String },
    #[error("connection lost: {detail}")]
    Disconnected { detail: String },
    #[error("RTSP protocol error during {stage}: {detail}")]
    Protocol { stage: Stage, detail: String },
    #[error("the recording side stopped accepting frames")]
    ConsumerGone,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn user_hint(user: Option<&str>) -> String {
    match user {
        Some(u) => format!(" (user `{u}`)"),
        None => " (no credentials configured)".to_owned(),
    }
}

/// The machine-readable class of a [`PullError`], for the API and for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Refused,
    Timeout,
    Unreachable,
    AuthFailed,
    NotFound,
    Status,
    NoVideoStream,
    UnsupportedCodec,
    NoKeyFrame,
    Stall,
    BadData,
    Disconnected,
    Protocol,
    ConsumerGone,
}

impl PullError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PullError::Refused { .. } => ErrorKind::Refused,
            PullError::Timeout { .. } => ErrorKind::Timeout,
            PullError::Unreachable { .. } => ErrorKind::Unreachable,
            PullError::AuthFailed { .. } => ErrorKind::AuthFailed,
            PullError::NotFound { .. } => ErrorKind::NotFound,
            PullError::Status { .. } => ErrorKind::Status,
            PullError::NoVideoStream { .. } => ErrorKind::NoVideoStream,
            PullError::UnsupportedCodec { .. } => ErrorKind::UnsupportedCodec,
            PullError::NoKeyFrame { .. } => ErrorKind::NoKeyFrame,
            PullError::Stall { .. } => ErrorKind::Stall,
            PullError::BadData { .. } => ErrorKind::BadData,
            PullError::Disconnected { .. } => ErrorKind::Disconnected,
            PullError::Protocol { .. } => ErrorKind::Protocol,
            PullError::ConsumerGone => ErrorKind::ConsumerGone,
        }
    }
}

impl Serialize for PullError {
    /// `{"kind": "auth_failed", "message": "authentication failed (401): …"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            kind: ErrorKind,
            message: &'a str,
        }
        Shown {
            kind: self.kind(),
            message: &self.to_string(),
        }
        .serialize(s)
    }
}

/// What the classifier needs to know about the source besides the error.
pub(crate) struct ErrorContext<'a> {
    pub stage: Stage,
    pub authority: &'a str,
    pub path: &'a str,
    pub user: Option<&'a str>,
    pub redactor: &'a Redactor,
}

/// Longest detail kept from a third-party message.
const MAX_DETAIL: usize = 240;

impl ErrorContext<'_> {
    /// The first line of a third-party message, secrets removed, length bounded. A later
    /// line saying what was being parsed (retina: `while parsing SPS: <hex>`) is kept without
    /// its hex dump, so that the operator learns *what* did not parse.
    pub(crate) fn detail(&self, message: &str) -> String {
        let mut lines = message.lines();
        let first = lines.next().unwrap_or_default().trim();
        let context = lines
            .map(str::trim)
            .find(|l| l.starts_with("while "))
            .map(|l| l.split(':').next().unwrap_or(l).trim());
        let text = match context {
            Some(c) => format!("{first} ({c})"),
            None => first.to_owned(),
        };
        let mut detail = self.redactor.scrub(&text);
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.push('…');
        }
        detail
    }

    /// Classifies a retina error (by status code, then by the message prefixes retina 0.4
    /// uses for connect, read and write failures).
    pub(crate) fn classify(&self, error: &retina::Error) -> PullError {
        self.classify_parts(error.status_code(), &error.to_string())
    }

    pub(crate) fn classify_parts(&self, status: Option<u16>, message: &str) -> PullError {
        match status {
            Some(401) => {
                return PullError::AuthFailed {
                    user: self.user.map(str::to_owned),
                }
            }
            Some(404) => {
                return PullError::NotFound {
                    path: self.path.to_owned(),
                }
            }
            // A 2xx "response error" is retina refusing what a successful response said: an
            // SDP whose parameters (sprop-parameter-sets, clock rate) are unusable.
            Some(200..=299) => {
                return PullError::BadData {
                    detail: self.detail(message),
                }
            }
            Some(status) => {
                return PullError::Status {
                    stage: self.stage,
                    status,
                    detail: self.detail(message),
                }
            }
            None => {}
        }
        if let Some(io) = message.strip_prefix("Unable to connect to RTSP server: ") {
            let io = io.lines().next().unwrap_or_default();
            let lower = io.to_ascii_lowercase();
            return if lower.contains("connection refused") {
                PullError::Refused {
                    authority: self.authority.to_owned(),
                }
            } else if lower.contains("timed out") {
                PullError::Timeout {
                    stage: self.stage,
                    after: None,
                }
            } else {
                PullError::Unreachable {
                    authority: self.authority.to_owned(),
                    detail: self.detail(io),
                }
            };
        }
        const CONNECTION_LOST: [&str; 3] = [
            "Error reading from RTSP peer",
            "Error writing to RTSP peer",
            "Error receiving UDP packet",
        ];
        if CONNECTION_LOST.iter().any(|p| message.starts_with(p)) {
            return PullError::Disconnected {
                detail: self.detail(message),
            };
        }
        if self.stage == Stage::Streaming && !message.starts_with("RTSP framing error") {
            // After PLAY, everything else retina reports is about the packets themselves
            // (depacketization: bad fragmentation units, bad NAL headers, bad SPS in band).
            return PullError::BadData {
                detail: self.detail(message),
            };
        }
        PullError::Protocol {
            stage: self.stage,
            detail: self.detail(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::CameraSource;

    fn ctx_for<'a>(stage: Stage, redactor: &'a Redactor) -> ErrorContext<'a> {
        ErrorContext {
            stage,
            authority: "10.0.0.5:554",
            path: "/ch1",
            user: Some("admin"),
            redactor,
        }
    }

    #[test]
    fn status_codes_are_classified() {
        let r = Redactor::default();
        let ctx = ctx_for(Stage::Describe, &r);
        assert_eq!(
            ctx.classify_parts(Some(401), "401 response to DESCRIBE CSeq=2: Unauthorized"),
            PullError::AuthFailed {
                user: Some("admin".into())
            }
        );
        assert_eq!(
            ctx.classify_parts(Some(404), "x").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            ctx.classify_parts(Some(200), "200 response to DESCRIBE CSeq=2: bad sps")
                .kind(),
            ErrorKind::BadData
        );
        let e = ctx.classify_parts(
            Some(503),
            "503 response to DESCRIBE CSeq=2: busy\n\nconn: …",
        );
        assert_eq!(e.kind(), ErrorKind::Status);
        assert!(
            !e.to_string().contains("conn:"),
            "only the first line is kept: {e}"
        );
    }

    #[test]
    fn connect_failures_are_classified_by_the_io_error() {
        let r = Redactor::default();
        let ctx = ctx_for(Stage::Describe, &r);
        assert_eq!(
            ctx.classify_parts(
                None,
                "Unable to connect to RTSP server: Connection refused (os error 111)"
            ),
            PullError::Refused {
                authority: "10.0.0.5:554".into()
            }
        );
        assert_eq!(
            ctx.classify_parts(
                None,
                "Unable to connect to RTSP server: No route to host (os error 113)"
            )
            .kind(),
            ErrorKind::Unreachable
        );
        assert_eq!(
            ctx.classify_parts(
                None,
                "Unable to connect to RTSP server: Connection timed out (os error 110)"
            )
            .kind(),
            ErrorKind::Timeout
        );
    }

    #[test]
    fn streaming_failures_split_into_lost_connection_and_bad_data() {
        let r = Redactor::default();
        let ctx = ctx_for(Stage::Streaming, &r);
        assert_eq!(
            ctx.classify_parts(None, "Error reading from RTSP peer: EOF\n\nconn: …")
                .kind(),
            ErrorKind::Disconnected
        );
        assert_eq!(
            ctx.classify_parts(None, "FU-A has start bit unset while no frag in progress")
                .kind(),
            ErrorKind::BadData
        );
        assert_eq!(
            ctx.classify_parts(None, "RTSP framing error: bad header")
                .kind(),
            ErrorKind::Protocol
        );
        let before_play = ctx_for(Stage::Setup, &r);
        assert_eq!(
            before_play
                .classify_parts(None, "Invalid argument: x")
                .kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn details_are_scrubbed_and_bounded() {
        let source = CameraSource::parse("rtsp://u:Secr3tPw@h/p").unwrap();
        let r = source.redactor();
        let ctx = ctx_for(Stage::Streaming, &r);
        let long = format!("weird Secr3tPw {}", "é".repeat(400));
        let e = ctx.classify_parts(None, &long).to_string();
        assert!(!e.contains("Secr3tPw"), "{e}");
        assert!(e.len() < 400, "{}", e.len());
        // What was being parsed is kept, its hex dump is not.
        let e = ctx
            .classify_parts(
                None,
                "unexpected end of data\nwhile parsing SPS: 42 01 01 00",
            )
            .to_string();
        assert_eq!(
            e,
            "bad data from the camera: unexpected end of data (while parsing SPS)"
        );
    }

    #[test]
    fn serialises_kind_and_message() {
        let e = PullError::Stall {
            after: Duration::from_secs(10),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "stall");
        assert_eq!(json["message"], "stalled: no video frame for 10 s");
        let e = PullError::AuthFailed { user: None };
        assert!(e.to_string().contains("no credentials configured"));
    }
}
