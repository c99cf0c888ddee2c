//! The access test (接入检测): pull a camera for a few seconds and check what an integrator
//! must prove at acceptance — codec, resolution and frame rate against the HD requirement.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use vigil_core::time::Timestamp;

use crate::clock;
use crate::error::PullError;
use crate::ingest::Ingest;
use crate::session::{self, Flow, SourceFacts, Watchdogs};
use crate::source::{CameraSource, Transport};

/// What counts as HD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HdRequirement {
    pub min_width: u32,
    pub min_height: u32,
    pub min_fps: f64,
    /// Measured frame rates this far below `min_fps` still pass: a 25 fps camera whose
    /// timestamps jitter measures 24.9.
    pub fps_tolerance: f64,
}

impl Default for HdRequirement {
    /// 1280×720 at 25 fps.
    fn default() -> Self {
        Self {
            min_width: 1280,
            min_height: 720,
            min_fps: 25.0,
            fps_tolerance: 0.5,
        }
    }
}

impl HdRequirement {
    /// Policy `RotatedSensorIsHd`: the long side is compared with the longer minimum and the
    /// short side with the shorter one, so a corridor camera mounted in portrait (720×1280)
    /// passes like its landscape twin.
    pub fn resolution_ok(&self, width: u32, height: u32) -> bool {
        let (long, short) = (width.max(height), width.min(height));
        let (min_long, min_short) = (
            self.min_width.max(self.min_height),
            self.min_width.min(self.min_height),
        );
        long >= min_long && short >= min_short
    }

    pub fn fps_ok(&self, fps: f64) -> bool {
        fps >= self.min_fps - self.fps_tolerance
    }
}

/// Options of an access test.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOptions {
    pub requirement: HdRequirement,
    /// No frame for this long ends the test with a stall.
    pub stall_timeout: Duration,
    /// No key frame this long after `PLAY` ends the test.
    pub key_frame_timeout: Duration,
    pub user_agent: String,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            requirement: HdRequirement::default(),
            stall_timeout: Duration::from_secs(10),
            key_frame_timeout: Duration::from_secs(10),
            user_agent: concat!("vigil/", env!("CARGO_PKG_VERSION"), " access-test").to_owned(),
        }
    }
}

/// The class of an access-test failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No video could be received (see the report's `error`).
    NoVideo,
    Resolution,
    FrameRate,
    /// Neither the timestamps nor the SPS tell the frame rate.
    FrameRateUnknown,
}

/// One reason the camera fails acceptance, in words an integrator can act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for AccessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of an access test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessTestReport {
    /// The URL tested (credentials removed, secret query values masked).
    pub url: String,
    pub transport: Transport,
    pub tested_at: Timestamp,
    pub requirement: HdRequirement,
    /// e.g. `H.264`.
    pub codec: Option<String>,
    /// e.g. `avc1.640028`.
    pub rfc6381_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Measured from the frames' timestamps.
    pub fps: Option<f64>,
    /// Declared by the SPS (VUI timing), if it declares one.
    pub declared_fps: Option<f64>,
    pub bitrate_bps: Option<u64>,
    /// Frames received from the first key frame on.
    pub frames: u64,
    pub key_frames: u64,
    /// Frames from one key frame to the next (the last complete GOP seen).
    pub gop_frames: Option<u64>,
    /// Media time covered by the frames, in milliseconds (camera clock jumps left out).
    pub measured_ms: u64,
    pub meets_hd: bool,
    pub failures: Vec<AccessFailure>,
    /// Why video could not be received (or stopped before the test ended).
    pub error: Option<PullError>,
}

/// Pulls `source` for `duration` of video (counted from the first key frame) and checks it
/// against `options.requirement`. Never fails: an unreachable camera is a report with
/// `error` set and `meets_hd: false`.
pub async fn probe(
    source: &CameraSource,
    duration: Duration,
    options: &ProbeOptions,
) -> AccessTestReport {
    probe_until(source, duration, options, &CancellationToken::new()).await
}

/// [`probe`] that also ends (with what it measured so far) when `cancel` is cancelled.
pub async fn probe_until(
    source: &CameraSource,
    duration: Duration,
    options: &ProbeOptions,
    cancel: &CancellationToken,
) -> AccessTestReport {
    let span = tracing::info_span!("rtsp_access_test", url = %source.url);
    let report = probe_inner(source, duration, options, cancel)
        .instrument(span)
        .await;
    tracing::info!(
        url = %source.url,
        meets_hd = report.meets_hd,
        failures = report.failures.len(),
        "access test finished"
    );
    report
}

async fn probe_inner(
    source: &CameraSource,
    duration: Duration,
    options: &ProbeOptions,
    cancel: &CancellationToken,
) -> AccessTestReport {
    let tested_at = clock::now();
    let facts = SourceFacts::new(source);
    let mut ingest = Ingest::new(Duration::from_secs(2), Duration::from_secs(1));
    let error = match session::open(source, &facts, &options.user_agent).await {
        Err(e) => Some(e),
        Ok(mut opened) => {
            let watchdogs = Watchdogs {
                stall: options.stall_timeout,
                key_frame: options.key_frame_timeout,
            };
            let mut first_key: Option<Instant> = None;
            let result = session::stream(
                &mut opened,
                &mut ingest,
                &facts,
                watchdogs,
                cancel,
                |event, _| {
                    if event.is_some() {
                        let first = *first_key.get_or_insert_with(Instant::now);
                        if first.elapsed() >= duration {
                            return Ok(Flow::Stop);
                        }
                    }
                    Ok(Flow::Continue)
                },
            )
            .await;
            result.err()
        }
    };
    report(source, tested_at, &options.requirement, &ingest, error)
}

fn report(
    source: &CameraSource,
    tested_at: Timestamp,
    requirement: &HdRequirement,
    ingest: &Ingest,
    error: Option<PullError>,
) -> AccessTestReport {
    let params = ingest.params().filter(|_| ingest.counters.frames > 0);
    let c = &ingest.counters;
    let m = &ingest.measure;
    // Steady steps between consecutive frames over the media time they cover (clock jumps
    // left out, see `Measure`); rounded to hundredths for a readable report.
    let span = (m.steady_ticks > 0).then_some(m.steady_ticks);
    let fps = span.map(|s| round2(m.steady_steps as f64 * 90_000.0 / s as f64));
    let declared_fps = params
        .and_then(|p| p.frame_rate())
        .and_then(|(n, d)| (d != 0).then(|| round2(f64::from(n) / f64::from(d))));
    let bitrate_bps = fps
        .filter(|f| *f > 0.0)
        .map(|f| (c.bytes as f64 * 8.0 * f / c.frames as f64) as u64);
    let gop_frames = match m.last_keys {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };

    let mut failures = Vec::new();
    match (params, &error) {
        (None, Some(e)) => failures.push(AccessFailure {
            kind: FailureKind::NoVideo,
            message: format!("no video received: {e}"),
        }),
        (None, None) => failures.push(AccessFailure {
            kind: FailureKind::NoVideo,
            message: "no video received".into(),
        }),
        (Some(p), _) => {
            if !requirement.resolution_ok(p.width(), p.height()) {
                failures.push(AccessFailure {
                    kind: FailureKind::Resolution,
                    message: format!(
                        "resolution {}×{} is below the required {}×{}",
                        p.width(),
                        p.height(),
                        requirement.min_width,
                        requirement.min_height
                    ),
                });
            }
            match fps.or(declared_fps) {
                Some(f) if !requirement.fps_ok(f) => failures.push(AccessFailure {
                    kind: FailureKind::FrameRate,
                    message: format!(
                        "frame rate {f} fps is below the required {} fps",
                        requirement.min_fps
                    ),
                }),
                Some(_) => {}
                None => failures.push(AccessFailure {
                    kind: FailureKind::FrameRateUnknown,
                    message: "the frame rate could not be measured (too few frames) and the \
                              SPS does not declare one"
                        .into(),
                }),
            }
        }
    }
    // A stream that broke during the test is not accepted even if what arrived looked fine.
    if let (Some(e), Some(_)) = (&error, params) {
        failures.push(AccessFailure {
            kind: FailureKind::NoVideo,
            message: format!("the stream broke during the test: {e}"),
        });
    }
    AccessTestReport {
        url: source.url.to_string(),
        transport: source.transport,
        tested_at,
        requirement: *requirement,
        codec: params.map(|p| p.codec().to_string()),
        rfc6381_codec: params.map(|p| p.rfc6381_codec().to_owned()),
        width: params.map(|p| p.width()),
        height: params.map(|p| p.height()),
        fps,
        declared_fps,
        bitrate_bps,
        frames: c.frames,
        key_frames: c.key_frames,
        gop_frames,
        measured_ms: span.map_or(0, |s| (s / 90) as u64),
        meets_hd: failures.is_empty() && error.is_none(),
        failures,
        error,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::RawFrame;
    use bytes::Bytes;
    use vigil_sim::rtsp::DemoClip;

    fn source() -> CameraSource {
        CameraSource::parse("rtsp://admin:Secret99@10.0.0.1/ch1").unwrap()
    }

    /// Feeds `frames` of the bundled clip at `fps` (by timestamps) into an ingest.
    fn fed(clip: DemoClip, frames: usize, ticks: i64) -> Ingest {
        let loaded = clip.load().unwrap();
        let mut ingest = Ingest::new(Duration::from_secs(2), Duration::from_secs(1));
        ingest
            .set_sample_entry(loaded.params.sample_entry().clone())
            .unwrap();
        // The clip's frames again as AVCC access units (the splitter's output).
        let mut splitter = vigil_media::AccessUnitSplitter::new(Some(clip.codec()), 3600);
        splitter.push(clip.annex_b());
        splitter.flush();
        let all: Vec<_> = std::iter::from_fn(|| splitter.next_frame()).collect();
        let t = Instant::now();
        for (n, f) in all.iter().cycle().take(frames).enumerate() {
            let raw = RawFrame {
                pts: n as i64 * ticks,
                data: Bytes::clone(&f.data),
                loss: 0,
            };
            ingest.frame(raw, Timestamp::EPOCH, t).unwrap();
        }
        ingest
    }

    #[test]
    fn hd_stream_meets_the_requirement() {
        let ingest = fed(DemoClip::H264_720p, 126, 3600);
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            None,
        );
        assert!(r.meets_hd, "{:?}", r.failures);
        assert_eq!(r.codec.as_deref(), Some("H.264"));
        assert_eq!((r.width, r.height), (Some(1280), Some(720)));
        assert_eq!(r.fps, Some(25.0));
        assert_eq!(r.declared_fps, Some(25.0));
        assert_eq!(r.frames, 126);
        assert_eq!(r.key_frames, 6);
        assert_eq!(r.gop_frames, Some(25));
        assert_eq!(r.measured_ms, 5000);
        assert!(r.bitrate_bps.unwrap() > 10_000);
        assert!(!r.url.contains("Secret99"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["meets_hd"], true);
        assert_eq!(json["transport"], "tcp");
    }

    #[test]
    fn a_clock_stepping_back_does_not_change_the_measured_frame_rate() {
        // What GStreamer's shared pipelines do to a client when a second one joins: the
        // timestamps restart 400 ms back.
        let loaded = DemoClip::H264_720p.load().unwrap();
        let mut ingest = Ingest::new(Duration::from_secs(2), Duration::from_secs(1));
        ingest
            .set_sample_entry(loaded.params.sample_entry().clone())
            .unwrap();
        let mut splitter =
            vigil_media::AccessUnitSplitter::new(Some(DemoClip::H264_720p.codec()), 3600);
        splitter.push(DemoClip::H264_720p.annex_b());
        splitter.flush();
        let all: Vec<_> = std::iter::from_fn(|| splitter.next_frame()).collect();
        let t = Instant::now();
        for (n, f) in all.iter().cycle().take(100).enumerate() {
            let n = n as i64;
            let pts = if n < 50 { n * 3600 } else { (n - 10) * 3600 };
            let raw = RawFrame {
                pts,
                data: Bytes::clone(&f.data),
                loss: 0,
            };
            ingest.frame(raw, Timestamp::EPOCH, t).unwrap();
        }
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            None,
        );
        assert_eq!(r.fps, Some(25.0), "{r:?}");
        assert_eq!(r.measured_ms, 98 * 40);
        assert!(r.meets_hd, "{:?}", r.failures);
    }

    #[test]
    fn small_stream_fails_on_resolution_with_the_numbers() {
        let ingest = fed(DemoClip::H264_360p, 50, 3600);
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            None,
        );
        assert!(!r.meets_hd);
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert_eq!(r.failures[0].kind, FailureKind::Resolution);
        assert_eq!(
            r.failures[0].message,
            "resolution 640×360 is below the required 1280×720"
        );
    }

    #[test]
    fn slow_stream_fails_on_measured_frame_rate() {
        // 15 fps by timestamps although the SPS says 25.
        let ingest = fed(DemoClip::H265_720p, 40, 6000);
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            None,
        );
        assert_eq!(r.fps, Some(15.0));
        assert_eq!(r.declared_fps, Some(25.0));
        assert_eq!(r.codec.as_deref(), Some("H.265"));
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].kind, FailureKind::FrameRate);
        assert!(
            r.failures[0].message.contains("15 fps"),
            "{}",
            r.failures[0]
        );
    }

    #[test]
    fn requirement_is_configurable() {
        let ingest = fed(DemoClip::H264_360p, 50, 3600);
        let low = HdRequirement {
            min_width: 640,
            min_height: 360,
            ..HdRequirement::default()
        };
        assert!(report(&source(), Timestamp::EPOCH, &low, &ingest, None).meets_hd);
    }

    #[test]
    fn rotated_sensor_policy() {
        let hd = HdRequirement::default();
        assert!(hd.resolution_ok(1280, 720));
        assert!(hd.resolution_ok(720, 1280));
        assert!(hd.resolution_ok(1920, 1080));
        assert!(!hd.resolution_ok(1280, 704));
        assert!(!hd.resolution_ok(960, 960));
        assert!(hd.fps_ok(24.6) && !hd.fps_ok(24.4));
    }

    #[test]
    fn unreachable_camera_is_a_report_not_an_error() {
        let ingest = Ingest::new(Duration::from_secs(2), Duration::from_secs(1));
        let error = PullError::Refused {
            authority: "10.0.0.1:554".into(),
        };
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            Some(error.clone()),
        );
        assert!(!r.meets_hd);
        assert_eq!(r.error, Some(error));
        assert_eq!(r.failures[0].kind, FailureKind::NoVideo);
        assert!(r.failures[0]
            .message
            .starts_with("no video received: connection refused"));
        assert_eq!((r.codec, r.fps, r.frames), (None, None, 0));
    }

    #[test]
    fn a_stream_breaking_mid_test_fails() {
        let ingest = fed(DemoClip::H264_720p, 60, 3600);
        let error = PullError::Stall {
            after: Duration::from_secs(10),
        };
        let r = report(
            &source(),
            Timestamp::EPOCH,
            &HdRequirement::default(),
            &ingest,
            Some(error),
        );
        assert!(!r.meets_hd);
        assert_eq!(r.width, Some(1280), "what arrived is still reported");
        assert!(r.failures[0].message.contains("broke during the test"));
    }
}
