//! The four reports (figures, ranking, blind spots, deadline progress) as the API and
//! `vigil report` deliver them: the questions they take, the JSON they answer, and their CSV
//! renderings. Every figure comes from `vigil_core::compliance` through the index; this module
//! only chooses what to ask and lays the answer out.
//!
//! CSV files start with a UTF-8 byte-order mark so that spreadsheet programs on Chinese Windows
//! open them as UTF-8; percentages have two decimals and are empty when a figure does not apply.

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::compliance::{
    ComplianceOptions, GridReport, ItemId, ItemPage, RankRequest, RankedGrid, ReportRequest,
};
use vigil_core::grid::GridCode;
use vigil_core::import::SiteRow;
use vigil_core::ratio::{Ratio, Rational, Verdict};
use vigil_core::target::{DeadlineProgress, FigureKind};
use vigil_core::time::Timestamp;
use vigil_index::Index;

use crate::params::format_duration;
use crate::problem::{ApiResult, Problem};

/// The common questions of a report: which grid, as of when, over which window.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The grid (its whole subtree is counted).
    pub grid: GridCode,
    /// As of `T`.
    pub at: Timestamp,
    /// Window length `w` (ms); `W = [T − w, T)`.
    pub window_ms: i64,
}

/// The grid to report on: the one named, or the only root grid.
pub fn grid_or_root(index: &Index, text: Option<&str>) -> ApiResult<GridCode> {
    if let Some(code) = crate::params::opt_grid_code("grid", text)? {
        return Ok(code);
    }
    let roots = index.grid_roots()?;
    match roots.as_slice() {
        [only] => Ok(only.code.clone()),
        _ => Err(Problem::bad_param(
            "grid",
            format!(
                "required: there are {} root grids, name the one to report on",
                roots.len()
            ),
        )),
    }
}

/// The per-grid figure report, with a page of failing items per figure.
pub fn figures(
    index: &Index,
    opts: &ComplianceOptions,
    scope: &Scope,
    items: ItemPage,
    children: bool,
) -> ApiResult<GridReport> {
    let req = ReportRequest {
        items,
        children,
        window_ms: scope.window_ms,
        ..ReportRequest::new(scope.grid.clone(), scope.at)
    };
    Ok(index.report(opts, &req)?)
}

/// A ranking of the grids at one depth (打分排名).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Ranking {
    /// The grid whose subtree is ranked.
    pub within: GridCode,
    /// The depth ranked (roots are 0).
    pub depth: u32,
    /// As of.
    pub at: Timestamp,
    /// Window, e.g. `1d`.
    pub window: String,
    /// Best first; see `vigil_core::compliance::ScoreWeights` for the score.
    pub grids: Vec<RankedGrid>,
}

/// Ranks the grids at `depth` (default: the children of `scope.grid`) inside `scope.grid`.
pub fn ranking(
    index: &Index,
    opts: &ComplianceOptions,
    scope: &Scope,
    depth: Option<u32>,
) -> ApiResult<Ranking> {
    let depth = match depth {
        Some(d) => d,
        None => index.grid_ancestors(&scope.grid)?.len() as u32 + 1,
    };
    let req = RankRequest {
        within: scope.grid.clone(),
        depth,
        at: scope.at,
        window_ms: scope.window_ms,
    };
    Ok(Ranking {
        within: scope.grid.clone(),
        depth,
        at: scope.at,
        window: format_duration(scope.window_ms),
        grids: index.rank(opts, &req)?,
    })
}

/// Blind spots (盲区盲点): in-scope key sites no in-service camera covers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BlindSpots {
    /// The grid.
    pub grid: GridCode,
    /// As of.
    pub at: Timestamp,
    /// Blind spots in all.
    pub total: u64,
    /// Where this page starts.
    pub offset: usize,
    /// The page, by site ID.
    pub items: Vec<SiteRow>,
}

/// A page of the blind spots of `grid` at `at`.
pub fn blind_spots(
    index: &Index,
    opts: &ComplianceOptions,
    grid: &GridCode,
    at: Timestamp,
    offset: usize,
    limit: usize,
) -> ApiResult<BlindSpots> {
    let scope = Scope {
        grid: grid.clone(),
        at,
        window_ms: vigil_core::time::DAY_MS,
    };
    let page = ItemPage {
        offset,
        limit,
        figure: Some(FigureKind::PlannedCoverage),
    };
    let report = figures(index, opts, &scope, page, false)?;
    let list = report.blind_spots();
    let mut items = Vec::with_capacity(list.items.len());
    for item in &list.items {
        if let ItemId::Site(id) = &item.id {
            match index.site(id)? {
                Some(site) => items.push(SiteRow::from_site(&site)),
                None => {
                    return Err(Problem::internal(&format!(
                        "blind spot {id} is not in the site register"
                    )))
                }
            }
        }
    }
    Ok(BlindSpots {
        grid: grid.clone(),
        at,
        total: list.total,
        offset: list.offset,
        items,
    })
}

/// Progress toward dated targets.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Deadlines {
    /// The grid.
    pub grid: GridCode,
    /// As of.
    pub at: Timestamp,
    /// Window, e.g. `1d`.
    pub window: String,
    /// The trend compares the figures at `at` with those at `at − trend`.
    pub trend: String,
    /// One entry per figure whose target has a due date (none when no target has one; set
    /// them with `PUT /api/v1/targets`). `projected` is a linear estimate.
    pub deadlines: Vec<DeadlineProgress>,
}

/// Deadline progress of `scope.grid`, with the trend over `trend_ms`.
pub fn deadlines(
    index: &Index,
    opts: &ComplianceOptions,
    scope: &Scope,
    trend_ms: i64,
) -> ApiResult<Deadlines> {
    let req = ReportRequest {
        items: ItemPage::none(),
        children: false,
        window_ms: scope.window_ms,
        trend_ms: Some(trend_ms),
        ..ReportRequest::new(scope.grid.clone(), scope.at)
    };
    let report = index.report(opts, &req)?;
    Ok(Deadlines {
        grid: scope.grid.clone(),
        at: scope.at,
        window: format_duration(scope.window_ms),
        trend: format_duration(trend_ms),
        deadlines: report.deadlines,
    })
}

// ------------------------------------------------------------------------------------ CSV

/// The media type of CSV answers.
pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";

fn write_csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> ApiResult<Vec<u8>> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let fail = |e: csv::Error| Problem::internal(&e);
    w.write_record(header).map_err(fail)?;
    for row in rows {
        w.write_record(&row).map_err(fail)?;
    }
    w.into_inner()
        .map_err(|e| Problem::internal(&e.error().to_string()))
}

/// Rows in an import shape (`IntervalRow`, `SiteRow`, …) as CSV with the shape's header.
pub fn rows_csv<R: Serialize>(rows: &[R]) -> ApiResult<Vec<u8>> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    for r in rows {
        w.serialize(r).map_err(|e| Problem::internal(&e))?;
    }
    w.into_inner()
        .map_err(|e| Problem::internal(&e.error().to_string()))
}

/// A ratio as a percentage with two decimals; empty when not applicable.
pub fn percent(r: &Ratio) -> String {
    r.value()
        .map(|v| format!("{:.2}", v * 100.0))
        .unwrap_or_default()
}

fn target_percent(t: &Rational) -> String {
    format!("{:.2}", t.to_f64() * 100.0)
}

fn verdict(v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Pass => ("pass", String::new()),
        Verdict::Fail => ("fail", String::new()),
        Verdict::NotApplicable { reason } => ("not_applicable", reason.clone()),
    }
}

/// One line per figure: counts, percentage, target, verdict and number of failing items.
pub fn figures_csv(r: &GridReport) -> ApiResult<Vec<u8>> {
    let header = [
        "grid",
        "grid_name",
        "at",
        "window_start",
        "window_end",
        "figure",
        "label_zh",
        "label_en",
        "unit",
        "numerator",
        "denominator",
        "percent",
        "target_percent",
        "verdict",
        "reason",
        "failing",
    ];
    let rows = r.figures.iter().map(|f| {
        let (v, reason) = verdict(&f.verdict);
        vec![
            r.grid.to_string(),
            r.name.clone(),
            r.at.to_string(),
            r.window.start().to_string(),
            r.window.end().to_string(),
            f.kind.code().to_owned(),
            f.kind.label_zh().to_owned(),
            f.kind.label_en().to_owned(),
            serde_json::to_value(f.unit)
                .ok()
                .and_then(|u| u.as_str().map(str::to_owned))
                .unwrap_or_default(),
            f.ratio.numerator.to_string(),
            f.ratio.denominator.to_string(),
            percent(&f.ratio),
            target_percent(&f.target),
            v.to_owned(),
            reason,
            f.failing.total.to_string(),
        ]
    });
    write_csv(&header, rows)
}

/// The failing items listed in a report (the page asked for), one line each.
pub fn failing_csv(r: &GridReport) -> ApiResult<Vec<u8>> {
    let header = ["figure", "item_type", "item_id", "reason", "detail"];
    let rows = r.figures.iter().flat_map(|f| {
        f.failing.items.iter().map(move |i| {
            let (kind, id) = match &i.id {
                ItemId::Camera(c) => ("camera", c.to_string()),
                ItemId::Site(s) => ("site", s.to_string()),
            };
            vec![
                f.kind.code().to_owned(),
                kind.to_owned(),
                id,
                serde_json::to_value(i.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                i.detail.clone().unwrap_or_default(),
            ]
        })
    });
    write_csv(&header, rows)
}

/// One line per ranked grid: rank, score and the percentage of every figure.
pub fn ranking_csv(r: &Ranking) -> ApiResult<Vec<u8>> {
    let mut header: Vec<&str> = vec!["rank", "grid", "name", "score"];
    header.extend(FigureKind::ALL.iter().map(|k| k.code()));
    let rows = r.grids.iter().map(|g| {
        let mut row = vec![
            g.rank.to_string(),
            g.grid.to_string(),
            g.name.clone(),
            g.score.map(|s| format!("{s:.2}")).unwrap_or_default(),
        ];
        row.extend(FigureKind::ALL.iter().map(|k| {
            g.figures
                .iter()
                .find(|f| f.kind == *k)
                .map(|f| percent(&f.ratio))
                .unwrap_or_default()
        }));
        row
    });
    write_csv(&header, rows)
}

/// One line per figure with a dated target.
pub fn deadlines_csv(d: &Deadlines) -> ApiResult<Vec<u8>> {
    let header = [
        "grid",
        "figure",
        "target_percent",
        "due",
        "numerator",
        "denominator",
        "percent",
        "previous_at",
        "previous_percent",
        "projected_percent",
        "status",
    ];
    let rows = d.deadlines.iter().map(|p| {
        vec![
            d.grid.to_string(),
            p.figure.code().to_owned(),
            target_percent(&p.target),
            p.due.to_string(),
            p.current.numerator.to_string(),
            p.current.denominator.to_string(),
            percent(&p.current),
            p.previous_at.map(|t| t.to_string()).unwrap_or_default(),
            p.previous.as_ref().map(percent).unwrap_or_default(),
            p.projected
                .map(|v| format!("{:.2}", v * 100.0))
                .unwrap_or_default(),
            serde_json::to_value(p.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ]
    });
    write_csv(&header, rows)
}

/// The blind spots as a sites file (same columns as a sites import).
pub fn blind_spots_csv(b: &BlindSpots) -> ApiResult<Vec<u8>> {
    rows_csv(&b.items)
}
