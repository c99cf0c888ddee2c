//! Status history: per camera and kind over a range, quality diagnoses, and the uplinks to upper
//! platforms. Answers use the import row shapes (`IntervalRow`, `DiagnosisRow`), so a history
//! read here can be imported elsewhere as it is; an interval still running has no `end`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::import::{DiagnosisRow, IntervalRow};
use vigil_core::model::{DiagnosisRecord, HistoryRecord};
use vigil_core::status::{HistoryKind, StatusKind};
use vigil_core::time::{Interval, Timestamp};

use crate::auth::Caller;
use crate::extract::{PathParam, Query};
use crate::params::{self, OutputFormat};
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::reports::rows_csv;
use crate::routes::csv_answer;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(camera_history))
        .routes(routes!(camera_diagnoses))
        .routes(routes!(list_uplinks))
        .routes(routes!(uplink_history))
}

/// A time range and answer format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// `online`, `recording` or `upload` (camera history only; default: all three).
    kind: Option<String>,
    /// Start of the range (RFC 3339); default `to` minus the default window.
    from: Option<String>,
    /// End of the range, exclusive (RFC 3339); default now.
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn range(state: &AppState, q: &RangeQuery) -> ApiResult<Interval> {
    let to = params::time("to", q.to.as_deref(), state.now())?;
    let from = params::time(
        "from",
        q.from.as_deref(),
        to.sub_ms(state.config().default_window_ms),
    )?;
    Interval::new(from, to).map_err(|e| Problem::bad_param("from", e.to_string()))
}

fn answer<R: Serialize>(rows: Vec<R>, format: OutputFormat, name: &str) -> ApiResult<Response> {
    match format {
        OutputFormat::Json => Ok(Json(rows).into_response()),
        OutputFormat::Csv => Ok(csv_answer(rows_csv(&rows)?, name)),
    }
}

/// A camera's status intervals overlapping the range (not clipped to it), per kind.
#[utoipa::path(get, path = "/cameras/{id}/history", tag = "status",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), RangeQuery),
    responses((status = 200, body = Vec<IntervalRow>,
        content((Vec<IntervalRow> = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn camera_history(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadStatus)?;
    let id = params::gb_id("id", &id)?;
    let range = range(&state, &q)?;
    let format = OutputFormat::parse(q.format.as_deref())?;
    let kinds: Vec<StatusKind> =
        match params::opt_from_str::<HistoryKind>("kind", q.kind.as_deref())? {
            None => StatusKind::ALL.to_vec(),
            Some(HistoryKind::Camera(k)) => vec![k],
            Some(HistoryKind::Uplink) => {
                return Err(Problem::bad_param(
                    "kind",
                    "uplink history belongs to upper platforms: GET /uplinks/{platform}/history",
                ))
            }
        };
    let rows = state
        .blocking(move |index| {
            let mut rows = Vec::new();
            for kind in kinds {
                for interval in index.status_history(&id, kind, &range)? {
                    rows.push(IntervalRow::from_record(&HistoryRecord {
                        subject: id,
                        kind: HistoryKind::Camera(kind),
                        interval,
                    }));
                }
            }
            Ok(rows)
        })
        .await?;
    answer(rows, format, &format!("history-{id}.csv"))
}

/// A camera's quality diagnoses in the range.
#[utoipa::path(get, path = "/cameras/{id}/diagnoses", tag = "status",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), RangeQuery),
    responses((status = 200, body = Vec<DiagnosisRow>,
        content((Vec<DiagnosisRow> = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn camera_diagnoses(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadStatus)?;
    let id = params::gb_id("id", &id)?;
    let range = range(&state, &q)?;
    let format = OutputFormat::parse(q.format.as_deref())?;
    let rows = state
        .blocking(move |index| {
            Ok(index
                .diagnoses(&id, &range)?
                .into_iter()
                .map(|diagnosis| {
                    DiagnosisRow::from_record(&DiagnosisRecord {
                        camera: id,
                        diagnosis,
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
    answer(rows, format, &format!("diagnoses-{id}.csv"))
}

/// An upper platform and whether the cascade registration to it is alive.
#[derive(Debug, Serialize, ToSchema)]
pub struct UplinkView {
    /// The upper platform's 20-digit ID.
    pub platform: String,
    /// Registered at `at`.
    pub registered: bool,
    /// The instant `registered` refers to.
    pub at: Timestamp,
}

/// When.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UplinkQuery {
    /// The instant (RFC 3339); default now.
    at: Option<String>,
}

/// The upper platforms with uplink history and their state at `at`.
#[utoipa::path(get, path = "/uplinks", tag = "status", params(UplinkQuery),
    responses((status = 200, body = Vec<UplinkView>), Problems), security(("bearer" = [])))]
async fn list_uplinks(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UplinkQuery>,
) -> ApiResult<Json<Vec<UplinkView>>> {
    caller.require(Permission::ReadStatus)?;
    let at = params::time("at", q.at.as_deref(), state.now())?;
    let views = state
        .blocking(move |index| {
            let instant = Interval::new(at, at.add_ms(1))
                .map_err(|e| Problem::bad_param("at", e.to_string()))?;
            let mut out = Vec::new();
            for platform in index.uplink_platforms()? {
                let registered = index
                    .uplink_history(&platform, &instant)?
                    .iter()
                    .any(|i| i.contains(at));
                out.push(UplinkView {
                    platform: platform.to_string(),
                    registered,
                    at,
                });
            }
            Ok(out)
        })
        .await?;
    Ok(Json(views))
}

/// An upper platform's uplink intervals overlapping the range.
#[utoipa::path(get, path = "/uplinks/{platform}/history", tag = "status",
    params(("platform" = String, Path, description = "The upper platform's 20-digit ID"), RangeQuery),
    responses((status = 200, body = Vec<IntervalRow>,
        content((Vec<IntervalRow> = "application/json"), (String = "text/csv"))), Problems),
    security(("bearer" = [])))]
async fn uplink_history(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(platform): PathParam,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Response> {
    caller.require(Permission::ReadStatus)?;
    let platform = params::gb_id("platform", &platform)?;
    let range = range(&state, &q)?;
    let format = OutputFormat::parse(q.format.as_deref())?;
    let rows = state
        .blocking(move |index| {
            Ok(index
                .uplink_history(&platform, &range)?
                .into_iter()
                .map(|interval| {
                    IntervalRow::from_record(&HistoryRecord {
                        subject: platform,
                        kind: HistoryKind::Uplink,
                        interval,
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
    answer(rows, format, &format!("uplink-{platform}.csv"))
}
