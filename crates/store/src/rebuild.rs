//! Rebuilding the recording catalogue from the segment files alone (the daemon exposes it as
//! a CLI command; [`crate::Store::open`] runs it by itself when the index does not know the
//! store).
//!
//! Every camera directory, day directory and segment file is visited in time order. Each file
//! is scanned (structure of every fragment, CRC of the last one, see
//! [`crate::scan::verify_last`]) and cut after its last good fragment; files without a
//! complete fragment are removed. Every 256 files one `syncfs` makes them all durable (one
//! `fsync` per file would cost a journal commit each), then they are recorded as `Complete`
//! segments. Wall-clock times come
//! from the fragments' `prft` boxes, codec parameters from each file's init segment.
//!
//! The camera status history is not rewritten (it may hold imported or older data); only a
//! camera whose `recording` history is empty gets the intervals the files show (consecutive
//! segments that touch form one interval). Must not run while recorders are running.

use std::path::PathBuf;

use vigil_core::id::GbId;
use vigil_index::{Index, SegmentRecord};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::fsutil;
use crate::layout::Layout;
use crate::recovery::{self, catalogue_file, Durability, FileOutcome, Verify};

/// Index records written per batch.
const BATCH: usize = 256;

/// What a rebuild found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Cameras with at least one segment.
    pub cameras: usize,
    /// Segments recorded.
    pub segments: usize,
    /// Bytes in those segments.
    pub bytes: u64,
    /// Files that were cut after their last good fragment.
    pub files_truncated: usize,
    /// Files removed because they held no complete fragment.
    pub files_removed: usize,
    /// Files left alone, with the reason.
    pub files_skipped: Vec<(PathBuf, String)>,
    /// Catalogue records that existed before and were replaced.
    pub records_replaced: usize,
}

/// Rebuilds the catalogue of the store configured in `config` into `index`, replacing
/// whatever catalogue the index had, and makes the index adopt the directory's identity
/// (creating one if the directory has none). Blocking; no recorder may run meanwhile.
pub fn rebuild_index(config: &StoreConfig, index: &Index) -> Result<RebuildReport, StoreError> {
    let layout = Layout::new(config.root.clone());
    let id = crate::identity::ensure(&layout)?;
    index
        .set_store_id(&id)
        .map_err(|e| StoreError::index_wide("recording the store identity", e))?;
    rebuild_catalogue(&layout, index)
}

pub(crate) fn rebuild_catalogue(
    layout: &Layout,
    index: &Index,
) -> Result<RebuildReport, StoreError> {
    let mut report = RebuildReport {
        records_replaced: index
            .clear_segments()
            .map_err(|e| StoreError::index_wide("clearing the recording catalogue", e))?,
        ..RebuildReport::default()
    };
    for camera in recovery::camera_dirs(layout)? {
        let records = rebuild_camera(layout, index, &camera, &mut report)?;
        if records.is_empty() {
            continue;
        }
        report.cameras += 1;
        restore_recording_history(index, &camera, &records);
    }
    index
        .flush()
        .map_err(|e| StoreError::index_wide("flushing the rebuilt catalogue", e))?;
    tracing::info!(
        cameras = report.cameras,
        segments = report.segments,
        bytes = report.bytes,
        "rebuilt the recording catalogue from the files"
    );
    Ok(report)
}

fn rebuild_camera(
    layout: &Layout,
    index: &Index,
    camera: &GbId,
    report: &mut RebuildReport,
) -> Result<Vec<SegmentRecord>, StoreError> {
    let mut all = Vec::new();
    let mut pending = Vec::with_capacity(BATCH);
    for day in recovery::day_dirs(layout, camera)? {
        for name in recovery::segment_files(layout, camera, &day)? {
            let rel = format!("{day}/{name}");
            let outcome = match catalogue_file(
                layout,
                camera,
                &rel,
                Verify::LastFragment,
                Durability::Deferred,
            ) {
                Ok(o) => o,
                Err(e) => FileOutcome::Skipped {
                    reason: e.to_string(),
                },
            };
            match outcome {
                FileOutcome::Indexed { record, truncated } => {
                    if truncated > 0 {
                        report.files_truncated += 1;
                    }
                    report.segments += 1;
                    report.bytes += record.len;
                    pending.push(record);
                }
                FileOutcome::Removed { reason } => {
                    tracing::warn!(%camera, file = %rel, %reason, "removed a segment file without a complete fragment");
                    report.files_removed += 1;
                }
                FileOutcome::Skipped { reason } => {
                    tracing::warn!(%camera, file = %rel, %reason, "left a segment file alone");
                    report
                        .files_skipped
                        .push((layout.segment_path(camera, &rel), reason));
                }
            }
            if pending.len() >= BATCH {
                flush_batch(layout, index, camera, &mut pending, &mut all)?;
            }
        }
    }
    flush_batch(layout, index, camera, &mut pending, &mut all)?;
    Ok(all)
}

/// Makes the batch's files durable (one `syncfs` for the whole batch: most files were
/// durable long ago, truncated or orphaned ones may not be), then records them.
fn flush_batch(
    layout: &Layout,
    index: &Index,
    camera: &GbId,
    pending: &mut Vec<SegmentRecord>,
    all: &mut Vec<SegmentRecord>,
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let dir = layout.camera_dir(camera);
    fsutil::sync_fs(&dir).map_err(|e| StoreError::io("syncing the file system of", &dir, e))?;
    index
        .put_segments_durable(pending)
        .map_err(|e| StoreError::index(*camera, e))?;
    all.append(pending);
    Ok(())
}

/// Gives a camera with an empty `recording` history the intervals its files show.
fn restore_recording_history(index: &Index, camera: &GbId, records: &[SegmentRecord]) {
    use vigil_core::status::StatusKind;
    use vigil_core::time::{Interval, Timestamp};
    let history = index.status_history(
        camera,
        StatusKind::Recording,
        &Interval::open(Timestamp::MIN),
    );
    match history {
        Ok(h) if h.is_empty() => {}
        // A history exists, or the camera is not registered: leave the status alone.
        _ => return,
    }
    for run in runs(records) {
        let res = index
            .set_status(camera, StatusKind::Recording, run.0, true)
            .and_then(|_| index.set_status(camera, StatusKind::Recording, run.1, false));
        if let Err(e) = res {
            tracing::warn!(%camera, error = %e, "could not restore recording history");
            return;
        }
    }
}

/// Contiguous runs of segments as `[start, end)` timestamps (segments that touch, within a
/// millisecond, are one run).
pub(crate) fn runs(
    records: &[SegmentRecord],
) -> Vec<(vigil_core::time::Timestamp, vigil_core::time::Timestamp)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for r in records {
        match out.last_mut() {
            Some(last) if r.start_90k <= last.1 + crate::time::TICKS_PER_MS => {
                last.1 = last.1.max(r.end_90k);
            }
            _ => out.push((r.start_90k, r.end_90k)),
        }
    }
    out.into_iter()
        .map(|(a, b)| (crate::time::timestamp(a), crate::time::timestamp(b)))
        .filter(|(a, b)| b > a)
        .collect()
}
