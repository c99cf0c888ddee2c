//! Test support, shared by unit tests, the crash-test helper and the benchmarks: real camera
//! frames from the demo clips in `crates/sim/assets`, looped into an endless, paced feed of
//! [`SourceEvent`]s, and synthetic frames of a chosen bitrate. Not part of the supported API.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use vigil_core::time::Timestamp;
use vigil_media::{AccessUnitSplitter, VideoFrame, VideoParameters};

use crate::ingest::SourceEvent;
use crate::time;

/// A demo clip split into frames.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Its codec parameters.
    pub params: Arc<VideoParameters>,
    /// Its frames (25 fps, a key frame every 25 frames).
    pub frames: Vec<VideoFrame>,
    /// Frame duration, 90 kHz ticks.
    pub frame_duration: i64,
}

/// Where the demo clips live.
pub fn assets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/assets")
}

impl Clip {
    /// Loads `crates/sim/assets/<name>` (e.g. `demo-720p.h264`). Panics with the path if it
    /// is missing or unusable: this is test support.
    pub fn load(name: &str) -> Clip {
        let path = assets_dir().join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("reading demo clip {}: {e}", path.display()));
        let mut split = AccessUnitSplitter::new(None, 3600);
        split.push(&bytes);
        split.flush();
        let frames: Vec<VideoFrame> = std::iter::from_fn(|| split.next_frame()).collect();
        let codec = split
            .codec()
            .unwrap_or_else(|| panic!("{}: codec not recognised", path.display()));
        let first = frames
            .first()
            .unwrap_or_else(|| panic!("{}: no frames", path.display()));
        let params = VideoParameters::from_access_unit(codec, &first.data)
            .unwrap_or_else(|e| panic!("{}: bad parameter sets: {e}", path.display()))
            .unwrap_or_else(|| panic!("{}: first frame has no parameter sets", path.display()));
        Clip {
            params: Arc::new(params),
            frames,
            frame_duration: 3600,
        }
    }

    /// 1280×720 H.264.
    pub fn h264_720p() -> Clip {
        Clip::load("demo-720p.h264")
    }

    /// 640×360 H.264.
    pub fn h264_360p() -> Clip {
        Clip::load("demo-360p.h264")
    }

    /// 1280×720 H.265.
    pub fn h265_720p() -> Clip {
        Clip::load("demo-720p.h265")
    }

    /// The same clip with frames padded (an extra filler NAL unit) to average `bitrate`
    /// bits per second, key frames five times the size of the others — the shape of a real
    /// 4 Mbit/s surveillance stream for throughput measurements.
    pub fn padded_to(&self, bitrate: u64) -> Clip {
        let fps = 90_000 / self.frame_duration.max(1) as u64;
        let per_frame = bitrate / 8 / fps.max(1);
        let gop = self
            .frames
            .iter()
            .skip(1)
            .position(|f| f.is_key)
            .map_or(25, |p| p as u64 + 1);
        // key = 5x, others = x: (5 + gop - 1) x = gop * per_frame
        let unit = gop * per_frame / (gop + 4);
        let frames = self
            .frames
            .iter()
            .map(|f| {
                let target = if f.is_key { unit * 5 } else { unit } as usize;
                let pad = target.saturating_sub(f.data.len() + 5).max(1);
                let mut d = BytesMut::with_capacity(f.data.len() + pad + 5);
                d.put_slice(&f.data);
                d.put_u32(pad as u32 + 1);
                d.put_u8(12); // H.264 filler data NAL type
                d.put_bytes(0xff, pad);
                VideoFrame::new(f.pts, f.is_key, d.freeze())
            })
            .collect();
        Clip {
            params: self.params.clone(),
            frames,
            frame_duration: self.frame_duration,
        }
    }
}

/// An endless feed of a clip as a camera would send it: `pts` keep increasing across loops,
/// `received_at` advances by one frame duration per frame from `start` (plus `latency`).
#[derive(Debug, Clone)]
pub struct ClipFeed {
    clip: Clip,
    next: usize,
    /// The camera's 90 kHz clock of the next frame.
    pub pts: i64,
    /// Receive time of the next frame, ticks.
    pub received_90k: i64,
}

impl ClipFeed {
    /// A feed starting at wall clock `start`, camera clock `pts0`.
    pub fn new(clip: &Clip, start: Timestamp, pts0: i64) -> Self {
        ClipFeed {
            clip: clip.clone(),
            next: 0,
            pts: pts0,
            received_90k: time::ticks(start),
        }
    }

    /// The next frame event.
    pub fn next_event(&mut self) -> SourceEvent {
        let f = &self.clip.frames[self.next];
        let ev = SourceEvent::Frame {
            params: self.clip.params.clone(),
            frame: VideoFrame::new(self.pts, f.is_key, f.data.clone()),
            received_at: time::timestamp(self.received_90k),
        };
        self.next = (self.next + 1) % self.clip.frames.len();
        self.pts += self.clip.frame_duration;
        self.received_90k += self.clip.frame_duration;
        ev
    }

    /// The receive time the next frame will carry.
    pub fn now(&self) -> Timestamp {
        time::timestamp(self.received_90k)
    }

    /// Whether the next frame is a key frame.
    pub fn next_is_key(&self) -> bool {
        self.clip.frames[self.next].is_key
    }

    /// Skips `ticks` of camera and receive time (a pause in the stream).
    pub fn skip(&mut self, ticks: i64) {
        self.pts += ticks;
        self.received_90k += ticks;
    }

    /// Bytes of the clip's frames (for throughput figures).
    pub fn clip(&self) -> &Clip {
        &self.clip
    }
}

/// A frame of `len` bytes (one filler NAL unit), for tests that need exact sizes.
pub fn filler_frame(pts: i64, key: bool, len: usize) -> VideoFrame {
    let len = len.max(6);
    let mut d = BytesMut::with_capacity(len);
    d.put_u32(len as u32 - 4);
    d.put_u8(if key { 0x65 } else { 0x41 });
    d.put_bytes(0x5a, len - 5);
    VideoFrame::new(pts, key, Bytes::from(d))
}

/// What `ffprobe` says about a file's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `codec_name` (`h264`, `hevc`).
    pub codec: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frames actually decoded (`-count_frames`).
    pub frames: u64,
    /// Container duration, seconds.
    pub duration: f64,
}

/// Runs `ffprobe` on `path`. Panics with a clear message if `ffprobe` is not installed
/// (`scripts/ensure-test-deps` installs it) or rejects the file (with its stderr).
pub fn ffprobe(path: &std::path::Path) -> Probe {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ffprobe is required for this test and could not be run ({e}); install it with scripts/ensure-test-deps")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe rejected {}: status {}, stderr: {stderr}",
        path.display(),
        out.status
    );
    let field = |k: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("ffprobe output for {} lacks {k}: {stdout}", path.display()))
            .to_owned()
    };
    Probe {
        codec: field("codec_name"),
        width: field("width").parse().unwrap_or(0),
        height: field("height").parse().unwrap_or(0),
        frames: field("nb_read_frames").parse().unwrap_or(0),
        duration: field("duration").parse().unwrap_or(f64::NAN),
    }
}
