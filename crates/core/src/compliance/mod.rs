//! THE place compliance figures are computed. The API, CLI, dashboard and exports call
//! [`report`] and [`rank`]; nothing else re-implements a figure.
//!
//! Every report is as of an instant `T` over a window `W = [T − w, T)` (default 24 h), per grid,
//! over the grid's whole subtree, by summing numerators and denominators of the items (never by
//! averaging children's percentages). The definitions follow `domain.md` ("Precise definitions"):
//!
//! - A camera is *in the register* at `t` once its first record version is effective
//!   (`from ≤ t`); it is *in service* at `T` if it is in the register and not decommissioned at or
//!   before `T`. It belongs to the grid of its record version in effect at `T`.
//! - *Scheduled time* = `W` ∩ [registered, decommissioned). Window figures (online time, upload,
//!   recording) count every camera with scheduled time > 0, including one decommissioned during
//!   `W`; instant figures (coverage, networking, online now, intact, registration) count cameras
//!   in service at `T`.
//! - *Online at T*: an online interval contains `T`. *Working at T*: online at `T` and the latest
//!   diagnosis at or before `T` did not fail (none counts as not failed; the report gives the
//!   count of cameras without any diagnosis).
//! - *Key-site camera*: its version at `T` lists at least one site whose `required_coverage` is
//!   true (a site in the coverage scope). Sites listed for reference only do not make a camera a
//!   key-site camera.
//! - **Coverage**: in-scope sites of the subtree with ≥ 1 in-service camera listing them that is
//!   working at `T` ÷ in-scope sites. Also per point class, and **planned coverage** (≥ 1
//!   in-service camera listing the site, working or not); sites failing planned coverage are the
//!   blind spots. A covering camera may sit in another grid.
//! - **Networking**: in-service cameras shared upward at `T` while ≥ 1 upper-platform uplink is
//!   registered at `T` ÷ in-service cameras; reported over all cameras and over key-site cameras.
//! - **Upload**: cameras required to upload (government-built, unknown builder, or self-built at a
//!   key site) with any upload (video received) interval overlapping their scheduled time ÷
//!   cameras required to upload.
//! - **Online time**: Σ online ms within scheduled time ÷ Σ scheduled ms. **Online now**: online at
//!   `T` ÷ in-service cameras.
//! - **Intact**: working at `T` ÷ in-service cameras; also over cameras at key public areas (98%)
//!   and at key industries (95%) by the sites' [`IntactClass`](crate::site::IntactClass).
//! - **Recording completeness**: Σ recorded ms within scheduled time ÷ Σ scheduled ms over
//!   cameras whose recording is required ([`RecordingScope`]).
//! - **Registration**: in-service cameras whose record has location, builder and point class
//!   (grid is mandatory) ÷ in-service cameras.
//! - Zero denominator → not applicable with a reason; pass iff `n × t.den ≥ t.num × d` exactly.
//!
//! Failing items are per figure, ordered by ID, bounded by [`ItemPage`] (see [`items`]). For the
//! time-weighted figures, a camera "fails" when its own rate is below the figure's target.

mod engine;
pub mod items;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::grid::{GridCode, GridSlot};
use crate::model::Model;
use crate::ratio::{Ratio, Rational, Verdict};
use crate::target::{deadline_progress, DeadlineProgress, FigureKind, Unit};
use crate::time::{Interval, Timestamp, DAY_MS};

pub use items::{FailingItem, ItemId, ItemList, ItemPage, Reason};

/// Why a report could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComplianceError {
    /// No grid with this code.
    #[error("grid {code} does not exist")]
    UnknownGrid { code: GridCode },
    /// Window length must be positive.
    #[error("window length {window_ms} ms is not positive")]
    BadWindow { window_ms: i64 },
    /// Trend span must be positive.
    #[error("trend span {trend_ms} ms is not positive")]
    BadTrend { trend_ms: i64 },
}

/// Which cameras must record (the denominator of recording completeness).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingScope {
    /// Every camera (the domain default).
    #[default]
    AllCameras,
    /// Only cameras covering an in-scope key site.
    KeySiteCameras,
    /// Only government-built public cameras.
    GovernmentPublic,
}

/// Weights for the ranking score, per figure.
///
/// Score of a grid = 100 × Σ wᶠ·aᶠ ÷ Σ wᶠ over figures with wᶠ > 0 that apply to the grid
/// (non-zero denominator), where the attainment aᶠ = min(1, value ÷ target) (1 when the target
/// is 0). Using attainment rather than the raw value makes an 80% target met at 80% worth as
/// much as a 100% target met at 100%. A grid where no weighted figure applies has no score and
/// ranks last. The score is for ordering only (floating point); pass/fail stays exact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScoreWeights(pub BTreeMap<FigureKind, u32>);

impl Default for ScoreWeights {
    /// coverage 25, intact 15, networking (all) 10, networking (key sites) 10, upload 10,
    /// online time 10, recording 10, registration 10 — 100 in total.
    fn default() -> Self {
        use FigureKind::*;
        ScoreWeights(
            [
                (Coverage, 25),
                (Intact, 15),
                (NetworkingAll, 10),
                (NetworkingKeySites, 10),
                (Upload, 10),
                (OnlineTime, 10),
                (RecordingCompleteness, 10),
                (Registration, 10),
            ]
            .into_iter()
            .collect(),
        )
    }
}

impl ScoreWeights {
    /// The score of a set of figures (see the type docs).
    pub fn score(
        &self,
        ratio_of: impl Fn(FigureKind) -> Ratio,
        targets: &crate::target::Targets,
    ) -> Option<f64> {
        let mut num = 0.0;
        let mut den = 0.0;
        for (&kind, &w) in &self.0 {
            if w == 0 {
                continue;
            }
            let Some(v) = ratio_of(kind).value() else {
                continue;
            };
            let t = targets.get(kind).ratio.to_f64();
            let attainment = if t <= 0.0 { 1.0 } else { (v / t).min(1.0) };
            num += f64::from(w) * attainment;
            den += f64::from(w);
        }
        (den > 0.0).then(|| 100.0 * num / den)
    }
}

/// Settings that are configuration rather than data (targets are data, in the model).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceOptions {
    /// Which cameras must record.
    pub recording_scope: RecordingScope,
    /// Ranking weights.
    pub weights: ScoreWeights,
    /// Threads per report pass: 0 = automatic (the available cores, at most 8, and only when
    /// the pass visits at least 16 384 cameras), 1 = the calling thread only, n = exactly n.
    pub threads: usize,
}

/// What to report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    /// The grid (its whole subtree is counted).
    pub grid: GridCode,
    /// As of `T`.
    pub at: Timestamp,
    /// Window length `w` in ms; `W = [T − w, T)`.
    pub window_ms: i64,
    /// Which failing items to list.
    pub items: ItemPage,
    /// If set, also compute the figures at `T − trend_ms` for deadline progress (doubles the cost).
    pub trend_ms: Option<i64>,
    /// Include a summary for each direct child grid.
    pub children: bool,
}

impl ReportRequest {
    /// A 24-hour window, the first 100 failing items per figure, child summaries, no trend.
    pub fn new(grid: GridCode, at: Timestamp) -> Self {
        ReportRequest {
            grid,
            at,
            window_ms: DAY_MS,
            items: ItemPage::default(),
            trend_ms: None,
            children: true,
        }
    }
}

/// One figure of one grid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Which figure.
    pub kind: FigureKind,
    /// What the counts count.
    pub unit: Unit,
    /// Exact value.
    pub ratio: Ratio,
    /// The target.
    pub target: Rational,
    /// Pass / fail / not applicable.
    pub verdict: Verdict,
    /// Failing items (count + page).
    pub failing: ItemList,
}

/// A figure without items (child summaries, rankings).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FigureSummary {
    /// Which figure.
    pub kind: FigureKind,
    /// Exact value.
    pub ratio: Ratio,
    /// Pass / fail / not applicable.
    pub verdict: Verdict,
}

/// Figures of a child grid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridSummary {
    /// The grid.
    pub grid: GridCode,
    /// Its name.
    pub name: String,
    /// Its level label.
    pub level_label: String,
    /// Its figures.
    pub figures: Vec<FigureSummary>,
}

/// The report for one grid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridReport {
    /// The grid.
    pub grid: GridCode,
    /// Its name.
    pub name: String,
    /// Its level label.
    pub level_label: String,
    /// As of.
    pub at: Timestamp,
    /// The window `[T − w, T)`.
    pub window: Interval,
    /// Cameras in service at `T` in the subtree.
    pub cameras_in_service: u64,
    /// Cameras with scheduled time in the window.
    pub cameras_scheduled: u64,
    /// Sites in the subtree (in scope or not).
    pub sites: u64,
    /// In-service cameras with no quality diagnosis at or before `T`.
    pub cameras_without_diagnosis: u64,
    /// Whether any upper-platform uplink was registered at `T`.
    pub uplink_registered: bool,
    /// Every figure, in [`FigureKind::ALL`] order.
    pub figures: Vec<Figure>,
    /// Direct children (if requested).
    pub children: Vec<GridSummary>,
    /// Progress toward dated targets.
    pub deadlines: Vec<DeadlineProgress>,
}

impl GridReport {
    /// One figure.
    pub fn figure(&self, kind: FigureKind) -> &Figure {
        // `figures` holds every kind in `FigureKind::ALL` order.
        &self.figures[kind as usize]
    }

    /// Blind spots (盲区盲点): in-scope sites no in-service camera covers — the failing items of
    /// planned coverage.
    pub fn blind_spots(&self) -> &ItemList {
        &self.figure(FigureKind::PlannedCoverage).failing
    }
}

/// Why a figure is not applicable, by figure.
fn na_reason(kind: FigureKind) -> &'static str {
    use FigureKind::*;
    match kind {
        Coverage | PlannedCoverage => "no key sites in the coverage scope in this grid",
        CoverageClass1 => "no class 1 key sites in the coverage scope in this grid",
        CoverageClass2 => "no class 2 key sites in the coverage scope in this grid",
        CoverageClass3 => "no class 3 key sites in the coverage scope in this grid",
        NetworkingAll | OnlineNow | Intact | Registration => "no cameras in service at T",
        NetworkingKeySites => "no camera in service at T covers a key site",
        Upload => "no camera required to upload had scheduled time in the window",
        OnlineTime => "no camera had scheduled time in the window",
        IntactPublicAreas => "no camera in service at T covers a key public-area site",
        IntactKeyIndustries => "no camera in service at T covers a key-industry site",
        RecordingCompleteness => "no camera required to record had scheduled time in the window",
    }
}

fn summaries(model: &Model, acc: &engine::Acc) -> Vec<FigureSummary> {
    FigureKind::ALL
        .iter()
        .map(|&kind| {
            let ratio = acc.ratio(kind);
            FigureSummary {
                kind,
                ratio,
                verdict: ratio.verdict(model.targets.get(kind).ratio, na_reason(kind)),
            }
        })
        .collect()
}

fn resolve(model: &Model, code: &GridCode) -> Result<GridSlot, ComplianceError> {
    model
        .grids
        .slot_of(code)
        .ok_or_else(|| ComplianceError::UnknownGrid { code: code.clone() })
}

/// Computes the report for one grid (see the module docs for every definition).
pub fn report(
    model: &Model,
    opts: &ComplianceOptions,
    req: &ReportRequest,
) -> Result<GridReport, ComplianceError> {
    let slot = resolve(model, &req.grid)?;
    let window =
        Interval::window_ending(req.at, req.window_ms).map_err(|_| ComplianceError::BadWindow {
            window_ms: req.window_ms,
        })?;
    if let Some(t) = req.trend_ms {
        if t <= 0 {
            return Err(ComplianceError::BadTrend { trend_ms: t });
        }
    }
    let dated: Vec<FigureKind> = FigureKind::ALL
        .iter()
        .copied()
        .filter(|&k| model.targets.get(k).due.is_some())
        .collect();
    let current = engine::Frame {
        at: req.at,
        window,
        page: Some(&req.items),
    };
    let (pass, previous) = match (req.trend_ms, dated.is_empty()) {
        (Some(t), false) => {
            let prev_at = req.at.sub_ms(t);
            let prev_window = Interval::window_ending(prev_at, req.window_ms).map_err(|_| {
                ComplianceError::BadWindow {
                    window_ms: req.window_ms,
                }
            })?;
            let earlier = engine::Frame {
                at: prev_at,
                window: prev_window,
                page: None,
            };
            let [now, then] = engine::run(model, opts, slot, [current, earlier]);
            (now, Some((prev_at, then.acc[0])))
        }
        _ => {
            let [now] = engine::run(model, opts, slot, [current]);
            (now, None)
        }
    };
    let root = pass.acc[0];
    let lists = pass.items.map(|c| c.finish()).unwrap_or_default();
    let figures: Vec<Figure> = FigureKind::ALL
        .iter()
        .zip(lists)
        .map(|(&kind, failing)| {
            let ratio = root.ratio(kind);
            let target = model.targets.get(kind).ratio;
            Figure {
                kind,
                unit: kind.unit(),
                ratio,
                target,
                verdict: ratio.verdict(target, na_reason(kind)),
                failing,
            }
        })
        .collect();

    let children = if req.children {
        model
            .grids
            .child_slots(slot)
            .iter()
            .filter_map(|&c| {
                let g = model.grids.grid(GridSlot(c))?;
                let acc = pass_acc(&pass.acc, pass.lo, model, GridSlot(c))?;
                Some(GridSummary {
                    grid: g.code.clone(),
                    name: g.name.clone(),
                    level_label: g.level_label.clone(),
                    figures: summaries(model, acc),
                })
            })
            .collect()
    } else {
        Vec::new()
    };

    let deadlines = dated
        .into_iter()
        .filter_map(|k| {
            deadline_progress(
                k,
                model.targets.get(k),
                req.at,
                root.ratio(k),
                previous.map(|(t, acc)| (t, acc.ratio(k))),
            )
        })
        .collect();

    let grid = model
        .grids
        .grid(slot)
        .ok_or_else(|| ComplianceError::UnknownGrid {
            code: req.grid.clone(),
        })?;
    Ok(GridReport {
        grid: grid.code.clone(),
        name: grid.name.clone(),
        level_label: grid.level_label.clone(),
        at: req.at,
        window,
        cameras_in_service: root.get(engine::C::CamsNow),
        cameras_scheduled: root.get(engine::C::CamsScheduled),
        sites: root.get(engine::C::SitesInGrid),
        cameras_without_diagnosis: root.get(engine::C::NoDiagnosis),
        uplink_registered: pass.uplink_alive,
        figures,
        children,
        deadlines,
    })
}

fn pass_acc<'a>(
    acc: &'a [engine::Acc],
    lo: u32,
    model: &Model,
    slot: GridSlot,
) -> Option<&'a engine::Acc> {
    model
        .grids
        .pos(slot)
        .checked_sub(lo)
        .and_then(|i| acc.get(i as usize))
}

/// Which grids to rank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankRequest {
    /// Rank grids inside this grid's subtree.
    pub within: GridCode,
    /// At this depth (roots are 0; e.g. villages under a town at depth 1 of a town-rooted tree).
    pub depth: u32,
    /// As of `T`.
    pub at: Timestamp,
    /// Window length in ms.
    pub window_ms: i64,
}

/// One ranked grid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedGrid {
    /// 1-based rank (grids without a score share the last ranks, ordered by code).
    pub rank: usize,
    /// The grid.
    pub grid: GridCode,
    /// Its name.
    pub name: String,
    /// Score 0–100 (see [`ScoreWeights`]); `None` when no weighted figure applies.
    pub score: Option<f64>,
    /// Figures the score came from.
    pub figures: Vec<FigureSummary>,
}

/// Ranks the grids at one depth inside a subtree (打分排名), best first; ties by grid code.
pub fn rank(
    model: &Model,
    opts: &ComplianceOptions,
    req: &RankRequest,
) -> Result<Vec<RankedGrid>, ComplianceError> {
    let slot = resolve(model, &req.within)?;
    let window =
        Interval::window_ending(req.at, req.window_ms).map_err(|_| ComplianceError::BadWindow {
            window_ms: req.window_ms,
        })?;
    let frame = engine::Frame {
        at: req.at,
        window,
        page: None,
    };
    let [pass] = engine::run(model, opts, slot, [frame]);
    let tree = &*model.grids;
    let range = tree.range(slot);
    let mut out: Vec<RankedGrid> = (range.start..range.end)
        .map(|pos| tree.slot_at(pos))
        .filter(|&s| tree.slot_depth(s) == req.depth)
        .filter_map(|s| {
            let g = tree.grid(s)?;
            let acc = pass.at_slot(model, s)?;
            Some(RankedGrid {
                rank: 0,
                grid: g.code.clone(),
                name: g.name.clone(),
                score: opts.weights.score(|k| acc.ratio(k), &model.targets),
                figures: summaries(model, acc),
            })
        })
        .collect();
    out.sort_by(|a, b| match (a.score, b.score) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.grid.cmp(&b.grid)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.grid.cmp(&b.grid),
    });
    for (i, r) in out.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
