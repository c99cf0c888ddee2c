//! Retention: deleting footage by age and to keep a free-space floor.
//!
//! # Policy
//! - **Age.** A camera keeps its footage for the store's `retention_days` (30, the legal
//!   minimum of 公共安全视频图像信息系统管理条例 art. 17) or, if an operator marked it as an
//!   anti-terror key target ([`vigil_index::RetentionPolicy::key_target`]), for
//!   `key_target_retention_days` (90, 反恐怖主义法 art. 32). A per-camera `days` can lengthen
//!   this, never shorten it. A segment is deleted once it *ended* more than that long ago.
//! - **Free space.** When the store's file system has less free space than the floor
//!   (`max(min_free_bytes, min_free_fraction × size)`), the oldest segments are deleted
//!   until 10 % above the floor: first those of ordinary cameras, oldest first across all
//!   cameras, and those of key-target cameras only when no ordinary camera has anything left
//!   to delete. Recording new video wins over keeping old video (an NVR that stops recording
//!   when its disk is full fails every figure at once), but deleting footage younger than its
//!   legal minimum is logged as an error naming the camera and the age, so that the operator
//!   adds disks.
//! - A segment being written is never deleted.
//!
//! # Crash safety
//! Deletion is mark → unlink → fsync directory → forget: the segments are first marked
//! `Deleting` in the index (fsynced, so readers stop using them and recovery finishes the
//! job after a crash), then unlinked, then their directories fsynced, then their records
//! removed. Empty day directories are removed afterwards.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::PathBuf;

use tokio::task::JoinHandle;
use vigil_core::id::GbId;
use vigil_core::time::{Timestamp, DAY_MS};
use vigil_index::{RetentionPolicy, SegmentKey, SegmentRecord, SegmentState};

use crate::error::StoreError;
use crate::fsutil;
use crate::layout::Layout;
use crate::store::Store;
use crate::time;

/// Oldest segments examined per camera per free-space round.
const CANDIDATES_PER_CAMERA: usize = 64;
/// Segments of one camera deleted by age in one pass.
const AGE_BATCH: usize = 4096;
/// Free-space rounds per pass (each deletes up to `CANDIDATES_PER_CAMERA` per camera).
const MAX_ROUNDS: usize = 64;

/// Why a segment was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Older than the camera's retention.
    Age {
        /// The retention that applied, days.
        days: u32,
    },
    /// To keep the free-space floor.
    FreeSpace,
    /// Finishing a deletion an earlier pass marked but could not complete.
    Unfinished,
}

/// One deleted segment (also logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    /// The camera.
    pub camera: GbId,
    /// The file.
    pub path: PathBuf,
    /// Its start.
    pub start: Timestamp,
    /// Its end.
    pub end: Timestamp,
    /// Its size.
    pub bytes: u64,
    /// Why.
    pub reason: DeleteReason,
    /// Whether the footage was younger than the camera's legal retention.
    pub below_legal_minimum: bool,
}

/// What a retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Deleted segments, in deletion order.
    pub deleted: Vec<DeletedSegment>,
    /// Bytes of the deleted segments.
    pub bytes_freed: u64,
    /// Free bytes before and after the pass (`None` if `statvfs` failed).
    pub free_before: Option<u64>,
    /// See `free_before`.
    pub free_after: Option<u64>,
    /// The floor that applied.
    pub floor: u64,
    /// Still below the floor after deleting everything deletable.
    pub still_below_floor: bool,
}

struct Policies<'a> {
    by_camera: HashMap<GbId, RetentionPolicy>,
    config: &'a crate::StoreConfig,
}

impl Policies<'_> {
    fn policy(&self, camera: &GbId) -> RetentionPolicy {
        self.by_camera.get(camera).copied().unwrap_or_default()
    }

    /// (retention days, legal minimum days).
    fn days(&self, camera: &GbId) -> (u32, u32) {
        self.config.retention_days_of(&self.policy(camera))
    }
}

impl Store {
    /// Applies retention once as of `now` (blocking; see the module docs).
    pub fn run_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError> {
        let root = self.shared().layout.root().to_owned();
        self.run_retention_with(now, &|| fsutil::space(&root))
    }

    /// [`Store::run_retention`] with the free-space reading supplied (tests simulate disks).
    pub(crate) fn run_retention_with(
        &self,
        now: Timestamp,
        read_space: &dyn Fn() -> io::Result<fsutil::Space>,
    ) -> Result<RetentionReport, StoreError> {
        let shared = self.shared();
        let index = &shared.index;
        let layout = &shared.layout;
        let cfg = &shared.config;
        let policies = Policies {
            by_camera: index
                .retention_policies()
                .map_err(|e| StoreError::index_wide("reading retention policies", e))?
                .into_iter()
                .collect(),
            config: cfg,
        };
        let mut report = RetentionReport::default();

        // Deletions left marked by an earlier pass whose unlink failed.
        let leftover = index
            .segments_in_state(SegmentState::Deleting)
            .map_err(|e| StoreError::index_wide("listing segments being deleted", e))?;
        delete(
            layout,
            index,
            &leftover,
            now,
            &policies,
            DeleteReason::Unfinished,
            &mut report,
            false,
        )?;

        let cameras = index
            .recorded_cameras()
            .map_err(|e| StoreError::index_wide("listing recorded cameras", e))?;
        for camera in &cameras {
            let (days, _) = policies.days(camera);
            let cutoff = time::ticks(now.sub_ms(i64::from(days) * DAY_MS));
            let old: Vec<SegmentRecord> = index
                .segments(camera, i64::MIN, cutoff, AGE_BATCH)
                .map_err(|e| StoreError::index(*camera, e))?
                .into_iter()
                .filter(|r| r.end_90k <= cutoff && r.state == SegmentState::Complete)
                .collect();
            delete(
                layout,
                index,
                &old,
                now,
                &policies,
                DeleteReason::Age { days },
                &mut report,
                true,
            )?;
        }

        let space = |report: &mut RetentionReport| -> Option<fsutil::Space> {
            match read_space() {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(root = %layout.root().display(), error = %e, "statvfs failed; free-space retention skipped");
                    report.free_after = None;
                    None
                }
            }
        };
        let Some(first) = space(&mut report) else {
            return Ok(report);
        };
        report.free_before = Some(first.available);
        report.free_after = Some(first.available);
        let floor = cfg
            .min_free_bytes
            .max((cfg.min_free_fraction.clamp(0.0, 1.0) * first.total as f64) as u64);
        report.floor = floor;
        let target = floor + floor / 10;
        let mut available = first.available;
        let mut rounds = 0;
        while available < floor && rounds < MAX_ROUNDS {
            rounds += 1;
            let mut candidates = Vec::new();
            for camera in &cameras {
                let key_target = policies.policy(camera).key_target;
                for r in index
                    .first_segments(camera, CANDIDATES_PER_CAMERA)
                    .map_err(|e| StoreError::index(*camera, e))?
                {
                    if r.state == SegmentState::Complete {
                        candidates.push((key_target, r));
                    }
                }
            }
            if candidates.is_empty() {
                break;
            }
            candidates.sort_by_key(|(protected, r)| (*protected, r.start_90k));
            let mut chosen = Vec::new();
            let mut planned: u64 = 0;
            for (_, r) in candidates {
                if available + planned >= target {
                    break;
                }
                planned += r.len;
                chosen.push(r);
            }
            delete(
                layout,
                index,
                &chosen,
                now,
                &policies,
                DeleteReason::FreeSpace,
                &mut report,
                true,
            )?;
            match space(&mut report) {
                Some(s) => available = s.available,
                None => return Ok(report),
            }
            report.free_after = Some(available);
        }
        report.still_below_floor = available < floor;
        if report.still_below_floor {
            tracing::error!(
                available,
                floor,
                "free space is below the floor and nothing more can be deleted"
            );
        }
        Ok(report)
    }

    /// Runs retention every `retention_interval`, and at once when a write fails with ENOSPC.
    /// Must be called within a tokio runtime.
    pub fn spawn_maintenance(&self) -> JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let interval = store.config().retention_interval;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = store.space_pressure() => {
                        tracing::warn!("a write hit ENOSPC: applying retention now");
                    }
                }
                let s = store.clone();
                let now = Timestamp::from_system_time(std::time::SystemTime::now());
                match tokio::task::spawn_blocking(move || s.run_retention(now)).await {
                    Ok(Ok(r)) if !r.deleted.is_empty() => tracing::info!(
                        segments = r.deleted.len(),
                        bytes = r.bytes_freed,
                        "retention deleted old segments"
                    ),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                    Err(e) => tracing::error!(error = %e, "retention task failed"),
                }
            }
        })
    }
}

/// Deletes `records` crash-safely (mark → unlink → fsync dirs → forget) and logs each one.
/// `mark` is false for segments already marked.
#[allow(clippy::too_many_arguments)]
fn delete(
    layout: &Layout,
    index: &vigil_index::Index,
    records: &[SegmentRecord],
    now: Timestamp,
    policies: &Policies,
    reason: DeleteReason,
    report: &mut RetentionReport,
    mark: bool,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    if mark {
        let marked: Vec<SegmentRecord> = records
            .iter()
            .map(|r| SegmentRecord {
                state: SegmentState::Deleting,
                ..r.clone()
            })
            .collect();
        index
            .put_segments_durable(&marked)
            .map_err(|e| StoreError::index_wide("marking segments for deletion", e))?;
    }
    let mut dirs = BTreeSet::new();
    let mut forget: Vec<SegmentKey> = Vec::with_capacity(records.len());
    for r in records {
        let path = layout.segment_path(&r.camera, &r.file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(camera = %r.camera, path = %path.display(), "segment to delete was already gone");
            }
            Err(e) => {
                // Stays marked; the next pass (or recovery) tries again.
                tracing::error!(camera = %r.camera, path = %path.display(), error = %e, "could not delete segment");
                continue;
            }
        }
        if let Some(dir) = path.parent() {
            dirs.insert(dir.to_owned());
        }
        forget.push(r.key());
        let (_, minimum) = policies.days(&r.camera);
        let age_ms = now.ms_since(time::timestamp(r.end_90k));
        let below = age_ms < i64::from(minimum) * DAY_MS;
        if below {
            tracing::error!(camera = %r.camera, path = %path.display(), age_days = age_ms / DAY_MS, minimum_days = minimum,
                "deleted footage younger than its legal retention to keep the free-space floor: add storage");
        } else {
            tracing::info!(camera = %r.camera, path = %path.display(), start = %time::timestamp(r.start_90k),
                end = %time::timestamp(r.end_90k), bytes = r.len, ?reason, "deleted segment");
        }
        report.bytes_freed += r.len;
        report.deleted.push(DeletedSegment {
            camera: r.camera,
            path,
            start: time::timestamp(r.start_90k),
            end: time::timestamp(r.end_90k),
            bytes: r.len,
            reason,
            below_legal_minimum: below,
        });
    }
    for dir in &dirs {
        fsutil::sync_dir(dir).map_err(|e| StoreError::io("fsyncing directory", dir, e))?;
    }
    index
        .remove_segments(&forget)
        .map_err(|e| StoreError::index_wide("forgetting deleted segments", e))?;
    // Empty day directories go too (a non-empty one stays; that is the common case).
    for dir in &dirs {
        if fs::remove_dir(dir).is_ok() {
            if let Some(camera_dir) = dir.parent() {
                if let Err(e) = fsutil::sync_dir(camera_dir) {
                    tracing::warn!(dir = %camera_dir.display(), error = %e, "could not fsync after removing an empty day directory");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
