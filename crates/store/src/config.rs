//! Store configuration (the daemon fills it from its config file; defaults are documented on
//! each field).

use std::path::PathBuf;
use std::time::Duration;

/// How the store records, keeps and serves video.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root directory of the segment files.
    pub root: PathBuf,
    /// Target length of a segment file (default 60 s). A segment is cut at the first key
    /// frame after its camera's next rotation instant; rotation instants are staggered per
    /// camera (a hash of the camera ID picks the phase), so cameras do not all create files
    /// at the same second.
    pub segment_duration: Duration,
    /// Longest fragment (default 4 s). A fragment normally holds one GOP; a longer GOP is split
    /// into fragments of at most this duration. This bounds what a crash can lose, at the
    /// price of one `fdatasync` per fragment per camera (see the crate docs on disk load).
    pub max_fragment_duration: Duration,
    /// Clock-jump tolerance (default 5 s): see [`crate::timeline`].
    pub jump_tolerance: Duration,
    /// Retention of ordinary cameras (default 30 days, 公共安全视频图像信息系统管理条例 art. 17).
    pub retention_days: u32,
    /// Retention of cameras marked as anti-terror key targets (default 90 days, 反恐怖主义法
    /// art. 32).
    pub key_target_retention_days: u32,
    /// Free space to keep on the store's file system (default 2 GiB); below it the oldest
    /// segments are deleted (see [`crate::retention`]).
    pub min_free_bytes: u64,
    /// Free space kept as a fraction of the file system (default 0.02); the larger of the two
    /// floors applies.
    pub min_free_fraction: f64,
    /// How often the maintenance task applies retention (default 60 s; it also runs at once
    /// when a write fails with ENOSPC).
    pub retention_interval: Duration,
    /// Longest export (default 24 h).
    pub max_export_duration: Duration,
}

impl StoreConfig {
    /// Defaults for a store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            segment_duration: Duration::from_secs(60),
            max_fragment_duration: Duration::from_secs(4),
            jump_tolerance: Duration::from_secs(5),
            retention_days: 30,
            key_target_retention_days: 90,
            min_free_bytes: 2 << 30,
            min_free_fraction: 0.02,
            retention_interval: Duration::from_secs(60),
            max_export_duration: Duration::from_secs(24 * 3600),
        }
    }

    /// The retention a camera with `policy` gets and its legal minimum, in days: the minimum
    /// is `key_target_retention_days` for an anti-terror key target, else `retention_days`;
    /// the policy's own `days` can lengthen retention, never shorten it (see
    /// [`crate::retention`]).
    pub fn retention_days_of(&self, policy: &vigil_index::RetentionPolicy) -> (u32, u32) {
        let minimum = if policy.key_target {
            self.key_target_retention_days
        } else {
            self.retention_days
        };
        (policy.days.unwrap_or(minimum).max(minimum), minimum)
    }

    pub(crate) fn segment_ticks(&self) -> i64 {
        ticks_of(self.segment_duration).max(crate::time::TICKS_PER_SEC)
    }

    pub(crate) fn max_fragment_ticks(&self) -> i64 {
        ticks_of(self.max_fragment_duration).max(1)
    }

    pub(crate) fn jump_tolerance_ticks(&self) -> i64 {
        ticks_of(self.jump_tolerance).max(crate::time::TICKS_PER_SEC / 10)
    }
}

/// A duration in 90 kHz ticks (saturating).
pub(crate) fn ticks_of(d: Duration) -> i64 {
    i64::try_from(d.as_micros() * 9 / 100).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_to_ticks() {
        assert_eq!(ticks_of(Duration::from_secs(1)), 90_000);
        assert_eq!(ticks_of(Duration::from_millis(40)), 3600);
        let c = StoreConfig::new("/x");
        assert_eq!(c.segment_ticks(), 60 * 90_000);
        let tiny = StoreConfig {
            segment_duration: Duration::from_millis(1),
            ..c
        };
        assert_eq!(tiny.segment_ticks(), 90_000);
    }

    #[test]
    fn retention_days_follow_the_policy_but_never_go_below_the_legal_minimum() {
        use vigil_index::RetentionPolicy;
        let c = StoreConfig::new("/x");
        let p = |key_target, days| RetentionPolicy { key_target, days };
        assert_eq!(c.retention_days_of(&p(false, None)), (30, 30));
        assert_eq!(c.retention_days_of(&p(true, None)), (90, 90));
        assert_eq!(c.retention_days_of(&p(false, Some(45))), (45, 30));
        assert_eq!(c.retention_days_of(&p(true, Some(45))), (90, 90));
        assert_eq!(c.retention_days_of(&p(false, Some(7))), (30, 30));
    }
}
