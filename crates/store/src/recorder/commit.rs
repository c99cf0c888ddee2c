//! Writing one fragment durably and then recording it (the durability order of the crate
//! docs, in one blocking job).

use std::sync::Arc;

use bytes::Bytes;
use vigil_core::id::GbId;
use vigil_core::status::StatusKind;
use vigil_core::time::Timestamp;
use vigil_index::{Index, IndexError, SegmentRecord};
use vigil_media::fmp4::Fragment;

use super::Recorder;
use crate::boxes;
use crate::error::StoreError;
use crate::layout::Layout;
use crate::segment::SegmentFile;
use crate::time;

/// Everything the blocking job needs; moved to the blocking thread and back.
struct CommitJob {
    layout: Layout,
    index: Arc<Index>,
    camera: GbId,
    file: Option<SegmentFile>,
    parts: Vec<Bytes>,
    record: SegmentRecord,
    open_recording: Option<Timestamp>,
}

struct Committed {
    record: SegmentRecord,
    bytes: u64,
    index_error: Option<String>,
    status_error: Option<IndexError>,
}

impl CommitJob {
    fn run(self) -> (Option<SegmentFile>, Result<Committed, StoreError>) {
        let CommitJob {
            layout,
            index,
            camera,
            file,
            parts,
            mut record,
            open_recording,
        } = self;
        let mut file = match file {
            Some(f) => f,
            None => match SegmentFile::create(&layout, &camera, record.start_90k) {
                Ok(f) => f,
                Err(e) => return (None, Err(e)),
            },
        };
        // 1. write, 2. fdatasync (+ directory fsync for a new file), 3. check the name.
        let len = match file.append(&parts) {
            Ok(len) => len,
            Err(e) => return (Some(file), Err(e)),
        };
        // 4. Only now does the index learn about these bytes.
        record.len = len;
        record.file = file.rel_name().to_owned();
        let index_error = index.put_segment(&record).err().map(|e| e.to_string());
        let status_error = open_recording.and_then(|at| {
            index
                .set_status(&camera, StatusKind::Recording, at, true)
                .err()
        });
        let bytes = parts.iter().map(|p| p.len() as u64).sum();
        (
            Some(file),
            Ok(Committed {
                record,
                bytes,
                index_error,
                status_error,
            }),
        )
    }
}

impl Recorder {
    /// Writes `frag` (first sample at wall clock `wall`) to the open segment, creating the
    /// file with the first fragment, then updates the index, the status history and the
    /// recorder state.
    pub(super) async fn commit(&mut self, frag: Fragment, wall: i64) -> Result<(), StoreError> {
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        let prft = boxes::prft(wall, frag.base_decode_time());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&prft);
        for c in frag.chunks() {
            crc.update(c);
        }
        let covered = boxes::PRFT_LEN as u64 + frag.len();
        let covered = u32::try_from(covered).map_err(|_| StoreError::Media {
            camera: self.camera,
            reason: format!("fragment of {covered} bytes exceeds 4 GiB"),
        })?;
        let trailer = boxes::trailer(crc.finalize(), covered);

        let first = seg.file.is_none();
        let mut parts = Vec::with_capacity(frag.samples().len() + 4);
        if first {
            parts.push(seg.init.clone());
        }
        parts.push(Bytes::copy_from_slice(&prft));
        parts.extend(frag.chunks().cloned());
        parts.push(Bytes::copy_from_slice(&trailer));

        let mut record = seg.record.clone();
        record.end_90k = wall + frag.duration() as i64;
        record.fragments += 1;
        record.frames += frag.sample_count();
        let open_recording = (!self.status.recording_open())
            .then(|| self.status.recording_open_at(time::timestamp(wall)));
        let job = CommitJob {
            layout: self.shared.layout.clone(),
            index: self.shared.index.clone(),
            camera: self.camera,
            file: seg.file.take(),
            parts,
            record,
            open_recording,
        };
        let span = tracing::Span::current();
        let (file, result) = tokio::task::spawn_blocking(move || span.in_scope(|| job.run()))
            .await
            .map_err(|e| StoreError::Worker {
                camera: self.camera,
                reason: e.to_string(),
            })?;
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        seg.file = file;
        let committed = result?;
        let path = seg.file.as_ref().map(|f| f.path().to_owned());
        seg.record = committed.record;
        let (len, end_90k) = (seg.record.len, seg.record.end_90k);
        self.last_end = end_90k;
        self.retry_at = None;
        self.backoff_ms = super::FIRST_BACKOFF_MS;
        if let Some(at) = open_recording {
            self.status.recording_opened(at);
        }
        if let Some(e) = committed.status_error {
            self.status.report(StatusKind::Recording, e);
        }
        if let Some(e) = committed.index_error {
            self.index_failed(e);
        }
        let frames = std::mem::take(&mut self.unreported_frames);
        self.hub.state.send_modify(|s| {
            s.frames_received += frames;
            s.frames_recorded += u64::from(frag.sample_count());
            s.fragments_written += 1;
            s.bytes_written += committed.bytes;
            if first {
                s.segments_started += 1;
            }
            s.segment = path;
            s.committed_len = len;
            s.committed_end = Some(time::timestamp(end_90k));
        });
        Ok(())
    }
}
