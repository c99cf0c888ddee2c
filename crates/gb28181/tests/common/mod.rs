//! Shared helpers of the server integration tests: a loopback server with test settings,
//! sinks that collect frames, and waiting for events.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;
use vigil_gb28181::server::{
    ChannelKey, GbConfig, GbEvent, GbServer, PortRange, RecordingMode, SinkProvider,
};
use vigil_store::SourceEvent;

pub const SERVER_ID: &str = "34020000002000000001";
pub const DOMAIN: &str = "3402000000";
pub const PASSWORD: &str = "12345678";

/// Test settings: loopback, ephemeral ports, short timers.
pub fn config() -> GbConfig {
    let mut c = GbConfig {
        sip_id: SERVER_ID.into(),
        domain: DOMAIN.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        default_password: Some(PASSWORD.into()),
        ..GbConfig::default()
    };
    c.media.rtp_ports = PortRange { start: 0, end: 0 };
    c.catalog.refresh_interval_secs = 0;
    c.catalog.quiet_timeout_secs = 2;
    c.catalog.no_response_timeout_secs = 5;
    c.recording.mode = RecordingMode::None;
    c
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A sink provider with one channel per key (reused across sessions, like the store's), keeping
/// the receivers.
#[derive(Clone, Default)]
pub struct Sinks {
    pub receivers: Arc<Mutex<HashMap<ChannelKey, mpsc::Receiver<SourceEvent>>>>,
    pub senders: Arc<Mutex<HashMap<ChannelKey, mpsc::Sender<SourceEvent>>>>,
}

impl Sinks {
    pub fn provider(&self) -> Arc<dyn SinkProvider> {
        let r = self.receivers.clone();
        let s = self.senders.clone();
        Arc::new(move |k: &ChannelKey| {
            let mut senders = s.lock();
            if let Some(tx) = senders.get(k) {
                return Some(tx.clone());
            }
            let (tx, rx) = mpsc::channel(4096);
            r.lock().insert(*k, rx);
            senders.insert(*k, tx.clone());
            Some(tx)
        })
    }

    /// Takes everything received so far on `key`.
    pub fn drain(&self, key: &ChannelKey) -> Vec<SourceEvent> {
        let mut out = Vec::new();
        if let Some(rx) = self.receivers.lock().get_mut(key) {
            while let Ok(e) = rx.try_recv() {
                out.push(e);
            }
        }
        out
    }

    pub fn keys(&self) -> Vec<ChannelKey> {
        self.receivers.lock().keys().copied().collect()
    }
}

pub async fn start(config: GbConfig, sinks: &Sinks) -> GbServer {
    GbServer::start(config, sinks.provider())
        .await
        .expect("server starts")
}

/// Receives events until `done` says the collected ones suffice; panics with what was seen on
/// timeout.
pub async fn wait_for(
    events: &mut mpsc::Receiver<GbEvent>,
    seen: &mut Vec<GbEvent>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[GbEvent]) -> bool,
) {
    let end = Instant::now() + timeout;
    while !done(seen) {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("event stream closed while waiting for {what}"),
            Err(_) => panic!(
                "timed out waiting for {what}; saw {} events: {:#?}",
                seen.len(),
                seen.iter().rev().take(30).collect::<Vec<_>>()
            ),
        }
    }
}

pub fn count(seen: &[GbEvent], f: impl Fn(&GbEvent) -> bool) -> usize {
    seen.iter().filter(|e| f(e)).count()
}

/// Polls `f` until it is true (for counters and views).
pub async fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        if Instant::now() > end {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes frames as a fragmented MP4 (init segment, one fragment per GOP) with
/// `vigil_media::fmp4`, the way the store lays out a segment.
pub fn write_fmp4(
    path: &std::path::Path,
    params: &vigil_media::VideoParameters,
    frames: &[vigil_media::VideoFrame],
) {
    use vigil_media::fmp4::{init_segment, FragmentBuilder};
    let mut out = init_segment(params).to_vec();
    let mut b = FragmentBuilder::for_params(params);
    let origin = frames[0].pts;
    let mut seq = 1;
    let mut finish = |b: &mut FragmentBuilder, next: Option<i64>, out: &mut Vec<u8>| {
        let base = (b.first_pts().unwrap() - origin) as u64;
        let frag = b.finish(seq, base, next).expect("fragment");
        seq += 1;
        for c in frag.chunks() {
            out.extend_from_slice(c);
        }
    };
    for f in frames {
        if b.starts_new_gop(f) {
            finish(&mut b, Some(f.pts), &mut out);
        }
        b.push(f.clone());
    }
    if !b.is_empty() {
        finish(&mut b, None, &mut out);
    }
    std::fs::write(path, out).expect("write the fMP4");
}

/// `ffprobe -count_frames` on the first video stream: (codec_name, width, height, frames read).
pub fn ffprobe(path: &std::path::Path) -> (String, u64, u64, u64) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (install it with scripts/ensure-test-deps)");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let s = &j["streams"][0];
    let num = |v: &serde_json::Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
            .unwrap_or(0)
    };
    (
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        num(&s["width"]),
        num(&s["height"]),
        num(&s["nb_read_frames"]),
    )
}

/// The frames of a sink's events, with the parameters of the first one, starting at the first
/// key frame.
pub fn frames_of(
    evs: &[SourceEvent],
) -> Option<(
    Arc<vigil_media::VideoParameters>,
    Vec<vigil_media::VideoFrame>,
)> {
    let mut params = None;
    let mut frames = Vec::new();
    for e in evs {
        if let SourceEvent::Frame {
            params: p, frame, ..
        } = e
        {
            if frames.is_empty() && !frame.is_key {
                continue;
            }
            params.get_or_insert_with(|| p.clone());
            frames.push(frame.clone());
        }
    }
    params.map(|p| (p, frames))
}
