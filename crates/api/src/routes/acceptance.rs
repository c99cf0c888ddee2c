//! The registration flow of a new camera after it is filed (备案): the access test (接入检测),
//! run by the integrator, and acceptance (审核验收), decided by the centre.
//!
//! - `POST /cameras/{id}/access-test` pulls the camera for a few seconds
//!   (`recording.access_test.seconds`) and reports codec, resolution, frame rate, bit rate and
//!   whether it meets the HD requirement (`[recording.access_test]`). The result is stored on
//!   the camera record — its HD capability (what was measured) and its acceptance state
//!   (`access_tested` when it passed, `rejected` when it failed; an already accepted camera
//!   keeps its acceptance, revoking it is the centre's decision) — and the whole report is kept
//!   (`GET /cameras/{id}/access-test`). Filing an RTSP camera with `POST /cameras` runs the
//!   test before answering when recording runs.
//! - `POST /cameras/{id}/acceptance` records the centre's decision. An RTSP camera can only be
//!   accepted after a passing access test.
//!
//! Both add a record version (the acceptance history is the record's history) and an audit
//! entry. Neither the report nor any answer carries the camera's credentials.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::camera::{AcceptanceState, Camera, CameraSource, HdCapability, VideoCodec};
use vigil_core::id::GbId;
use vigil_core::import::{CameraImport, CameraRow};
use vigil_core::model::CameraVersionInput;
use vigil_core::time::Timestamp;
use vigil_index::Index;
use vigil_rtsp::AccessTestReport;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{JsonBody, PathParam, Query};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, FieldError, Problem, Problems};
use crate::recording::Recording;
use crate::routes::cameras::view;
use crate::routes::recordings::recording;
use crate::state::AppState;
use crate::views::CameraView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_access_test, get_access_test))
        .routes(routes!(decide_acceptance))
}

/// Options of an access test.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessTestQuery {
    /// Seconds of video to read, 1–60 (default `recording.access_test.seconds`).
    seconds: Option<String>,
}

/// What an access test found and the camera record after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessTestOutcome {
    /// The camera with its updated HD capability and acceptance state.
    pub camera: CameraView,
    /// The report: `url` (no credentials), `transport`, `tested_at`, `requirement`, `codec`,
    /// `rfc6381_codec`, `width`, `height`, `fps` (measured), `declared_fps`, `bitrate_bps`,
    /// `frames`, `key_frames`, `gop_frames`, `measured_ms`, `meets_hd`, `failures`
    /// (`kind`, `message`) and `error` (why video could not be received).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// Run the access test (接入检测) on an RTSP camera: pull it for a few seconds, measure codec,
/// resolution, frame rate and bit rate, check the HD requirement, and store the result on the
/// camera record (HD capability; acceptance `access_tested` or `rejected`) and the report.
/// Takes the test's duration plus the connection time.
#[utoipa::path(post, path = "/cameras/{id}/access-test", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), AccessTestQuery),
    responses((status = 200, body = AccessTestOutcome), Problems),
    security(("bearer" = [])))]
async fn run_access_test(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<AccessTestQuery>,
) -> ApiResult<Json<AccessTestOutcome>> {
    let caller = caller.require(Permission::RegisterCameras)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let duration = match params::opt_usize("seconds", q.seconds.as_deref())? {
        None => None,
        Some(s @ 1..=60) => Some(Duration::from_secs(s as u64)),
        Some(_) => return Err(Problem::bad_param("seconds", "must be 1 to 60")),
    };
    Ok(Json(
        access_test(&state, &rec, caller.actor(), id, duration).await?,
    ))
}

/// The report of a camera's latest access test.
#[utoipa::path(get, path = "/cameras/{id}/access-test", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses((status = 200, description = "The report (see POST)", body = Object), Problems),
    security(("bearer" = [])))]
async fn get_access_test(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Permission::ReadCatalog)?;
    let id = params::gb_id("id", &id)?;
    let now = state.now();
    state
        .blocking(move |index| {
            if index.camera(&id, now)?.is_none() {
                return Err(Problem::not_found(format!("camera {id} does not exist")));
            }
            index.access_test(&id)?.map(Json).ok_or_else(|| {
                Problem::not_found(format!(
                    "camera {id} has no access test yet (POST /cameras/{id}/access-test)"
                ))
            })
        })
        .await
}

/// The latest record version of a camera.
fn latest(index: &Index, id: &GbId) -> ApiResult<(Timestamp, Camera)> {
    index
        .camera_versions(id)?
        .pop()
        .ok_or_else(|| Problem::not_found(format!("camera {id} does not exist")))
}

/// Adds `camera` as a record version effective now (or replacing a version dated later, so
/// that the change is not hidden behind it).
fn put_version(index: &Index, from: Timestamp, now: Timestamp, camera: Camera) -> ApiResult<()> {
    Ok(index.put_camera(CameraImport {
        version: CameraVersionInput {
            from: from.max(now),
            camera,
        },
        credentials: None,
    })?)
}

/// What the camera delivered, as the record's HD capability (`None` when no video came, or
/// the numbers are not usable).
fn measured_hd(report: &AccessTestReport) -> Option<HdCapability> {
    let width = report.width.filter(|w| (1..=16_384).contains(w))?;
    let height = report.height.filter(|h| (1..=16_384).contains(h))?;
    let fps = report
        .fps
        .or(report.declared_fps)
        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0)?;
    let codec = report
        .codec
        .as_deref()
        .and_then(|c| c.parse::<VideoCodec>().ok())
        .unwrap_or(VideoCodec::Other);
    Some(HdCapability {
        width,
        height,
        codec,
        fps,
    })
}

/// Runs the access test on camera `id` and stores the result (also used by `POST /cameras`).
pub(crate) async fn access_test(
    state: &AppState,
    rec: &Arc<Recording>,
    actor: String,
    id: GbId,
    duration: Option<Duration>,
) -> ApiResult<AccessTestOutcome> {
    let (url, credentials) = state
        .blocking(move |index| {
            let (_, camera) = latest(index, &id)?;
            match camera.source {
                CameraSource::Rtsp { url } => Ok((url, index.rtsp_credentials(&id)?)),
                CameraSource::Gb { .. } => Err(Problem::invalid(
                    format!(
                        "camera {id} is a GB/T 28181 channel; the access test is for RTSP cameras"
                    ),
                    vec![FieldError::new("not an RTSP camera").field("source")],
                )),
            }
        })
        .await?;
    let source = rec.source(&url, credentials.as_ref()).map_err(|e| {
        let reason = format!("camera {id}: its RTSP URL cannot be pulled: {e}");
        Problem::invalid(
            reason.clone(),
            vec![FieldError::new(reason).field("rtsp_url")],
        )
    })?;
    let report = rec.access_test(&source, duration).await;
    let report_json = serde_json::to_value(&report).map_err(|e| Problem::internal(&e))?;
    let summary = serde_json::json!({
        "meets_hd": report.meets_hd,
        "codec": report.codec,
        "width": report.width,
        "height": report.height,
        "fps": report.fps,
        "bitrate_bps": report.bitrate_bps,
        "failures": report.failures.iter().map(|f| f.message.clone()).collect::<Vec<_>>(),
    });
    let now = state.now();
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            let (from, camera) = latest(index, &id)?;
            let mut updated = camera.clone();
            if let Some(hd) = measured_hd(&report) {
                updated.hd = Some(hd);
            }
            updated.acceptance = match camera.acceptance {
                AcceptanceState::Accepted => AcceptanceState::Accepted,
                _ if report.meets_hd => AcceptanceState::AccessTested,
                _ => AcceptanceState::Rejected,
            };
            let before = CameraRow::from_version(&CameraVersionInput {
                from,
                camera: camera.clone(),
            });
            if updated != camera {
                put_version(index, from, now, updated)?;
            }
            index.set_access_test(&id, &report_json)?;
            let (from, camera) = latest(index, &id)?;
            audit::append(
                index,
                now,
                Change {
                    actor,
                    action: "camera.access_test",
                    target: id.to_string(),
                    before: audit::json(&before),
                    after: Some(serde_json::json!({
                        "record": CameraRow::from_version(&CameraVersionInput { from, camera }),
                        "access_test": summary,
                    })),
                },
            )?;
            Ok(AccessTestOutcome {
                camera: view(index, &id, now)?,
                report: report_json,
            })
        })
        .await
}

/// The centre's decision on a camera.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptanceBody {
    /// `accepted` (已验收) or `rejected` (未通过).
    pub decision: String,
    /// Why, for the audit log (at most 500 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Accept or reject a camera (审核验收), the centre's decision after the integrator's access
/// test. An RTSP camera can only be accepted after a passing access test (its acceptance
/// state is `access_tested`); otherwise 409. Adds a record version and an audit entry with the
/// note.
#[utoipa::path(post, path = "/cameras/{id}/acceptance", tag = "cameras",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    request_body = AcceptanceBody,
    responses((status = 200, body = CameraView), Problems),
    security(("bearer" = [])))]
async fn decide_acceptance(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    JsonBody(body): JsonBody<AcceptanceBody>,
) -> ApiResult<Json<CameraView>> {
    let caller = caller.require(Permission::AcceptCameras)?;
    let id = params::gb_id("id", &id)?;
    let decision = match body.decision.parse::<AcceptanceState>() {
        Ok(d @ (AcceptanceState::Accepted | AcceptanceState::Rejected)) => d,
        _ => {
            let reason = format!("{:?} is not accepted or rejected", body.decision);
            return Err(Problem::invalid(
                reason.clone(),
                vec![FieldError::new(reason).field("decision")],
            ));
        }
    };
    let note = body.note.unwrap_or_default();
    if note.chars().count() > 500 {
        let reason = "the note is longer than 500 characters".to_owned();
        return Err(Problem::invalid(
            reason.clone(),
            vec![FieldError::new(reason).field("note")],
        ));
    }
    let now = state.now();
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            let (from, camera) = latest(index, &id)?;
            let rtsp = matches!(camera.source, CameraSource::Rtsp { .. });
            if decision == AcceptanceState::Accepted
                && rtsp
                && !matches!(
                    camera.acceptance,
                    AcceptanceState::AccessTested | AcceptanceState::Accepted
                )
            {
                return Err(Problem::conflict(format!(
                    "camera {id} has not passed the access test (its acceptance state is {}); \
                     run POST /cameras/{id}/access-test first",
                    camera.acceptance
                )));
            }
            if camera.acceptance != decision {
                let before = CameraRow::from_version(&CameraVersionInput {
                    from,
                    camera: camera.clone(),
                });
                let mut updated = camera;
                updated.acceptance = decision;
                put_version(index, from, now, updated)?;
                let (from, camera) = latest(index, &id)?;
                audit::append(
                    index,
                    now,
                    Change {
                        actor: caller.actor(),
                        action: "camera.acceptance",
                        target: id.to_string(),
                        before: audit::json(&before),
                        after: Some(serde_json::json!({
                            "record": CameraRow::from_version(&CameraVersionInput { from, camera }),
                            "note": note,
                        })),
                    },
                )?;
            }
            Ok(Json(view(index, &id, now)?))
        })
        .await
}
