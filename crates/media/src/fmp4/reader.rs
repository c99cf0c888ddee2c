//! Walking a segment's top-level boxes: the init segment and every complete fragment, with a
//! tolerant tail for crash recovery; and [`retime`] for splicing fragments.
//!
//! [`Walker`] is demand-driven so that a caller holding a large file reads only box headers
//! and `moof` boxes, never the media data: it says which bytes it needs next
//! ([`WalkerStep::Need`]) and the caller hands them over. [`walk`] drives it over a slice.

use bytes::Bytes;
use std::ops::Range;

use super::is_sync_sample;
use crate::mp4box::{children, fourcc, BoxHeader, ChildBox, HeaderProblem};

/// What went wrong at a byte offset of the segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A box header declares a size smaller than the header itself.
    #[error("box at offset {offset}: size {size} is smaller than its header")]
    BadBoxSize {
        /// Offset of the box.
        offset: u64,
        /// The declared size.
        size: u64,
    },
    /// A `moov` or `moof` is larger than the configured limit (garbage size field).
    #[error("`{box_type}` at offset {offset} is {size} bytes, over the limit of {limit}")]
    BoxTooLarge {
        /// Offset of the box.
        offset: u64,
        /// Its type.
        box_type: String,
        /// Its declared size.
        size: u64,
        /// The limit ([`WalkOptions::max_header_box`]).
        limit: u64,
    },
    /// A `moof` is not followed by its `mdat`.
    #[error(
        "`moof` at offset {moof_offset} is followed by `{found}` at {offset}, expected `mdat`"
    )]
    MissingMdat {
        /// Offset of the `moof`.
        moof_offset: u64,
        /// Offset of the box found instead.
        offset: u64,
        /// Its type.
        found: String,
    },
    /// A `moof` is structurally wrong.
    #[error("`moof` at offset {offset}: {reason}")]
    BadMoof {
        /// Offset of the `moof` (or, for [`retime`], of the fragment start).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A `moov` is structurally wrong.
    #[error("`moov` at offset {offset}: {reason}")]
    BadMoov {
        /// Offset of the `moov`.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// [`retime`]: a version 0 `tfdt` cannot hold the new base decode time.
    #[error("`tfdt` at offset {offset} is version 0 and cannot hold {value}")]
    TfdtOverflow {
        /// Offset of the `tfdt` box within the fragment.
        offset: u64,
        /// The value that does not fit.
        value: u64,
    },
}

/// Options of a walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    /// Collect per-sample offsets, sizes, durations and flags in [`FragmentInfo::samples`].
    pub samples: bool,
    /// Largest `moov`/`moof` accepted, in bytes (a corrupt size must not make the caller read
    /// gigabytes). Default 16 MiB.
    pub max_header_box: u64,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            samples: false,
            max_header_box: 16 << 20,
        }
    }
}

/// The init segment found at the start of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    /// From the `ftyp` (or the `moov` if there is no `ftyp`) to the end of the `moov`.
    pub range: Range<u64>,
    /// Track id of the first video track (the first track if none is marked `vide`).
    pub track_id: Option<u32>,
    /// Its `mdhd` timescale.
    pub timescale: Option<u32>,
    /// `trex` defaults of that track: duration, size, flags.
    pub trex_defaults: (u32, u32, u32),
    /// That track's first sample entry (`avc1`/`hvc1` box, header included) from
    /// `mdia/minf/stbl/stsd`: what [`crate::VideoParameters::from_sample_entry`] takes.
    pub sample_entry: Option<Bytes>,
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleInfo {
    /// Absolute offset of the sample data in the segment.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Duration, track timescale.
    pub duration: u32,
    /// Sample flags.
    pub flags: u32,
    /// Composition time offset.
    pub composition_offset: i64,
    /// Whether it is a sync sample.
    pub is_sync: bool,
}

/// One complete fragment (`moof` + `mdat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of the `moof`.
    pub offset: u64,
    /// Length of `moof` + `mdat`.
    pub len: u64,
    /// `mfhd` sequence number.
    pub sequence_number: u32,
    /// `tfdt` base media decode time, if present.
    pub base_decode_time: Option<u64>,
    /// Sum of the sample durations.
    pub duration: u64,
    /// Number of samples.
    pub sample_count: u32,
    /// Whether the first sample is a sync sample.
    pub first_is_sync: bool,
    /// Payload range of the `mdat`.
    pub data_range: Range<u64>,
    /// Per-sample details when [`WalkOptions::samples`] is set, else empty.
    pub samples: Vec<SampleInfo>,
}

/// How the segment ends after the last complete unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The last box ends exactly at the end of the data.
    Clean,
    /// The data ends inside a box (or a `moof` lacks its `mdat`) starting at `offset`: a
    /// crash during writing. Truncate at [`SegmentIndex::complete_end`].
    Truncated {
        /// Start of the incomplete box (the `moof` for an incomplete fragment).
        offset: u64,
    },
    /// A box is malformed; nothing after it was read.
    Corrupt(WalkError),
}

/// The result of walking a whole segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    /// The init segment, if the segment has a `moov`.
    pub init: Option<InitInfo>,
    /// Every complete fragment, in file order.
    pub fragments: Vec<FragmentInfo>,
    /// End of the last complete unit (fragment, init segment or other complete box): the
    /// length to truncate a crashed segment to.
    pub complete_end: u64,
    /// What follows `complete_end`.
    pub tail: Tail,
}

/// One step of a [`Walker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkerStep {
    /// Call [`Walker::step`] again with a buffer covering `offset..offset + len`.
    Need {
        /// First byte needed.
        offset: u64,
        /// Number of bytes needed from `offset`.
        len: usize,
    },
    /// The init segment was read.
    Init(InitInfo),
    /// A complete fragment was read.
    Fragment(FragmentInfo),
    /// The walk is over.
    End {
        /// See [`SegmentIndex::complete_end`].
        complete_end: u64,
        /// See [`SegmentIndex::tail`].
        tail: Tail,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WholeBox {
    Moov,
    Moof,
}

#[derive(Debug, Clone)]
enum State {
    BoxHeader,
    WholeBox { kind: WholeBox, size: u64 },
    MdatHeader { moof: ParsedMoof, moof_offset: u64 },
    Finished(Tail),
}

/// Demand-driven walker over a segment of known length.
///
/// ```
/// # use vigil_media::fmp4::{Walker, WalkerStep, WalkOptions};
/// let file: Vec<u8> = Vec::new(); // the segment, e.g. read from disk by the caller
/// let mut w = Walker::new(file.len() as u64, WalkOptions::default());
/// loop {
///     // A real caller would read `len` bytes at `offset` from disk instead.
///     match w.step(0, &file) {
///         WalkerStep::Need { .. } => unreachable!("the whole file was supplied"),
///         WalkerStep::Init(_) | WalkerStep::Fragment(_) => {}
///         WalkerStep::End { complete_end, .. } => { let _ = complete_end; break }
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Walker {
    file_len: u64,
    opts: WalkOptions,
    pos: u64,
    state: State,
    init_start: Option<u64>,
    init: Option<InitInfo>,
    complete_end: u64,
}

impl Walker {
    /// A walker over `file_len` bytes.
    pub fn new(file_len: u64, opts: WalkOptions) -> Self {
        Self {
            file_len,
            opts,
            pos: 0,
            state: State::BoxHeader,
            init_start: None,
            init: None,
            complete_end: 0,
        }
    }

    /// Advances the walk. `buf` holds segment bytes starting at offset `buf_offset`; the walker
    /// uses the part it needs if present and otherwise asks for it with
    /// [`WalkerStep::Need`].
    pub fn step(&mut self, buf_offset: u64, buf: &[u8]) -> WalkerStep {
        loop {
            if let State::Finished(tail) = &self.state {
                return WalkerStep::End {
                    complete_end: self.complete_end,
                    tail: tail.clone(),
                };
            }
            let avail = self
                .pos
                .checked_sub(buf_offset)
                .and_then(|rel| usize::try_from(rel).ok())
                .and_then(|rel| buf.get(rel..))
                .unwrap_or(&[]);
            match self.advance(avail) {
                Progress::Continue => {}
                Progress::Yield(step) => return step,
            }
        }
    }

    fn finish(&mut self, tail: Tail) -> Progress {
        self.state = State::Finished(tail);
        Progress::Continue
    }

    fn need(&self, len: u64) -> Progress {
        // `len` is bounded by max_header_box or 16 here.
        Progress::Yield(WalkerStep::Need {
            offset: self.pos,
            len: usize::try_from(len).unwrap_or(usize::MAX),
        })
    }

    /// Reads the box header at `pos`; `Err` is the progress to return.
    fn header_at(&mut self, avail: &[u8], truncated_at: u64) -> Result<(BoxHeader, u64), Progress> {
        let remaining = self.file_len - self.pos;
        if remaining < 8 {
            return Err(self.finish(Tail::Truncated {
                offset: truncated_at,
            }));
        }
        let want = remaining.min(16);
        if (avail.len() as u64) < want {
            return Err(self.need(want));
        }
        match BoxHeader::parse(avail) {
            Ok(h) => {
                let size = h.size.unwrap_or(remaining);
                Ok((h, size))
            }
            Err(HeaderProblem::Short { .. }) => Err(self.finish(Tail::Truncated {
                offset: truncated_at,
            })),
            Err(HeaderProblem::TooSmall { size }) => {
                Err(self.finish(Tail::Corrupt(WalkError::BadBoxSize {
                    offset: self.pos,
                    size,
                })))
            }
        }
    }

    fn advance(&mut self, avail: &[u8]) -> Progress {
        match std::mem::replace(&mut self.state, State::BoxHeader) {
            State::Finished(t) => self.finish(t),
            State::BoxHeader => {
                if self.pos >= self.file_len {
                    return self.finish(Tail::Clean);
                }
                let (h, size) = match self.header_at(avail, self.pos) {
                    Ok(v) => v,
                    Err(p) => return p,
                };
                // A box type of four zero bytes is never written by a muxer; it is what an
                // unwritten (zero-filled) file tail looks like after a crash. Its size field of 0
                // would otherwise read as "box extends to the end of the file" and pass as clean.
                if h.box_type == [0; 4] || size > self.file_len - self.pos {
                    return self.finish(Tail::Truncated { offset: self.pos });
                }
                let kind = match &h.box_type {
                    b"moov" => Some(WholeBox::Moov),
                    b"moof" => Some(WholeBox::Moof),
                    _ => None,
                };
                match kind {
                    Some(kind) => {
                        if size > self.opts.max_header_box {
                            return self.finish(Tail::Corrupt(WalkError::BoxTooLarge {
                                offset: self.pos,
                                box_type: fourcc(&h.box_type),
                                size,
                                limit: self.opts.max_header_box,
                            }));
                        }
                        self.state = State::WholeBox { kind, size };
                    }
                    None => {
                        if &h.box_type == b"ftyp" && self.init_start.is_none() {
                            self.init_start = Some(self.pos);
                        }
                        // styp, sidx, free, orphan mdat, ...: complete boxes we step over.
                        self.pos += size;
                        self.complete_end = self.pos;
                    }
                }
                Progress::Continue
            }
            State::WholeBox { kind, size } => {
                if (avail.len() as u64) < size {
                    self.state = State::WholeBox { kind, size };
                    return self.need(size);
                }
                // `size` ≤ max_header_box, which fits in memory by construction.
                let body = &avail[..size as usize];
                let start = self.pos;
                match kind {
                    WholeBox::Moov => match parse_moov(body, start) {
                        Ok(mut info) => {
                            info.range = self.init_start.unwrap_or(start)..start + size;
                            self.pos += size;
                            self.complete_end = self.pos;
                            self.init = Some(info.clone());
                            Progress::Yield(WalkerStep::Init(info))
                        }
                        Err(e) => self.finish(Tail::Corrupt(e)),
                    },
                    WholeBox::Moof => {
                        let track = self.init.as_ref().and_then(|i| i.track_id);
                        match parse_moof(body, start, track) {
                            Ok(moof) => {
                                self.pos += size;
                                self.state = State::MdatHeader {
                                    moof,
                                    moof_offset: start,
                                };
                                Progress::Continue
                            }
                            Err(e) => self.finish(Tail::Corrupt(e)),
                        }
                    }
                }
            }
            State::MdatHeader { moof, moof_offset } => {
                if self.pos >= self.file_len {
                    return self.finish(Tail::Truncated {
                        offset: moof_offset,
                    });
                }
                let (h, size) = match self.header_at(avail, moof_offset) {
                    Ok(v) => v,
                    Err(p) => {
                        if matches!(p, Progress::Yield(WalkerStep::Need { .. })) {
                            self.state = State::MdatHeader { moof, moof_offset };
                        }
                        return p;
                    }
                };
                if &h.box_type != b"mdat" {
                    return self.finish(Tail::Corrupt(WalkError::MissingMdat {
                        moof_offset,
                        offset: self.pos,
                        found: fourcc(&h.box_type),
                    }));
                }
                if size > self.file_len - self.pos {
                    return self.finish(Tail::Truncated {
                        offset: moof_offset,
                    });
                }
                let data_range = self.pos + h.header_len as u64..self.pos + size;
                let defaults = self.init.as_ref().map_or((0, 0, 0), |i| i.trex_defaults);
                match moof.fragment_info(moof_offset, data_range, defaults, self.opts.samples) {
                    Ok(info) => {
                        self.pos += size;
                        self.complete_end = self.pos;
                        Progress::Yield(WalkerStep::Fragment(info))
                    }
                    Err(e) => self.finish(Tail::Corrupt(e)),
                }
            }
        }
    }
}

enum Progress {
    Continue,
    Yield(WalkerStep),
}

/// Walks a whole segment held in memory.
pub fn walk(segment: &[u8], opts: WalkOptions) -> SegmentIndex {
    let mut w = Walker::new(segment.len() as u64, opts);
    let mut index = SegmentIndex {
        init: None,
        fragments: Vec::new(),
        complete_end: 0,
        tail: Tail::Clean,
    };
    loop {
        match w.step(0, segment) {
            WalkerStep::Init(i) => index.init = Some(i),
            WalkerStep::Fragment(f) => index.fragments.push(f),
            WalkerStep::End { complete_end, tail } => {
                index.complete_end = complete_end;
                index.tail = tail;
                return index;
            }
            // The walker never asks beyond `segment.len()`, and all of it was supplied.
            WalkerStep::Need { offset, .. } => {
                index.complete_end = w.complete_end;
                index.tail = Tail::Truncated { offset };
                return index;
            }
        }
    }
}

fn child<'a>(payload: &'a [u8], box_type: &[u8; 4]) -> Option<ChildBox<'a>> {
    children(payload)
        .map_while(Result::ok)
        .find(|c| &c.box_type == box_type)
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u64(d: &[u8], at: usize) -> Option<u64> {
    let hi = be_u32(d, at)?;
    let lo = be_u32(d, at + 4)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// `moov`: picks the first `vide` track (or the first track) and its `trex`.
fn parse_moov(moov: &[u8], offset: u64) -> Result<InitInfo, WalkError> {
    let bad = |reason: &str| WalkError::BadMoov {
        offset,
        reason: reason.to_owned(),
    };
    let header_len = BoxHeader::parse(moov).map_or(8, |h| h.header_len);
    let payload = moov
        .get(header_len..)
        .ok_or_else(|| bad("shorter than its header"))?;
    type Track = (Option<u32>, Option<u32>, Option<Bytes>);
    let mut first: Option<Track> = None;
    let mut video: Option<Track> = None;
    let mut trex: Vec<(u32, (u32, u32, u32))> = Vec::new();
    for c in children(payload) {
        let c = c.map_err(|at| {
            bad(&format!(
                "child box at +{} overruns the moov",
                at + header_len
            ))
        })?;
        match &c.box_type {
            b"trak" => {
                let tkhd = child(c.payload, b"tkhd");
                let track_id = tkhd.and_then(|t| {
                    let at = if t.payload.first() == Some(&1) {
                        20
                    } else {
                        12
                    };
                    be_u32(t.payload, at)
                });
                let mdia = child(c.payload, b"mdia");
                let timescale = mdia.and_then(|m| child(m.payload, b"mdhd")).and_then(|h| {
                    let at = if h.payload.first() == Some(&1) {
                        20
                    } else {
                        12
                    };
                    be_u32(h.payload, at)
                });
                let is_video = mdia
                    .and_then(|m| child(m.payload, b"hdlr"))
                    .and_then(|h| h.payload.get(8..12))
                    == Some(b"vide".as_slice());
                let sample_entry = mdia
                    .and_then(|m| child(m.payload, b"minf"))
                    .and_then(|m| child(m.payload, b"stbl"))
                    .and_then(|s| child(s.payload, b"stsd"))
                    .and_then(|s| first_stsd_entry(s.payload));
                let track = (track_id, timescale, sample_entry);
                if is_video && video.is_none() {
                    video = Some(track.clone());
                }
                first.get_or_insert(track);
            }
            b"mvex" => {
                for t in children(c.payload).map_while(Result::ok) {
                    if &t.box_type == b"trex" {
                        if let (Some(id), Some(d), Some(s), Some(f)) = (
                            be_u32(t.payload, 4),
                            be_u32(t.payload, 12),
                            be_u32(t.payload, 16),
                            be_u32(t.payload, 20),
                        ) {
                            trex.push((id, (d, s, f)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let (track_id, timescale, sample_entry) = video.or(first).unwrap_or((None, None, None));
    let trex_defaults = trex
        .iter()
        .find(|(id, _)| Some(*id) == track_id)
        .map_or((0, 0, 0), |(_, d)| *d);
    Ok(InitInfo {
        range: 0..0,
        track_id,
        timescale,
        trex_defaults,
        sample_entry,
    })
}

/// The first entry of an `stsd` payload (version/flags, entry count, then entries), as the
/// whole box.
fn first_stsd_entry(stsd: &[u8]) -> Option<Bytes> {
    let entries = stsd.get(8..)?;
    let header = BoxHeader::parse(entries).ok()?;
    let len = usize::try_from(header.size?).ok()?;
    entries.get(..len).map(Bytes::copy_from_slice)
}

#[derive(Debug, Clone, Default)]
struct Tfhd {
    track_id: u32,
    base_data_offset: Option<u64>,
    default_duration: Option<u32>,
    default_size: Option<u32>,
    default_flags: Option<u32>,
}

#[derive(Debug, Clone)]
struct Trun {
    /// Offset of the trun payload inside the moof, for error messages.
    at: usize,
    flags: u32,
    version: u8,
    sample_count: u32,
    data_offset: Option<i32>,
    first_sample_flags: Option<u32>,
    /// Per-sample records, `record_len` bytes each.
    records: Range<usize>,
    record_len: usize,
}

#[derive(Debug, Clone)]
struct ParsedMoof {
    /// The moof bytes are needed to expand the per-sample records; keep them.
    bytes: Vec<u8>,
    sequence_number: u32,
    tfhd: Tfhd,
    tfdt: Option<u64>,
    truns: Vec<Trun>,
}

fn parse_moof(moof: &[u8], offset: u64, track: Option<u32>) -> Result<ParsedMoof, WalkError> {
    let bad = |reason: String| WalkError::BadMoof { offset, reason };
    let header_len = BoxHeader::parse(moof).map_or(8, |h| h.header_len);
    let payload = moof
        .get(header_len..)
        .ok_or_else(|| bad("shorter than its header".into()))?;
    let mut sequence_number = None;
    let mut chosen: Option<(Tfhd, Option<u64>, Vec<Trun>)> = None;
    for c in children(payload) {
        let c = c.map_err(|at| {
            bad(format!(
                "child box at +{} overruns the moof",
                at + header_len
            ))
        })?;
        match &c.box_type {
            b"mfhd" => {
                sequence_number =
                    Some(be_u32(c.payload, 4).ok_or_else(|| bad("`mfhd` is truncated".into()))?);
            }
            b"traf" if chosen.is_none() => {
                let traf_at = header_len + c.offset + c.header_len;
                let parsed = parse_traf(c.payload, traf_at).map_err(bad)?;
                if track.is_none_or(|t| t == parsed.0.track_id) {
                    chosen = Some(parsed);
                }
            }
            _ => {}
        }
    }
    let sequence_number = sequence_number.ok_or_else(|| bad("no `mfhd`".into()))?;
    let (tfhd, tfdt, truns) = chosen.ok_or_else(|| bad("no `traf` for the video track".into()))?;
    Ok(ParsedMoof {
        bytes: moof.to_vec(),
        sequence_number,
        tfhd,
        tfdt,
        truns,
    })
}

/// Parses a `traf` payload that starts at `traf_at` within the moof.
fn parse_traf(traf: &[u8], traf_at: usize) -> Result<(Tfhd, Option<u64>, Vec<Trun>), String> {
    let mut tfhd = None;
    let mut tfdt = None;
    let mut truns = Vec::new();
    for c in children(traf) {
        let c = c.map_err(|at| format!("box at +{} overruns the `traf`", traf_at + at))?;
        let p = c.payload;
        let at = traf_at + c.offset + c.header_len;
        match &c.box_type {
            b"tfhd" => {
                let flags = be_u32(p, 0).ok_or("`tfhd` is truncated")? & 0x00ff_ffff;
                let mut pos = 4;
                let mut next = |len: usize| -> Result<usize, String> {
                    let here = pos;
                    if p.len() < here + len {
                        return Err(format!("`tfhd` at +{at} is truncated"));
                    }
                    pos += len;
                    Ok(here)
                };
                let track_id = be_u32(p, next(4)?).unwrap_or(0);
                let base_data_offset = if flags & 0x01 != 0 {
                    be_u64(p, next(8)?)
                } else {
                    None
                };
                if flags & 0x02 != 0 {
                    next(4)?; // sample_description_index
                }
                let mut opt = |bit: u32| -> Result<Option<u32>, String> {
                    Ok(if flags & bit != 0 {
                        be_u32(p, next(4)?)
                    } else {
                        None
                    })
                };
                let default_duration = opt(0x08)?;
                let default_size = opt(0x10)?;
                let default_flags = opt(0x20)?;
                tfhd = Some(Tfhd {
                    track_id,
                    base_data_offset,
                    default_duration,
                    default_size,
                    default_flags,
                });
            }
            b"tfdt" => {
                tfdt = Some(
                    match p.first() {
                        Some(1) => be_u64(p, 4),
                        _ => be_u32(p, 4).map(u64::from),
                    }
                    .ok_or_else(|| format!("`tfdt` at +{at} is truncated"))?,
                );
            }
            b"trun" => truns.push(parse_trun(p, at)?),
            _ => {}
        }
    }
    let tfhd = tfhd.ok_or("`traf` has no `tfhd`")?;
    Ok((tfhd, tfdt, truns))
}

fn parse_trun(p: &[u8], at: usize) -> Result<Trun, String> {
    let truncated = || format!("`trun` at +{at} is truncated");
    let vf = be_u32(p, 0).ok_or_else(truncated)?;
    let version = (vf >> 24) as u8;
    let flags = vf & 0x00ff_ffff;
    let sample_count = be_u32(p, 4).ok_or_else(truncated)?;
    let mut pos = 8;
    let data_offset = if flags & 0x01 != 0 {
        let v = be_u32(p, pos).ok_or_else(truncated)?;
        pos += 4;
        Some(v as i32)
    } else {
        None
    };
    let first_sample_flags = if flags & 0x04 != 0 {
        let v = be_u32(p, pos).ok_or_else(truncated)?;
        pos += 4;
        Some(v)
    } else {
        None
    };
    let record_len = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&bit| flags & bit != 0)
        .count()
        * 4;
    let need = (sample_count as usize)
        .checked_mul(record_len)
        .and_then(|n| n.checked_add(pos))
        .ok_or_else(truncated)?;
    if p.len() < need {
        return Err(format!(
            "`trun` at +{at} declares {sample_count} samples but holds {} bytes of records",
            p.len() - pos
        ));
    }
    Ok(Trun {
        at,
        flags,
        version,
        sample_count,
        data_offset,
        first_sample_flags,
        // Offsets within the moof, where `at` is the trun payload.
        records: at + pos..at + need,
        record_len,
    })
}

impl ParsedMoof {
    fn fragment_info(
        &self,
        moof_offset: u64,
        data_range: Range<u64>,
        trex: (u32, u32, u32),
        keep_samples: bool,
    ) -> Result<FragmentInfo, WalkError> {
        let bad = |reason: String| WalkError::BadMoof {
            offset: moof_offset,
            reason,
        };
        let t = &self.tfhd;
        let base = t.base_data_offset.unwrap_or(moof_offset);
        let mut samples = Vec::new();
        let mut duration = 0u64;
        let mut count = 0u32;
        let mut first_is_sync = None;
        let mut next_offset = base;
        for run in &self.truns {
            let mut offset = match run.data_offset {
                Some(d) => base
                    .checked_add_signed(i64::from(d))
                    .ok_or_else(|| bad(format!("`trun` at +{} data offset underflows", run.at)))?,
                None => next_offset,
            };
            let records = self.bytes.get(run.records.clone()).unwrap_or(&[]);
            for i in 0..run.sample_count as usize {
                let rec = records.get(i * run.record_len..).unwrap_or(&[]);
                let mut field = 0;
                let mut take = |bit: u32| {
                    if run.flags & bit != 0 {
                        let v = be_u32(rec, field);
                        field += 4;
                        v
                    } else {
                        None
                    }
                };
                let dur = take(0x100).or(t.default_duration).unwrap_or(trex.0);
                let size = take(0x200).or(t.default_size).unwrap_or(trex.1);
                let per_sample_flags = take(0x400);
                let cts = take(0x800).map_or(0, |v| {
                    if run.version == 0 {
                        i64::from(v)
                    } else {
                        i64::from(v as i32)
                    }
                });
                let flags = per_sample_flags
                    .or(if i == 0 { run.first_sample_flags } else { None })
                    .or(t.default_flags)
                    .unwrap_or(trex.2);
                let end = offset + u64::from(size);
                if offset < data_range.start || end > data_range.end {
                    return Err(bad(format!(
                        "sample {count} at {offset}..{end} lies outside the mdat payload {}..{}",
                        data_range.start, data_range.end
                    )));
                }
                let is_sync = is_sync_sample(flags);
                first_is_sync.get_or_insert(is_sync);
                if keep_samples {
                    samples.push(SampleInfo {
                        offset,
                        size,
                        duration: dur,
                        flags,
                        composition_offset: cts,
                        is_sync,
                    });
                }
                duration += u64::from(dur);
                count += 1;
                offset = end;
            }
            next_offset = offset;
        }
        Ok(FragmentInfo {
            offset: moof_offset,
            len: data_range.end - moof_offset,
            sequence_number: self.sequence_number,
            base_decode_time: self.tfdt,
            duration,
            sample_count: count,
            first_is_sync: first_is_sync.unwrap_or(false),
            data_range,
            samples,
        })
    }
}

/// Rewrites, in place, the `mfhd` sequence number and the `tfdt` base decode time of the
/// fragment starting at `fragment[0]` (its `moof`). Export uses it to splice fragments from
/// several segments into one continuous file. With several `traf`s, every `tfdt` is shifted by
/// the same amount as the first.
pub fn retime(
    fragment: &mut [u8],
    sequence_number: u32,
    base_decode_time: u64,
) -> Result<(), WalkError> {
    let bad = |reason: &str| WalkError::BadMoof {
        offset: 0,
        reason: reason.to_owned(),
    };
    let header = BoxHeader::parse(fragment).map_err(|_| bad("no box header"))?;
    if &header.box_type != b"moof" {
        return Err(bad("fragment does not start with `moof`"));
    }
    let size = header
        .size
        .and_then(|s| usize::try_from(s).ok())
        .filter(|&s| s <= fragment.len())
        .ok_or_else(|| bad("`moof` size exceeds the data"))?;
    let hl = header.header_len;
    // Collect positions first (immutable walk), then patch.
    let mut mfhd_at = None;
    let mut tfdts: Vec<(usize, u8)> = Vec::new();
    for c in children(&fragment[hl..size]).map_while(Result::ok) {
        let payload_at = hl + c.offset + c.header_len;
        match &c.box_type {
            b"mfhd" if c.payload.len() >= 8 => mfhd_at = Some(payload_at + 4),
            b"traf" => {
                for t in children(c.payload).map_while(Result::ok) {
                    let t_at = payload_at + t.offset + t.header_len;
                    let version = t.payload.first().copied();
                    let len_ok = match version {
                        Some(1) => t.payload.len() >= 12,
                        Some(_) => t.payload.len() >= 8,
                        None => false,
                    };
                    if &t.box_type == b"tfdt" && len_ok {
                        tfdts.push((t_at, version.unwrap_or(0)));
                    }
                }
            }
            _ => {}
        }
    }
    let mfhd_at = mfhd_at.ok_or_else(|| bad("no `mfhd`"))?;
    let read = |f: &[u8], (at, v): (usize, u8)| -> u64 {
        if v == 1 {
            be_u64(f, at + 4).unwrap_or(0)
        } else {
            be_u32(f, at + 4).map_or(0, u64::from)
        }
    };
    let first = tfdts
        .first()
        .map(|&t| read(fragment, t))
        .ok_or_else(|| bad("no `tfdt`"))?;
    // Check everything fits before touching a byte.
    let mut new_values = Vec::with_capacity(tfdts.len());
    for &t in &tfdts {
        let old = read(fragment, t);
        let new = (i128::from(old) + i128::from(base_decode_time) - i128::from(first))
            .clamp(0, i128::from(u64::MAX)) as u64;
        if t.1 != 1 && new > u64::from(u32::MAX) {
            return Err(WalkError::TfdtOverflow {
                offset: t.0 as u64,
                value: new,
            });
        }
        new_values.push(new);
    }
    fragment[mfhd_at..mfhd_at + 4].copy_from_slice(&sequence_number.to_be_bytes());
    for (&(at, v), new) in tfdts.iter().zip(new_values) {
        if v == 1 {
            fragment[at + 4..at + 12].copy_from_slice(&new.to_be_bytes());
        } else {
            fragment[at + 4..at + 8].copy_from_slice(&(new as u32).to_be_bytes());
        }
    }
    Ok(())
}
