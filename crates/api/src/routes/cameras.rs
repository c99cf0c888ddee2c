//! Cameras (一机一档): record versions, registration, decommissioning.
//!
//! A camera's record is a series of dated versions: `POST /cameras` files the first one,
//! `PUT /cameras/{id}` adds a version effective from its `effective_from` (a version at an
//! existing effective time replaces that version), `POST /cameras/{id}/decommission` takes the
//! camera out of service while keeping its history, and `DELETE /cameras/{id}` erases the camera
//! and all its history (admin only: it rewrites the past).
//!
//! RTSP credentials in `rtsp_url` (`rtsp://user:pass@host/…`) are split off and stored apart;
//! no answer, export or audit entry ever contains them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::camera::{AcceptanceState, Builder, RegistrationState};
use vigil_core::id::{GbId, IdError};
use vigil_core::import::CameraRow;
use vigil_core::model::CameraVersionInput;
use vigil_core::site::{PointClass, SiteId};
use vigil_core::time::Timestamp;
use vigil_index::{CameraFilter, Index};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::record_problem;
use crate::extract::{keyed_record, parse_json, parse_value, JsonBody, PathParam, Query, Upload};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;
use crate::views::{CameraPage, CameraView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cameras, create_camera))
        .routes(routes!(get_camera, put_camera, delete_camera))
        .routes(routes!(decommission_camera))
        .routes(routes!(camera_versions))
}

/// Filters and page of the camera list; all given filters must match (on the current record).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CameraListQuery {
    /// Only cameras whose current grid is inside this grid's subtree.
    grid: Option<String>,
    /// `true`: online at `at`; `false`: offline at `at`.
    online: Option<String>,
    /// `government_public` or `unit_self_built`.
    builder: Option<String>,
    /// Point class `1`, `2` or `3`.
    point_class: Option<String>,
    /// Only cameras watching this key site.
    site: Option<String>,
    /// `not_filed` or `filed`.
    registration: Option<String>,
    /// `pending`, `access_tested`, `accepted` or `rejected`.
    acceptance: Option<String>,
    /// Case-insensitive part of the name.
    q: Option<String>,
    /// Also list cameras decommissioned at or before `at` (default false).
    include_decommissioned: Option<String>,
    /// The instant status filters and fields refer to (RFC 3339; default now).
    at: Option<String>,
    /// Cursor: the `next` of the previous page.
    after: Option<String>,
    /// Page size (default 100).
    limit: Option<String>,
}

/// List cameras, filtered (e.g. `?grid=X&online=false`: offline cameras in grid X), by ID, a
/// page at a time.
#[utoipa::path(get, path = "/cameras", tag = "cameras", params(CameraListQuery),
    responses((status = 200, body = CameraPage), Problems), security(("bearer" = [])))]
async fn list_cameras(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CameraListQuery>,
) -> ApiResult<Json<CameraPage>> {
    caller.require(Permission::ReadCatalog)?;
    let filter = CameraFilter {
        grid: params::opt_grid_code("grid", q.grid.as_deref())?,
        online: params::opt_bool("online", q.online.as_deref())?,
        builder: params::opt_from_str::<Builder>("builder", q.builder.as_deref())?,
        point_class: params::opt_from_str::<PointClass>("point_class", q.point_class.as_deref())?,
        site: params::optional("site", q.site.as_deref(), SiteId::parse)?,
        registration: params::opt_from_str::<RegistrationState>(
            "registration",
            q.registration.as_deref(),
        )?,
        acceptance: params::opt_from_str::<AcceptanceState>("acceptance", q.acceptance.as_deref())?,
        name_contains: q.q.filter(|t| !t.trim().is_empty()),
        include_decommissioned: params::opt_bool(
            "include_decommissioned",
            q.include_decommissioned.as_deref(),
        )?
        .unwrap_or(false),
    };
    let at = params::time("at", q.at.as_deref(), state.now())?;
    let after = params::optional("after", q.after.as_deref(), GbId::parse)?;
    let limit = state.page_size(params::opt_usize("limit", q.limit.as_deref())?);
    let page = state
        .blocking(move |index| Ok(index.list_cameras(&filter, at, after.as_ref(), limit)?))
        .await?;
    Ok(Json(CameraPage {
        items: page
            .items
            .into_iter()
            .map(|v| CameraView::from_index(v, at))
            .collect(),
        next: page.next.map(|id| id.to_string()),
        total: page.total,
    }))
}

/// `effective_from` may be left out or empty: the record takes effect now.
fn default_effective_from(body: &mut serde_json::Value, now: Timestamp) {
    if let Some(object) = body.as_object_mut() {
        let given = object
            .get("effective_from")
            .and_then(|v| v.as_str())
            .is_some_and(|t| !t.trim().is_empty());
        if !given {
            object.insert(
                "effective_from".to_owned(),
                serde_json::Value::String(now.to_string()),
            );
        }
    }
}

pub(crate) fn view(index: &Index, id: &GbId, at: Timestamp) -> ApiResult<CameraView> {
    index
        .camera(id, at)?
        .map(|v| CameraView::from_index(v, at))
        .ok_or_else(|| Problem::not_found(format!("camera {id} does not exist")))
}

/// File a new camera (备案). `id` may be left empty for an RTSP camera: vigil assigns the next
/// free ID under the configured domain. `effective_from` defaults to now. 409 if the ID exists
/// (add a record version with PUT). When vigil records, filing an RTSP camera also runs its
/// access test (接入检测) before answering: the answer shows the measured HD capability and
/// the acceptance state it led to, and `GET /cameras/{id}/access-test` the whole report.
#[utoipa::path(post, path = "/cameras", tag = "cameras", request_body = CameraRow,
    responses((status = 201, body = CameraView), Problems), security(("bearer" = [])))]
async fn create_camera(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(mut body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<CameraView>)> {
    let caller = caller.require(Permission::RegisterCameras)?;
    let actor = caller.actor();
    let now = state.now();
    default_effective_from(&mut body, now);
    let row: CameraRow = parse_value(body)?;
    let policy = state.config().rtsp_ids;
    let created = {
        let _w = state.write_lock().await;
        file_camera(&state, caller, row, policy, now).await?
    };
    match (
        &state.subsystems().recordings,
        created.record.source.as_str(),
    ) {
        (Some(rec), "rtsp") => {
            let id = params::gb_id("id", created.record.id.as_deref().unwrap_or_default())?;
            let tested = super::acceptance::access_test(&state, rec, actor, id, None).await?;
            Ok((StatusCode::CREATED, Json(tested.camera)))
        }
        _ => Ok((StatusCode::CREATED, Json(created))),
    }
}

async fn file_camera(
    state: &AppState,
    caller: Caller,
    row: CameraRow,
    policy: Option<vigil_index::RtspIdPolicy>,
    now: Timestamp,
) -> ApiResult<CameraView> {
    state
        .blocking(move |index| {
            let needs_id = row.id.as_deref().is_none_or(|t| t.trim().is_empty());
            let candidate = match policy {
                Some(p) if needs_id => Some(index.next_rtsp_id(&p)?),
                _ => None,
            };
            let import = row
                .to_import(0, &mut || candidate.ok_or(IdError::NoRtspDomain))
                .map_err(record_problem)?;
            let id = import.version.camera.id;
            if index.camera(&id, now)?.is_some() {
                return Err(Problem::conflict(format!(
                    "camera {id} already exists; PUT /cameras/{id} adds a record version"
                )));
            }
            let credentials = import.credentials.is_some();
            let record = CameraRow::from_version(&import.version);
            index.put_camera(import)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "camera.create",
                    target: id.to_string(),
                    before: None,
                    after: audit::json(&AuditedRecord {
                        record,
                        rtsp_credentials_supplied: credentials,
                    }),
                },
            )?;
            view(index, &id, now)
        })
        .await
}

/// A camera record in the audit log: never the credentials, only whether some were supplied.
#[derive(Serialize)]
struct AuditedRecord {
    record: CameraRow,
    rtsp_credentials_supplied: bool,
}

/// When a status or report question is asked.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// The instant (RFC 3339; default now).
    at: Option<String>,
}

/// One camera: its current record and its status at `at`.
#[utoipa::path(get, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), AtQuery),
    responses((status = 200, body = CameraView), Problems), security(("bearer" = [])))]
async fn get_camera(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<AtQuery>,
) -> ApiResult<Json<CameraView>> {
    caller.require(Permission::ReadCatalog)?;
    let id = params::gb_id("id", &id)?;
    let at = params::time("at", q.at.as_deref(), state.now())?;
    let v = state.blocking(move |index| view(index, &id, at)).await?;
    Ok(Json(v))
}

/// Add a record version to an existing camera, effective from `effective_from` (default now);
/// a version at an existing effective time replaces it. The body's `id` may be left out.
#[utoipa::path(put, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    request_body = CameraRow,
    responses((status = 200, body = CameraView), Problems), security(("bearer" = [])))]
async fn put_camera(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    JsonBody(mut body): JsonBody<serde_json::Value>,
) -> ApiResult<Json<CameraView>> {
    let caller = caller.require(Permission::RegisterCameras)?;
    let id = params::gb_id("id", &id)?;
    let now = state.now();
    default_effective_from(&mut body, now);
    let row: CameraRow = keyed_record(body, "id", id.as_str())?;
    let import = row
        .to_import(0, &mut || Err(IdError::NoRtspDomain))
        .map_err(record_problem)?;
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            let before = index.camera_versions(&id)?.pop().map(|(from, camera)| {
                CameraRow::from_version(&CameraVersionInput { from, camera })
            });
            let credentials = import.credentials.is_some();
            let record = CameraRow::from_version(&import.version);
            index.put_camera(import)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "camera.update",
                    target: id.to_string(),
                    before: audit::json(&before),
                    after: audit::json(&AuditedRecord {
                        record,
                        rtsp_credentials_supplied: credentials,
                    }),
                },
            )?;
            Ok(Json(view(index, &id, now)?))
        })
        .await
}

/// When to decommission.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DecommissionBody {
    /// RFC 3339; default now.
    #[serde(default)]
    pub at: Option<String>,
}

/// Take a camera out of service from `at` (a new record version; history is kept, and the
/// camera leaves every figure from then on).
#[utoipa::path(post, path = "/cameras/{id}/decommission", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    request_body(content = DecommissionBody, description = "Optional; an empty body means now"),
    responses((status = 200, body = CameraView), Problems), security(("bearer" = [])))]
async fn decommission_camera(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    upload: Upload,
) -> ApiResult<Json<CameraView>> {
    let caller = caller.require(Permission::RegisterCameras)?;
    let id = params::gb_id("id", &id)?;
    let body: DecommissionBody = if upload.bytes.is_empty() {
        DecommissionBody::default()
    } else {
        parse_json(&upload.text()?.0)?
    };
    let now = state.now();
    let at = params::time("at", body.at.as_deref(), now)?;
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            let before = view(index, &id, at)?;
            index.decommission_camera(&id, at)?;
            let after = view(index, &id, at)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "camera.decommission",
                    target: id.to_string(),
                    before: audit::json(&before.record),
                    after: audit::json(&after.record),
                },
            )?;
            Ok(Json(after))
        })
        .await
}

/// Erase a camera with every record version, all its status history and diagnoses and its
/// credentials. Use decommissioning for cameras taken out of service: this rewrites the past.
#[utoipa::path(delete, path = "/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses((status = 204, description = "Deleted"), Problems), security(("bearer" = [])))]
async fn delete_camera(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<StatusCode> {
    let caller = caller.require(Permission::DeleteCameras)?;
    let id = params::gb_id("id", &id)?;
    let now = state.now();
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            let versions: Vec<CameraRow> = index
                .camera_versions(&id)?
                .into_iter()
                .map(|(from, camera)| CameraRow::from_version(&CameraVersionInput { from, camera }))
                .collect();
            index.delete_camera(&id)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "camera.delete",
                    target: id.to_string(),
                    before: audit::json(&versions),
                    after: None,
                },
            )?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// Every record version of a camera, oldest first (the same rows a cameras import takes).
#[utoipa::path(get, path = "/cameras/{id}/versions", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses((status = 200, body = Vec<CameraRow>), Problems), security(("bearer" = [])))]
async fn camera_versions(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<Vec<CameraRow>>> {
    caller.require(Permission::ReadCatalog)?;
    let id = params::gb_id("id", &id)?;
    let versions = state
        .blocking(move |index| Ok(index.camera_versions(&id)?))
        .await?;
    Ok(Json(
        versions
            .into_iter()
            .map(|(from, camera)| CameraRow::from_version(&CameraVersionInput { from, camera }))
            .collect(),
    ))
}
