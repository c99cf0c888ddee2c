//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use vigil_media::ps::{PsDemuxer, PsEvent};
use vigil_media::{AccessUnitSplitter, VideoCodec, VideoFrame};

/// Reads `crates/media/testdata/<name>`.
pub fn testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Splits a raw Annex B clip into frames (25 fps timestamps).
pub fn clip_frames(name: &str, codec: VideoCodec) -> Vec<VideoFrame> {
    let data = testdata(name);
    let mut s = AccessUnitSplitter::new(Some(codec), 3600);
    s.push(&data);
    s.flush();
    std::iter::from_fn(|| s.next_frame()).collect()
}

/// Drains all events of a demuxer.
pub fn events(d: &mut PsDemuxer) -> Vec<PsEvent> {
    std::iter::from_fn(|| d.next_event()).collect()
}

/// Video frames among events.
pub fn video(ev: &[PsEvent]) -> Vec<&VideoFrame> {
    ev.iter()
        .filter_map(|e| match e {
            PsEvent::Video(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// NAL unit types (H.264 numbering) of a frame.
pub fn h264_types(f: &VideoFrame) -> Vec<u8> {
    f.nal_units().map(|n| n.unwrap()[0] & 0x1f).collect()
}

/// NAL units of a frame as owned bytes, optionally without some H.264 types.
pub fn nals(f: &VideoFrame) -> Vec<Bytes> {
    f.nal_units()
        .map(|n| Bytes::copy_from_slice(n.unwrap()))
        .collect()
}

/// Runs ffprobe and parses its JSON output. ffprobe is installed by the test script, so a
/// missing binary is a failure, not a skip.
pub fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ffprobe is required by this test (the test script installs it) but could not be run: {e}")
        });
    assert!(
        out.status.success(),
        "ffprobe rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe printed invalid JSON")
}

/// Writes `data` to a file in `dir`.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Deterministic chunk sizes (1..=max) for feeding parsers in arbitrary pieces.
pub fn chunk_sizes(seed: u64, max: usize) -> impl Iterator<Item = usize> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(1 + (x % max as u64) as usize)
    })
}

/// Splits `data` into chunks with sizes from `chunk_sizes`.
pub fn chunks(data: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut sizes = chunk_sizes(seed, max);
    let mut rest = data;
    while !rest.is_empty() {
        let n = sizes.next().unwrap().min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}
