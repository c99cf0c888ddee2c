//! Bulk imports: `POST /imports/{grids,sites,cameras,intervals,diagnoses}` with a CSV
//! (`Content-Type: text/csv`) or JSON (`application/json`) body in UTF-8 or GB18030.
//! See [`crate::ingest`] for the file rules and [`crate::imports`] for the modes.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::import::{CameraRow, DiagnosisRow, GridRow, IntervalRow, SiteRow};

use crate::audit;
use crate::auth::Caller;
use crate::extract::{Query, Upload};
use crate::imports::{self, ImportKind, ImportRequest};
use crate::ingest::FileFormat;
use crate::params;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;
use crate::views::ImportOutcome;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_grids))
        .routes(routes!(import_sites))
        .routes(routes!(import_cameras))
        .routes(routes!(import_intervals))
        .routes(routes!(import_diagnoses))
}

/// How to import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `all_or_nothing` (default: any bad row rejects the whole file, nothing is written) or
    /// `apply_valid` (write the good rows, report the bad ones).
    mode: Option<String>,
    /// `true`: validate against the current data and report, write nothing.
    dry_run: Option<String>,
}

async fn import(
    state: AppState,
    caller: Caller,
    q: ImportQuery,
    upload: Upload,
    kind: ImportKind,
) -> ApiResult<Json<ImportOutcome>> {
    let caller = caller.require(kind.permission())?;
    let format = upload
        .media_type
        .as_ref()
        .and_then(|m| FileFormat::from_media_type(&m.essence))
        .ok_or_else(|| {
            Problem::unsupported_media_type(
                "send the file with Content-Type: text/csv or application/json \
                 (optionally with ; charset=gb18030)",
            )
        })?;
    let req = ImportRequest {
        kind,
        mode: params::optional("mode", q.mode.as_deref(), imports::parse_mode)?.unwrap_or_default(),
        dry_run: params::opt_bool("dry_run", q.dry_run.as_deref())?.unwrap_or(false),
        rtsp_ids: state.config().rtsp_ids,
    };
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let charset = upload.media_type.as_ref().and_then(|m| m.charset.clone());
            let result = imports::run(
                index,
                &req,
                &upload.bytes,
                charset.as_deref(),
                format,
                &mut |_, _| {},
            )?;
            let outcome = result.outcome(&req);
            if !req.dry_run && outcome.applied > 0 {
                audit::append(
                    index,
                    now,
                    imports::audit_change(caller.actor(), kind, &outcome),
                )?;
            }
            Ok(Json(outcome))
        })
        .await
}

/// Import grids (insert or update, parents may come after children; cycles, unknown parents
/// and duplicate codes are refused by row).
#[utoipa::path(post, path = "/imports/grids", tag = "imports", params(ImportQuery),
    request_body(description = "Grids file: CSV with a header line, or a JSON array",
        content((Vec<GridRow> = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportOutcome), Problems), security(("bearer" = [])))]
async fn import_grids(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    upload: Upload,
) -> ApiResult<Json<ImportOutcome>> {
    import(state, caller, q, upload, ImportKind::Grids).await
}

/// Import key sites (insert or update; their grids must exist).
#[utoipa::path(post, path = "/imports/sites", tag = "imports", params(ImportQuery),
    request_body(description = "Sites file: CSV with a header line, or a JSON array",
        content((Vec<SiteRow> = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportOutcome), Problems), security(("bearer" = [])))]
async fn import_sites(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    upload: Upload,
) -> ApiResult<Json<ImportOutcome>> {
    import(state, caller, q, upload, ImportKind::Sites).await
}

/// Import camera record versions (one row per version; RTSP rows without an ID get one).
#[utoipa::path(post, path = "/imports/cameras", tag = "imports", params(ImportQuery),
    request_body(description = "Cameras file: CSV with a header line, or a JSON array",
        content((Vec<CameraRow> = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportOutcome), Problems), security(("bearer" = [])))]
async fn import_cameras(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    upload: Upload,
) -> ApiResult<Json<ImportOutcome>> {
    import(state, caller, q, upload, ImportKind::Cameras).await
}

/// Import status history (online, recording, upload per camera; uplink per upper platform).
/// Overlapping or reversed intervals of one subject are refused by row.
#[utoipa::path(post, path = "/imports/intervals", tag = "imports", params(ImportQuery),
    request_body(description = "Intervals file: CSV with a header line, or a JSON array",
        content((Vec<IntervalRow> = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportOutcome), Problems), security(("bearer" = [])))]
async fn import_intervals(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    upload: Upload,
) -> ApiResult<Json<ImportOutcome>> {
    import(state, caller, q, upload, ImportKind::Intervals).await
}

/// Import quality-diagnosis results.
#[utoipa::path(post, path = "/imports/diagnoses", tag = "imports", params(ImportQuery),
    request_body(description = "Diagnoses file: CSV with a header line, or a JSON array",
        content((Vec<DiagnosisRow> = "application/json"), (String = "text/csv"))),
    responses((status = 200, body = ImportOutcome), Problems), security(("bearer" = [])))]
async fn import_diagnoses(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    upload: Upload,
) -> ApiResult<Json<ImportOutcome>> {
    import(state, caller, q, upload, ImportKind::Diagnoses).await
}
