//! Recorded and live video: each camera's recording state, its recordings as runs and gaps,
//! export of a time range as one MP4 (streamed, `Range` supported), live fragmented MP4 over
//! chunked HTTP, a JPEG snapshot, and the retention policy.
//!
//! Everything here reads the recording subsystem ([`crate::recording::Recording`]); without
//! it (recording disabled in the configuration) these routes answer 503.
//!
//! Listing and export read the store's catalogue, not the camera register: footage of a
//! camera that was deleted from the register stays listable and exportable until retention
//! removes it.

use std::convert::Infallible;
use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::id::GbId;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::RetentionPolicy;
use vigil_store::{RecordingList, StoreError};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{JsonBody, PathParam, Query};
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, FieldError, Problem, Problems};
use crate::recording::{CameraRecordingState, Recording, SnapshotError, StreamView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_recorders))
        .routes(routes!(camera_recorder))
        .routes(routes!(list_recordings))
        .routes(routes!(export_recording))
        .routes(routes!(live))
        .routes(routes!(snapshot))
        .routes(routes!(get_retention, put_retention))
}

/// The recording handle, or 503 when the daemon does not record.
pub(crate) fn recording(state: &AppState) -> ApiResult<Arc<Recording>> {
    state.subsystems().recordings.clone().ok_or_else(|| {
        Problem::unavailable(
            "recording is not running in this vigil (recording.enabled = false in its \
             configuration)",
        )
    })
}

/// Binary content (MP4, JPEG) in the OpenAPI document.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// Filter of the recorder list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordersQuery {
    /// `true`: only cameras whose state needs attention (not pulled, retrying, write error,
    /// stopped).
    problems: Option<String>,
}

/// The recording state of every camera vigil pulls or records: whether it records, and if not
/// what is wrong (camera refused, wrong password, no key frame, bad data, disk full, …).
#[utoipa::path(get, path = "/recorders", tag = "recordings", params(RecordersQuery),
    responses((status = 200, body = Vec<CameraRecordingState>), Problems),
    security(("bearer" = [])))]
async fn list_recorders(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RecordersQuery>,
) -> ApiResult<Json<Vec<CameraRecordingState>>> {
    caller.require(Permission::ReadStatus)?;
    let rec = recording(&state)?;
    let only_problems = params::opt_bool("problems", q.problems.as_deref())?.unwrap_or(false);
    let mut states = rec.camera_states();
    if only_problems {
        states.retain(|s| s.state.is_problem());
    }
    Ok(Json(states))
}

/// One camera's recording state: the summary (`state`, `problem`, `warnings`), the RTSP
/// puller's state and the segment recorder's counters.
#[utoipa::path(get, path = "/cameras/{id}/recorder", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses((status = 200, body = CameraRecordingState), Problems),
    security(("bearer" = [])))]
async fn camera_recorder(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<CameraRecordingState>> {
    caller.require(Permission::ReadStatus)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let now = state.now();
    let known = state
        .blocking(move |index| Ok(index.camera(&id, now)?.is_some()))
        .await?;
    if !known && !rec.is_pulled(&id) {
        return Err(Problem::not_found(format!("camera {id} does not exist")));
    }
    Ok(Json(rec.camera_state(&id)))
}

/// A time range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordingsQuery {
    /// Start of the range (RFC 3339); default `to` minus the default window.
    from: Option<String>,
    /// End of the range, exclusive (RFC 3339); default now.
    to: Option<String>,
}

/// A stretch of continuous video with one set of codec parameters.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Start, clipped to the range.
    pub start: Timestamp,
    /// End (exclusive), clipped to the range.
    pub end: Timestamp,
    /// What the camera sent.
    pub stream: StreamView,
    /// Bytes of the segment files making up the run (whole files, not clipped).
    pub bytes: u64,
    /// Frames in those files.
    pub frames: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Whether the run's last segment is still being written.
    pub in_progress: bool,
}

/// A part of the range without video.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapView {
    /// Start.
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
}

/// A camera's recordings over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingsView {
    /// The camera.
    pub camera: GbId,
    /// Start of the range.
    pub from: Timestamp,
    /// End of the range (exclusive).
    pub to: Timestamp,
    /// Milliseconds of video in the range.
    pub recorded_ms: i64,
    /// Runs in time order; a run ends where video stops or the codec parameters change.
    pub runs: Vec<RunView>,
    /// The parts of the range without video, in time order.
    pub gaps: Vec<GapView>,
}

impl RecordingsView {
    fn new(camera: GbId, list: RecordingList) -> Self {
        RecordingsView {
            camera,
            from: list.range.start(),
            to: list.range.end(),
            recorded_ms: list.recorded_ms,
            runs: list
                .runs
                .iter()
                .map(|r| RunView {
                    start: r.start,
                    end: r.end,
                    stream: StreamView::from(&r.stream),
                    bytes: r.bytes,
                    frames: r.frames,
                    segments: r.segments,
                    in_progress: r.in_progress,
                })
                .collect(),
            gaps: list
                .gaps
                .iter()
                .map(|g| GapView {
                    start: g.start(),
                    end: g.end(),
                })
                .collect(),
        }
    }
}

/// A camera's recorded video over `from`–`to` as runs and the gaps between them (from the
/// catalogue; no file is opened).
#[utoipa::path(get, path = "/cameras/{id}/recordings", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), RecordingsQuery),
    responses((status = 200, body = RecordingsView), Problems),
    security(("bearer" = [])))]
async fn list_recordings(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<RecordingsQuery>,
) -> ApiResult<Json<RecordingsView>> {
    caller.require(Permission::ReadStatus)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let to = params::time("to", q.to.as_deref(), state.now())?;
    let from = params::time(
        "from",
        q.from.as_deref(),
        to.sub_ms(state.config().default_window_ms),
    )?;
    let range = Interval::new(from, to).map_err(|e| Problem::bad_param("from", e.to_string()))?;
    let store = rec.store().clone();
    let list = tokio::task::spawn_blocking(move || store.recordings(&id, &range))
        .await
        .map_err(|e| Problem::internal(&e))?
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(RecordingsView::new(id, list)))
}

/// The range to export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First instant wanted (RFC 3339); the file starts at the key frame at or before it.
    start: Option<String>,
    /// End, exclusive (RFC 3339).
    end: Option<String>,
}

fn required_time(field: &str, text: Option<&str>) -> ApiResult<Timestamp> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Err(Problem::bad_param(field, "required")),
        Some(t) => params::time(field, Some(t), Timestamp::EPOCH),
    }
}

/// A `Range` request against a body of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeRequest {
    /// No (usable) range: the whole body, 200.
    Whole,
    /// One satisfiable range, 206.
    Part(Range<u64>),
    /// A range starting past the end, 416.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 14.2) for a body of `len` bytes. One byte range is
/// served; several ranges, other units and malformed values are ignored (the whole body is
/// sent, as the RFC allows).
fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |t: &str| t.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if len > 0 => RangeRequest::Part(len.saturating_sub(n)..len),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        // bytes=a-: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a < len => RangeRequest::Part(a..len),
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Part(a..b.saturating_add(1).min(len))
                }
            }
            _ => RangeRequest::Whole,
        },
        (true, true) => RangeRequest::Whole,
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Export `start`–`end` of a camera's recording as one MP4 file, streamed from the segment
/// files (never assembled in memory). The file begins at the key frame at or before `start`
/// (or the first one after it when `start` falls in a gap) and ends with the last fragment
/// that begins before `end`; gaps stay gaps in its timeline, and every fragment carries its
/// wall-clock time (`prft`). It ends early where the codec parameters change
/// (`X-Vigil-Stopped-At-Change` says when; export the rest from there). One byte `Range` is
/// supported (206; `If-Range` with the `ETag`); 404 when nothing was recorded in the range.
/// Response headers `X-Vigil-Start`, `X-Vigil-End` and `X-Vigil-Frames` describe the file.
#[utoipa::path(get, path = "/cameras/{id}/recording.mp4", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID"), ExportQuery),
    responses(
        (status = 200, description = "The whole MP4 file", content_type = "video/mp4", body = Binary),
        (status = 206, description = "The requested byte range", content_type = "video/mp4", body = Binary),
        (status = 416, description = "The range starts past the end of the file"),
        Problems),
    security(("bearer" = [])))]
async fn export_recording(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let caller = caller.require(Permission::ExportVideo)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let start = required_time("start", q.start.as_deref())?;
    let end = required_time("end", q.end.as_deref())?;
    if end <= start {
        return Err(Problem::bad_param(
            "end",
            format!("{end} is not after start {start}"),
        ));
    }
    let export = rec
        .store()
        .export(&id, start, end)
        .await
        .map_err(|e| match e {
            StoreError::BadExport { reason, .. } => Problem::bad_param("end", reason),
            other => Problem::internal(&other),
        })?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "camera {id} has no recording between {start} and {end}"
            ))
        })?;
    let len = export.len();
    let etag = format!(
        "\"{len:x}-{:x}-{:x}\"",
        export.frames(),
        export.start().as_millis()
    );
    let if_range_matches = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_matches => parse_range(v, len),
        _ => RangeRequest::Whole,
    };
    tracing::info!(
        camera = %id, actor = %caller.actor(), %start, %end, bytes = len,
        frames = export.frames(), range = ?range, "exporting recorded video"
    );
    let (status, bytes) = match range {
        RangeRequest::Unsatisfiable => {
            let mut r = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
            )
            .detail(format!("the file is {len} bytes long"))
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}")),
            );
            return Ok(r);
        }
        RangeRequest::Whole => (StatusCode::OK, 0..len),
        RangeRequest::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
    };
    let shutdown = rec.shutdown().clone();
    let body = Body::from_stream(
        export
            .stream(bytes.clone())
            .take_until(shutdown.cancelled_owned()),
    );
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(
        header::CONTENT_LENGTH,
        header_value(&(bytes.end - bytes.start).to_string()),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&etag));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!(
                "bytes {}-{}/{len}",
                bytes.start,
                bytes.end.saturating_sub(1)
            )),
        );
    }
    let file = format!("{id}_{}.mp4", export.start().as_millis());
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"{file}\"")),
    );
    h.insert("x-vigil-start", header_value(&export.start().to_string()));
    h.insert("x-vigil-end", header_value(&export.end().to_string()));
    h.insert("x-vigil-frames", header_value(&export.frames().to_string()));
    if let Some(at) = export.stopped_at_change() {
        h.insert("x-vigil-stopped-at-change", header_value(&at.to_string()));
    }
    Ok(response)
}

/// Live video as fragmented MP4 over chunked HTTP: an init segment, then fragments (one GOP
/// each) starting at a key frame, for as long as the client reads; a new init segment when the
/// camera's codec parameters change. A client that falls behind skips to the next key frame.
/// Latency is one fragment. 404 when the camera is not being recorded; 503 when its video
/// does not arrive within `recording.live_wait_secs` (the problem says why).
#[utoipa::path(get, path = "/cameras/{id}/live.mp4", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses(
        (status = 200, description = "Fragmented MP4, streamed until the client disconnects",
            content_type = "video/mp4", body = Binary),
        Problems),
    security(("bearer" = [])))]
async fn live(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    caller.require(Permission::ViewVideo)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    if !rec.is_pulled(&id) && rec.store().latest_key_frame(&id).is_none() {
        return Err(Problem::not_found(format!(
            "camera {id} is not being recorded, so there is no live video"
        )));
    }
    let mut sub = rec.store().live(&id);
    let wait = rec.settings().live_wait;
    let shutdown = rec.shutdown().clone();
    let first = tokio::select! {
        first = tokio::time::timeout(wait, sub.next()) => first,
        () = shutdown.cancelled() => return Err(Problem::unavailable("vigil is stopping")),
    };
    let first = match first {
        Ok(Some(event)) => event.bytes(),
        Ok(None) => return Err(Problem::unavailable("the recording store is closing")),
        Err(_) => {
            let s = rec.camera_state(&id);
            let why = s
                .problem
                .unwrap_or_else(|| format!("state {}", s.state.code()));
            return Err(Problem::unavailable(format!(
                "no video from camera {id} within {} s ({why})",
                wait.as_secs()
            )));
        }
    };
    let stream = futures::stream::once(std::future::ready(first))
        .chain(sub.into_byte_stream())
        .take_until(shutdown.cancelled_owned())
        .map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// A JPEG of the latest key frame the camera sent (decoded by ffmpeg; at most a GOP old while
/// the camera streams). 404 when no key frame arrived since vigil started; 503 when
/// snapshots are disabled (`recording.ffmpeg` empty).
#[utoipa::path(get, path = "/cameras/{id}/snapshot.jpg", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses(
        (status = 200, description = "JPEG image", content_type = "image/jpeg", body = Binary),
        Problems),
    security(("bearer" = [])))]
async fn snapshot(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Response> {
    caller.require(Permission::ViewVideo)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let jpeg = rec.snapshot(&id).await.map_err(|e| match e {
        SnapshotError::Disabled => Problem::unavailable(e.to_string()),
        SnapshotError::NoFrame(_) => Problem::not_found(e.to_string()),
        SnapshotError::Ffmpeg { .. } => Problem::internal(&e),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        jpeg,
    )
        .into_response())
}

/// A camera's retention policy and what it means in days.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    /// The camera.
    pub camera: GbId,
    /// Marked as watching an anti-terror key target (反恐怖主义法 art. 32: 90 days by default).
    pub key_target: bool,
    /// An explicit retention in days, if set (it can lengthen retention, never shorten it).
    pub days: Option<u32>,
    /// How long this camera's footage is kept.
    pub effective_days: u32,
    /// The legal minimum that applies (`recording.retention_days` or
    /// `recording.key_target_retention_days`); only a full disk deletes younger footage, and
    /// that is logged as an error.
    pub legal_minimum_days: u32,
}

/// A camera's retention policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    /// The camera watches an anti-terror key target (default false).
    #[serde(default)]
    pub key_target: bool,
    /// Keep footage this many days (at least the legal minimum, at most 3650); absent: the
    /// minimum.
    #[serde(default)]
    pub days: Option<u32>,
}

fn retention_view(rec: &Recording, camera: GbId, policy: RetentionPolicy) -> RetentionView {
    let (effective_days, legal_minimum_days) = rec.store().config().retention_days_of(&policy);
    RetentionView {
        camera,
        key_target: policy.key_target,
        days: policy.days,
        effective_days,
        legal_minimum_days,
    }
}

/// A camera's retention policy and the days it gives.
#[utoipa::path(get, path = "/cameras/{id}/retention", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    responses((status = 200, body = RetentionView), Problems),
    security(("bearer" = [])))]
async fn get_retention(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<RetentionView>> {
    caller.require(Permission::ReadCatalog)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let policy = state
        .blocking(move |index| Ok(index.retention_policy(&id)?))
        .await?;
    Ok(Json(retention_view(&rec, id, policy)))
}

/// Longest retention a policy may ask for.
const MAX_RETENTION_DAYS: u32 = 3650;

/// Set a camera's retention policy: mark it as watching an anti-terror key target (its
/// footage is then kept `recording.key_target_retention_days`, 90 by default) and/or keep it
/// longer than the minimum. Shortening below the legal minimum is refused (422).
#[utoipa::path(put, path = "/cameras/{id}/retention", tag = "recordings",
    params(("id" = String, Path, description = "20-digit GB/T 28181 ID")),
    request_body = RetentionBody,
    responses((status = 200, body = RetentionView), Problems),
    security(("bearer" = [])))]
async fn put_retention(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
    JsonBody(body): JsonBody<RetentionBody>,
) -> ApiResult<Json<RetentionView>> {
    let caller = caller.require(Permission::SetRetention)?;
    let rec = recording(&state)?;
    let id = params::gb_id("id", &id)?;
    let policy = RetentionPolicy {
        key_target: body.key_target,
        days: body.days,
    };
    let (_, minimum) = rec.store().config().retention_days_of(&policy);
    if let Some(days) = body.days {
        if days < minimum || days > MAX_RETENTION_DAYS {
            let reason = format!(
                "{days} days is outside {minimum}..={MAX_RETENTION_DAYS}: footage must be kept at \
                 least {minimum} days ({})",
                if body.key_target {
                    "anti-terror key target, 反恐怖主义法 art. 32"
                } else {
                    "公共安全视频图像信息系统管理条例 art. 17"
                }
            );
            return Err(Problem::invalid(
                reason.clone(),
                vec![FieldError::new(reason).field("days")],
            ));
        }
    }
    let now = state.now();
    let _w = state.write_lock().await;
    state
        .blocking(move |index| {
            if index.camera(&id, now)?.is_none() {
                return Err(Problem::not_found(format!("camera {id} does not exist")));
            }
            let before = index.retention_policy(&id)?;
            index.set_retention_policy(&id, policy)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "camera.retention",
                    target: id.to_string(),
                    before: audit::json(&before),
                    after: audit::json(&policy),
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(Json(retention_view(&rec, id, policy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Part(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), Part(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), Part(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Part(0..1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), Part(990..1000));
        assert_eq!(parse_range(" bytes= 5 - 9 ", 1000), Part(5..10));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1200", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        // Ignored: several ranges, other units, nonsense, reversed.
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Whole);
        assert_eq!(parse_range("items=0-1", 1000), Whole);
        assert_eq!(parse_range("bytes=x-y", 1000), Whole);
        assert_eq!(parse_range("bytes=9-5", 1000), Whole);
        assert_eq!(parse_range("bytes=-", 1000), Whole);
    }
}
