//! Where files live and what they are called.
//!
//! ```text
//! <root>/vigil-store.id                         identity (matches the index's store id)
//! <root>/<camera GB ID>/<YYYYMMDD>/<YYYYMMDDTHHMMSS.mmmZ>[-<n>].mp4
//! ```
//!
//! The day directory and the name are the segment's start in UTC (the name to the
//! millisecond; the exact 90 kHz start is in the first fragment's `prft`). Names sort in time
//! order. `-<n>` is added only if a file of that name already exists (it never should: a
//! camera's store time is strictly increasing), so a collision never overwrites anything.

use std::path::{Path, PathBuf};

use vigil_core::id::GbId;
use vigil_core::time::Timestamp;

use crate::time;

/// Name of the identity file in the store root.
pub const IDENTITY_FILE: &str = "vigil-store.id";

/// Paths of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The identity file.
    pub fn identity_file(&self) -> PathBuf {
        self.root.join(IDENTITY_FILE)
    }

    /// A camera's directory.
    pub fn camera_dir(&self, camera: &GbId) -> PathBuf {
        self.root.join(camera.as_str())
    }

    /// A segment's absolute path from its camera-relative name.
    pub fn segment_path(&self, camera: &GbId, rel: &str) -> PathBuf {
        self.camera_dir(camera).join(rel)
    }
}

/// `YYYYMMDD` of the UTC day containing `start_90k`.
pub fn day_dir_name(start_90k: i64) -> String {
    let compact = compact_utc(time::timestamp(start_90k));
    compact[..8].to_owned()
}

/// The camera-relative name of a segment starting at `start_90k`, with collision counter `n`
/// (0 = no suffix).
pub fn segment_rel_name(start_90k: i64, n: u32) -> String {
    let compact = compact_utc(time::timestamp(start_90k));
    let day = &compact[..8];
    if n == 0 {
        format!("{day}/{compact}.mp4")
    } else {
        format!("{day}/{compact}-{n}.mp4")
    }
}

/// `2024-03-01T08:00:00.000Z` → `20240301T080000.000Z` (no `:` so that tools never mistake
/// the name for a URL scheme).
fn compact_utc(t: Timestamp) -> String {
    t.to_string()
        .chars()
        .filter(|&c| c != '-' && c != ':')
        .collect()
}

/// The start (millisecond precision) encoded in a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<Timestamp> {
    let stem = name.strip_suffix(".mp4")?;
    let stamp = match stem.split_once('-') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
        Some(_) => return None,
        None => stem,
    };
    // YYYYMMDDTHHMMSS.mmmZ
    let b = stamp.as_bytes();
    if !stamp.is_ascii() || b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15],
        &stamp[16..19]
    );
    Timestamp::parse_rfc3339(&rfc).ok()
}

/// Whether a directory name is a day directory (`YYYYMMDD`).
pub fn is_day_dir_name(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_in_time_order() {
        let t = vigil_core::time::Timestamp::parse_rfc3339("2024-03-01T08:05:09.042Z").unwrap();
        let ticks = time::ticks(t) + 17;
        assert_eq!(
            segment_rel_name(ticks, 0),
            "20240301/20240301T080509.042Z.mp4"
        );
        assert_eq!(
            segment_rel_name(ticks, 2),
            "20240301/20240301T080509.042Z-2.mp4"
        );
        assert_eq!(day_dir_name(ticks), "20240301");
        assert_eq!(parse_segment_file_name("20240301T080509.042Z.mp4"), Some(t));
        assert_eq!(
            parse_segment_file_name("20240301T080509.042Z-2.mp4"),
            Some(t)
        );
        for bad in [
            "20240301T080509.042Z.mp4.tmp",
            "20240301T080509.042Z-.mp4",
            "20240301T080509.042Z-x.mp4",
            "20240301T080509Z.mp4",
            "20241301T080509.042Z.mp4",
            "202é012T080509.042Z.mp4",
            "notes.txt",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
        let later = segment_rel_name(ticks + 90 * 1000 * 3600, 0);
        assert!(later > segment_rel_name(ticks, 0));
        assert!(is_day_dir_name("20240301"));
        assert!(!is_day_dir_name("2024030"));
    }
}
