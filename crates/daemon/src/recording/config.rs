//! `[recording]`: the segment store, the RTSP pullers, the access test and the video routes.
//! Every option is documented with its default in `config/vigil.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use serde::Deserialize;
use vigil_api::recording::RecordingSettings;
use vigil_rtsp::{BackoffPolicy, HdRequirement, ProbeOptions, PullerOptions, Timeouts, Transport};
use vigil_store::StoreConfig;

/// `[recording]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Pull and record every in-service RTSP camera of the register.
    pub enabled: bool,
    /// Segment files; empty: `<data dir>/recordings`.
    pub dir: PathBuf,
    /// Target segment length, seconds.
    pub segment_secs: u64,
    /// Longest fragment, milliseconds (what a crash can lose; one fdatasync each).
    pub max_fragment_ms: u64,
    /// Camera/host clock jumps up to this are absorbed, milliseconds.
    pub jump_tolerance_ms: u64,
    /// Retention of ordinary cameras, days.
    pub retention_days: u32,
    /// Retention of anti-terror key-target cameras, days.
    pub key_target_retention_days: u32,
    /// Free space to keep on the store's file system, MiB.
    pub min_free_mb: u64,
    /// Free space to keep, as a fraction of the file system (the larger floor applies).
    pub min_free_fraction: f64,
    /// How often retention runs, seconds.
    pub retention_interval_secs: u64,
    /// Longest export, hours.
    pub max_export_hours: u64,
    /// Frames buffered per camera between its puller and its recorder.
    pub queue_frames: usize,
    /// Besides reacting to register changes at once, re-read the register this often, seconds.
    pub reconcile_secs: u64,
    /// ffmpeg for snapshots; empty: no snapshots.
    pub ffmpeg: String,
    /// Longest a snapshot may take, seconds.
    pub snapshot_timeout_secs: u64,
    /// Longest a live request waits for the camera's first fragment, seconds.
    pub live_wait_secs: u64,
    /// How cameras are pulled.
    pub rtsp: RtspConfig,
    /// The access test (接入检测).
    pub access_test: AccessTestConfig,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        let store = StoreConfig::new("");
        RecordingConfig {
            enabled: true,
            dir: PathBuf::new(),
            segment_secs: store.segment_duration.as_secs(),
            max_fragment_ms: millis(store.max_fragment_duration),
            jump_tolerance_ms: millis(store.jump_tolerance),
            retention_days: store.retention_days,
            key_target_retention_days: store.key_target_retention_days,
            min_free_mb: store.min_free_bytes >> 20,
            min_free_fraction: store.min_free_fraction,
            retention_interval_secs: store.retention_interval.as_secs(),
            max_export_hours: store.max_export_duration.as_secs() / 3600,
            queue_frames: 256,
            reconcile_secs: 60,
            ffmpeg: "ffmpeg".to_owned(),
            snapshot_timeout_secs: 10,
            live_wait_secs: 15,
            rtsp: RtspConfig::default(),
            access_test: AccessTestConfig::default(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `[recording.rtsp]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtspConfig {
    /// `tcp` (interleaved) or `udp`.
    pub transport: Transport,
    /// TCP connect + DESCRIBE (with the authentication round trip), seconds.
    pub connect_timeout_secs: u64,
    /// SETUP and PLAY each, seconds.
    pub request_timeout_secs: u64,
    /// No frame for this long ends a session, seconds.
    pub stall_timeout_secs: u64,
    /// No key frame this long after PLAY ends a session, seconds.
    pub key_frame_timeout_secs: u64,
    /// First reconnect delay, milliseconds.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay (and the delay after a wrong password), seconds.
    pub backoff_max_secs: u64,
    /// A session that streamed this long resets the reconnect delay, seconds.
    pub healthy_after_secs: u64,
    /// Camera timestamp steps beyond this are clock jumps, milliseconds.
    pub clock_jump_ms: u64,
}

impl Default for RtspConfig {
    fn default() -> Self {
        let p = PullerOptions::default();
        let t = Timeouts::default();
        RtspConfig {
            transport: Transport::Tcp,
            connect_timeout_secs: t.describe.as_secs(),
            request_timeout_secs: t.request.as_secs(),
            stall_timeout_secs: p.stall_timeout.as_secs(),
            key_frame_timeout_secs: p.key_frame_timeout.as_secs(),
            backoff_min_ms: millis(p.backoff.min),
            backoff_max_secs: p.backoff.max.as_secs(),
            healthy_after_secs: p.healthy_after.as_secs(),
            clock_jump_ms: millis(p.clock_jump_threshold),
        }
    }
}

/// `[recording.access_test]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccessTestConfig {
    /// Seconds of video read (from the first key frame).
    pub seconds: u64,
    /// HD requirement: minimum width (the long side; a camera mounted in portrait passes).
    pub min_width: u32,
    /// HD requirement: minimum height (the short side).
    pub min_height: u32,
    /// HD requirement: minimum frame rate.
    pub min_fps: f64,
    /// Measured frame rates this far below `min_fps` still pass.
    pub fps_tolerance: f64,
}

impl Default for AccessTestConfig {
    fn default() -> Self {
        let hd = HdRequirement::default();
        AccessTestConfig {
            seconds: 5,
            min_width: hd.min_width,
            min_height: hd.min_height,
            min_fps: hd.min_fps,
            fps_tolerance: hd.fps_tolerance,
        }
    }
}

impl RecordingConfig {
    /// Checks what serde cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("segment_secs", self.segment_secs),
            ("retention_interval_secs", self.retention_interval_secs),
            ("max_export_hours", self.max_export_hours),
            ("reconcile_secs", self.reconcile_secs),
            ("snapshot_timeout_secs", self.snapshot_timeout_secs),
            ("live_wait_secs", self.live_wait_secs),
            ("rtsp.connect_timeout_secs", self.rtsp.connect_timeout_secs),
            ("rtsp.request_timeout_secs", self.rtsp.request_timeout_secs),
            ("rtsp.stall_timeout_secs", self.rtsp.stall_timeout_secs),
            (
                "rtsp.key_frame_timeout_secs",
                self.rtsp.key_frame_timeout_secs,
            ),
            ("rtsp.backoff_min_ms", self.rtsp.backoff_min_ms),
            ("rtsp.backoff_max_secs", self.rtsp.backoff_max_secs),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(anyhow!("recording.{name} must be positive"));
            }
        }
        if self.max_fragment_ms < 100 {
            return Err(anyhow!("recording.max_fragment_ms must be at least 100"));
        }
        if self.retention_days == 0 || self.key_target_retention_days == 0 {
            return Err(anyhow!("recording retention days must be positive"));
        }
        if !(0.0..=0.5).contains(&self.min_free_fraction) {
            return Err(anyhow!("recording.min_free_fraction must be in 0..=0.5"));
        }
        if self.queue_frames < 8 {
            return Err(anyhow!("recording.queue_frames must be at least 8"));
        }
        if self.rtsp.backoff_min_ms > self.rtsp.backoff_max_secs.saturating_mul(1000) {
            return Err(anyhow!(
                "recording.rtsp.backoff_min_ms must not exceed backoff_max_secs"
            ));
        }
        if !(1..=60).contains(&self.access_test.seconds) {
            return Err(anyhow!("recording.access_test.seconds must be 1 to 60"));
        }
        let a = &self.access_test;
        if a.min_width == 0 || a.min_height == 0 {
            return Err(anyhow!(
                "recording.access_test minimum size must be positive"
            ));
        }
        let fps_ok = a.min_fps.is_finite() && a.min_fps > 0.0;
        let tolerance_ok = a.fps_tolerance.is_finite() && a.fps_tolerance >= 0.0;
        if !fps_ok || !tolerance_ok {
            return Err(anyhow!(
                "recording.access_test.min_fps must be positive and fps_tolerance not negative"
            ));
        }
        Ok(())
    }

    /// Where the segment files go.
    pub fn store_dir(&self, data_dir: &Path) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            data_dir.join("recordings")
        } else {
            self.dir.clone()
        }
    }

    /// The store's configuration.
    pub fn store_config(&self, data_dir: &Path) -> StoreConfig {
        let mut c = StoreConfig::new(self.store_dir(data_dir));
        c.segment_duration = Duration::from_secs(self.segment_secs);
        c.max_fragment_duration = Duration::from_millis(self.max_fragment_ms);
        c.jump_tolerance = Duration::from_millis(self.jump_tolerance_ms);
        c.retention_days = self.retention_days;
        c.key_target_retention_days = self.key_target_retention_days;
        c.min_free_bytes = self.min_free_mb.saturating_mul(1 << 20);
        c.min_free_fraction = self.min_free_fraction;
        c.retention_interval = Duration::from_secs(self.retention_interval_secs);
        c.max_export_duration = Duration::from_secs(self.max_export_hours.saturating_mul(3600));
        c
    }

    /// The pullers' options.
    pub fn puller_options(&self) -> PullerOptions {
        let r = &self.rtsp;
        PullerOptions {
            stall_timeout: Duration::from_secs(r.stall_timeout_secs),
            key_frame_timeout: Duration::from_secs(r.key_frame_timeout_secs),
            backoff: BackoffPolicy {
                min: Duration::from_millis(r.backoff_min_ms),
                max: Duration::from_secs(r.backoff_max_secs),
                ..BackoffPolicy::default()
            },
            healthy_after: Duration::from_secs(r.healthy_after_secs),
            clock_jump_threshold: Duration::from_millis(r.clock_jump_ms),
            ..PullerOptions::default()
        }
    }

    /// The API's recording settings.
    pub fn settings(&self) -> RecordingSettings {
        let r = &self.rtsp;
        let a = &self.access_test;
        RecordingSettings {
            access_test_duration: Duration::from_secs(a.seconds),
            probe: ProbeOptions {
                requirement: HdRequirement {
                    min_width: a.min_width,
                    min_height: a.min_height,
                    min_fps: a.min_fps,
                    fps_tolerance: a.fps_tolerance,
                },
                stall_timeout: Duration::from_secs(r.stall_timeout_secs),
                key_frame_timeout: Duration::from_secs(r.key_frame_timeout_secs),
                ..ProbeOptions::default()
            },
            transport: r.transport,
            timeouts: Timeouts {
                describe: Duration::from_secs(r.connect_timeout_secs),
                request: Duration::from_secs(r.request_timeout_secs),
            },
            ffmpeg: (!self.ffmpeg.trim().is_empty()).then(|| PathBuf::from(self.ffmpeg.trim())),
            snapshot_timeout: Duration::from_secs(self.snapshot_timeout_secs),
            live_wait: Duration::from_secs(self.live_wait_secs),
        }
    }
}
