//! Exporting a time range as one MP4 file, streamed from the segment files.
//!
//! # What the file is
//! A fragmented MP4: the init segment of the first segment used, then every fragment from the
//! last key-frame fragment at or before `start` (or the first fragment after `start` when
//! `start` falls in a gap) up to the last fragment that begins before `end`, each preceded by
//! its `prft` (absolute wall-clock time; ffmpeg exposes it) and renumbered and retimed with
//! [`vigil_media::fmp4::retime`] so that sequence numbers run from 1 and `tfdt` counts from the
//! first exported frame. Gaps in the recording stay gaps in the timeline, so every frame keeps
//! its true time. The store's trailer boxes are left out.
//!
//! # Decisions
//! - The export ends where the codec parameters change ([`Export::stopped_at_change`] says
//!   when), because one MP4 track has one sample entry; the caller can export the rest
//!   separately from that instant.
//! - Whole fragments only: the file may start up to one GOP before `start` and end up to one
//!   fragment after `end`.
//! - Segments whose file vanished are skipped (a gap) and listed in
//!   [`Export::skipped_segments`].
//!
//! # Serving
//! Planning reads only the `moov` and `moof` boxes; the total length is known before the first
//! byte is sent, so HTTP `Range` requests can be answered with [`Export::stream`] for any byte
//! range. Bytes are read from the files on the blocking pool in chunks of up to 1 MiB; nothing
//! is assembled in memory beyond one chunk (and one `moof`, which is re-read and retimed when
//! its turn comes).

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::SegmentState;

use crate::boxes::{self, PRFT_LEN};
use crate::config::ticks_of;
use crate::error::StoreError;
use crate::fsutil::{read_at_most, read_exact_at};
use crate::scan;
use crate::store::Store;
use crate::time;

/// Largest chunk a stream yields.
const CHUNK: usize = 1 << 20;

#[derive(Debug)]
struct FragmentPart {
    file: usize,
    prft: [u8; PRFT_LEN],
    moof_offset: u64,
    moof_len: u64,
    mdat_end: u64,
    sequence: u32,
    base_decode_time: u64,
}

impl FragmentPart {
    fn head_len(&self) -> u64 {
        PRFT_LEN as u64 + self.moof_len
    }

    fn len(&self) -> u64 {
        PRFT_LEN as u64 + (self.mdat_end - self.moof_offset)
    }
}

#[derive(Debug)]
enum Part {
    Init(Bytes),
    Fragment(FragmentPart),
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Init(b) => b.len() as u64,
            Part::Fragment(f) => f.len(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    camera: GbId,
    files: Vec<PathBuf>,
    parts: Vec<Part>,
    /// Output offset of each part.
    offsets: Vec<u64>,
    len: u64,
    start: Timestamp,
    end: Timestamp,
    frames: u64,
    stopped_at_change: Option<Timestamp>,
    skipped: Vec<PathBuf>,
}

/// A planned export (cheap to clone; serve any number of range requests from it).
#[derive(Debug, Clone)]
pub struct Export {
    inner: Arc<Inner>,
}

impl Export {
    /// The camera.
    pub fn camera(&self) -> GbId {
        self.inner.camera
    }

    /// Total length of the MP4 file in bytes.
    pub fn len(&self) -> u64 {
        self.inner.len
    }

    /// Always false: an export holds at least one fragment.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// The MIME type to serve it with.
    pub fn content_type(&self) -> &'static str {
        "video/mp4"
    }

    /// Wall-clock time of the first exported frame (a key frame at or before the requested
    /// start, or the first one after it).
    pub fn start(&self) -> Timestamp {
        self.inner.start
    }

    /// Wall-clock end of the last exported frame.
    pub fn end(&self) -> Timestamp {
        self.inner.end
    }

    /// Number of frames.
    pub fn frames(&self) -> u64 {
        self.inner.frames
    }

    /// If the export stopped early because the codec parameters changed: when.
    pub fn stopped_at_change(&self) -> Option<Timestamp> {
        self.inner.stopped_at_change
    }

    /// Segment files that were in the catalogue but could not be read (left out as gaps).
    pub fn skipped_segments(&self) -> &[PathBuf] {
        &self.inner.skipped
    }

    /// The bytes `range` of the file (clamped to its length), in chunks of at most 1 MiB.
    pub fn stream(
        &self,
        range: Range<u64>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let end = range.end.min(self.inner.len);
        let state = Cursor {
            inner: self.inner.clone(),
            pos: range.start.min(end),
            end,
            open: None,
        };
        futures::stream::unfold(Some(state), |state| async move {
            let mut cur = state?;
            if cur.pos >= cur.end {
                return None;
            }
            let res = tokio::task::spawn_blocking(move || {
                let r = cur.next_chunk();
                (cur, r)
            })
            .await;
            match res {
                Ok((cur, Ok(chunk))) => Some((Ok(chunk), Some(cur))),
                Ok((_, Err(e))) => Some((Err(e), None)),
                Err(e) => Some((
                    Err(io::Error::other(format!("export read task failed: {e}"))),
                    None,
                )),
            }
        })
    }

    /// The whole file (see [`Export::stream`]).
    pub fn stream_all(&self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        self.stream(0..self.len())
    }

    /// Reads `range` synchronously into one buffer (tests, small ranges).
    pub fn read_blocking(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        let end = range.end.min(self.inner.len);
        let mut cur = Cursor {
            inner: self.inner.clone(),
            pos: range.start.min(end),
            end,
            open: None,
        };
        let mut out = Vec::with_capacity((end - cur.pos) as usize);
        while cur.pos < cur.end {
            out.extend_from_slice(&cur.next_chunk()?);
        }
        Ok(out)
    }
}

/// Position of a stream in the export.
struct Cursor {
    inner: Arc<Inner>,
    pos: u64,
    end: u64,
    open: Option<(usize, File)>,
}

impl Cursor {
    fn file(&mut self, idx: usize) -> io::Result<&File> {
        if self.open.as_ref().is_none_or(|(i, _)| *i != idx) {
            let path = &self.inner.files[idx];
            let f = File::open(path).map_err(|e| {
                io::Error::new(e.kind(), format!("opening {}: {e}", path.display()))
            })?;
            self.open = Some((idx, f));
        }
        match &self.open {
            Some((_, f)) => Ok(f),
            None => Err(io::Error::other("no open file")),
        }
    }

    /// The next chunk from `pos`, within one part.
    fn next_chunk(&mut self) -> io::Result<Bytes> {
        let inner = self.inner.clone();
        let i = inner.offsets.partition_point(|&o| o <= self.pos) - 1;
        let part_start = inner.offsets[i];
        let rel = self.pos - part_start;
        let part = &inner.parts[i];
        let room = (part.len() - rel).min(self.end - self.pos);
        let want = room.min(CHUNK as u64) as usize;
        let chunk = match part {
            Part::Init(b) => b.slice(rel as usize..rel as usize + want),
            Part::Fragment(f) => {
                let mut out = BytesMut::with_capacity(want);
                let mut rel = rel;
                if rel < f.head_len() {
                    let head = self.head(f)?;
                    let take = ((head.len() as u64 - rel) as usize).min(want);
                    out.extend_from_slice(&head[rel as usize..rel as usize + take]);
                    rel += take as u64;
                }
                let remaining = want - out.len();
                if remaining > 0 {
                    let offset = f.moof_offset + f.moof_len + (rel - f.head_len());
                    let file = self.file(f.file)?;
                    let data = read_at_most(file, offset, remaining)?;
                    if data.len() < remaining {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "{} ends at {} inside an exported fragment",
                                inner.files[f.file].display(),
                                offset + data.len() as u64
                            ),
                        ));
                    }
                    if out.is_empty() {
                        return self.advance(Bytes::from(data));
                    }
                    out.extend_from_slice(&data);
                }
                out.freeze()
            }
        };
        self.advance(chunk)
    }

    fn advance(&mut self, chunk: Bytes) -> io::Result<Bytes> {
        self.pos += chunk.len() as u64;
        Ok(chunk)
    }

    /// `prft` + the retimed `moof` of a fragment.
    fn head(&mut self, f: &FragmentPart) -> io::Result<Vec<u8>> {
        let file = self.file(f.file)?;
        let mut head = vec![0u8; f.head_len() as usize];
        head[..PRFT_LEN].copy_from_slice(&f.prft);
        read_exact_at(file, &mut head[PRFT_LEN..], f.moof_offset)?;
        vigil_media::fmp4::retime(&mut head[PRFT_LEN..], f.sequence, f.base_decode_time)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(head)
    }
}

impl Store {
    /// Plans the export of `camera` from `start` to `end` (see the module docs). `Ok(None)`
    /// when nothing was recorded in the range. Blocking (reads `moov`/`moof` boxes): use
    /// [`Store::export`] from async code.
    pub fn export_blocking(
        &self,
        camera: &GbId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Option<Export>, StoreError> {
        let bad = |reason: String| StoreError::BadExport {
            camera: *camera,
            reason,
        };
        if end <= start {
            return Err(bad(format!("end {end} is not after start {start}")));
        }
        let max = ticks_of(self.config().max_export_duration);
        let (start_90k, end_90k) = (time::ticks(start), time::ticks(end));
        if end_90k - start_90k > max {
            return Err(bad(format!(
                "{start}..{end} is longer than the {} s limit",
                self.config().max_export_duration.as_secs()
            )));
        }
        let records = self
            .index()
            .segments(camera, start_90k, end_90k, usize::MAX)
            .map_err(|e| StoreError::index(*camera, e))?;
        let mut plan = Planner::default();
        for r in records.iter().filter(|r| r.state != SegmentState::Deleting) {
            if plan.params_id.is_some_and(|p| p != r.stream.params_id) {
                plan.stopped_at_change = Some(time::timestamp(r.start_90k));
                break;
            }
            let path = self.shared().layout.segment_path(camera, &r.file);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::warn!(%camera, path = %path.display(), "segment in the catalogue is missing; exporting around it");
                    plan.skipped.push(path);
                    continue;
                }
                Err(e) => return Err(StoreError::io("opening segment", &path, e)),
            };
            let seg = scan::scan(&file, r.len, u64::MAX)
                .map_err(|e| StoreError::io("reading segment", &path, e))?;
            let Some(init) = seg.init.clone() else {
                return Err(StoreError::BadSegment {
                    camera: *camera,
                    path,
                    reason: seg.problem.unwrap_or_else(|| "no init segment".into()),
                });
            };
            plan.add_segment(
                &file,
                &path,
                init,
                &seg,
                r.stream.params_id,
                start_90k,
                end_90k,
            )
            .map_err(|e| StoreError::io("reading init segment", &path, e))?;
        }
        Ok(plan.finish(*camera))
    }

    /// [`Store::export_blocking`] on the blocking pool.
    pub async fn export(
        &self,
        camera: &GbId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Option<Export>, StoreError> {
        let store = self.clone();
        let cam = *camera;
        tokio::task::spawn_blocking(move || store.export_blocking(&cam, start, end))
            .await
            .map_err(|e| StoreError::Worker {
                camera: cam,
                reason: e.to_string(),
            })?
    }
}

#[derive(Default)]
struct Planner {
    files: Vec<PathBuf>,
    parts: Vec<Part>,
    params_id: Option<u64>,
    base: Option<i64>,
    end_90k: i64,
    frames: u64,
    next_seq: u32,
    stopped_at_change: Option<Timestamp>,
    skipped: Vec<PathBuf>,
}

impl Planner {
    /// Adds the fragments of one segment that fall in `[start_90k, end_90k)`.
    #[allow(clippy::too_many_arguments)]
    fn add_segment(
        &mut self,
        file: &File,
        path: &std::path::Path,
        init: Range<u64>,
        seg: &scan::ScannedSegment,
        params_id: u64,
        start_90k: i64,
        end_90k: i64,
    ) -> io::Result<()> {
        let frags = &seg.fragments;
        let first = if self.base.is_some() {
            0
        } else {
            // The last key-frame fragment at or before `start`; if there is none (the range
            // starts before this segment), the first key-frame fragment.
            frags
                .iter()
                .rposition(|f| f.first_is_sync && f.wall_90k <= start_90k)
                .or_else(|| frags.iter().position(|f| f.first_is_sync))
                .unwrap_or(frags.len())
        };
        let chosen: Vec<&scan::ScannedFragment> = frags[first..]
            .iter()
            .take_while(|f| f.wall_90k < end_90k)
            .collect();
        let Some(head) = chosen.first() else {
            return Ok(());
        };
        if self.base.is_none() {
            let bytes = read_at_most(file, init.start, (init.end - init.start) as usize)?;
            self.parts.push(Part::Init(Bytes::from(bytes)));
            self.params_id = Some(params_id);
            self.base = Some(head.wall_90k);
            self.next_seq = 1;
        }
        self.add_fragments(path, &chosen);
        Ok(())
    }

    fn add_fragments(&mut self, path: &std::path::Path, chosen: &[&scan::ScannedFragment]) {
        let base = self.base.unwrap_or(0);
        let idx = self.files.len();
        self.files.push(path.to_owned());
        for f in chosen {
            let bdt = u64::try_from(f.wall_90k - base).unwrap_or(0);
            let prft = boxes::prft(f.wall_90k, bdt);
            self.parts.push(Part::Fragment(FragmentPart {
                file: idx,
                prft,
                moof_offset: f.moof_offset,
                moof_len: f.moof_len,
                mdat_end: f.mdat_end,
                sequence: self.next_seq,
                base_decode_time: bdt,
            }));
            self.next_seq = self.next_seq.wrapping_add(1);
            self.frames += u64::from(f.samples);
            self.end_90k = self.end_90k.max(f.wall_90k + f.duration as i64);
        }
    }

    fn finish(self, camera: GbId) -> Option<Export> {
        let base = self.base?;
        let mut offsets = Vec::with_capacity(self.parts.len());
        let mut len = 0;
        for p in &self.parts {
            offsets.push(len);
            len += p.len();
        }
        Some(Export {
            inner: Arc::new(Inner {
                camera,
                files: self.files,
                parts: self.parts,
                offsets,
                len,
                start: time::timestamp(base),
                end: time::timestamp_ceil(self.end_90k),
                frames: self.frames,
                stopped_at_change: self.stopped_at_change,
                skipped: self.skipped,
            }),
        })
    }
}

#[cfg(test)]
mod tests;
