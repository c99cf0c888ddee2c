//! The program stream demuxer: a byte-level state machine fed in arbitrary chunks.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::headers::{
    parse_pack_header, parse_pes_header, parse_psm, PackHeader, Parse, PesHeader, PesPolicy, Psm,
    PsmCrc,
};
use super::{PsError, StreamType};
use crate::access_unit::{AccessUnit, AccessUnitAssembler};
use crate::nal::find_start_code;
use crate::{
    AudioCodec, AudioPacket, ParamsError, TimestampUnwrapper, VideoCodec, VideoFrame,
    VideoParameters,
};

/// Demuxer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsDemuxConfig {
    /// Policy `ResyncLimit`: after a parse error the demuxer skips to the next pack header.
    /// When this many chunks in a row end without one, [`PsDemuxer::push`] returns
    /// [`PsError::TooManyBadChunks`] (and keeps doing so until a pack header is found), so the
    /// caller can drop a session that is not sending PS at all. SRS uses 16 RTP packets; the
    /// default is 128 because skipping the rest of a large I-frame after one corrupt byte can
    /// take a hundred 1400-byte packets. Skipping after [`PsDemuxer::discontinuity`] (a loss
    /// the caller reported) is not counted.
    pub max_consecutive_bad_chunks: u32,
    /// Largest video access unit, in bytes, before it is dropped as runaway. Default 16 MiB.
    pub max_frame_size: usize,
    /// Policy `PtsMarkerBits`: reject PES headers whose PTS/DTS marker bits are not set.
    /// Default true.
    pub check_pts_markers: bool,
    /// Policy `PesHeaderWithoutMarkerByte`: read PES headers in the layout of the
    /// `gb28181-rs` device library, which leaves out the flags byte carrying the `'10'` marker
    /// and pads with a `0x00` after the timestamps (described at the header parser; counted in
    /// [`PsStats::pes_without_marker_byte`]). Without it no frame of such a stream comes out.
    /// Default true: standard headers do not have that shape.
    pub accept_pes_without_marker_byte: bool,
}

impl Default for PsDemuxConfig {
    fn default() -> Self {
        Self {
            max_consecutive_bad_chunks: 128,
            max_frame_size: 16 << 20,
            check_pts_markers: true,
            accept_pes_without_marker_byte: true,
        }
    }
}

/// Counters of a demuxer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PsStats {
    /// Bytes pushed.
    pub bytes: u64,
    /// Pack headers.
    pub packs: u64,
    /// System headers (skipped).
    pub system_headers: u64,
    /// Program stream maps.
    pub psms: u64,
    /// PSMs whose CRC was byte-swapped (Hikvision).
    pub psm_crc_little_endian: u64,
    /// PSMs whose CRC matched in neither byte order (accepted anyway).
    pub psm_crc_mismatches: u64,
    /// Complete video PES packets of the selected video stream.
    pub video_pes: u64,
    /// Complete audio PES packets.
    pub audio_pes: u64,
    /// Private stream 1 (0xBD) PES packets skipped (Hikvision private data).
    pub private_pes: u64,
    /// Other PES packets skipped (padding, private stream 2, unsupported or extra streams).
    pub other_pes: u64,
    /// PES headers read in the layout without the marker byte (policy
    /// `PesHeaderWithoutMarkerByte`).
    pub pes_without_marker_byte: u64,
    /// Video access units emitted.
    pub video_frames: u64,
    /// Audio packets emitted.
    pub audio_packets: u64,
    /// Access units whose PTS was extrapolated (no PTS signalled).
    pub pts_guessed: u64,
    /// Times the bitstream overrode the codec declared by the PSM.
    pub codec_overrides: u64,
    /// Access units dropped for exceeding [`PsDemuxConfig::max_frame_size`].
    pub oversize_frames: u64,
    /// Partial access units dropped at a discontinuity or resync.
    pub partial_frames: u64,
    /// Parse errors that started a resynchronisation.
    pub resyncs: u64,
    /// Discontinuities reported by the caller.
    pub discontinuities: u64,
    /// Bytes skipped while resynchronising.
    pub skipped_bytes: u64,
    /// Current run of chunks that ended while resynchronising after a parse error.
    pub consecutive_bad_chunks: u32,
}

/// What the demuxer produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsEvent {
    /// The codec parameters, first seen or changed (built from in-band VPS/SPS/PPS). Comes
    /// before the first frame that uses them.
    Parameters(VideoParameters),
    /// A video access unit.
    Video(VideoFrame),
    /// An audio PES payload.
    Audio(AudioPacket),
    /// Data was dropped. For a parse error the demuxer dropped the access unit in progress and
    /// skips to the next pack header; for [`PsError::FrameTooLarge`] only the runaway access
    /// unit was dropped.
    Corrupt(PsError),
    /// In-band parameter sets could not be turned into [`VideoParameters`].
    BadParameters(ParamsError),
    /// The PSM declares a stream we do not demux (e.g. SVAC or MPEG-4 video); its PES are
    /// skipped. Reported once per program stream map version.
    Unsupported {
        /// The stream id.
        stream_id: u8,
        /// Its stream type.
        stream_type: StreamType,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Video,
    Audio,
    Private,
    Other,
    /// The body of a system header (not a PES).
    SystemHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a unit boundary: a start code is expected.
    Unit,
    /// Inside a PES payload.
    Payload { remaining: usize, sink: Sink },
    /// Looking for `00 00 01 BA`; `matched` bytes of it ended the previous chunk. `counted`
    /// says whether chunks count towards the bad-chunk limit (parse error, not a reported
    /// loss).
    Resync { matched: u8, counted: bool },
}

/// A parsed unit header.
enum Unit {
    Pack(PackHeader),
    End,
    Psm(Psm, usize),
    SystemHeader(usize),
    Pes(PesHeader),
    Skip { stream_id: u8, len: usize },
}

impl Unit {
    fn header_len(&self) -> usize {
        match self {
            Unit::Pack(p) => p.len(),
            Unit::End => 4,
            Unit::Psm(_, len) => *len,
            Unit::SystemHeader(_) | Unit::Skip { .. } => 6,
            Unit::Pes(h) => h.header_len,
        }
    }
}

const PACK_START: [u8; 4] = [0x00, 0x00, 0x01, 0xBA];

/// The KMP automaton for `00 00 01 BA`: state = bytes matched.
fn pack_start_step(matched: u8, b: u8) -> u8 {
    match (matched, b) {
        (3, 0xBA) => 4,
        (2, 0x01) => 3,
        (0 | 1, 0x00) => matched + 1,
        (2, 0x00) => 2,
        (3, 0x00) => 1,
        _ => 0,
    }
}

/// Demuxes an MPEG-2 program stream.
///
/// Feed bytes with [`PsDemuxer::push`] (any chunking: RTP payloads, TCP reads, single bytes)
/// and collect [`PsEvent`]s with [`PsDemuxer::next_event`]. Video comes out as access units
/// in 4-byte length-prefixed form with a key flag and a 64-bit 90 kHz PTS; audio as PES
/// payloads identified by codec; private stream 1 (Hikvision's 0xBD data) is skipped by length.
///
/// Tell the demuxer about packet loss with [`PsDemuxer::discontinuity`]; it then drops the
/// partial frame and waits for the next pack header. An RTP marker bit or timestamp change
/// may be passed on with [`PsDemuxer::end_of_access_unit`] to emit a frame without waiting for
/// the next one to begin.
#[derive(Debug)]
pub struct PsDemuxer {
    cfg: PsDemuxConfig,
    state: State,
    /// Bytes of a unit header split across chunks (they start at `offset`).
    stash: Vec<u8>,
    /// Stream offset of the next byte not yet consumed.
    offset: u64,
    psm: Option<Psm>,
    video_stream_id: Option<u8>,
    au: AccessUnitAssembler,
    audio: Option<(u8, Option<i64>, BytesMut)>,
    clock: TimestampUnwrapper,
    last_scr: Option<u64>,
    parameter_sets: [Option<Bytes>; 3],
    params: Option<VideoParameters>,
    events: VecDeque<PsEvent>,
    stats: PsStats,
}

impl Default for PsDemuxer {
    fn default() -> Self {
        Self::new(PsDemuxConfig::default())
    }
}

impl PsDemuxer {
    /// A demuxer at the start of a stream.
    pub fn new(cfg: PsDemuxConfig) -> Self {
        Self {
            cfg,
            state: State::Unit,
            stash: Vec::new(),
            offset: 0,
            psm: None,
            video_stream_id: None,
            au: AccessUnitAssembler::new(cfg.max_frame_size, 3600),
            audio: None,
            clock: TimestampUnwrapper::mpeg(),
            last_scr: None,
            parameter_sets: [None, None, None],
            params: None,
            events: VecDeque::new(),
            stats: PsStats::default(),
        }
    }

    /// Feeds the next bytes of the stream.
    ///
    /// Parse errors do not fail the call: they become [`PsEvent::Corrupt`] events. The only
    /// error is [`PsError::TooManyBadChunks`] (see [`PsDemuxConfig::max_consecutive_bad_chunks`]).
    pub fn push(&mut self, mut input: &[u8]) -> Result<(), PsError> {
        self.stats.bytes += input.len() as u64;
        let mut error_in_chunk = false;
        while !input.is_empty() {
            input = match self.state {
                State::Payload { remaining, sink } => self.payload(input, remaining, sink),
                State::Unit => {
                    let before = self.stats.resyncs;
                    let rest = self.unit(input);
                    error_in_chunk |= self.stats.resyncs != before;
                    rest
                }
                State::Resync { matched, counted } => self.resync(input, matched, counted),
            };
        }
        self.drain_access_units();
        match self.state {
            State::Resync { counted: true, .. } => {
                self.stats.consecutive_bad_chunks += 1;
                let count = self.stats.consecutive_bad_chunks;
                if count > self.cfg.max_consecutive_bad_chunks {
                    return Err(PsError::TooManyBadChunks {
                        count,
                        limit: self.cfg.max_consecutive_bad_chunks,
                    });
                }
            }
            _ if !error_in_chunk => self.stats.consecutive_bad_chunks = 0,
            _ => {}
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn next_event(&mut self) -> Option<PsEvent> {
        self.events.pop_front()
    }

    /// Bytes were lost before the next `push` (RTP sequence gap): drops the partial access
    /// unit and any partial audio packet, and resumes at the next pack header.
    pub fn discontinuity(&mut self) {
        self.stats.discontinuities += 1;
        self.drop_partial();
        if !matches!(self.state, State::Resync { .. }) {
            self.state = State::Resync {
                matched: 0,
                counted: false,
            };
        }
    }

    /// The source knows an access unit ended here (RTP marker bit, or the next packet has a
    /// new timestamp): emits the buffered frame now instead of when the next one begins.
    /// Ignored while a video PES is still incomplete.
    pub fn end_of_access_unit(&mut self) {
        if !matches!(
            self.state,
            State::Payload {
                sink: Sink::Video,
                ..
            }
        ) {
            self.au.end_of_access_unit();
            self.drain_access_units();
        }
    }

    /// End of stream: emits the last complete access unit.
    pub fn flush(&mut self) {
        self.au.flush();
        self.drain_access_units();
    }

    /// Counters so far.
    pub fn stats(&self) -> PsStats {
        let mut s = self.stats;
        s.codec_overrides = self.au.stats.codec_overrides;
        s.oversize_frames = self.au.stats.oversize_dropped;
        s.partial_frames = self.au.stats.partial_dropped;
        s
    }

    /// The latest program stream map.
    pub fn psm(&self) -> Option<&Psm> {
        self.psm.as_ref()
    }

    /// The video codec in use (from the PSM or the bitstream), once known.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.au.codec()
    }

    /// The latest codec parameters.
    pub fn parameters(&self) -> Option<&VideoParameters> {
        self.params.as_ref()
    }

    /// SCR base of the latest pack header (33-bit, 90 kHz).
    pub fn last_scr(&self) -> Option<u64> {
        self.last_scr
    }

    /// Stream offset of the next byte to be consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn payload<'a>(&mut self, input: &'a [u8], remaining: usize, sink: Sink) -> &'a [u8] {
        let n = remaining.min(input.len());
        let (now, rest) = input.split_at(n);
        match sink {
            Sink::Video => {
                if !self.au.push(now) {
                    self.events
                        .push_back(PsEvent::Corrupt(PsError::FrameTooLarge {
                            offset: self.offset,
                            limit: self.cfg.max_frame_size,
                        }));
                }
            }
            Sink::Audio => {
                if let Some((_, _, data)) = self.audio.as_mut() {
                    data.extend_from_slice(now);
                }
            }
            Sink::Private | Sink::Other | Sink::SystemHeader => {}
        }
        self.offset += n as u64;
        let remaining = remaining - n;
        if remaining == 0 {
            self.state = State::Unit;
            self.end_pes(sink);
        } else {
            self.state = State::Payload { remaining, sink };
        }
        rest
    }

    fn end_pes(&mut self, sink: Sink) {
        match sink {
            Sink::Video => self.stats.video_pes += 1,
            Sink::Audio => {
                self.stats.audio_pes += 1;
                if let Some((stream_id, pts, data)) = self.audio.take() {
                    let codec = self.audio_codec(stream_id, &data);
                    self.stats.audio_packets += 1;
                    self.events.push_back(PsEvent::Audio(AudioPacket {
                        codec,
                        stream_id,
                        pts,
                        data: data.freeze(),
                    }));
                }
            }
            Sink::Private => self.stats.private_pes += 1,
            Sink::Other => self.stats.other_pes += 1,
            Sink::SystemHeader => self.stats.system_headers += 1,
        }
    }

    /// Policy `AudioCodecFromAdts`: without a PSM entry, a payload starting with an ADTS sync
    /// word (0xFFF) is AAC; anything else is reported as unknown. (ffmpeg guesses MPEG audio
    /// from the stream id, which the SRS vectors show to be wrong for Hikvision AAC.)
    fn audio_codec(&self, stream_id: u8, data: &[u8]) -> AudioCodec {
        if let Some(c) = self
            .psm
            .as_ref()
            .and_then(|p| p.stream_type(stream_id))
            .and_then(StreamType::audio_codec)
        {
            return c;
        }
        match data {
            [0xFF, b1, ..] if b1 & 0xF0 == 0xF0 => AudioCodec::Aac,
            _ => AudioCodec::Unknown,
        }
    }

    /// Parses a unit header at the current position (using the stash when it was split).
    fn unit<'a>(&mut self, mut input: &'a [u8]) -> &'a [u8] {
        if self.stash.is_empty() {
            match self.parse_unit(input) {
                Ok(Parse::Need(_)) => {
                    self.stash.extend_from_slice(input);
                    &[]
                }
                Ok(Parse::Done(unit)) => {
                    let len = unit.header_len();
                    self.offset += len as u64;
                    self.on_unit(unit);
                    &input[len..]
                }
                Err(e) => {
                    self.start_resync(e);
                    self.offset += 1;
                    self.stats.skipped_bytes += 1;
                    &input[1..]
                }
            }
        } else {
            loop {
                match self.parse_unit(&self.stash) {
                    Ok(Parse::Need(n)) => {
                        if input.is_empty() {
                            return input;
                        }
                        let take = n.saturating_sub(self.stash.len()).clamp(1, input.len());
                        self.stash.extend_from_slice(&input[..take]);
                        input = &input[take..];
                    }
                    Ok(Parse::Done(unit)) => {
                        // The stash grew only by what each `Need` asked for, so it holds
                        // exactly this header.
                        let len = unit.header_len();
                        self.offset += len as u64;
                        let extra = self.stash.split_off(len.min(self.stash.len()));
                        self.stash.clear();
                        self.on_unit(unit);
                        if !extra.is_empty() {
                            // Defensive: never lose bytes if a header asked for more than it
                            // used.
                            self.stash = extra;
                        }
                        return input;
                    }
                    Err(e) => {
                        let stashed = std::mem::take(&mut self.stash);
                        self.start_resync(e);
                        self.offset += 1;
                        self.stats.skipped_bytes += 1;
                        let State::Resync { matched, counted } = self.state else {
                            return input;
                        };
                        let tail = self.resync(stashed.get(1..).unwrap_or(&[]), matched, counted);
                        // A pack start found inside the stashed bytes: they are the start of
                        // the next unit.
                        self.stash.extend_from_slice(tail);
                        return input;
                    }
                }
            }
        }
    }

    fn parse_unit(&self, b: &[u8]) -> Result<Parse<Unit>, PsError> {
        let offset = self.offset;
        if b.iter().zip([0u8, 0, 1]).any(|(x, y)| *x != y) {
            let found = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
            return Err(PsError::BadStartCode { offset, found });
        }
        let Some(&id) = b.get(3) else {
            return Ok(Parse::Need(4));
        };
        let need6 = |b: &[u8]| {
            b.get(4..6)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        };
        Ok(match id {
            0xBA => match parse_pack_header(b, offset)? {
                Parse::Need(n) => Parse::Need(n),
                Parse::Done(p) => Parse::Done(Unit::Pack(p)),
            },
            0xB9 => Parse::Done(Unit::End),
            0xBC => match parse_psm(b, offset)? {
                Parse::Need(n) => Parse::Need(n),
                Parse::Done(psm) => {
                    let len = need6(b).map_or(6, |l| 6 + l);
                    Parse::Done(Unit::Psm(psm, len))
                }
            },
            0xBB => match need6(b) {
                None => Parse::Need(6),
                Some(len) => Parse::Done(Unit::SystemHeader(len)),
            },
            // Policy `SkipPrivateByLength`: private stream 1 (Hikvision puts its own data there,
            // starting `00 02 00 17` which a start-code scan would misread), padding, private
            // stream 2 and the reserved ids are skipped by PES_packet_length without looking
            // inside.
            0xBD..=0xBF | 0xF0..=0xFF => match need6(b) {
                None => Parse::Need(6),
                Some(len) => Parse::Done(Unit::Skip { stream_id: id, len }),
            },
            0xC0..=0xEF => match parse_pes_header(b, offset, self.pes_policy())? {
                Parse::Need(n) => Parse::Need(n),
                Parse::Done(h) => Parse::Done(Unit::Pes(h)),
            },
            stream_id => return Err(PsError::BadStreamId { offset, stream_id }),
        })
    }

    fn on_unit(&mut self, unit: Unit) {
        match unit {
            Unit::Pack(p) => {
                self.stats.packs += 1;
                self.last_scr = Some(p.scr_base);
            }
            Unit::End => {}
            Unit::SystemHeader(len) => self.begin_payload(len, Sink::SystemHeader),
            Unit::Psm(psm, _) => self.on_psm(psm),
            Unit::Skip { stream_id, len } => {
                let sink = if stream_id == 0xBD {
                    Sink::Private
                } else {
                    Sink::Other
                };
                self.begin_payload(len, sink);
            }
            Unit::Pes(h) => self.on_pes(h),
        }
    }

    fn on_psm(&mut self, psm: Psm) {
        self.stats.psms += 1;
        match psm.crc {
            PsmCrc::Valid => {}
            PsmCrc::LittleEndian => self.stats.psm_crc_little_endian += 1,
            PsmCrc::Mismatch => self.stats.psm_crc_mismatches += 1,
        }
        let changed = self
            .psm
            .as_ref()
            .is_none_or(|old| old.entries != psm.entries);
        if changed {
            for e in &psm.entries {
                let is_video = (0xE0..=0xEF).contains(&e.stream_id);
                let supported = if is_video {
                    e.stream_type.video_codec().is_some()
                } else {
                    e.stream_type.audio_codec().is_some()
                };
                if !supported {
                    self.events.push_back(PsEvent::Unsupported {
                        stream_id: e.stream_id,
                        stream_type: e.stream_type,
                    });
                }
            }
            let video = psm
                .entries
                .iter()
                .find(|e| e.stream_type.video_codec().is_some());
            if let Some(v) = video {
                self.video_stream_id = Some(v.stream_id);
                if let Some(codec) = v.stream_type.video_codec() {
                    self.au.declare_codec(codec);
                }
            }
        }
        self.psm = Some(psm);
    }

    fn pes_policy(&self) -> PesPolicy {
        PesPolicy {
            check_markers: self.cfg.check_pts_markers,
            accept_missing_marker_byte: self.cfg.accept_pes_without_marker_byte,
        }
    }

    fn on_pes(&mut self, h: PesHeader) {
        if h.marker_byte_missing {
            self.stats.pes_without_marker_byte += 1;
        }
        let pts = h.pts.map(|p| self.clock.extend(p));
        let len = h.payload_len();
        if (0xE0..=0xEF).contains(&h.stream_id) {
            let declared = self.psm.as_ref().and_then(|p| p.stream_type(h.stream_id));
            let unsupported = declared.is_some_and(|t| t.video_codec().is_none());
            let selected = *self.video_stream_id.get_or_insert(h.stream_id);
            if unsupported || selected != h.stream_id {
                self.begin_payload(len, Sink::Other);
                return;
            }
            self.au.pes_start(pts);
            self.begin_payload(len, Sink::Video);
        } else {
            self.audio = Some((h.stream_id, pts, BytesMut::with_capacity(len)));
            self.begin_payload(len, Sink::Audio);
        }
    }

    fn begin_payload(&mut self, len: usize, sink: Sink) {
        if len == 0 {
            self.end_pes(sink);
        } else {
            self.state = State::Payload {
                remaining: len,
                sink,
            };
        }
    }

    fn drop_partial(&mut self) {
        self.au.discontinuity();
        self.audio = None;
        self.stash.clear();
    }

    fn start_resync(&mut self, error: PsError) {
        self.stats.resyncs += 1;
        self.events.push_back(PsEvent::Corrupt(error));
        self.drop_partial();
        self.state = State::Resync {
            matched: 0,
            counted: true,
        };
    }

    /// Scans for the next pack start. Returns the bytes from the pack start on (state is then
    /// `Unit`), or nothing if all of `data` was skipped.
    fn resync<'a>(&mut self, data: &'a [u8], matched: u8, counted: bool) -> &'a [u8] {
        // A pack start code begun at the end of the previous chunk.
        let mut m = matched;
        for (i, &b) in data.iter().take(3).enumerate() {
            if m == 0 {
                break;
            }
            m = pack_start_step(m, b);
            if m == 4 {
                let carried = 3 - i;
                self.stash.clear();
                self.stash.extend_from_slice(&PACK_START[..carried]);
                self.offset = self.offset.saturating_sub(carried as u64);
                self.stats.skipped_bytes = self.stats.skipped_bytes.saturating_sub(carried as u64);
                self.state = State::Unit;
                return data;
            }
        }
        let mut from = 0;
        while let Some(p) = find_start_code(data, from) {
            match data.get(p + 3) {
                Some(&0xBA) => {
                    self.offset += p as u64;
                    self.stats.skipped_bytes += p as u64;
                    self.state = State::Unit;
                    return &data[p..];
                }
                Some(_) => from = p + 1,
                None => break,
            }
        }
        let tail = if data.len() >= 3 {
            data[data.len() - 3..]
                .iter()
                .fold(0, |m, &b| pack_start_step(m, b))
        } else {
            data.iter().fold(matched, |m, &b| pack_start_step(m, b))
        };
        self.offset += data.len() as u64;
        self.stats.skipped_bytes += data.len() as u64;
        self.state = State::Resync {
            matched: tail.min(3),
            counted,
        };
        &[]
    }

    fn drain_access_units(&mut self) {
        while let Some(au) = self.au.pop() {
            if au.pts_guessed {
                self.stats.pts_guessed += 1;
            }
            self.update_parameters(&au);
            self.stats.video_frames += 1;
            self.events.push_back(PsEvent::Video(au.frame));
        }
    }

    /// Keeps the latest VPS/SPS/PPS and announces new parameters when they change.
    fn update_parameters(&mut self, au: &AccessUnit) {
        let codec = au.codec;
        let mut changed = false;
        for nal in au.frame.nal_units().map_while(Result::ok) {
            let slot = match codec {
                VideoCodec::H264 => match crate::h264::nal_type(nal) {
                    Some(crate::h264::nal_type::SPS) => 1,
                    Some(crate::h264::nal_type::PPS) => 2,
                    _ => continue,
                },
                VideoCodec::H265 => match crate::h265::nal_type(nal) {
                    Some(crate::h265::nal_type::VPS) => 0,
                    Some(crate::h265::nal_type::SPS) => 1,
                    Some(crate::h265::nal_type::PPS) => 2,
                    _ => continue,
                },
            };
            if self.parameter_sets[slot].as_deref() != Some(nal) {
                self.parameter_sets[slot] = Some(au.frame.data.slice_ref(nal));
                changed = true;
            }
        }
        let same_codec = self.params.as_ref().is_none_or(|p| p.codec() == codec);
        if !changed && same_codec {
            return;
        }
        let [vps, sps, pps] = &self.parameter_sets;
        let (Some(sps), Some(pps)) = (sps, pps) else {
            return;
        };
        let built = match codec {
            VideoCodec::H264 => VideoParameters::from_h264(&[sps], &[pps]),
            VideoCodec::H265 => match vps {
                Some(vps) => VideoParameters::from_h265(&[vps], &[sps], &[pps]),
                None => return,
            },
        };
        match built {
            Ok(p) => {
                if self.params.as_ref() != Some(&p) {
                    self.params = Some(p.clone());
                    self.events.push_back(PsEvent::Parameters(p));
                }
            }
            Err(e) => self.events.push_back(PsEvent::BadParameters(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_start_automaton() {
        let run = |s: &[u8]| s.iter().fold(0, |m, &b| pack_start_step(m, b));
        assert_eq!(run(&[0, 0, 1, 0xBA]), 4);
        assert_eq!(run(&[0, 0, 0, 1, 0xBA]), 4);
        assert_eq!(run(&[0, 0, 1, 0, 0, 1, 0xBA]), 4);
        assert_eq!(run(&[0, 0, 1, 0xBB]), 0);
        assert_eq!(run(&[0, 1]), 0);
        assert_eq!(run(&[0xAA, 0, 0]), 2);
    }
}
