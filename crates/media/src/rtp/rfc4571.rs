//! RFC 4571 framing: RTP over a TCP byte stream, each packet preceded by a 16-bit big-endian
//! length (GB/T 28181 "TCP passive/active" media transport).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Counters of a decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rfc4571Stats {
    /// Frames returned.
    pub frames: u64,
    /// Zero-length frames skipped.
    pub empty_frames: u64,
    /// Times the decoder lost framing and searched for the next plausible RTP packet.
    pub resyncs: u64,
    /// Bytes discarded while resynchronising.
    pub skipped_bytes: u64,
}

/// Splits a TCP byte stream, fed in arbitrary chunks, into RTP packets.
///
/// Policy `Rfc4571Resync`: a frame that cannot be an RTP packet (shorter than 12 bytes or not
/// version 2) means the framing is lost (a device that wrote a partial packet, or a stream that
/// is not RFC 4571 at all). The decoder then skips one byte at a time until a length prefix is
/// followed by a version-2 header, instead of returning garbage forever.
#[derive(Debug, Default)]
pub struct Rfc4571Decoder {
    buf: BytesMut,
    stats: Rfc4571Stats,
}

impl Rfc4571Decoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> Rfc4571Stats {
        self.stats
    }

    /// The next complete RTP packet, if one is buffered.
    pub fn next_packet(&mut self) -> Option<Bytes> {
        loop {
            let header = self.buf.get(..2)?;
            let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
            if len == 0 {
                self.stats.empty_frames += 1;
                self.buf.advance(2);
                continue;
            }
            // Check plausibility as soon as the first RTP byte is here, so that a garbage
            // length of 60 000 does not make us wait for 60 000 bytes.
            let first = *self.buf.get(2)?;
            if len < 12 || first >> 6 != 2 {
                self.resync();
                continue;
            }
            if self.buf.len() < 2 + len {
                return None;
            }
            self.buf.advance(2);
            self.stats.frames += 1;
            return Some(self.buf.split_to(len).freeze());
        }
    }

    fn resync(&mut self) {
        self.stats.resyncs += 1;
        // Skip to the next position where a length ≥ 12 is followed by a version-2 byte.
        let mut skip = 1;
        while let Some(w) = self.buf.get(skip..skip + 3) {
            let len = u16::from_be_bytes([w[0], w[1]]);
            if len >= 12 && w[2] >> 6 == 2 {
                break;
            }
            skip += 1;
        }
        // Keep a possible partial candidate at the end.
        let skip = skip.min(self.buf.len());
        self.stats.skipped_bytes += skip as u64;
        self.buf.advance(skip);
    }
}

/// Frames one packet: the 2-byte length followed by the packet. `None` if the packet is longer
/// than 65 535 bytes.
pub fn frame(packet: &[u8]) -> Option<Bytes> {
    let len = u16::try_from(packet.len()).ok()?;
    let mut b = BytesMut::with_capacity(2 + packet.len());
    b.put_u16(len);
    b.put_slice(packet);
    Some(b.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(n: usize) -> Vec<u8> {
        let mut v = vec![0x80, 96];
        v.resize(n, 0x78);
        v
    }

    #[test]
    fn byte_by_byte() {
        let mut stream = Vec::new();
        for n in [12, 100, 1400] {
            stream.extend_from_slice(&frame(&rtp(n)).unwrap());
        }
        let mut d = Rfc4571Decoder::new();
        let mut got = Vec::new();
        for b in stream {
            d.push(&[b]);
            while let Some(p) = d.next_packet() {
                got.push(p.len());
            }
        }
        assert_eq!(got, [12, 100, 1400]);
        assert_eq!(d.stats().resyncs, 0);
    }

    #[test]
    fn resyncs_after_garbage() {
        let mut stream = vec![0x00, 0x05, 1, 2, 3, 4, 5];
        stream.extend_from_slice(&frame(&rtp(20)).unwrap());
        let mut d = Rfc4571Decoder::new();
        d.push(&stream);
        assert_eq!(d.next_packet().map(|p| p.len()), Some(20));
        assert_eq!(d.stats().resyncs, 1);
        assert_eq!(d.stats().skipped_bytes, 7);
    }

    #[test]
    fn zero_length_frames_are_skipped() {
        let mut d = Rfc4571Decoder::new();
        d.push(&[0, 0]);
        d.push(&frame(&rtp(12)).unwrap());
        assert_eq!(d.next_packet().map(|p| p.len()), Some(12));
        assert_eq!(d.stats().empty_frames, 1);
    }
}
