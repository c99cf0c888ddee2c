//! Status history kinds and video-quality diagnoses.
//!
//! Status is history, not a flag: each kind is an [`IntervalSet`](crate::time::IntervalSet) per
//! camera (or per upper platform for the uplink), and a diagnosis log is a time-ordered list of
//! check results, so every figure can be computed as of any instant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::time::{truncate_for_error, Timestamp};

/// An unknown status kind or check name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {text:?} is not one of {expected}")]
pub struct UnknownName {
    /// Which field.
    pub field: &'static str,
    /// The text given.
    pub text: String,
    /// Accepted values.
    pub expected: &'static str,
}

/// A per-camera status history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// The camera answers (RTSP session up / GB keepalives arriving).
    Online,
    /// Video is being written to the store.
    Recording,
    /// Video is being received at the centre (视频信号上传).
    Upload,
}

impl StatusKind {
    /// All kinds.
    pub const ALL: [StatusKind; 3] = [
        StatusKind::Online,
        StatusKind::Recording,
        StatusKind::Upload,
    ];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            StatusKind::Online => "online",
            StatusKind::Recording => "recording",
            StatusKind::Upload => "upload",
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a history row is about: a camera's status, or an upper platform's uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A camera status history.
    Camera(StatusKind),
    /// The cascade registration to an upper platform is alive (keyed by the platform's ID).
    Uplink,
}

impl FromStr for HistoryKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s.trim() {
            "online" => Ok(HistoryKind::Camera(StatusKind::Online)),
            "recording" => Ok(HistoryKind::Camera(StatusKind::Recording)),
            "upload" => Ok(HistoryKind::Camera(StatusKind::Upload)),
            "uplink" => Ok(HistoryKind::Uplink),
            _ => Err(UnknownName {
                field: "kind",
                text: truncate_for_error(s),
                expected: "online, recording, upload, uplink",
            }),
        }
    }
}

impl HistoryKind {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            HistoryKind::Camera(k) => k.code(),
            HistoryKind::Uplink => "uplink",
        }
    }
}

/// A video-quality check (视频质量诊断).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityCheck {
    /// No packets for N seconds (typically 5 s).
    SignalLoss,
    /// Black screen or mean luma out of range (typically < 30 or > 220 of 255).
    Brightness,
    /// Frozen image (typically 10 frames > 95% similar).
    Frozen,
    /// Blur.
    Blur,
    /// Colour cast.
    ColourCast,
    /// Occlusion.
    Occlusion,
    /// A combined verdict from an external diagnosis system.
    Overall,
}

impl QualityCheck {
    /// All checks.
    pub const ALL: [QualityCheck; 7] = [
        QualityCheck::SignalLoss,
        QualityCheck::Brightness,
        QualityCheck::Frozen,
        QualityCheck::Blur,
        QualityCheck::ColourCast,
        QualityCheck::Occlusion,
        QualityCheck::Overall,
    ];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            QualityCheck::SignalLoss => "signal_loss",
            QualityCheck::Brightness => "brightness",
            QualityCheck::Frozen => "frozen",
            QualityCheck::Blur => "blur",
            QualityCheck::ColourCast => "colour_cast",
            QualityCheck::Occlusion => "occlusion",
            QualityCheck::Overall => "overall",
        }
    }

    /// Compact number for storage.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// Inverse of [`QualityCheck::to_u8`].
    pub fn from_u8(v: u8) -> Option<QualityCheck> {
        QualityCheck::ALL.get(usize::from(v)).copied()
    }
}

impl FromStr for QualityCheck {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let t = s.trim();
        QualityCheck::ALL
            .iter()
            .copied()
            .find(|c| c.code() == t || (t == "color_cast" && *c == QualityCheck::ColourCast))
            .ok_or_else(|| UnknownName {
                field: "check",
                text: truncate_for_error(s),
                expected: "signal_loss, brightness, frozen, blur, colour_cast, occlusion, overall",
            })
    }
}

/// One diagnosis result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// When the check ran.
    pub at: Timestamp,
    /// Which check.
    pub check: QualityCheck,
    /// Whether the picture passed.
    pub passed: bool,
}

/// The latest diagnosis outcome as of an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisOutcome {
    /// No diagnosis at or before the instant.
    None,
    /// The latest diagnosis passed.
    Passed,
    /// The latest diagnosis failed (the check that failed).
    Failed(QualityCheck),
}

/// A camera's diagnoses in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosisLog {
    items: Vec<Diagnosis>,
}

impl DiagnosisLog {
    /// An empty log.
    pub const fn new() -> Self {
        DiagnosisLog { items: Vec::new() }
    }

    /// Builds a log, sorting by time (stable, so same-instant results keep their order).
    pub fn from_unsorted(mut items: Vec<Diagnosis>) -> Self {
        items.sort_by_key(|d| d.at);
        DiagnosisLog { items }
    }

    /// Inserts a result at its place in time; returns the position.
    pub fn insert(&mut self, d: Diagnosis) -> usize {
        let pos = self.items.partition_point(|x| x.at <= d.at);
        self.items.insert(pos, d);
        pos
    }

    /// The results in time order.
    pub fn as_slice(&self) -> &[Diagnosis] {
        &self.items
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The latest diagnosis at or before `t`. Several checks recorded at the same instant form
    /// one diagnosis run, which fails if any of its checks failed.
    pub fn latest_at(&self, t: Timestamp) -> DiagnosisOutcome {
        let idx = self.items.partition_point(|d| d.at <= t);
        let Some(last) = idx.checked_sub(1).map(|i| self.items[i]) else {
            return DiagnosisOutcome::None;
        };
        let run = self.items[..idx]
            .iter()
            .rev()
            .take_while(|d| d.at == last.at);
        let mut outcome = DiagnosisOutcome::Passed;
        for d in run {
            if !d.passed {
                outcome = DiagnosisOutcome::Failed(d.check);
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(at: i64, check: QualityCheck, passed: bool) -> Diagnosis {
        Diagnosis {
            at: Timestamp::from_millis(at),
            check,
            passed,
        }
    }

    #[test]
    fn latest_diagnosis_wins_and_same_instant_failures_count() {
        let log = DiagnosisLog::from_unsorted(vec![
            d(30, QualityCheck::Blur, true),
            d(10, QualityCheck::Frozen, false),
            d(30, QualityCheck::Occlusion, false),
            d(50, QualityCheck::Overall, true),
        ]);
        assert_eq!(
            log.latest_at(Timestamp::from_millis(5)),
            DiagnosisOutcome::None
        );
        assert_eq!(
            log.latest_at(Timestamp::from_millis(10)),
            DiagnosisOutcome::Failed(QualityCheck::Frozen)
        );
        assert_eq!(
            log.latest_at(Timestamp::from_millis(49)),
            DiagnosisOutcome::Failed(QualityCheck::Occlusion)
        );
        assert_eq!(
            log.latest_at(Timestamp::from_millis(50)),
            DiagnosisOutcome::Passed
        );
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "uplink".parse::<HistoryKind>().unwrap(),
            HistoryKind::Uplink
        );
        assert_eq!(
            "recording".parse::<HistoryKind>().unwrap(),
            HistoryKind::Camera(StatusKind::Recording)
        );
        assert!("offline".parse::<HistoryKind>().is_err());
        assert_eq!(
            "color_cast".parse::<QualityCheck>().unwrap(),
            QualityCheck::ColourCast
        );
        for c in QualityCheck::ALL {
            assert_eq!(QualityCheck::from_u8(c.to_u8()), Some(c));
        }
        assert_eq!(QualityCheck::from_u8(200), None);
    }
}
