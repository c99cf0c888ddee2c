//! The recording subsystem as the handlers see it: the segment store, the RTSP pullers, which
//! cameras of the register are pulled (the daemon's `recording` module decides that and keeps
//! [`Recording::set_pulled`] up to date), the access-test and snapshot settings, and each
//! camera's state in one shape ([`CameraRecordingState`]) that says what is wrong in words
//! an operator can act on.
//!
//! The daemon builds one [`Recording`] and hands it to the API through
//! [`crate::state::Subsystems::recordings`]; without it the recording routes answer 503.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_rtsp::{
    AccessTestReport, CameraSource, ProbeOptions, PullerRegistry, PullerState, Timeouts, Transport,
    UrlError,
};
use vigil_store::{RecorderState, RecorderStatus, Store};

use crate::state::{SubsystemHandle, SubsystemHealth};

/// Settings of the recording routes (the daemon fills them from `[recording]`).
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    /// How long the access test reads video (from the first key frame).
    pub access_test_duration: Duration,
    /// The HD requirement and watchdogs of the access test.
    pub probe: ProbeOptions,
    /// How cameras are pulled (also for the access test).
    pub transport: Transport,
    /// Handshake timeouts (also for the access test).
    pub timeouts: Timeouts,
    /// The ffmpeg binary that turns a key frame into a JPEG; `None`: no snapshots.
    pub ffmpeg: Option<PathBuf>,
    /// Longest a snapshot's ffmpeg may run.
    pub snapshot_timeout: Duration,
    /// Longest a live request waits for the camera's first fragment before answering 503.
    pub live_wait: Duration,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            access_test_duration: Duration::from_secs(5),
            probe: ProbeOptions::default(),
            transport: Transport::Tcp,
            timeouts: Timeouts::default(),
            ffmpeg: Some(PathBuf::from("ffmpeg")),
            snapshot_timeout: Duration::from_secs(10),
            live_wait: Duration::from_secs(15),
        }
    }
}

/// A camera the daemon pulls: what the API may show about its source (no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledCamera {
    /// The URL without credentials, secret query values masked.
    pub url: String,
    /// TCP or UDP.
    pub transport: Transport,
}

/// Snapshots run ffmpeg; at most this many at a time.
const SNAPSHOTS_AT_ONCE: usize = 2;

/// The recording subsystem's handle (see the module docs). Cheap to share in an `Arc`.
pub struct Recording {
    store: Store,
    pullers: Arc<PullerRegistry>,
    settings: RecordingSettings,
    pulled: Mutex<HashMap<GbId, PulledCamera>>,
    unpullable: Mutex<HashMap<GbId, String>>,
    shutdown: CancellationToken,
    snapshots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("pullers", &self.pullers)
            .finish_non_exhaustive()
    }
}

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// `recording.ffmpeg` is empty.
    #[error("snapshots are disabled (recording.ffmpeg is empty)")]
    Disabled,
    /// The camera sent no key frame since the store started.
    #[error("camera {0} has sent no key frame since vigil started")]
    NoFrame(GbId),
    /// ffmpeg could not be run or failed.
    #[error("ffmpeg could not decode the latest key frame of camera {camera}: {reason}")]
    Ffmpeg {
        /// The camera.
        camera: GbId,
        /// What went wrong.
        reason: String,
    },
}

impl Recording {
    /// A handle over a running store and puller registry. `shutdown` is cancelled when the
    /// daemon stops; it ends live streams, exports in progress and access tests.
    pub fn new(
        store: Store,
        pullers: Arc<PullerRegistry>,
        settings: RecordingSettings,
        shutdown: CancellationToken,
    ) -> Recording {
        Recording {
            store,
            pullers,
            settings,
            pulled: Mutex::new(HashMap::new()),
            unpullable: Mutex::new(HashMap::new()),
            shutdown,
            snapshots: tokio::sync::Semaphore::new(SNAPSHOTS_AT_ONCE),
        }
    }

    /// The segment store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The RTSP pullers.
    pub fn pullers(&self) -> &Arc<PullerRegistry> {
        &self.pullers
    }

    /// The settings.
    pub fn settings(&self) -> &RecordingSettings {
        &self.settings
    }

    /// Cancelled when the daemon stops.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Notes that `camera` is pulled from `source` (the daemon calls this when it starts or
    /// changes a puller).
    pub fn set_pulled(&self, camera: GbId, source: &CameraSource) {
        lock(&self.unpullable).remove(&camera);
        lock(&self.pulled).insert(
            camera,
            PulledCamera {
                url: source.url.to_string(),
                transport: source.transport,
            },
        );
    }

    /// Notes that `camera` is in the register as an RTSP camera but cannot be pulled, and why.
    pub fn set_unpullable(&self, camera: GbId, reason: String) {
        lock(&self.pulled).remove(&camera);
        lock(&self.unpullable).insert(camera, reason);
    }

    /// Notes that `camera` is no longer pulled (removed, decommissioned, not RTSP any more).
    pub fn forget(&self, camera: &GbId) {
        lock(&self.pulled).remove(camera);
        lock(&self.unpullable).remove(camera);
    }

    /// Whether the daemon pulls `camera` now.
    pub fn is_pulled(&self, camera: &GbId) -> bool {
        lock(&self.pulled).contains_key(camera)
    }

    /// The source to test or pull a filed camera from, with the configured transport and
    /// timeouts.
    pub fn source(
        &self,
        url: &vigil_core::camera::RtspUrl,
        credentials: Option<&vigil_core::camera::RtspCredentials>,
    ) -> Result<CameraSource, UrlError> {
        Ok(CameraSource::from_record(url, credentials)?
            .with_transport(self.settings.transport)
            .with_timeouts(self.settings.timeouts))
    }

    /// Runs the access test (接入检测) on `source` for `duration` (the configured one when
    /// `None`). Never fails: an unreachable camera is a report with `error` set. Ends early
    /// (with what it measured) when the daemon stops.
    pub async fn access_test(
        &self,
        source: &CameraSource,
        duration: Option<Duration>,
    ) -> AccessTestReport {
        let duration = duration.unwrap_or(self.settings.access_test_duration);
        vigil_rtsp::probe_until(source, duration, &self.settings.probe, &self.shutdown).await
    }

    /// `camera`'s state: puller and recorder, summed up.
    pub fn camera_state(&self, camera: &GbId) -> CameraRecordingState {
        let pulled = lock(&self.pulled).get(camera).cloned();
        let unpullable = lock(&self.unpullable).get(camera).cloned();
        let puller = self.pullers.state(camera);
        let recorder = self.store.recorder_state(camera);
        summarise(*camera, pulled, unpullable, puller, &recorder)
    }

    /// The state of every camera that is pulled, cannot be pulled, or has a recorder (another
    /// source), by camera ID.
    pub fn camera_states(&self) -> Vec<CameraRecordingState> {
        let mut ids: Vec<GbId> = lock(&self.pulled).keys().copied().collect();
        ids.extend(lock(&self.unpullable).keys().copied());
        ids.extend(self.store.recorder_states().into_iter().map(|(id, _)| id));
        ids.sort_unstable();
        ids.dedup();
        ids.iter().map(|id| self.camera_state(id)).collect()
    }

    /// A JPEG of `camera`'s latest key frame, decoded by ffmpeg.
    pub async fn snapshot(&self, camera: &GbId) -> Result<Bytes, SnapshotError> {
        let ffmpeg = self
            .settings
            .ffmpeg
            .as_ref()
            .ok_or(SnapshotError::Disabled)?;
        let key = self
            .store
            .latest_key_frame(camera)
            .ok_or(SnapshotError::NoFrame(*camera))?;
        let failed = |reason: String| SnapshotError::Ffmpeg {
            camera: *camera,
            reason,
        };
        let input = key.annexb(camera).map_err(|e| failed(e.to_string()))?;
        let format = match key.params.codec() {
            vigil_media::VideoCodec::H264 => "h264",
            vigil_media::VideoCodec::H265 => "hevc",
        };
        let _permit = self
            .snapshots
            .acquire()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let run = jpeg_with_ffmpeg(ffmpeg, format, input);
        match tokio::time::timeout(self.settings.snapshot_timeout, run).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed(format!(
                "it did not finish within {} s",
                self.settings.snapshot_timeout.as_secs()
            ))),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `ffmpeg -f <format> -i pipe:0 -frames:v 1 … pipe:1` on one Annex B key frame.
async fn jpeg_with_ffmpeg(ffmpeg: &PathBuf, format: &str, input: Bytes) -> Result<Bytes, String> {
    let mut child = tokio::process::Command::new(ffmpeg)
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            format,
        ])
        .args([
            "-i",
            "pipe:0",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
        ])
        .args(["-q:v", "3", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", ffmpeg.display()))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("ffmpeg's pipes are missing".to_owned());
    };
    // Feed and drain at the same time: ffmpeg may write before it has read everything.
    let feed = async move {
        let written = stdin.write_all(&input).await;
        drop(stdin);
        written
    };
    let mut jpeg = Vec::new();
    let mut errors = Vec::new();
    let (fed, out, err) = tokio::join!(
        feed,
        stdout.read_to_end(&mut jpeg),
        stderr.read_to_end(&mut errors)
    );
    let status = child.wait().await.map_err(|e| e.to_string())?;
    out.map_err(|e| format!("reading ffmpeg's output: {e}"))?;
    let _ = err;
    let stderr = String::from_utf8_lossy(&errors);
    if !status.success() || jpeg.is_empty() {
        return Err(format!("ffmpeg exited with {status}: {}", stderr.trim()));
    }
    // A broken pipe after ffmpeg had what it needed is not an error.
    if let Err(e) = fed {
        tracing::debug!(error = %e, "ffmpeg stopped reading the key frame early");
    }
    Ok(Bytes::from(jpeg))
}

impl SubsystemHandle for Recording {
    fn health(&self) -> SubsystemHealth {
        let states = self.camera_states();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for s in &states {
            *counts.entry(s.state.code()).or_default() += 1;
        }
        let errors = counts.get("error").copied().unwrap_or(0);
        let mut detail = format!("{} cameras", states.len());
        for (code, n) in &counts {
            detail.push_str(&format!(", {n} {code}"));
        }
        SubsystemHealth {
            name: "recordings".to_owned(),
            // A camera that is offline is the camera's problem; a recorder that cannot write
            // is ours (disk full, read-only, failing).
            healthy: errors == 0,
            detail,
        }
    }
}

/// What a camera's recording is doing, summed up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The camera is in the register but cannot be pulled (see `problem`).
    NotPulled,
    /// Opening the RTSP session.
    Connecting,
    /// The last attempt failed (see `problem`); the next one is scheduled or under way.
    Retrying,
    /// Frames arrive; recording starts at the next key frame.
    WaitingForKeyFrame,
    /// Video is being written.
    Recording,
    /// Writing failed (disk full, read-only, I/O error; see `problem`); retried at a later
    /// key frame.
    Error,
    /// Nothing to record: not pulled (another source, e.g. a GB/T 28181 channel, records it
    /// when it sends video), or its source stopped (`problem` says why, if known).
    Idle,
    /// The puller ended.
    Stopped,
}

impl Condition {
    /// The code as in JSON.
    pub fn code(self) -> &'static str {
        match self {
            Condition::NotPulled => "not_pulled",
            Condition::Connecting => "connecting",
            Condition::Retrying => "retrying",
            Condition::WaitingForKeyFrame => "waiting_for_key_frame",
            Condition::Recording => "recording",
            Condition::Error => "error",
            Condition::Idle => "idle",
            Condition::Stopped => "stopped",
        }
    }

    /// Whether the state needs someone's attention.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Condition::NotPulled | Condition::Retrying | Condition::Error | Condition::Stopped
        )
    }
}

/// One camera's recording: the summary, then the puller's and the recorder's own states.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CameraRecordingState {
    /// The camera.
    pub camera: GbId,
    /// The summary.
    pub state: Condition,
    /// What is wrong, in words an operator can act on (the camera's error, or the disk's).
    pub problem: Option<String>,
    /// Things that did not stop recording but are worth knowing (camera clock jumps, frames
    /// dropped, an earlier write error).
    pub warnings: Vec<String>,
    /// The URL pulled (without credentials; secret query values masked), if pulled.
    pub url: Option<String>,
    /// `tcp` or `udp`, if pulled.
    #[schema(value_type = Option<String>)]
    pub transport: Option<Transport>,
    /// The RTSP puller's state (`state`: `connecting`, `streaming`, `retrying`, `stopped`, with
    /// counters, rates and the classified `last_error`), if pulled.
    #[schema(value_type = Option<Object>)]
    pub puller: Option<serde_json::Value>,
    /// The recorder's state.
    pub recorder: RecorderView,
}

/// What the stream carries (from its parameter sets).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second, when the stream signals it.
    pub fps: Option<f64>,
}

impl From<&vigil_index::StreamInfo> for StreamView {
    fn from(s: &vigil_index::StreamInfo) -> Self {
        StreamView {
            codec: s.codec.clone(),
            width: s.width,
            height: s.height,
            fps: s.fps(),
        }
    }
}

/// An error and when it happened.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorAt {
    /// When.
    pub at: Timestamp,
    /// What.
    pub reason: String,
}

/// The segment recorder of one camera.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecorderView {
    /// `idle`, `waiting_for_key_frame`, `recording` or `error`.
    pub status: String,
    /// Why idle (the source's words) or what failed.
    pub reason: Option<String>,
    /// Since when.
    pub since: Timestamp,
    /// The segment file being written.
    pub segment: Option<String>,
    /// Bytes of that segment fsynced and indexed.
    pub committed_len: u64,
    /// Wall-clock end of the last fsynced and indexed fragment.
    pub committed_end: Option<Timestamp>,
    /// What the camera sends.
    pub stream: Option<StreamView>,
    /// Frames received from the source since vigil started.
    pub frames_received: u64,
    /// Frames durably written.
    pub frames_recorded: u64,
    /// Fragments durably written.
    pub fragments_written: u64,
    /// Bytes durably written.
    pub bytes_written: u64,
    /// Segment files started.
    pub segments_started: u64,
    /// Failed fragment writes.
    pub write_errors: u64,
    /// Camera or host clock discontinuities absorbed or turned into gaps.
    pub clock_discontinuities: u64,
    /// The last write error (kept after recording resumed).
    pub last_error: Option<ErrorAt>,
    /// The last index update that failed (the files stay authoritative).
    pub index_error: Option<String>,
}

impl From<&RecorderState> for RecorderView {
    fn from(s: &RecorderState) -> Self {
        let reason = match &s.status {
            RecorderStatus::Idle { reason } => reason.clone(),
            RecorderStatus::Error { reason } => Some(reason.clone()),
            RecorderStatus::WaitingForKeyFrame | RecorderStatus::Recording => None,
        };
        RecorderView {
            status: s.status.code().to_owned(),
            reason,
            since: s.since,
            segment: s.segment.as_ref().map(|p| p.display().to_string()),
            committed_len: s.committed_len,
            committed_end: s.committed_end,
            stream: s.stream.as_ref().map(StreamView::from),
            frames_received: s.frames_received,
            frames_recorded: s.frames_recorded,
            fragments_written: s.fragments_written,
            bytes_written: s.bytes_written,
            segments_started: s.segments_started,
            write_errors: s.write_errors,
            clock_discontinuities: s.clock_discontinuities,
            last_error: s.last_error.as_ref().map(|(at, reason)| ErrorAt {
                at: *at,
                reason: reason.clone(),
            }),
            index_error: s.index_error.clone(),
        }
    }
}

/// Sums up a camera's puller and recorder (pure, for testing).
pub(crate) fn summarise(
    camera: GbId,
    pulled: Option<PulledCamera>,
    unpullable: Option<String>,
    puller: Option<PullerState>,
    recorder: &RecorderState,
) -> CameraRecordingState {
    let (state, problem) = match (&unpullable, &puller, &recorder.status) {
        (Some(reason), _, _) => (Condition::NotPulled, Some(reason.clone())),
        // A recorder that cannot write is the most urgent: the video is being lost.
        (_, _, RecorderStatus::Error { reason }) => (Condition::Error, Some(reason.clone())),
        (_, Some(PullerState::Retrying { last_error, .. }), _)
        | (
            _,
            Some(PullerState::Connecting {
                last_error: Some(last_error),
                ..
            }),
            _,
        ) => (Condition::Retrying, Some(last_error.to_string())),
        (_, Some(PullerState::Connecting { .. }), _) => (Condition::Connecting, None),
        (_, Some(PullerState::Stopped { reason, .. }), _) => (
            Condition::Stopped,
            Some(format!("the puller stopped ({reason:?})")),
        ),
        (_, _, RecorderStatus::Recording) => (Condition::Recording, None),
        // Reconnected but not recording yet: until it records, the camera is as troubled as
        // the last attempt said (a camera that never sends a key frame would otherwise look
        // healthy for the seconds between its failures).
        (_, Some(PullerState::Streaming(s)), _) if s.previous_error.is_some() => (
            Condition::Retrying,
            s.previous_error.as_ref().map(ToString::to_string),
        ),
        (_, Some(PullerState::Streaming(_)), _) | (_, _, RecorderStatus::WaitingForKeyFrame) => {
            (Condition::WaitingForKeyFrame, None)
        }
        (_, None, RecorderStatus::Idle { reason }) => (Condition::Idle, reason.clone()),
    };
    let mut warnings = Vec::new();
    if let Some(PullerState::Streaming(s)) = &puller {
        let c = &s.counters;
        if c.clock_jumps > 0 {
            warnings.push(format!(
                "the camera's clock jumped {} time(s) in this session",
                c.clock_jumps
            ));
        }
        if c.dropped_slow_consumer > 0 {
            warnings.push(format!(
                "{} frame(s) dropped because recording could not keep up",
                c.dropped_slow_consumer
            ));
        }
        if c.rtp_packets_lost > 0 {
            warnings.push(format!("{} RTP packet(s) lost", c.rtp_packets_lost));
        }
    }
    if recorder.clock_discontinuities > 0 {
        warnings.push(format!(
            "{} clock discontinuit{} absorbed or turned into gaps since vigil started",
            recorder.clock_discontinuities,
            if recorder.clock_discontinuities == 1 {
                "y"
            } else {
                "ies"
            }
        ));
    }
    if state != Condition::Error {
        if let Some((at, reason)) = &recorder.last_error {
            warnings.push(format!("an earlier write failed at {at}: {reason}"));
        }
    }
    if let Some(e) = &recorder.index_error {
        warnings.push(format!("an index update failed: {e}"));
    }
    CameraRecordingState {
        camera,
        state,
        problem,
        warnings,
        url: pulled.as_ref().map(|p| p.url.clone()),
        transport: pulled.as_ref().map(|p| p.transport),
        puller: puller.and_then(|p| serde_json::to_value(p).ok()),
        recorder: RecorderView::from(recorder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_rtsp::{PullError, Streaming};

    fn camera() -> GbId {
        GbId::parse("37010000001320000001").unwrap()
    }

    fn recorder(status: RecorderStatus) -> RecorderState {
        RecorderState {
            status,
            since: Timestamp::from_millis(1_000),
            segment: None,
            committed_len: 0,
            committed_end: None,
            stream: None,
            frames_received: 0,
            frames_recorded: 0,
            fragments_written: 0,
            bytes_written: 0,
            segments_started: 0,
            write_errors: 0,
            clock_discontinuities: 0,
            last_error: None,
            index_error: None,
        }
    }

    fn reconnected(previous_error: PullError) -> PullerState {
        let PullerState::Streaming(mut s) = streaming(0) else {
            unreachable!()
        };
        s.previous_error = Some(previous_error);
        PullerState::Streaming(s)
    }

    fn streaming(clock_jumps: u64) -> PullerState {
        PullerState::Streaming(Box::new(Streaming {
            since: Timestamp::from_millis(0),
            codec: vigil_media::VideoCodec::H264,
            rfc6381_codec: "avc1.64001f".into(),
            width: 1280,
            height: 720,
            fps: Some(25.0),
            declared_fps: Some(25.0),
            bitrate_bps: Some(4_000_000),
            counters: vigil_rtsp::SessionCounters {
                clock_jumps,
                ..Default::default()
            },
            previous_error: None,
        }))
    }

    fn pulled() -> Option<PulledCamera> {
        Some(PulledCamera {
            url: "rtsp://10.0.0.1/ch1".into(),
            transport: Transport::Tcp,
        })
    }

    /// Setup problem, puller state, recorder status → expected condition and
    /// a fragment the problem text must contain.
    type SummaryCase = (
        Option<String>,
        Option<PullerState>,
        RecorderStatus,
        Condition,
        Option<&'static str>,
    );

    #[test]
    fn the_summary_names_what_is_wrong() {
        let refused = PullError::Refused {
            authority: "10.0.0.1:554".into(),
        };
        let cases: Vec<SummaryCase> = vec![
            (
                Some("cannot pull rtsps://h/x".into()),
                None,
                RecorderStatus::Idle { reason: None },
                Condition::NotPulled,
                Some("rtsps"),
            ),
            (
                None,
                Some(streaming(0)),
                RecorderStatus::Error {
                    reason: "writing segment /s/x.mp4: No space left on device (os error 28)"
                        .into(),
                },
                Condition::Error,
                Some("No space left"),
            ),
            (
                None,
                Some(PullerState::Retrying {
                    attempt: 2,
                    failed_at: Timestamp::EPOCH,
                    next_attempt_at: Timestamp::EPOCH,
                    last_error: refused.clone(),
                }),
                RecorderStatus::Idle { reason: None },
                Condition::Retrying,
                Some("connection refused"),
            ),
            (
                None,
                Some(PullerState::Connecting {
                    attempt: 3,
                    since: Timestamp::EPOCH,
                    last_error: Some(refused),
                }),
                RecorderStatus::Idle { reason: None },
                Condition::Retrying,
                Some("connection refused"),
            ),
            (
                None,
                Some(PullerState::Connecting {
                    attempt: 1,
                    since: Timestamp::EPOCH,
                    last_error: None,
                }),
                RecorderStatus::Idle { reason: None },
                Condition::Connecting,
                None,
            ),
            (
                None,
                Some(streaming(0)),
                RecorderStatus::Recording,
                Condition::Recording,
                None,
            ),
            (
                None,
                Some(streaming(0)),
                RecorderStatus::Idle { reason: None },
                Condition::WaitingForKeyFrame,
                None,
            ),
            // Reconnected after a failure, not recording yet: still troubled.
            (
                None,
                Some(reconnected(PullError::NoKeyFrame {
                    waited: std::time::Duration::from_secs(2),
                })),
                RecorderStatus::Idle { reason: None },
                Condition::Retrying,
                Some("no key frame within 2 s"),
            ),
            // ... until it records again.
            (
                None,
                Some(reconnected(PullError::NoKeyFrame {
                    waited: std::time::Duration::from_secs(2),
                })),
                RecorderStatus::Recording,
                Condition::Recording,
                None,
            ),
            // Recorded by another source (a GB/T 28181 channel): no puller.
            (
                None,
                None,
                RecorderStatus::Recording,
                Condition::Recording,
                None,
            ),
            (
                None,
                None,
                RecorderStatus::Idle {
                    reason: Some("INVITE refused".into()),
                },
                Condition::Idle,
                Some("INVITE refused"),
            ),
        ];
        for (unpullable, puller, status, state, problem) in cases {
            let s = summarise(camera(), pulled(), unpullable, puller, &recorder(status));
            assert_eq!(s.state, state, "{s:?}");
            match problem {
                Some(words) => assert!(
                    s.problem.as_deref().is_some_and(|p| p.contains(words)),
                    "{s:?}"
                ),
                None => assert_eq!(s.problem, None, "{s:?}"),
            }
        }
    }

    #[test]
    fn warnings_and_the_shape_for_the_api() {
        let mut r = recorder(RecorderStatus::Recording);
        r.clock_discontinuities = 1;
        r.last_error = Some((Timestamp::from_millis(5), "EIO".into()));
        let s = summarise(camera(), pulled(), None, Some(streaming(2)), &r);
        assert_eq!(s.state, Condition::Recording);
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("jumped 2 time(s)"));
        assert!(s.warnings[1].contains("1 clock discontinuity"));
        assert!(s.warnings[2].contains("EIO"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "recording");
        assert_eq!(json["puller"]["state"], "streaming");
        assert_eq!(json["recorder"]["status"], "recording");
        assert_eq!(json["transport"], "tcp");
        assert!(Condition::Retrying.is_problem() && !Condition::Recording.is_problem());
    }
}
