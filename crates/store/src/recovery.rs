//! Crash recovery at start (before any recorder runs).
//!
//! 1. **Finish deletions.** Segments marked `Deleting` are unlinked (a missing file is fine),
//!    their directories fsynced, their records forgotten.
//! 2. **Close unfinished segments.** For each `Writing` segment the file is scanned; the part
//!    the index already confirmed is trusted, everything after it must pass the structure
//!    rules and the fragment CRCs (see [`crate::scan`]). The file is cut after the last good
//!    fragment and fsynced, and the record is updated (end, length, counts) and marked
//!    `Complete`. A file that vanished is forgotten with a warning.
//! 3. **Index orphans.** Files that the index never heard of (the crash came between the
//!    file's first fsync and the index's next flush) are found by listing each camera's newest
//!    day directories, verified completely (every CRC), cut, fsynced and indexed.
//! 4. **Status history.** For every segment closed or indexed here the camera's `recording`
//!    history is made to cover it (an interval left open by the crash is closed at the end
//!    of the last good fragment; a lost one is added); an open `upload` interval is closed
//!    at the same instant. A camera that was between two segments at the crash (its last
//!    segment complete, the next one not yet started) has nothing to close or index, but its
//!    `recording` interval is still open: it is closed at the end of its last segment too
//!    (when it started before that end; a later one is not ours to judge), so that the
//!    daemon's "close at the last heartbeat" rule, which may be later than the video, never
//!    applies to recording.
//!
//! A crash therefore loses at most the fragment that was being written, and nothing that the
//! index ever pointed at.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::PathBuf;

use vigil_core::id::GbId;
use vigil_core::model::ModelError;
use vigil_core::status::StatusKind;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::{Index, IndexError, SegmentKey, SegmentRecord, SegmentState};

use crate::error::StoreError;
use crate::fsutil;
use crate::layout::{self, Layout};
use crate::scan;
use crate::time;
use crate::util::stream_info;

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Interrupted deletions completed.
    pub deletions_finished: usize,
    /// Unfinished segments closed.
    pub segments_closed: usize,
    /// Files the index did not know, now indexed.
    pub orphans_indexed: usize,
    /// Bytes cut from the ends of files (incomplete or unverifiable fragments).
    pub bytes_truncated: u64,
    /// Files removed because they held no complete fragment.
    pub files_removed: usize,
    /// Indexed segments whose file had vanished (forgotten).
    pub files_missing: usize,
    /// Files left alone because they could not be understood (named, with the reason).
    pub files_skipped: Vec<(PathBuf, String)>,
    /// Set when the index did not know the store and its catalogue was rebuilt instead.
    pub rebuilt: Option<crate::rebuild::RebuildReport>,
}

/// How a file given to [`catalogue_file`] is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync the file before returning.
    Fsync,
    /// The caller `syncfs`es the whole file system before it records the result (a rebuild
    /// visiting thousands of files).
    Deferred,
}

/// How much of a file to CRC-check.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verify {
    /// Every fragment ending after this offset.
    From(u64),
    /// Only the last fragment (the only one that can be unsynced garbage).
    LastFragment,
}

/// What happened to a file given to [`catalogue_file`].
#[derive(Debug)]
pub(crate) enum FileOutcome {
    /// The file holds good fragments; this is its record (state `Complete`).
    Indexed {
        record: SegmentRecord,
        truncated: u64,
    },
    /// The file held no complete fragment and was removed.
    Removed { reason: String },
    /// The file was left alone.
    Skipped { reason: String },
}

/// Scans a segment file, cuts it after its last good fragment, makes it durable and
/// describes it. The caller records the result in the index.
pub(crate) fn catalogue_file(
    layout: &Layout,
    camera: &GbId,
    rel: &str,
    verify: Verify,
    durability: Durability,
) -> Result<FileOutcome, StoreError> {
    let path = layout.segment_path(camera, rel);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("opening segment", &path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("reading segment size", &path, e))?
        .len();
    let verify_from = match verify {
        Verify::From(x) => x,
        Verify::LastFragment => u64::MAX,
    };
    let io_err = |e| StoreError::io("scanning segment", &path, e);
    let mut seg = scan::scan(&file, len, verify_from).map_err(io_err)?;
    if matches!(verify, Verify::LastFragment) {
        scan::verify_last(&file, &mut seg).map_err(io_err)?;
    }
    let reason = seg
        .problem
        .clone()
        .unwrap_or_else(|| "no complete fragment".to_owned());
    let (Some(_), Some(first)) = (&seg.init, seg.fragments.first().cloned()) else {
        drop(file);
        fs::remove_file(&path).map_err(|e| StoreError::io("removing empty segment", &path, e))?;
        if let Some(dir) = path.parent() {
            fsutil::sync_dir(dir).map_err(|e| StoreError::io("fsyncing directory", dir, e))?;
        }
        return Ok(FileOutcome::Removed { reason });
    };
    let params = match scan::read_params(&seg) {
        Ok(p) => p,
        Err(e) => {
            return Ok(FileOutcome::Skipped {
                reason: format!("unreadable codec parameters: {e}"),
            })
        }
    };
    let truncated = len - seg.valid_end;
    if truncated > 0 {
        tracing::warn!(path = %path.display(), cut = truncated, %reason, "cutting segment after its last good fragment");
        file.set_len(seg.valid_end)
            .map_err(|e| StoreError::io("truncating segment", &path, e))?;
    }
    // Orphans may exist only in the page cache (the process crashed, the kernel did not):
    // make them durable before the index points at them.
    if durability == Durability::Fsync {
        file.sync_all()
            .map_err(|e| StoreError::io("fsyncing segment", &path, e))?;
    }
    let start_90k = first.wall_90k - first.base_decode_time as i64;
    let record = SegmentRecord {
        camera: *camera,
        start_90k,
        end_90k: seg.end_90k().unwrap_or(start_90k),
        file: rel.to_owned(),
        len: seg.valid_end,
        fragments: seg.fragments.len() as u32,
        frames: seg.frames(),
        stream: stream_info(&params),
        state: SegmentState::Complete,
    };
    Ok(FileOutcome::Indexed { record, truncated })
}

/// Runs recovery (see the module docs).
pub(crate) fn recover(layout: &Layout, index: &Index) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    finish_deletions(layout, index, &mut report)?;
    close_unfinished(layout, index, &mut report)?;
    index_orphans(layout, index, &mut report)?;
    close_dangling_recording(index)?;
    index
        .flush()
        .map_err(|e| StoreError::index_wide("flushing after recovery", e))?;
    if report != RecoveryReport::default() {
        tracing::info!(?report, "recovery finished");
    }
    Ok(report)
}

fn finish_deletions(
    layout: &Layout,
    index: &Index,
    report: &mut RecoveryReport,
) -> Result<(), StoreError> {
    let marked = index
        .segments_in_state(SegmentState::Deleting)
        .map_err(|e| StoreError::index_wide("listing segments being deleted", e))?;
    if marked.is_empty() {
        return Ok(());
    }
    let mut dirs = BTreeSet::new();
    for r in &marked {
        let path = layout.segment_path(&r.camera, &r.file);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("deleting segment", &path, e)),
        }
        if let Some(dir) = path.parent() {
            dirs.insert(dir.to_owned());
        }
    }
    for dir in dirs {
        match fsutil::sync_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("fsyncing directory", &dir, e)),
        }
    }
    let keys: Vec<SegmentKey> = marked.iter().map(SegmentRecord::key).collect();
    index
        .remove_segments(&keys)
        .map_err(|e| StoreError::index_wide("forgetting deleted segments", e))?;
    report.deletions_finished = marked.len();
    Ok(())
}

fn close_unfinished(
    layout: &Layout,
    index: &Index,
    report: &mut RecoveryReport,
) -> Result<(), StoreError> {
    let writing = index
        .segments_in_state(SegmentState::Writing)
        .map_err(|e| StoreError::index_wide("listing unfinished segments", e))?;
    for r in writing {
        let outcome = match catalogue_file(
            layout,
            &r.camera,
            &r.file,
            Verify::From(r.len),
            Durability::Fsync,
        ) {
            Ok(o) => o,
            Err(StoreError::Io { source, path, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                tracing::warn!(camera = %r.camera, path = %path.display(), "an unfinished segment vanished; forgetting it");
                index
                    .remove_segments(&[r.key()])
                    .map_err(|e| StoreError::index(r.camera, e))?;
                report.files_missing += 1;
                continue;
            }
            Err(e) => {
                // One bad file (unreadable, on a read-only mount) must not keep every other
                // camera from recording: leave it marked, report it, try again next start.
                tracing::error!(camera = %r.camera, file = %r.file, error = %e, "could not recover an unfinished segment");
                report
                    .files_skipped
                    .push((layout.segment_path(&r.camera, &r.file), e.to_string()));
                continue;
            }
        };
        match outcome {
            FileOutcome::Indexed {
                mut record,
                truncated,
            } => {
                if record.len < r.len {
                    tracing::error!(camera = %r.camera, file = %r.file, indexed = r.len, valid = record.len,
                        "the index confirmed more bytes than the file holds intact (disk corruption?)");
                }
                if record.start_90k != r.start_90k {
                    index
                        .remove_segments(&[r.key()])
                        .map_err(|e| StoreError::index(r.camera, e))?;
                }
                record.state = SegmentState::Complete;
                index
                    .put_segment(&record)
                    .map_err(|e| StoreError::index(r.camera, e))?;
                reconcile_status(index, &record);
                report.segments_closed += 1;
                report.bytes_truncated += truncated;
            }
            FileOutcome::Removed { reason } => {
                tracing::warn!(camera = %r.camera, file = %r.file, %reason, "removed an unfinished segment without a complete fragment");
                index
                    .remove_segments(&[r.key()])
                    .map_err(|e| StoreError::index(r.camera, e))?;
                report.files_removed += 1;
            }
            FileOutcome::Skipped { reason } => {
                report
                    .files_skipped
                    .push((layout.segment_path(&r.camera, &r.file), reason));
            }
        }
    }
    Ok(())
}

/// Camera directories in the store root.
pub(crate) fn camera_dirs(layout: &Layout) -> Result<Vec<GbId>, StoreError> {
    let root = layout.root();
    let mut out = Vec::new();
    let entries = fs::read_dir(root).map_err(|e| StoreError::io("listing store", root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing store", root, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Ok(id) = GbId::parse(name) {
            if entry.path().is_dir() {
                out.push(id);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Day directories of a camera, sorted.
pub(crate) fn day_dirs(layout: &Layout, camera: &GbId) -> Result<Vec<String>, StoreError> {
    sorted_names(&layout.camera_dir(camera), layout::is_day_dir_name)
}

/// Segment file names in a day directory, sorted.
pub(crate) fn segment_files(
    layout: &Layout,
    camera: &GbId,
    day: &str,
) -> Result<Vec<String>, StoreError> {
    sorted_names(&layout.camera_dir(camera).join(day), |n| {
        layout::parse_segment_file_name(n).is_some()
    })
}

fn sorted_names(
    dir: &std::path::Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("listing directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("listing directory", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if keep(name) {
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn index_orphans(
    layout: &Layout,
    index: &Index,
    report: &mut RecoveryReport,
) -> Result<(), StoreError> {
    for camera in camera_dirs(layout)? {
        let last = index
            .last_segment(&camera)
            .map_err(|e| StoreError::index(camera, e))?;
        let from_day = last.as_ref().map(|r| layout::day_dir_name(r.start_90k));
        for day in day_dirs(layout, &camera)? {
            if from_day.as_ref().is_some_and(|f| day < *f) {
                continue;
            }
            for name in segment_files(layout, &camera, &day)? {
                let rel = format!("{day}/{name}");
                if is_indexed(index, &camera, &name, &rel)? {
                    continue;
                }
                let outcome = match catalogue_file(
                    layout,
                    &camera,
                    &rel,
                    Verify::From(0),
                    Durability::Fsync,
                ) {
                    Ok(o) => o,
                    Err(e) => {
                        tracing::error!(%camera, file = %rel, error = %e, "could not examine a segment the index does not know");
                        report
                            .files_skipped
                            .push((layout.segment_path(&camera, &rel), e.to_string()));
                        continue;
                    }
                };
                match outcome {
                    FileOutcome::Indexed { record, truncated } => {
                        tracing::warn!(%camera, file = %rel, "indexed a segment the index did not know");
                        index
                            .put_segment(&record)
                            .map_err(|e| StoreError::index(camera, e))?;
                        reconcile_status(index, &record);
                        report.orphans_indexed += 1;
                        report.bytes_truncated += truncated;
                    }
                    FileOutcome::Removed { reason } => {
                        tracing::warn!(%camera, file = %rel, %reason, "removed a segment file without a complete fragment");
                        report.files_removed += 1;
                    }
                    FileOutcome::Skipped { reason } => {
                        report
                            .files_skipped
                            .push((layout.segment_path(&camera, &rel), reason));
                    }
                }
            }
        }
    }
    Ok(())
}

fn is_indexed(index: &Index, camera: &GbId, name: &str, rel: &str) -> Result<bool, StoreError> {
    let Some(start) = layout::parse_segment_file_name(name) else {
        return Ok(false);
    };
    let lo = time::ticks(start);
    let near = index
        .segments(camera, lo, lo + time::TICKS_PER_MS, 16)
        .map_err(|e| StoreError::index(*camera, e))?;
    Ok(near.iter().any(|r| r.file == rel))
}

/// Closes the `recording` interval a crash left open on a camera whose last segment was
/// already complete (step 4 of the module docs).
fn close_dangling_recording(index: &Index) -> Result<(), StoreError> {
    let cameras = index
        .recorded_cameras()
        .map_err(|e| StoreError::index_wide("listing recorded cameras", e))?;
    for camera in cameras {
        let Some(last) = index
            .last_segment(&camera)
            .map_err(|e| StoreError::index(camera, e))?
        else {
            continue;
        };
        if last.state == SegmentState::Deleting {
            continue;
        }
        let open = index
            .status_history(
                &camera,
                StatusKind::Recording,
                &Interval::open(Timestamp::MIN),
            )
            .ok()
            .and_then(|h| h.last().copied())
            .filter(|iv| iv.is_open());
        if open.is_some_and(|iv| iv.start() <= time::timestamp(last.end_90k)) {
            reconcile_status(index, &last);
        }
    }
    Ok(())
}

/// Makes the camera's `recording` history cover `record` and closes a dangling `upload`
/// interval (see the module docs). Status problems are logged, never fatal: the files and
/// the catalogue are what matter for recovery.
pub(crate) fn reconcile_status(index: &Index, record: &SegmentRecord) {
    let camera = record.camera;
    let (start, end) = (
        time::timestamp(record.start_90k),
        time::timestamp(record.end_90k),
    );
    if end <= start {
        return;
    }
    let res = (|| -> Result<(), IndexError> {
        let everything = Interval::open(Timestamp::MIN);
        let latest = |kind| -> Result<Option<Interval>, IndexError> {
            let after = index.status_history(&camera, kind, &Interval::open(start))?;
            Ok(match after.last() {
                Some(iv) => Some(*iv),
                None => {
                    let before = Interval::new(Timestamp::MIN, start).unwrap_or(everything);
                    index
                        .status_history(&camera, kind, &before)?
                        .last()
                        .copied()
                }
            })
        };
        match latest(StatusKind::Recording)? {
            Some(iv) if iv.is_open() => {
                index.set_status(&camera, StatusKind::Recording, end.max(iv.start()), false)?;
            }
            Some(iv) if iv.end() >= end => {}
            Some(iv) if iv.end() > start => {
                index.set_status(&camera, StatusKind::Recording, iv.end(), true)?;
                index.set_status(&camera, StatusKind::Recording, end, false)?;
            }
            _ => {
                index.set_status(&camera, StatusKind::Recording, start, true)?;
                index.set_status(&camera, StatusKind::Recording, end, false)?;
            }
        }
        if let Some(iv) = latest(StatusKind::Upload)? {
            if iv.is_open() {
                index.set_status(&camera, StatusKind::Upload, end.max(iv.start()), false)?;
            }
        }
        Ok(())
    })();
    match res {
        Ok(()) => {}
        Err(IndexError::Invalid(ModelError::UnknownCamera { .. })) => {}
        Err(e) => {
            tracing::warn!(%camera, error = %e, "could not reconcile status history with a recovered segment")
        }
    }
}

#[cfg(test)]
mod tests;
