//! Retention tests: age per camera class, the free-space floor with a simulated disk, and the
//! deletion protocol's bookkeeping.

use std::cell::Cell;
use std::io;
use std::path::Path;
use std::time::Duration;

use vigil_core::id::GbId;
use vigil_core::time::DAY_MS;
use vigil_index::{RetentionPolicy, SegmentState};

use super::DeleteReason;
use crate::fsutil::Space;
use crate::test_util::{cam, take, Harness, T0};
use crate::testing::{Clip, ClipFeed};

/// Records one 2 s segment for `camera` starting `days_ago` before `T0`.
async fn segment_at(h: &Harness, camera: GbId, clip: &Clip, days_ago: i64) {
    let mut feed = ClipFeed::new(clip, T0.sub_ms(days_ago * DAY_MS), 0);
    h.record(camera, take(&mut feed, 50)).await;
}

fn du(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn plenty() -> io::Result<Space> {
    Ok(Space {
        available: 1 << 40,
        total: 1 << 41,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_is_kept_30_days_90_for_key_targets_and_longer_when_configured() {
    let h = Harness::with(|c| c.segment_duration = Duration::from_secs(60));
    let clip = Clip::h264_360p();
    let (ordinary, key_target, longer) = (cam(1), cam(2), cam(3));
    h.index()
        .set_retention_policy(
            &key_target,
            RetentionPolicy {
                key_target: true,
                days: None,
            },
        )
        .unwrap();
    // Shorter than the legal minimum: ignored. Longer: honoured.
    h.index()
        .set_retention_policy(
            &ordinary,
            RetentionPolicy {
                key_target: false,
                days: Some(7),
            },
        )
        .unwrap();
    h.index()
        .set_retention_policy(
            &longer,
            RetentionPolicy {
                key_target: false,
                days: Some(45),
            },
        )
        .unwrap();
    for c in [ordinary, key_target, longer] {
        for days in [100, 60, 31, 29] {
            segment_at(&h, c, &clip, days).await;
        }
    }
    let report = h.store.run_retention_with(T0, &plenty).unwrap();
    let ages = |c: &GbId| -> Vec<i64> {
        h.segments(c)
            .iter()
            .map(|s| T0.ms_since(s.start()) / DAY_MS)
            .collect()
    };
    assert_eq!(ages(&ordinary), vec![29]);
    assert_eq!(ages(&key_target), vec![60, 31, 29]);
    assert_eq!(ages(&longer), vec![31, 29]);
    assert_eq!(report.deleted.len(), 3 + 1 + 2);
    assert!(report
        .deleted
        .iter()
        .all(|d| !d.below_legal_minimum && !d.path.exists()));
    let d = report
        .deleted
        .iter()
        .find(|d| d.camera == key_target)
        .unwrap();
    assert_eq!(d.reason, DeleteReason::Age { days: 90 });
    assert_eq!(d.start, T0.sub_ms(100 * DAY_MS));
    assert_eq!(
        report.bytes_freed,
        report.deleted.iter().map(|d| d.bytes).sum::<u64>()
    );
    // Empty day directories went with their last segment.
    let day_dirs = std::fs::read_dir(h.root().join(ordinary.as_str()))
        .unwrap()
        .count();
    assert_eq!(day_dirs, 1);
    assert!(h
        .index()
        .segments_in_state(SegmentState::Deleting)
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_space_floor_deletes_oldest_first_and_key_targets_last() {
    let floor = 2_000_000u64;
    let h = Harness::with(|c| {
        c.segment_duration = Duration::from_secs(60);
        c.min_free_bytes = floor;
        c.min_free_fraction = 0.0;
    });
    let clip = Clip::h264_720p();
    let (ordinary, key_target) = (cam(1), cam(2));
    h.index()
        .set_retention_policy(
            &key_target,
            RetentionPolicy {
                key_target: true,
                days: None,
            },
        )
        .unwrap();
    // Interleaved in time: the key target's segments are the oldest of all.
    for days in [5, 4, 3, 2, 1] {
        segment_at(&h, key_target, &clip, days + 10).await;
        segment_at(&h, ordinary, &clip, days).await;
    }
    let seg_bytes = h.segments(&ordinary)[0].len;
    assert!(seg_bytes > 50_000, "{seg_bytes}");
    // A disk whose free space is what the files leave of `capacity`.
    let capacity = Cell::new(du(h.root()) + floor - 1);
    let root = h.root().to_owned();
    let disk = || {
        Ok(Space {
            available: capacity.get() - du(&root),
            total: capacity.get(),
        })
    };
    let report = h.store.run_retention_with(T0, &disk).unwrap();
    assert!(!report.still_below_floor);
    assert_eq!(report.floor, floor);
    // Ordinary footage goes first, oldest first, even though the key target's is older;
    // just enough to get 10 % above the floor.
    let need = floor / 10 + 1;
    let n = need.div_ceil(seg_bytes) as usize;
    assert!(report.deleted.iter().all(|d| d.camera == ordinary));
    assert_eq!(report.deleted.len(), n);
    assert!(report
        .deleted
        .iter()
        .all(|d| d.reason == DeleteReason::FreeSpace));
    assert!(report.deleted.iter().all(|d| d.below_legal_minimum));
    assert_eq!(h.segments(&ordinary).len(), 5 - n);
    assert_eq!(
        report.deleted[0].start,
        T0.sub_ms(5 * DAY_MS),
        "the oldest ordinary segment first"
    );

    // A disk so full that nothing is enough: ordinary footage goes first, then the key
    // target's, and the report says the floor could not be reached.
    capacity.set(du(h.root()) + 1);
    let report = h.store.run_retention_with(T0, &disk).unwrap();
    assert!(report.still_below_floor);
    assert!(h.segments(&ordinary).is_empty());
    assert!(h.segments(&key_target).is_empty());
    let first_key = report
        .deleted
        .iter()
        .position(|d| d.camera == key_target)
        .unwrap();
    assert_eq!(first_key, 5 - n);
    assert!(report.deleted[first_key..]
        .iter()
        .all(|d| d.camera == key_target));
}
