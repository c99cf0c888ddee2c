//! The source-agnostic frames that travel from sources (RTSP, GB/T 28181) to the store.

use bytes::{Bytes, BytesMut};

use crate::nal::{avcc_to_annexb, AvccNals, NalError};

/// Media clock rate of every timestamp in this crate: 90 kHz.
pub const CLOCK_RATE: u32 = 90_000;

/// One video access unit: 4-byte length-prefixed NAL units ("AVCC"), a key-frame flag and a
/// 90 kHz presentation timestamp. Cloning is cheap (the data is reference counted).
///
/// Frames are in decoding order. `pts` is extended to 64 bits by the source (no wrap-around).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Presentation timestamp, 90 kHz.
    pub pts: i64,
    /// Whether decoding can start at this frame (IDR for H.264, IRAP for H.265).
    pub is_key: bool,
    /// NAL units, each with a 4-byte big-endian length prefix.
    pub data: Bytes,
}

impl VideoFrame {
    /// A frame from its parts.
    pub fn new(pts: i64, is_key: bool, data: Bytes) -> Self {
        Self { pts, is_key, data }
    }

    /// Size of the access unit in bytes (length prefixes included).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the access unit is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The NAL units, without length prefixes.
    pub fn nal_units(&self) -> AvccNals<'_> {
        AvccNals::new(&self.data)
    }

    /// The access unit as an Annex B byte stream (4-byte start codes).
    pub fn to_annexb(&self) -> Result<Bytes, NalError> {
        let mut out = BytesMut::with_capacity(self.data.len());
        avcc_to_annexb(&self.data, &mut out)?;
        Ok(out.freeze())
    }
}

/// Audio codecs signalled in a GB/T 28181 program stream map (stream types from ISO/IEC
/// 13818-1 table 2-34 and GB/T 28181 appendix C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC with ADTS headers (stream type 0x0F).
    Aac,
    /// G.711 A-law (0x90).
    G711A,
    /// G.711 µ-law (0x91).
    G711U,
    /// G.722.1 (0x92).
    G7221,
    /// G.723.1 (0x93).
    G7231,
    /// G.729 (0x99).
    G729,
    /// SVAC audio (0x9B).
    Svac,
    /// MPEG-1/2 audio (0x03, 0x04).
    MpegAudio,
    /// Unknown: no program stream map and nothing recognisable in the payload.
    Unknown,
}

/// One audio PES payload (usually one audio frame), identified so that the caller can store
/// or skip it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// The codec, from the program stream map or sniffed from the payload.
    pub codec: AudioCodec,
    /// PES stream id (0xC0..=0xDF).
    pub stream_id: u8,
    /// Presentation timestamp, 90 kHz, extended to 64 bits, if the PES carried one.
    pub pts: Option<i64>,
    /// The PES payload.
    pub data: Bytes,
}

/// Extends a wrapping timestamp (32-bit RTP, 33-bit MPEG PTS) to a monotonic-ish `i64`.
///
/// Each new value is placed in the wrap period that puts it closest to the previous one, so
/// small backward steps (reordering, audio/video interleave) stay backward steps and a wrap
/// moves forward.
#[derive(Debug, Clone)]
pub struct TimestampUnwrapper {
    bits: u32,
    last: Option<i64>,
}

impl TimestampUnwrapper {
    /// For timestamps of `bits` bits (1..=62).
    pub fn new(bits: u32) -> Self {
        Self {
            bits: bits.clamp(1, 62),
            last: None,
        }
    }

    /// For 33-bit MPEG-2 PTS/DTS/SCR base values.
    pub fn mpeg() -> Self {
        Self::new(33)
    }

    /// For 32-bit RTP timestamps.
    pub fn rtp() -> Self {
        Self::new(32)
    }

    /// Extends `raw` (only its low `bits` bits are used).
    pub fn extend(&mut self, raw: u64) -> i64 {
        let period = 1i64 << self.bits;
        let raw = (raw & (period as u64 - 1)) as i64;
        let v = match self.last {
            None => raw,
            Some(last) => {
                let base = last - last.rem_euclid(period);
                let mut v = base + raw;
                if v - last > period / 2 {
                    v -= period;
                } else if last - v > period / 2 {
                    v += period;
                }
                v
            }
        };
        self.last = Some(v);
        v
    }

    /// The last extended value.
    pub fn last(&self) -> Option<i64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_33_bit_pts() {
        let mut u = TimestampUnwrapper::mpeg();
        let max = (1u64 << 33) - 1;
        assert_eq!(u.extend(max - 3600), (max - 3600) as i64);
        assert_eq!(u.extend(100), (max + 1 + 100) as i64);
        // A small step back across the wrap goes back.
        assert_eq!(u.extend(max - 10), (max - 10) as i64);
        assert_eq!(u.extend(5000), (max + 1 + 5000) as i64);
    }

    #[test]
    fn unwraps_rtp_backwards_below_zero() {
        let mut u = TimestampUnwrapper::rtp();
        assert_eq!(u.extend(10), 10);
        assert_eq!(u.extend(u64::from(u32::MAX) - 9), -10);
    }

    #[test]
    fn frame_helpers() {
        let f = VideoFrame::new(0, true, Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]));
        assert_eq!(f.nal_units().count(), 1);
        assert_eq!(&f.to_annexb().unwrap()[..], &[0, 0, 0, 1, 0x65, 0x88]);
        let bad = VideoFrame::new(0, true, Bytes::from_static(&[0, 0, 0, 9, 0x65]));
        assert!(bad.to_annexb().is_err());
    }
}
