//! GB/T 28181 devices and channels: the SIP server with its counters, devices with their
//! registration and keepalive state and last error, each device's catalog as a tree with what
//! vigil filed from it, starting and stopping the recording of a channel, re-querying a
//! catalog, and the CivilCode → grid table with the unmapped codes.
//!
//! Everything here reads the GB/T 28181 subsystem ([`crate::gb28181::Gb28181`]); without it
//! (`gb28181.enabled = false`) these routes answer 503.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{JsonBody, PathParam, Query};
use crate::gb28181::{
    Gb28181, GbChannelView, GbCivilCodeReport, GbDevicePage, GbDeviceView, GbError, GbServerView,
    RecordingOverride,
};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(server))
        .routes(routes!(list_devices))
        .routes(routes!(get_device))
        .routes(routes!(device_channels))
        .routes(routes!(query_catalog))
        .routes(routes!(set_recording))
        .routes(routes!(civil_codes))
}

/// The GB/T 28181 handle, or 503 when the daemon does not run the server.
fn gb(state: &AppState) -> ApiResult<Arc<Gb28181>> {
    state.subsystems().gb28181.clone().ok_or_else(|| {
        Problem::unavailable(
            "the GB/T 28181 server is not running in this vigil (gb28181.enabled = false in its \
             configuration)",
        )
    })
}

impl From<GbError> for Problem {
    fn from(e: GbError) -> Problem {
        match &e {
            GbError::Stopped => Problem::unavailable(e.to_string()),
            GbError::UnknownDevice(_) | GbError::UnknownChannel { .. } => {
                Problem::not_found(e.to_string())
            }
            GbError::NotFiled { .. } | GbError::Offline(_) | GbError::Other(_) => {
                Problem::conflict(e.to_string())
            }
        }
    }
}

/// `/gb28181/devices/{id}/channels/{channel}/…`: both IDs, parsed.
struct ChannelPath {
    device: vigil_core::id::GbId,
    channel: vigil_core::id::GbId,
}

impl<S: Send + Sync> FromRequestParts<S> for ChannelPath {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let axum::extract::Path((device, channel)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| Problem::bad_request(format!("path: {}", e.body_text())))?;
        Ok(ChannelPath {
            device: params::gb_id("id", &device)?,
            channel: params::gb_id("channel", &channel)?,
        })
    }
}

/// The SIP server: identity (no passwords), bound addresses, device and channel counts,
/// uplinks, and every counter — garbage datagrams, SIP parse errors, bad MANSCDP bodies,
/// catalog inconsistencies, unanswered INVITEs, RTP with the wrong SSRC, PS errors, frames
/// recorded — and the daemon's own (`daemon_*`).
#[utoipa::path(get, path = "/gb28181", tag = "gb28181",
    responses((status = 200, body = GbServerView), Problems),
    security(("bearer" = [])))]
async fn server(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<GbServerView>> {
    caller.require(Permission::ReadStatus)?;
    Ok(Json(gb(&state)?.server_view().await?))
}

/// Filter and page of the device list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DevicesQuery {
    /// `true` / `false`: only devices (not) online now.
    online: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size (default `http.default_page_size`).
    limit: Option<String>,
}

/// Devices (IPCs, NVRs, lower platforms) seen since vigil started: registration and keepalive
/// state, GB/T 28181 edition, quirks, last error, DeviceInfo, catalog state and recent
/// transitions.
#[utoipa::path(get, path = "/gb28181/devices", tag = "gb28181", params(DevicesQuery),
    responses((status = 200, body = GbDevicePage), Problems),
    security(("bearer" = [])))]
async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DevicesQuery>,
) -> ApiResult<Json<GbDevicePage>> {
    caller.require(Permission::ReadStatus)?;
    let gb = gb(&state)?;
    let online = params::opt_bool("online", q.online.as_deref())?;
    let limit = state.page_size(params::opt_usize("limit", q.limit.as_deref())?);
    Ok(Json(gb.devices(online, q.after.as_deref(), limit).await?))
}

/// One device.
#[utoipa::path(get, path = "/gb28181/devices/{id}", tag = "gb28181",
    params(("id" = String, Path, description = "20-digit device ID")),
    responses((status = 200, body = GbDeviceView), Problems),
    security(("bearer" = [])))]
async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<GbDeviceView>> {
    caller.require(Permission::ReadStatus)?;
    let gb = gb(&state)?;
    let id = params::gb_id("id", &id)?;
    Ok(Json(gb.device(id).await?))
}

/// A device's catalog: every item (video channels and the nodes of its trees — business
/// groups, virtual organisations, regions, NVRs) with parents, children, CivilCode, status,
/// how vigil filed it (camera and grid, or why not), and for video channels the recording
/// decision, media session and counters. Items that left the catalog are listed as `removed`.
#[utoipa::path(get, path = "/gb28181/devices/{id}/channels", tag = "gb28181",
    params(("id" = String, Path, description = "20-digit device ID")),
    responses((status = 200, body = Vec<GbChannelView>), Problems),
    security(("bearer" = [])))]
async fn device_channels(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<Vec<GbChannelView>>> {
    caller.require(Permission::ReadCatalog)?;
    let gb = gb(&state)?;
    let id = params::gb_id("id", &id)?;
    Ok(Json(gb.channels(id).await?))
}

/// The catalog query sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogQueryAnswer {
    /// The query's SN; the answer updates the device's channels when it has arrived.
    pub sn: u64,
}

/// Queries a device's catalog again now (the answer arrives asynchronously; its channels are
/// filed as they are after any catalog). 409 when the device is offline.
#[utoipa::path(post, path = "/gb28181/devices/{id}/catalog-query", tag = "gb28181",
    params(("id" = String, Path, description = "20-digit device ID")),
    responses((status = 202, body = CatalogQueryAnswer), Problems),
    security(("bearer" = [])))]
async fn query_catalog(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<(StatusCode, Json<CatalogQueryAnswer>)> {
    caller.require(Permission::ControlDevices)?;
    let gb = gb(&state)?;
    let id = params::gb_id("id", &id)?;
    let sn = gb.refresh_catalog(id).await?;
    Ok((StatusCode::ACCEPTED, Json(CatalogQueryAnswer { sn })))
}

/// An operator's recording decision.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingBody {
    /// `on`: record continuously whatever the policy says; `off`: do not record; `policy`: let
    /// `[gb28181.recording]` decide again.
    #[schema(example = "on")]
    pub recording: String,
}

/// Starts or stops recording a channel (overriding the recording policy), or gives it back to
/// the policy. Only channels filed as cameras can be recorded (409 otherwise). An override for
/// an offline device holds: the channel is pulled when the device is back.
#[utoipa::path(put, path = "/gb28181/devices/{id}/channels/{channel}/recording", tag = "gb28181",
    params(("id" = String, Path, description = "20-digit device ID"),
        ("channel" = String, Path, description = "20-digit channel ID")),
    request_body = RecordingBody,
    responses((status = 200, body = GbChannelView), Problems),
    security(("bearer" = [])))]
async fn set_recording(
    State(state): State<AppState>,
    caller: Caller,
    path: ChannelPath,
    JsonBody(body): JsonBody<RecordingBody>,
) -> ApiResult<Json<GbChannelView>> {
    let caller = caller.require(Permission::ControlDevices)?;
    let gb = gb(&state)?;
    let decision = match body.recording.trim() {
        "on" => RecordingOverride::On,
        "off" => RecordingOverride::Off,
        "policy" => RecordingOverride::Policy,
        other => {
            return Err(Problem::bad_param(
                "recording",
                format!("{other:?} is not on, off or policy"),
            ))
        }
    };
    let ChannelPath { device, channel } = path;
    let _w = state.write_lock().await;
    let view = gb.set_recording(device, channel, decision).await?;
    let now = state.now();
    let after = audit::json(&body);
    state
        .blocking(move |index| {
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "gb28181.recording",
                    target: format!("{device}/{channel}"),
                    before: None,
                    after,
                },
            )
        })
        .await?;
    Ok(Json(view))
}

/// The CivilCode → grid table (`[gb28181.civil_codes]`; longest prefix wins) with the number
/// of channels each entry maps and whether its grid exists, and the CivilCodes seen in
/// catalogs that map to no grid, with the channels carrying them.
#[utoipa::path(get, path = "/gb28181/civil-codes", tag = "gb28181",
    responses((status = 200, body = GbCivilCodeReport), Problems),
    security(("bearer" = [])))]
async fn civil_codes(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<GbCivilCodeReport>> {
    caller.require(Permission::ReadCatalog)?;
    let gb = gb(&state)?;
    let report = state
        .blocking(move |index| {
            let mut failed = None;
            let report = gb.civil_code_report(|g| match index.grid(g) {
                Ok(found) => found.is_some(),
                Err(e) => {
                    failed.get_or_insert(e);
                    false
                }
            });
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(report),
            }
        })
        .await?;
    Ok(Json(report))
}
