//! Cutting an Annex B video elementary stream (consecutive PES payloads, or a raw `.h264` /
//! `.h265` file) into access units, converting each to 4-byte length-prefixed NAL units.
//!
//! PES boundaries do not reliably mark frames: Hikvision puts SPS, PPS and SEI each in a
//! small PES before the IDR PES and splits large frames over several 65 478-byte PES without
//! PTS; muxers like ffmpeg's start a PES in the middle of a frame. So frames are found from the
//! NAL units themselves (H.264 7.4.1.2.3, H.265 7.4.2.4.4): a new access unit begins with the
//! first slice of a new picture, together with the AUD/parameter sets/SEI just before it.
//! PTS come from the PES headers: a PTS applies to the first access unit that begins in that
//! PES (13818-1 2.4.3.7).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::nal::{find_start_code, put_avcc_nal, trim_trailing_zeros};
use crate::{VideoCodec, VideoFrame};

/// An access unit ready to be emitted.
#[derive(Debug)]
pub(crate) struct AccessUnit {
    pub(crate) frame: VideoFrame,
    /// The codec used to classify it (for parameter extraction).
    pub(crate) codec: VideoCodec,
    /// The PTS was not signalled and was extrapolated.
    pub(crate) pts_guessed: bool,
}

/// Counters kept by the assembler.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AuStats {
    pub(crate) codec_overrides: u64,
    pub(crate) oversize_dropped: u64,
    pub(crate) partial_dropped: u64,
}

#[derive(Debug)]
pub(crate) struct AccessUnitAssembler {
    codec: Option<VideoCodec>,
    /// Annex B bytes of the current access unit (and possibly the start of the next).
    buf: BytesMut,
    /// Next index of `buf` at which a start code may begin and has not been searched.
    scan_pos: usize,
    /// Start code positions (index of the `00 00 01`) of the NAL units in `buf`.
    nals: Vec<usize>,
    /// How many of `nals` have been classified.
    classified: usize,
    /// How many of `nals` were sniffed without result while the codec is unknown.
    sniffed: usize,
    /// Bytes were dropped (discontinuity, oversize): the next access unit may be the tail of a
    /// frame and is only emitted if it begins with the first slice of a picture.
    after_gap: bool,
    /// The codec was overridden during the current access unit (at most once per access
    /// unit, so that garbage alternating between codecs cannot make classification quadratic).
    overridden: bool,
    /// The current access unit has a VCL NAL unit; index of its first one.
    first_vcl: Option<usize>,
    /// Index (in `nals`) of the first non-VCL NAL unit after the last VCL one that begins an
    /// access unit: where the current access unit ends if a new picture follows.
    prefix_start: Option<usize>,
    /// `(position in buf, pts)` of PES headers with a PTS. Positions may be negative once the
    /// bytes before them were emitted.
    marks: VecDeque<(i64, i64)>,
    last_pts: Option<i64>,
    last_delta: Option<i64>,
    default_delta: i64,
    max_size: usize,
    out: VecDeque<AccessUnit>,
    pub(crate) stats: AuStats,
}

/// Most PTS marks kept for the access units being assembled.
const MAX_MARKS: usize = 1024;

impl AccessUnitAssembler {
    /// `default_delta` is the frame interval used to extrapolate a missing PTS before two
    /// timestamps were seen.
    pub(crate) fn new(max_size: usize, default_delta: u32) -> Self {
        Self {
            codec: None,
            buf: BytesMut::new(),
            scan_pos: 0,
            nals: Vec::new(),
            classified: 0,
            sniffed: 0,
            after_gap: false,
            overridden: false,
            first_vcl: None,
            prefix_start: None,
            marks: VecDeque::new(),
            last_pts: None,
            last_delta: None,
            default_delta: i64::from(default_delta.max(1)),
            max_size,
            out: VecDeque::new(),
            stats: AuStats::default(),
        }
    }

    pub(crate) fn codec(&self) -> Option<VideoCodec> {
        self.codec
    }

    /// Sets the codec declared by a program stream map. Bitstream evidence may override it
    /// later (policy `TrustBitstreamOverPsm`).
    pub(crate) fn declare_codec(&mut self, codec: VideoCodec) {
        if self.codec != Some(codec) {
            self.codec = Some(codec);
            self.reclassify();
        }
    }

    /// A video PES payload begins; `pts` is its extended PTS if it has one.
    pub(crate) fn pes_start(&mut self, pts: Option<i64>) {
        if let Some(pts) = pts {
            // Empty PES packets with a PTS cost no buffer space; bound the marks they leave.
            if self.marks.len() >= MAX_MARKS {
                self.marks.pop_front();
            }
            self.marks.push_back((self.buf.len() as i64, pts));
        }
    }

    /// Bytes currently buffered.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends PES payload bytes. Returns false if the access unit overflowed the size limit
    /// and was dropped.
    pub(crate) fn push(&mut self, data: &[u8]) -> bool {
        if self.buf.len() + data.len() > self.max_size {
            self.stats.oversize_dropped += 1;
            self.reset();
            self.after_gap = true;
            return false;
        }
        self.buf.extend_from_slice(data);
        while let Some(p) = find_start_code(&self.buf, self.scan_pos) {
            self.nals.push(p);
            self.scan_pos = p + 3;
        }
        self.scan_pos = self.scan_pos.max(self.buf.len().saturating_sub(2));
        self.classify();
        true
    }

    /// The stream is known to end an access unit here (RTP marker or timestamp change): emit
    /// the current one if it has a picture.
    pub(crate) fn end_of_access_unit(&mut self) {
        // Everything buffered is complete, so every NAL unit can be classified.
        self.classify_to_end();
        if self.first_vcl.is_some() {
            let cut = self.prefix_start.unwrap_or(self.nals.len());
            self.emit(cut);
        }
    }

    /// End of stream: emit what is complete.
    pub(crate) fn flush(&mut self) {
        self.end_of_access_unit();
        self.reset();
    }

    /// Bytes were lost: the access unit being assembled is incomplete and dropped.
    pub(crate) fn discontinuity(&mut self) {
        if !self.buf.is_empty() {
            self.stats.partial_dropped += 1;
        }
        self.reset();
        self.after_gap = true;
    }

    pub(crate) fn pop(&mut self) -> Option<AccessUnit> {
        self.out.pop_front()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.scan_pos = 0;
        self.nals.clear();
        self.classified = 0;
        self.sniffed = 0;
        self.overridden = false;
        self.first_vcl = None;
        self.prefix_start = None;
        self.marks.clear();
    }

    /// Restarts classification of the current access unit (the codec changed).
    fn reclassify(&mut self) {
        self.classified = 0;
        self.first_vcl = None;
        self.prefix_start = None;
        self.classify();
    }

    /// Header bytes of NAL `i` (up to 3), and whether the NAL unit is complete.
    fn header(&self, i: usize) -> (&[u8], bool) {
        let start = self.nals[i] + 3;
        let end = self.nals.get(i + 1).copied();
        let complete = end.is_some();
        let limit = end.unwrap_or(self.buf.len()).min(start + 3);
        (self.buf.get(start..limit).unwrap_or(&[]), complete)
    }

    fn classify(&mut self) {
        self.classify_inner(false);
    }

    fn classify_to_end(&mut self) {
        self.classify_inner(true);
    }

    fn classify_inner(&mut self, at_end: bool) {
        if self.codec.is_none() && !self.sniff_pending() {
            return;
        }
        while self.classified < self.nals.len() {
            let i = self.classified;
            let (hdr, complete) = self.header(i);
            if hdr.len() < 3 && !complete && !at_end {
                return; // wait for the header bytes
            }
            let Some(codec) = self.codec else { return };
            // Policy `TrustBitstreamOverPsm`: some devices declare H.264 in the PSM and send
            // H.265 (or the reverse); an unambiguous NAL header wins.
            if let Some(sniffed) = VideoCodec::sniff(hdr) {
                if sniffed != codec && !self.overridden {
                    self.overridden = true;
                    self.stats.codec_overrides += 1;
                    self.codec = Some(sniffed);
                    self.classified = 0;
                    self.first_vcl = None;
                    self.prefix_start = None;
                    continue;
                }
            }
            if codec.is_vcl(hdr) {
                if self.first_vcl.is_some() && codec.begins_access_unit(hdr) {
                    let cut = self.prefix_start.unwrap_or(i);
                    self.emit(cut);
                    // NAL `i` is now at `i - cut` and is classified again below.
                    continue;
                }
                if self.first_vcl.is_none() {
                    self.first_vcl = Some(i);
                }
                self.prefix_start = None;
            } else if self.first_vcl.is_some()
                && self.prefix_start.is_none()
                && codec.begins_access_unit(hdr)
            {
                self.prefix_start = Some(i);
            }
            self.classified += 1;
        }
    }

    /// With no codec known, looks for an unambiguous NAL header among the NAL units not yet
    /// examined (each is examined once its header bytes are all there, so that a stream of
    /// unrecognisable NAL units costs linear time).
    fn sniff_pending(&mut self) -> bool {
        while self.sniffed < self.nals.len() {
            let (hdr, complete) = self.header(self.sniffed);
            if let Some(c) = VideoCodec::sniff(hdr) {
                self.codec = Some(c);
                return true;
            }
            if hdr.len() < 2 && !complete {
                return false; // look again when more bytes arrive
            }
            self.sniffed += 1;
        }
        false
    }

    /// Emits NAL units `..cut` as one access unit and keeps the rest.
    fn emit(&mut self, cut: usize) {
        let Some(codec) = self.codec else { return };
        let cut_pos = self.nals.get(cut).copied().unwrap_or(self.buf.len());
        let au_start = self.nals.first().copied().unwrap_or(0) as i64;
        let first_vcl_pos = self
            .first_vcl
            .and_then(|v| self.nals.get(v))
            .map_or(au_start, |&p| p as i64);

        // A PTS applies to the first access unit that begins in its PES; as a fallback for
        // devices that put it on the PES of the first slice rather than on the one holding the
        // parameter sets, a mark up to the first slice is accepted too.
        let mut pts = None;
        while let Some(&(pos, p)) = self.marks.front() {
            if pos > first_vcl_pos {
                break;
            }
            if pos <= au_start || pts.is_none() {
                pts = Some(p);
            }
            self.marks.pop_front();
        }

        let mut data = BytesMut::with_capacity(cut_pos + 4 * cut);
        for j in 0..cut {
            let start = self.nals[j] + 3;
            let end = self.nals.get(j + 1).copied().unwrap_or(self.buf.len());
            let nal = trim_trailing_zeros(self.buf.get(start..end).unwrap_or(&[]));
            if !nal.is_empty() {
                put_avcc_nal(&mut data, nal);
            }
        }
        let data: Bytes = data.freeze();

        // Policy `DropTailAfterGap`: after lost or dropped bytes, an access unit whose first
        // slice is not the first of its picture is the rest of a damaged frame.
        let tail_of_damaged_frame = std::mem::take(&mut self.after_gap)
            && self
                .first_vcl
                .is_some_and(|v| !codec.begins_access_unit(self.header(v).0));

        // Policy `MissingPts`: an access unit without a PTS continues the previous spacing.
        let pts_guessed = pts.is_none();
        let pts = pts.unwrap_or_else(|| {
            self.last_pts
                .map_or(0, |l| l + self.last_delta.unwrap_or(self.default_delta))
        });
        if let Some(last) = self.last_pts {
            let delta = pts - last;
            if delta > 0 {
                self.last_delta = Some(delta);
            }
        }
        self.last_pts = Some(pts);
        if tail_of_damaged_frame {
            self.stats.partial_dropped += 1;
        } else {
            let is_key = codec.is_key_frame(&data);
            self.out.push_back(AccessUnit {
                frame: VideoFrame::new(pts, is_key, data),
                codec,
                pts_guessed,
            });
        }

        // Keep the rest, re-based at 0.
        self.buf.advance(cut_pos);
        self.nals.drain(..cut);
        for p in &mut self.nals {
            *p -= cut_pos;
        }
        for m in &mut self.marks {
            m.0 -= cut_pos as i64;
        }
        self.scan_pos = self.scan_pos.saturating_sub(cut_pos);
        self.classified = self.classified.saturating_sub(cut);
        self.sniffed = self.sniffed.saturating_sub(cut);
        self.overridden = false;
        self.first_vcl = None;
        self.prefix_start = None;
        // The kept NAL units (parameter sets before the new picture) are re-examined so that
        // `prefix_start`/`first_vcl` describe the new access unit.
        self.classified = 0;
    }
}

/// Splits a raw Annex B elementary stream (e.g. a `.h264` file or a camera's byte stream)
/// into [`VideoFrame`]s with the same rules the PS demuxer uses. A raw stream has no
/// timestamps, so frame `n` gets `pts = n × frame_duration`.
#[derive(Debug)]
pub struct AccessUnitSplitter {
    inner: AccessUnitAssembler,
}

impl AccessUnitSplitter {
    /// A splitter; `codec` may be `None` to detect it from the first unambiguous NAL unit.
    pub fn new(codec: Option<VideoCodec>, frame_duration: u32) -> Self {
        let mut inner = AccessUnitAssembler::new(64 << 20, frame_duration);
        if let Some(c) = codec {
            inner.declare_codec(c);
        }
        Self { inner }
    }

    /// Appends stream bytes.
    pub fn push(&mut self, annexb: &[u8]) {
        self.inner.push(annexb);
    }

    /// End of stream: releases the last access unit.
    pub fn flush(&mut self) {
        self.inner.flush();
    }

    /// The next complete access unit.
    pub fn next_frame(&mut self) -> Option<VideoFrame> {
        self.inner.pop().map(|au| au.frame)
    }

    /// The codec, once known.
    pub fn codec(&self) -> Option<VideoCodec> {
        self.inner.codec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1];
        v.extend_from_slice(bytes);
        v
    }

    fn frames(a: &mut AccessUnitAssembler) -> Vec<(i64, bool, usize)> {
        std::iter::from_fn(|| a.pop())
            .map(|au| (au.frame.pts, au.frame.is_key, au.frame.nal_units().count()))
            .collect()
    }

    #[test]
    fn splits_on_new_picture_and_keeps_parameter_sets_with_it() {
        let mut a = AccessUnitAssembler::new(1 << 20, 3000);
        a.pes_start(Some(1000));
        a.push(&nal(&[0x67, 0x4d, 0x00, 0x1e]));
        a.push(&nal(&[0x68, 0xee, 0x3c]));
        a.push(&nal(&[0x65, 0x88, 0x80, 0x40]));
        a.push(&nal(&[0x65, 0x08, 0x80, 0x40])); // second slice of the IDR picture
        a.pes_start(Some(4600));
        a.push(&nal(&[0x41, 0x9a, 0x00]));
        assert_eq!(frames(&mut a), [(1000, true, 4)]);
        a.pes_start(Some(8200));
        a.push(&nal(&[0x06, 0x05, 0x01]));
        a.push(&nal(&[0x41, 0x9a, 0x01]));
        // The SEI belongs to the third frame.
        assert_eq!(frames(&mut a), [(4600, false, 1)]);
        a.flush();
        assert_eq!(frames(&mut a), [(8200, false, 2)]);
    }

    #[test]
    fn pts_in_the_middle_of_a_pes_applies_to_the_next_access_unit() {
        // ffmpeg's PS muxer: a PES with PTS 4600 starts with the tail of frame 1.
        let mut a = AccessUnitAssembler::new(1 << 20, 3000);
        a.pes_start(Some(1000));
        let mut f1 = nal(&[0x65, 0x88, 0x11, 0x22]);
        let tail = f1.split_off(6);
        a.push(&f1);
        a.pes_start(Some(4600));
        a.push(&tail);
        a.push(&nal(&[0x41, 0x9a, 0x00]));
        a.flush();
        assert_eq!(frames(&mut a), [(1000, true, 1), (4600, false, 1)]);
    }

    #[test]
    fn missing_pts_is_extrapolated() {
        let mut a = AccessUnitAssembler::new(1 << 20, 3000);
        a.declare_codec(VideoCodec::H264);
        a.pes_start(Some(0));
        a.push(&nal(&[0x65, 0x88]));
        a.pes_start(Some(3000));
        a.push(&nal(&[0x41, 0x9a]));
        a.pes_start(None);
        a.push(&nal(&[0x41, 0x9a]));
        a.push(&nal(&[0x41, 0x9a]));
        a.flush();
        let f: Vec<i64> = frames(&mut a).iter().map(|f| f.0).collect();
        assert_eq!(f, [0, 3000, 6000, 9000]);
    }

    #[test]
    fn codec_from_psm_is_overridden_by_the_bitstream() {
        let mut a = AccessUnitAssembler::new(1 << 20, 3000);
        a.declare_codec(VideoCodec::H264);
        a.pes_start(Some(0));
        a.push(&nal(&[0x40, 0x01, 0x0c])); // H.265 VPS
        a.push(&nal(&[0x26, 0x01, 0xaf])); // IDR_W_RADL, first slice
        a.push(&nal(&[0x02, 0x01, 0xd0])); // TRAIL_R, first slice
        a.flush();
        assert_eq!(a.codec(), Some(VideoCodec::H265));
        assert_eq!(a.stats.codec_overrides, 1);
        let f: Vec<(bool, usize)> = frames(&mut a).iter().map(|f| (f.1, f.2)).collect();
        assert_eq!(f, [(true, 2), (false, 1)]);
    }

    #[test]
    fn tail_of_a_frame_after_a_gap_is_dropped() {
        let mut a = AccessUnitAssembler::new(1 << 20, 3000);
        a.declare_codec(VideoCodec::H264);
        a.pes_start(Some(0));
        a.push(&nal(&[0x65, 0x88, 1]));
        a.discontinuity();
        // The rest of the IDR picture (slices with first_mb_in_slice != 0)...
        a.pes_start(Some(0));
        a.push(&nal(&[0x65, 0x08, 2]));
        a.push(&nal(&[0x65, 0x08, 3]));
        // ...then a complete P picture.
        a.pes_start(Some(3600));
        a.push(&nal(&[0x41, 0x9a, 4]));
        a.flush();
        assert_eq!(frames(&mut a), [(3600, false, 1)]);
        assert_eq!(a.stats.partial_dropped, 2);
    }

    #[test]
    fn unknown_codec_costs_linear_time() {
        // 4 MB of `00 00 01 00`: a million NAL units, none recognisable.
        let mut a = AccessUnitAssembler::new(8 << 20, 3000);
        let junk = [0u8, 0, 1, 0].repeat(1024);
        let t = std::time::Instant::now();
        for _ in 0..1024 {
            a.push(&junk);
        }
        assert_eq!(a.codec(), None);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn oversize_access_unit_is_dropped() {
        let mut a = AccessUnitAssembler::new(16, 3000);
        assert!(a.push(&nal(&[0x65, 1, 2, 3])));
        assert!(!a.push(&[0x11; 16]));
        assert_eq!(a.buffered(), 0);
        assert_eq!(a.stats.oversize_dropped, 1);
    }
}
