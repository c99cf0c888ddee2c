//! Reports (`/reports/...`) and targets. Every report takes `grid` (default: the only root),
//! `at` (RFC 3339, default now) and `window` (e.g. `24h`, `7d`; default from the configuration),
//! and answers JSON or, with `format=csv`, a CSV file.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::compliance::{FailingItem, GridReport, ItemPage};
use vigil_core::target::{FigureKind, Target, Targets};
use vigil_core::time::{Timestamp, DAY_MS};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{JsonBody, Query};
use crate::params::{self, OutputFormat};
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::reports::{self, BlindSpots, Deadlines, Ranking, Scope};
use crate::routes::csv_answer;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(figures))
        .routes(routes!(failing))
        .routes(routes!(ranking))
        .routes(routes!(blind_spots))
        .routes(routes!(deadlines))
        .routes(routes!(get_targets, put_targets))
}

struct Common {
    at: Timestamp,
    window_ms: i64,
    format: OutputFormat,
}

fn common(
    state: &AppState,
    at: Option<&str>,
    window: Option<&str>,
    format: Option<&str>,
) -> ApiResult<Common> {
    Ok(Common {
        at: params::time("at", at, state.now())?,
        window_ms: params::duration("window", window, state.config().default_window_ms)?,
        format: OutputFormat::parse(format)?,
    })
}

/// The figure report's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiguresQuery {
    /// Grid code (its whole subtree is counted); default: the only root grid.
    grid: Option<String>,
    /// As of (RFC 3339); default now.
    at: Option<String>,
    /// Window ending at `at`, e.g. `24h`, `7d`, `30d`; default from the configuration.
    window: Option<String>,
    /// List failing items of this figure only (others give counts only).
    figure: Option<String>,
    /// Failing items to skip per figure (in ID order); default 0.
    offset: Option<String>,
    /// Failing items per figure; default 100.
    limit: Option<String>,
    /// Include a summary of each direct child grid (default true).
    children: Option<String>,
    /// `json` (default) or `csv` (one line per figure).
    format: Option<String>,
}

/// Every figure of a grid with numerator, denominator, target, verdict and a page of failing
/// items; with child-grid summaries and dated-target progress.
#[utoipa::path(get, path = "/reports/figures", tag = "reports", params(FiguresQuery),
    responses((status = 200, description = "The report",
        content((GridReport = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn figures(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FiguresQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadReports)?;
    let c = common(
        &state,
        q.at.as_deref(),
        q.window.as_deref(),
        q.format.as_deref(),
    )?;
    let page = item_page(&state, &q)?;
    let children = params::opt_bool("children", q.children.as_deref())?.unwrap_or(true);
    let opts = state.config().compliance.clone();
    let report = state
        .blocking(move |index| {
            let scope = Scope {
                grid: reports::grid_or_root(index, q.grid.as_deref())?,
                at: c.at,
                window_ms: c.window_ms,
            };
            reports::figures(index, &opts, &scope, page, children)
        })
        .await?;
    match c.format {
        OutputFormat::Json => Ok(Json(report).into_response()),
        OutputFormat::Csv => Ok(csv_answer(
            reports::figures_csv(&report)?,
            &format!("figures-{}.csv", report.grid),
        )),
    }
}

fn item_page(state: &AppState, q: &FiguresQuery) -> ApiResult<ItemPage> {
    Ok(ItemPage {
        offset: params::opt_usize("offset", q.offset.as_deref())?.unwrap_or(0),
        limit: params::opt_usize("limit", q.limit.as_deref())?
            .unwrap_or(ItemPage::default().limit)
            .min(state.config().max_page_size),
        figure: params::opt_from_str::<FigureKind>("figure", q.figure.as_deref())?,
    })
}

/// Failing items of one figure.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailingItems {
    /// The grid.
    pub grid: String,
    /// As of.
    pub at: Timestamp,
    /// The figure.
    pub figure: String,
    /// Failing items in all.
    pub total: u64,
    /// Where this page starts.
    pub offset: usize,
    /// The page, by item ID: `{"id": {"camera": "…"} | {"site": "…"}, "reason": …, "detail": …}`.
    pub items: Vec<FailingItem>,
}

/// The failing items (cameras or sites) of one figure, a page at a time; `format=csv` gives one
/// line per item.
#[utoipa::path(get, path = "/reports/failing", tag = "reports", params(FiguresQuery),
    responses((status = 200, body = FailingItems,
        content((FailingItems = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn failing(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FiguresQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadReports)?;
    let c = common(
        &state,
        q.at.as_deref(),
        q.window.as_deref(),
        q.format.as_deref(),
    )?;
    let page = item_page(&state, &q)?;
    let Some(figure) = page.figure else {
        return Err(Problem::bad_param("figure", "required"));
    };
    let opts = state.config().compliance.clone();
    let report = state
        .blocking(move |index| {
            let scope = Scope {
                grid: reports::grid_or_root(index, q.grid.as_deref())?,
                at: c.at,
                window_ms: c.window_ms,
            };
            reports::figures(index, &opts, &scope, page, false)
        })
        .await?;
    match c.format {
        OutputFormat::Csv => Ok(csv_answer(
            reports::failing_csv(&report)?,
            &format!("failing-{}-{}.csv", figure.code(), report.grid),
        )),
        OutputFormat::Json => {
            let list = report.figure(figure).failing.clone();
            Ok(Json(FailingItems {
                grid: report.grid.to_string(),
                at: report.at,
                figure: figure.code().to_owned(),
                total: list.total,
                offset: list.offset,
                items: list.items,
            })
            .into_response())
        }
    }
}

/// The ranking's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RankingQuery {
    /// Rank grids inside this grid; default: the only root grid.
    grid: Option<String>,
    /// Depth of the grids to rank (roots are 0); default: the children of `grid`.
    depth: Option<String>,
    /// As of (RFC 3339); default now.
    at: Option<String>,
    /// Window ending at `at`; default from the configuration.
    window: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Ranking of the grids at one level with their score (打分排名), best first.
#[utoipa::path(get, path = "/reports/ranking", tag = "reports", params(RankingQuery),
    responses((status = 200, body = Ranking,
        content((Ranking = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn ranking(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RankingQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadReports)?;
    let c = common(
        &state,
        q.at.as_deref(),
        q.window.as_deref(),
        q.format.as_deref(),
    )?;
    let depth = params::opt_usize("depth", q.depth.as_deref())?
        .map(|d| u32::try_from(d).map_err(|_| Problem::bad_param("depth", "too large")))
        .transpose()?;
    let opts = state.config().compliance.clone();
    let ranking = state
        .blocking(move |index| {
            let scope = Scope {
                grid: reports::grid_or_root(index, q.grid.as_deref())?,
                at: c.at,
                window_ms: c.window_ms,
            };
            reports::ranking(index, &opts, &scope, depth)
        })
        .await?;
    match c.format {
        OutputFormat::Json => Ok(Json(ranking).into_response()),
        OutputFormat::Csv => Ok(csv_answer(
            reports::ranking_csv(&ranking)?,
            &format!("ranking-{}-depth{}.csv", ranking.within, ranking.depth),
        )),
    }
}

/// The blind-spot list's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlindSpotsQuery {
    /// Grid code; default: the only root grid.
    grid: Option<String>,
    /// As of (RFC 3339); default now.
    at: Option<String>,
    /// Sites to skip (in ID order); default 0.
    offset: Option<String>,
    /// Page size; default 100.
    limit: Option<String>,
    /// `json` (default) or `csv` (a sites file).
    format: Option<String>,
}

/// Blind spots (盲区盲点): key sites in the coverage scope with no camera in service.
#[utoipa::path(get, path = "/reports/blind-spots", tag = "reports", params(BlindSpotsQuery),
    responses((status = 200, body = BlindSpots,
        content((BlindSpots = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn blind_spots(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BlindSpotsQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadReports)?;
    let c = common(&state, q.at.as_deref(), None, q.format.as_deref())?;
    let offset = params::opt_usize("offset", q.offset.as_deref())?.unwrap_or(0);
    let limit = state.page_size(params::opt_usize("limit", q.limit.as_deref())?);
    let opts = state.config().compliance.clone();
    let spots = state
        .blocking(move |index| {
            let grid = reports::grid_or_root(index, q.grid.as_deref())?;
            reports::blind_spots(index, &opts, &grid, c.at, offset, limit)
        })
        .await?;
    match c.format {
        OutputFormat::Json => Ok(Json(spots).into_response()),
        OutputFormat::Csv => Ok(csv_answer(
            reports::blind_spots_csv(&spots)?,
            &format!("blind-spots-{}.csv", spots.grid),
        )),
    }
}

/// The deadline report's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadlinesQuery {
    /// Grid code; default: the only root grid.
    grid: Option<String>,
    /// As of (RFC 3339); default now.
    at: Option<String>,
    /// Window ending at `at`; default from the configuration.
    window: Option<String>,
    /// The trend compares `at` with `at − trend`; default `7d`.
    trend: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Progress toward every target that has a due date: met, on track (a linear projection of the
/// trend), behind or overdue.
#[utoipa::path(get, path = "/reports/deadlines", tag = "reports", params(DeadlinesQuery),
    responses((status = 200, body = Deadlines,
        content((Deadlines = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn deadlines(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DeadlinesQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadReports)?;
    let c = common(
        &state,
        q.at.as_deref(),
        q.window.as_deref(),
        q.format.as_deref(),
    )?;
    let trend_ms = params::duration("trend", q.trend.as_deref(), 7 * DAY_MS)?;
    let opts = state.config().compliance.clone();
    let d = state
        .blocking(move |index| {
            let scope = Scope {
                grid: reports::grid_or_root(index, q.grid.as_deref())?,
                at: c.at,
                window_ms: c.window_ms,
            };
            reports::deadlines(index, &opts, &scope, trend_ms)
        })
        .await?;
    match c.format {
        OutputFormat::Json => Ok(Json(d).into_response()),
        OutputFormat::Csv => Ok(csv_answer(
            reports::deadlines_csv(&d)?,
            &format!("deadlines-{}.csv", d.grid),
        )),
    }
}

/// The target of every figure (defaults included):
/// `{"<figure>": {"ratio": "98/100", "due": "2013-10-31T16:00:00.000Z" | null}}`.
#[utoipa::path(get, path = "/targets", tag = "reports",
    responses((status = 200, body = BTreeMap<String, Target>, description = "Targets by figure code"), Problems),
    security(("bearer" = [])))]
async fn get_targets(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<BTreeMap<FigureKind, Target>>> {
    caller.require(Permission::ReadReports)?;
    let targets = state.blocking(|index| Ok(index.targets()?)).await?;
    Ok(Json(every_target(&targets)))
}

/// Every figure's target, defaults included.
fn every_target(targets: &Targets) -> BTreeMap<FigureKind, Target> {
    targets.iter().collect()
}

/// Replace the targets. Figures left out get their default; `ratio` is `98%`, `0.98` or
/// `98/100`; `due` is an RFC 3339 instant or null.
#[utoipa::path(put, path = "/targets", tag = "reports",
    request_body(content = BTreeMap<String, Target>, description = "Targets by figure code, as GET /targets answers"),
    responses((status = 200, body = BTreeMap<String, Target>, description = "The targets now in force"), Problems),
    security(("bearer" = [])))]
async fn put_targets(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(targets): JsonBody<Targets>,
) -> ApiResult<Json<BTreeMap<FigureKind, Target>>> {
    let caller = caller.require(Permission::SetTargets)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index.targets()?;
            index.set_targets(targets.clone())?;
            let after = index.targets()?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "targets.update",
                    target: "targets".to_owned(),
                    before: audit::json(&every_target(&before)),
                    after: audit::json(&every_target(&after)),
                },
            )?;
            Ok(Json(every_target(&after)))
        })
        .await
}
