//! Targets per figure (ratio + optional due date) and deadline progress.
//!
//! Defaults come from `domain.md` / seed 001 where the seeds give a number; where they do not
//! (online rate, recording completeness) vigil picks 95% and says so on [`Targets::default`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ratio::{Ratio, Rational};
use crate::status::UnknownName;
use crate::time::{truncate_for_error, Timestamp};

/// What a figure counts in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Sites.
    Sites,
    /// Cameras.
    Cameras,
    /// Milliseconds (time-weighted figures).
    Milliseconds,
}

macro_rules! figures {
    ($( $variant:ident, $code:literal, $unit:ident, $zh:literal, $en:literal; )*) => {
        /// Every figure vigil reports. Serialised as its [`code`](FigureKind::code), so JSON
        /// answers, stored targets and query parameters use one spelling.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum FigureKind {
            $( #[doc = $en] #[serde(rename = $code)] $variant, )*
        }

        impl FigureKind {
            /// All figures, in report order.
            pub const ALL: &'static [FigureKind] = &[$(FigureKind::$variant),*];

            /// Stable code.
            pub fn code(self) -> &'static str {
                match self { $(FigureKind::$variant => $code,)* }
            }

            /// What the numerator and denominator count.
            pub fn unit(self) -> Unit {
                match self { $(FigureKind::$variant => Unit::$unit,)* }
            }

            /// Chinese label.
            pub fn label_zh(self) -> &'static str {
                match self { $(FigureKind::$variant => $zh,)* }
            }

            /// English label.
            pub fn label_en(self) -> &'static str {
                match self { $(FigureKind::$variant => $en,)* }
            }
        }

        impl FromStr for FigureKind {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s.trim() {
                    $($code => Ok(FigureKind::$variant),)*
                    _ => Err(UnknownName {
                        field: "figure",
                        text: truncate_for_error(s),
                        expected: concat!($($code, " "),*),
                    }),
                }
            }
        }
    };
}

figures! {
    Coverage, "coverage", Sites, "覆盖率", "Coverage rate (working camera)";
    CoverageClass1, "coverage_class1", Sites, "一类点覆盖率", "Coverage rate, class 1 sites";
    CoverageClass2, "coverage_class2", Sites, "二类点覆盖率", "Coverage rate, class 2 sites";
    CoverageClass3, "coverage_class3", Sites, "三类点覆盖率", "Coverage rate, class 3 sites";
    PlannedCoverage, "planned_coverage", Sites, "规划覆盖率", "Planned coverage (any registered camera)";
    NetworkingAll, "networking_all", Cameras, "联网率", "Networking rate, all cameras";
    NetworkingKeySites, "networking_key_sites", Cameras, "覆盖范围内联网率", "Networking rate, cameras at key sites";
    Upload, "upload", Cameras, "视频信号上传率", "Video upload rate";
    OnlineTime, "online_time", Milliseconds, "在线率", "Online rate (time-weighted)";
    OnlineNow, "online_now", Cameras, "当前在线率", "Online now";
    Intact, "intact", Cameras, "完好率", "Intact rate, all cameras";
    IntactPublicAreas, "intact_public_areas", Cameras, "重点公共区域完好率", "Intact rate, key public areas";
    IntactKeyIndustries, "intact_key_industries", Cameras, "重点行业完好率", "Intact rate, key industries";
    RecordingCompleteness, "recording", Milliseconds, "录像完整率", "Recording completeness";
    Registration, "registration", Cameras, "建档率", "Registration (complete record) rate";
}

impl fmt::Display for FigureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A target for one figure.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The ratio to reach.
    pub ratio: Rational,
    /// When it must be reached (seed 001: "2013年10月底前"); `None` = no deadline.
    pub due: Option<Timestamp>,
}

impl Target {
    /// A target without a deadline.
    pub const fn percent(p: u64) -> Target {
        Target {
            ratio: Rational::percent(p),
            due: None,
        }
    }
}

/// Targets for every figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Targets {
    map: BTreeMap<FigureKind, Target>,
}

impl Default for Targets {
    /// - coverage (all, per class, planned): 100% ("实现目标100%覆盖"); regions with class quotas
    ///   (e.g. 100/90/80%) set the per-class targets;
    /// - networking: 80% of all cameras, 100% of cameras at key sites (seed 001 三.3(1));
    /// - upload: 100% (seed 001 三.3(1));
    /// - intact: 98% key public areas, 95% key industries (发改高技〔2015〕996号); the
    ///   all-cameras figure uses the lower 95%, because it mixes both kinds;
    /// - online (time-weighted and now) and recording completeness: 95% — the seeds give no number,
    ///   this is vigil's default and meant to be configured;
    /// - registration: 100% (every camera has a complete file).
    ///
    /// No default has a due date.
    fn default() -> Self {
        use FigureKind::*;
        let map = [
            (Coverage, 100),
            (CoverageClass1, 100),
            (CoverageClass2, 100),
            (CoverageClass3, 100),
            (PlannedCoverage, 100),
            (NetworkingAll, 80),
            (NetworkingKeySites, 100),
            (Upload, 100),
            (OnlineTime, 95),
            (OnlineNow, 95),
            (Intact, 95),
            (IntactPublicAreas, 98),
            (IntactKeyIndustries, 95),
            (RecordingCompleteness, 95),
            (Registration, 100),
        ]
        .into_iter()
        .map(|(k, p)| (k, Target::percent(p)))
        .collect();
        Targets { map }
    }
}

impl Targets {
    /// The target for a figure (the default if none was stored).
    pub fn get(&self, kind: FigureKind) -> Target {
        self.map
            .get(&kind)
            .copied()
            .unwrap_or_else(|| Targets::default().map[&kind])
    }

    /// Sets one target.
    pub fn set(&mut self, kind: FigureKind, target: Target) {
        self.map.insert(kind, target);
    }

    /// All targets in figure order.
    pub fn iter(&self) -> impl Iterator<Item = (FigureKind, Target)> + '_ {
        FigureKind::ALL.iter().map(|&k| (k, self.get(k)))
    }
}

/// Whether a grid will reach a target by its due date.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineStatus {
    /// The target is reached now.
    Met,
    /// Not reached yet, but the trend projected to the due date reaches it.
    OnTrack,
    /// Not reached and the trend does not reach it in time (or there is no trend to project).
    Behind,
    /// The due date has passed and the target is not reached.
    Overdue,
    /// The figure does not apply (zero denominator).
    NotApplicable,
}

/// Progress of one figure toward its dated target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadlineProgress {
    /// Which figure.
    pub figure: FigureKind,
    /// The target ratio.
    pub target: Rational,
    /// Due date.
    pub due: Timestamp,
    /// The figure at the report time.
    pub current: Ratio,
    /// The figure at `previous_at`, if a trend was computed.
    pub previous: Option<Ratio>,
    /// When `previous` was taken.
    pub previous_at: Option<Timestamp>,
    /// The linear projection of the trend to the due date (fraction 0–1, display only).
    pub projected: Option<f64>,
    /// The verdict.
    pub status: DeadlineStatus,
}

/// Computes deadline progress for a figure with a dated target.
///
/// Met and overdue are exact (rational comparison). "On track" is a projection: the change from
/// `previous` to `current`, extended linearly to the due date, compared with the target in
/// floating point — it is an estimate, and the report labels it as such.
pub fn deadline_progress(
    figure: FigureKind,
    target: Target,
    at: Timestamp,
    current: Ratio,
    previous: Option<(Timestamp, Ratio)>,
) -> Option<DeadlineProgress> {
    let due = target.due?;
    let mut out = DeadlineProgress {
        figure,
        target: target.ratio,
        due,
        current,
        previous: previous.map(|p| p.1),
        previous_at: previous.map(|p| p.0),
        projected: None,
        status: DeadlineStatus::Behind,
    };
    out.status = match current.meets(target.ratio) {
        None => DeadlineStatus::NotApplicable,
        Some(true) => DeadlineStatus::Met,
        Some(false) if at >= due => DeadlineStatus::Overdue,
        Some(false) => {
            let trend = previous.and_then(|(pat, pr)| {
                let span = at.ms_since(pat) as f64;
                Some((current.value()?, pr.value()?, span)).filter(|_| span > 0.0)
            });
            match trend {
                Some((cur, prev, span)) => {
                    let slope = (cur - prev) / span;
                    let projected = cur + slope * due.ms_since(at) as f64;
                    out.projected = Some(projected.clamp(0.0, 1.0));
                    if projected >= target.ratio.to_f64() {
                        DeadlineStatus::OnTrack
                    } else {
                        DeadlineStatus::Behind
                    }
                }
                None => DeadlineStatus::Behind,
            }
        }
    };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn defaults_follow_the_domain() {
        let t = Targets::default();
        assert_eq!(
            t.get(FigureKind::NetworkingAll).ratio,
            Rational::percent(80)
        );
        assert_eq!(
            t.get(FigureKind::NetworkingKeySites).ratio,
            Rational::percent(100)
        );
        assert_eq!(
            t.get(FigureKind::IntactPublicAreas).ratio,
            Rational::percent(98)
        );
        assert_eq!(
            t.get(FigureKind::IntactKeyIndustries).ratio,
            Rational::percent(95)
        );
        assert_eq!(t.iter().count(), FigureKind::ALL.len());
        let json = serde_json::to_string(&t).unwrap();
        let back: Targets = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        for k in FigureKind::ALL {
            assert_eq!(k.code().parse::<FigureKind>().unwrap(), *k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.code());
        }
    }

    #[test]
    fn deadline_statuses() {
        let at = Timestamp::from_millis(100 * DAY_MS);
        let due = Timestamp::from_millis(110 * DAY_MS);
        let target = Target {
            ratio: Rational::percent(90),
            due: Some(due),
        };
        let prev_at = Timestamp::from_millis(90 * DAY_MS);
        let p = |cur: Ratio, prev: Option<Ratio>| {
            deadline_progress(
                FigureKind::Coverage,
                target,
                at,
                cur,
                prev.map(|r| (prev_at, r)),
            )
            .unwrap()
            .status
        };
        assert_eq!(p(Ratio::new(9, 10), None), DeadlineStatus::Met);
        // 60% → 80% in 10 days, 10 more days → 100%: on track.
        assert_eq!(
            p(Ratio::new(80, 100), Some(Ratio::new(60, 100))),
            DeadlineStatus::OnTrack
        );
        assert_eq!(
            p(Ratio::new(80, 100), Some(Ratio::new(79, 100))),
            DeadlineStatus::Behind
        );
        assert_eq!(p(Ratio::new(80, 100), None), DeadlineStatus::Behind);
        assert_eq!(p(Ratio::new(0, 0), None), DeadlineStatus::NotApplicable);
        let late = deadline_progress(
            FigureKind::Coverage,
            target,
            Timestamp::from_millis(111 * DAY_MS),
            Ratio::new(1, 2),
            None,
        )
        .unwrap();
        assert_eq!(late.status, DeadlineStatus::Overdue);
        assert!(deadline_progress(
            FigureKind::Coverage,
            Target::percent(90),
            at,
            Ratio::new(1, 2),
            None
        )
        .is_none());
    }
}
