//! Writing the init segment and fragments.

use bytes::{BufMut, Bytes, BytesMut};

use super::{SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC, TIMESCALE, TRACK_ID};
use crate::mp4box::{begin_box, begin_full_box, end_box};
use crate::{VideoFrame, VideoParameters};

/// Nominal frame duration used when nothing better is known: 25 fps, the PAL-derived rate of
/// most Chinese surveillance cameras.
pub const DEFAULT_FRAME_DURATION: u32 = 3600;

/// Why a fragment could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// `finish` was called with no frames.
    #[error("fragment {sequence_number} has no frames")]
    Empty {
        /// The sequence number requested.
        sequence_number: u32,
    },
    /// The media data does not fit a 32-bit `mdat` / `trun` data offset.
    #[error("fragment {sequence_number}: {bytes} bytes of media data exceed the 4 GiB limit of a fragment")]
    TooLarge {
        /// The sequence number requested.
        sequence_number: u32,
        /// Total media bytes.
        bytes: u64,
    },
}

/// The init segment: `ftyp` + `moov` with `mvhd`, one video `trak` whose `stsd` holds the
/// sample entry of `params`, and `mvex`/`trex`. Timescale 90 000, durations zero (fragmented).
pub fn init_segment(params: &VideoParameters) -> Bytes {
    let entry = params.sample_entry();
    let mut b = BytesMut::with_capacity(700 + entry.len());

    let ftyp = begin_box(&mut b, b"ftyp");
    b.put_slice(b"iso6"); // major brand: fragmented files with tfdt
    b.put_u32(0); // minor version
    for brand in [b"iso6", b"isom", b"iso5", b"mp41"] {
        b.put_slice(brand);
    }
    end_box(&mut b, ftyp);

    let moov = begin_box(&mut b, b"moov");
    let mvhd = begin_full_box(&mut b, b"mvhd", 0, 0);
    b.put_u32(0); // creation_time
    b.put_u32(0); // modification_time
    b.put_u32(TIMESCALE);
    b.put_u32(0); // duration: unknown, fragments carry the media
    b.put_u32(0x0001_0000); // rate 1.0
    b.put_u16(0x0100); // volume 1.0
    b.put_bytes(0, 10); // reserved
    put_unity_matrix(&mut b);
    b.put_bytes(0, 24); // pre_defined
    b.put_u32(TRACK_ID + 1); // next_track_ID
    end_box(&mut b, mvhd);

    let trak = begin_box(&mut b, b"trak");
    let tkhd = begin_full_box(&mut b, b"tkhd", 0, 0x3); // enabled, in movie
    b.put_u32(0); // creation_time
    b.put_u32(0); // modification_time
    b.put_u32(TRACK_ID);
    b.put_u32(0); // reserved
    b.put_u32(0); // duration
    b.put_bytes(0, 8); // reserved
    b.put_u16(0); // layer
    b.put_u16(0); // alternate_group
    b.put_u16(0); // volume: 0 for video
    b.put_u16(0); // reserved
    put_unity_matrix(&mut b);
    // Display size (pixel aspect ratio applied), 16.16 fixed point; saturate rather than wrap
    // for absurd aspect ratios.
    let (dw, dh) = params.display_size();
    b.put_u32(dw.min(0xFFFF) << 16);
    b.put_u32(dh.min(0xFFFF) << 16);
    end_box(&mut b, tkhd);

    let mdia = begin_box(&mut b, b"mdia");
    let mdhd = begin_full_box(&mut b, b"mdhd", 0, 0);
    b.put_u32(0); // creation_time
    b.put_u32(0); // modification_time
    b.put_u32(TIMESCALE);
    b.put_u32(0); // duration
    b.put_u16(0x55c4); // language "und"
    b.put_u16(0); // pre_defined
    end_box(&mut b, mdhd);
    let hdlr = begin_full_box(&mut b, b"hdlr", 0, 0);
    b.put_u32(0); // pre_defined
    b.put_slice(b"vide");
    b.put_bytes(0, 12); // reserved
    b.put_slice(b"VideoHandler\0");
    end_box(&mut b, hdlr);

    let minf = begin_box(&mut b, b"minf");
    let vmhd = begin_full_box(&mut b, b"vmhd", 0, 1);
    b.put_bytes(0, 8); // graphicsmode, opcolor
    end_box(&mut b, vmhd);
    let dinf = begin_box(&mut b, b"dinf");
    let dref = begin_full_box(&mut b, b"dref", 0, 0);
    b.put_u32(1); // entry_count
    let url = begin_full_box(&mut b, b"url ", 0, 1); // media in this file
    end_box(&mut b, url);
    end_box(&mut b, dref);
    end_box(&mut b, dinf);

    let stbl = begin_box(&mut b, b"stbl");
    let stsd = begin_full_box(&mut b, b"stsd", 0, 0);
    b.put_u32(1); // entry_count
    b.put_slice(entry);
    end_box(&mut b, stsd);
    for empty in [b"stts", b"stsc", b"stco"] {
        let bx = begin_full_box(&mut b, empty, 0, 0);
        b.put_u32(0); // entry_count
        end_box(&mut b, bx);
    }
    let stsz = begin_full_box(&mut b, b"stsz", 0, 0);
    b.put_u32(0); // sample_size
    b.put_u32(0); // sample_count
    end_box(&mut b, stsz);
    end_box(&mut b, stbl);
    end_box(&mut b, minf);
    end_box(&mut b, mdia);
    end_box(&mut b, trak);

    let mvex = begin_box(&mut b, b"mvex");
    let trex = begin_full_box(&mut b, b"trex", 0, 0);
    b.put_u32(TRACK_ID);
    b.put_u32(1); // default_sample_description_index
    b.put_u32(0); // default_sample_duration
    b.put_u32(0); // default_sample_size
    b.put_u32(0); // default_sample_flags
    end_box(&mut b, trex);
    end_box(&mut b, mvex);
    end_box(&mut b, moov);
    b.freeze()
}

fn put_unity_matrix(b: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.put_u32(v);
    }
}

/// Accumulates frames for one fragment.
///
/// The caller decides where fragments end (at each key frame, or after a duration); the
/// builder answers "would this frame start a new GOP?" with [`FragmentBuilder::starts_new_gop`].
///
/// Sample durations are the deltas between consecutive `pts`. Two policies fill the gaps:
/// - `LastSampleDuration`: the last sample lasts until `next_pts` when the caller knows it
///   (the usual case: it cuts when the next key frame arrives), otherwise as long as the
///   sample before it, otherwise the nominal frame duration.
/// - `NonMonotonicPts`: a delta that is zero, negative or over `u32::MAX` ticks (camera clock
///   reset, duplicated timestamp) becomes the nominal frame duration, so the fragment stays
///   playable; the following samples then drift from their `pts` by the difference.
///
/// Frames are written in arrival (decoding) order without composition offsets: streams with
/// B-frames play in decoding order. Surveillance cameras encode without B-frames by default.
#[derive(Debug, Clone)]
pub struct FragmentBuilder {
    frames: Vec<VideoFrame>,
    data_len: u64,
    nominal_duration: u32,
}

impl Default for FragmentBuilder {
    fn default() -> Self {
        Self::new(DEFAULT_FRAME_DURATION)
    }
}

impl FragmentBuilder {
    /// A builder whose fallback sample duration is `nominal_duration` 90 kHz ticks.
    pub fn new(nominal_duration: u32) -> Self {
        Self {
            frames: Vec::new(),
            data_len: 0,
            nominal_duration: nominal_duration.max(1),
        }
    }

    /// A builder using the frame rate of `params` (25 fps when not signalled).
    pub fn for_params(params: &VideoParameters) -> Self {
        Self::new(
            params
                .nominal_frame_duration()
                .unwrap_or(DEFAULT_FRAME_DURATION),
        )
    }

    /// Adds a frame.
    pub fn push(&mut self, frame: VideoFrame) {
        self.data_len += frame.data.len() as u64;
        self.frames.push(frame);
    }

    /// Whether `next` would begin a new GOP: it is a key frame and this fragment already has
    /// frames. A per-GOP writer finishes the fragment before pushing such a frame.
    pub fn starts_new_gop(&self, next: &VideoFrame) -> bool {
        next.is_key && !self.frames.is_empty()
    }

    /// Number of frames collected.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame was collected.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes of media data collected.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// `pts` of the first frame.
    pub fn first_pts(&self) -> Option<i64> {
        self.frames.first().map(|f| f.pts)
    }

    /// `pts` of the last frame.
    pub fn last_pts(&self) -> Option<i64> {
        self.frames.last().map(|f| f.pts)
    }

    /// Span from the first to the last `pts` (the last frame's own duration not included).
    pub fn pts_span(&self) -> i64 {
        match (self.first_pts(), self.last_pts()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }

    /// The nominal frame duration in use.
    pub fn nominal_duration(&self) -> u32 {
        self.nominal_duration
    }

    /// Builds the fragment from the collected frames and empties the builder.
    ///
    /// `base_decode_time` goes to `tfdt` (90 kHz, the caller's segment timeline), and
    /// `next_pts` is the `pts` of the frame that will follow, if known (see the type docs).
    /// On error the frames stay in the builder.
    pub fn finish(
        &mut self,
        sequence_number: u32,
        base_decode_time: u64,
        next_pts: Option<i64>,
    ) -> Result<Fragment, WriteError> {
        if self.frames.is_empty() {
            return Err(WriteError::Empty { sequence_number });
        }
        let too_large = WriteError::TooLarge {
            sequence_number,
            bytes: self.data_len,
        };
        // Leave room for the moof and mdat header within the 32-bit mdat size.
        if self.data_len > u64::from(u32::MAX) - (1 << 24) {
            return Err(too_large);
        }
        let durations = self.durations(next_pts);
        let frames = std::mem::take(&mut self.frames);
        self.data_len = 0;

        let n = frames.len();
        let header =
            write_moof(sequence_number, base_decode_time, &frames, &durations).ok_or(too_large)?;
        let duration = durations.iter().map(|&d| u64::from(d)).sum();
        Ok(Fragment {
            header,
            sequence_number,
            base_decode_time,
            duration,
            sample_count: n as u32,
            first_is_sync: frames.first().is_some_and(|f| f.is_key),
            first_pts: frames.first().map_or(0, |f| f.pts),
            samples: frames.into_iter().map(|f| f.data).collect(),
        })
    }

    fn durations(&self, next_pts: Option<i64>) -> Vec<u32> {
        let valid = |d: i64| u32::try_from(d).ok().filter(|&d| d > 0);
        let mut out: Vec<u32> = self
            .frames
            .windows(2)
            .map(|w| valid(w[1].pts - w[0].pts).unwrap_or(self.nominal_duration))
            .collect();
        let last_pts = self.frames.last().map_or(0, |f| f.pts);
        let last = next_pts
            .and_then(|n| valid(n - last_pts))
            .or_else(|| out.last().copied())
            .unwrap_or(self.nominal_duration);
        out.push(last);
        out
    }
}

/// Writes `moof` + the `mdat` header. `None` if sizes overflow 32 bits.
fn write_moof(
    sequence_number: u32,
    base_decode_time: u64,
    frames: &[VideoFrame],
    durations: &[u32],
) -> Option<Bytes> {
    let n = frames.len();
    let sample_count = u32::try_from(n).ok()?;
    let uniform_duration = durations.windows(2).all(|w| w[0] == w[1]);
    // The common shape (key frame first, then non-key) needs no per-sample flags.
    let only_first_may_sync = frames.iter().skip(1).all(|f| !f.is_key);
    let flags_of = |f: &VideoFrame| {
        if f.is_key {
            SAMPLE_FLAGS_SYNC
        } else {
            SAMPLE_FLAGS_NON_SYNC
        }
    };

    let per_sample =
        4 + if uniform_duration { 0 } else { 4 } + if only_first_may_sync { 0 } else { 4 };
    let mut b = BytesMut::with_capacity(120 + n * per_sample);
    let moof = begin_box(&mut b, b"moof");
    let mfhd = begin_full_box(&mut b, b"mfhd", 0, 0);
    b.put_u32(sequence_number);
    end_box(&mut b, mfhd);

    let traf = begin_box(&mut b, b"traf");
    let mut tfhd_flags = 0x02_0000; // default-base-is-moof
    if uniform_duration {
        tfhd_flags |= 0x08; // default-sample-duration-present
    }
    if only_first_may_sync {
        tfhd_flags |= 0x20; // default-sample-flags-present
    }
    let tfhd = begin_full_box(&mut b, b"tfhd", 0, tfhd_flags);
    b.put_u32(TRACK_ID);
    if uniform_duration {
        b.put_u32(durations.first().copied().unwrap_or(DEFAULT_FRAME_DURATION));
    }
    if only_first_may_sync {
        b.put_u32(SAMPLE_FLAGS_NON_SYNC);
    }
    end_box(&mut b, tfhd);

    let tfdt = begin_full_box(&mut b, b"tfdt", 1, 0);
    b.put_u64(base_decode_time);
    end_box(&mut b, tfdt);

    let mut trun_flags = 0x01 | 0x200; // data-offset, sample-size
    if only_first_may_sync {
        trun_flags |= 0x04; // first-sample-flags
    } else {
        trun_flags |= 0x400; // sample-flags
    }
    if !uniform_duration {
        trun_flags |= 0x100; // sample-duration
    }
    let trun = begin_full_box(&mut b, b"trun", 0, trun_flags);
    b.put_u32(sample_count);
    let data_offset_at = b.len();
    b.put_u32(0); // data_offset, patched below
    if only_first_may_sync {
        b.put_u32(frames.first().map_or(SAMPLE_FLAGS_NON_SYNC, flags_of));
    }
    let mut mdat_payload: u64 = 0;
    for (f, &d) in frames.iter().zip(durations) {
        if !uniform_duration {
            b.put_u32(d);
        }
        b.put_u32(u32::try_from(f.data.len()).ok()?);
        if !only_first_may_sync {
            b.put_u32(flags_of(f));
        }
        mdat_payload += f.data.len() as u64;
    }
    end_box(&mut b, trun);
    end_box(&mut b, traf);
    end_box(&mut b, moof);

    // Samples start right after the 8-byte mdat header; offsets are from the moof start.
    let data_offset = u32::try_from(b.len() + 8).ok()?;
    b[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    b.put_u32(u32::try_from(mdat_payload + 8).ok()?);
    b.put_slice(b"mdat");
    Some(b.freeze())
}

/// A finished fragment: `moof` + `mdat` header bytes, then the samples' bytes as they came in
/// (no copy), so that a caller can `writev` them. [`Fragment::to_bytes`] gives one buffer.
#[derive(Debug, Clone)]
pub struct Fragment {
    header: Bytes,
    samples: Vec<Bytes>,
    sequence_number: u32,
    base_decode_time: u64,
    duration: u64,
    sample_count: u32,
    first_is_sync: bool,
    first_pts: i64,
}

impl Fragment {
    /// `moof` box followed by the `mdat` box header.
    pub fn header(&self) -> &Bytes {
        &self.header
    }

    /// The sample data, in order, following the header in the file.
    pub fn samples(&self) -> &[Bytes] {
        &self.samples
    }

    /// Header then samples: the byte ranges to write, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.header).chain(self.samples.iter())
    }

    /// Total size in bytes.
    pub fn len(&self) -> u64 {
        self.chunks().map(|c| c.len() as u64).sum()
    }

    /// Always false: a fragment has at least one sample.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole fragment in one buffer (copies).
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.len() as usize);
        for c in self.chunks() {
            b.put_slice(c);
        }
        b.freeze()
    }

    /// `mfhd` sequence number.
    pub fn sequence_number(&self) -> u32 {
        self.sequence_number
    }

    /// `tfdt` base media decode time, 90 kHz.
    pub fn base_decode_time(&self) -> u64 {
        self.base_decode_time
    }

    /// Sum of the sample durations, 90 kHz.
    pub fn duration(&self) -> u64 {
        self.duration
    }

    /// Number of samples.
    pub fn sample_count(&self) -> u32 {
        self.sample_count
    }

    /// Whether the first sample is a sync sample (the fragment starts a GOP).
    pub fn first_is_sync(&self) -> bool {
        self.first_is_sync
    }

    /// `pts` of the first frame (source timeline, for the caller's index).
    pub fn first_pts(&self) -> i64 {
        self.first_pts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pts: i64, key: bool, len: usize) -> VideoFrame {
        let mut d = BytesMut::new();
        d.put_u32(len as u32 - 4);
        d.put_bytes(if key { 0x65 } else { 0x41 }, len - 4);
        VideoFrame::new(pts, key, d.freeze())
    }

    #[test]
    fn durations_policies() {
        let mut b = FragmentBuilder::new(3000);
        for (pts, key) in [(1000, true), (4600, false), (8200, false), (8200, false)] {
            b.push(frame(pts, key, 10));
        }
        // Zero delta → nominal; last → previous duration.
        assert_eq!(b.durations(None), vec![3600, 3600, 3000, 3000]);
        assert_eq!(b.durations(Some(11_800)), vec![3600, 3600, 3000, 3600]);
        // A next_pts going backwards is ignored.
        assert_eq!(b.durations(Some(0)), vec![3600, 3600, 3000, 3000]);
        let mut one = FragmentBuilder::new(3000);
        one.push(frame(5, true, 10));
        assert_eq!(one.durations(None), vec![3000]);
    }

    #[test]
    fn empty_fragment_is_an_error() {
        let mut b = FragmentBuilder::default();
        assert_eq!(
            b.finish(7, 0, None).unwrap_err(),
            WriteError::Empty { sequence_number: 7 }
        );
    }

    #[test]
    fn fragment_layout() {
        let mut b = FragmentBuilder::default();
        b.push(frame(0, true, 100));
        assert!(!b.starts_new_gop(&frame(3600, false, 10)));
        b.push(frame(3600, false, 50));
        assert!(b.starts_new_gop(&frame(7200, true, 10)));
        let f = b.finish(3, 90_000, Some(7200)).unwrap();
        assert!(b.is_empty());
        assert_eq!(f.sample_count(), 2);
        assert_eq!(f.duration(), 7200);
        assert!(f.first_is_sync());
        let bytes = f.to_bytes();
        assert_eq!(bytes.len() as u64, f.len());
        assert_eq!(&bytes[4..8], b"moof");
        let moof_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(&bytes[moof_len + 4..moof_len + 8], b"mdat");
        assert_eq!(bytes.len(), moof_len + 8 + 150);
    }
}
