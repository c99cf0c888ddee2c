//! RFC 4571 framing: RTP over a TCP byte stream, each packet preceded by a 16-bit big-endian
//! length (GB/T 28181 "TCP passive/active" media transport), and the RTSP-interleaved framing
//! some GB/T 28181 device stacks write instead.
//!
//! Policy `DollarFraming`: the `gb28181-rs` 0.14 device library (`src/server.rs`
//! `frame_rtp_over_tcp`), calling it "GB28181 Annex C `$`-framing", writes `'$'`, a channel
//! byte, the 16-bit length and the packet (RTSP interleaved, RFC 2326 10.12). The decoder
//! detects the framing from the first bytes of the stream ([`Rfc4571Decoder::framing`]): an
//! interleaved stream starts `24 cc LL LL 8x`, an RFC 4571 one `LL LL 8x`, so a stream whose
//! first byte is `0x24` and whose fifth byte (not third) is an RTP version-2 header is
//! interleaved; everything else is RFC 4571. Within either framing it resynchronises on
//! garbage the same way (policy `Rfc4571Resync`).

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

/// The framing of a TCP media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFraming {
    /// RFC 4571: 16-bit length, packet.
    Rfc4571,
    /// RTSP interleaved (RFC 2326 10.12): `'$'`, channel, 16-bit length, packet (policy
    /// `DollarFraming`).
    Interleaved,
}

impl TcpFraming {
    /// Bytes before the packet.
    fn prefix(self) -> usize {
        match self {
            TcpFraming::Rfc4571 => 2,
            TcpFraming::Interleaved => 4,
        }
    }
}

/// Bytes needed to tell the framings apart.
const SNIFF: usize = 5;

/// Splits a TCP byte stream, fed in arbitrary chunks, into RTP packets.
///
/// Policy `Rfc4571Resync`: a frame that cannot be an RTP packet (shorter than 12 bytes or not
/// version 2) means the framing is lost (a device that wrote a partial packet, or a stream that
/// is not RFC 4571 at all). The decoder then skips one byte at a time until a length prefix is
/// followed by a version-2 header, instead of returning garbage forever.
///
/// Policy `DollarFraming` (module docs): the framing is detected from the first five bytes;
/// no packet comes out before they arrived.
#[derive(Debug, Default)]
pub struct Rfc4571Decoder {
    buf: BytesMut,
    framing: Option<TcpFraming>,
    stats: Rfc4571Stats,
}

impl Rfc4571Decoder {
    /// A decoder with an empty buffer that has not seen the stream yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder for a stream known to use `framing` (no detection).
    pub fn with_framing(framing: TcpFraming) -> Self {
        Rfc4571Decoder {
            framing: Some(framing),
            ..Self::default()
        }
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

    /// The framing, once detected (or given).
    pub fn framing(&self) -> Option<TcpFraming> {
        self.framing
    }

    /// The next complete RTP packet, if one is buffered.
    pub fn next_packet(&mut self) -> Option<Bytes> {
        let framing = match self.framing {
            Some(f) => f,
            None => {
                let head = self.buf.get(..SNIFF)?;
                let interleaved = head[0] == b'$' && head[2] >> 6 != 2 && head[4] >> 6 == 2;
                let f = if interleaved {
                    TcpFraming::Interleaved
                } else {
                    TcpFraming::Rfc4571
                };
                self.framing = Some(f);
                f
            }
        };
        let prefix = framing.prefix();
        loop {
            let header = self.buf.get(..prefix)?;
            let (marker_ok, len) = match framing {
                TcpFraming::Rfc4571 => (true, u16::from_be_bytes([header[0], header[1]])),
                TcpFraming::Interleaved => (
                    header[0] == b'$',
                    u16::from_be_bytes([header[2], header[3]]),
                ),
            };
            let len = usize::from(len);
            if marker_ok && len == 0 {
                self.stats.empty_frames += 1;
                self.buf.advance(prefix);
                continue;
            }
            // Check plausibility as soon as the first RTP byte is here, so that a garbage
            // length of 60 000 does not make us wait for 60 000 bytes.
            let first = *self.buf.get(prefix)?;
            if !marker_ok || len < 12 || first >> 6 != 2 {
                self.resync(framing);
                continue;
            }
            if self.buf.len() < prefix + len {
                return None;
            }
            self.buf.advance(prefix);
            self.stats.frames += 1;
            return Some(self.buf.split_to(len).freeze());
        }
    }

    fn resync(&mut self, framing: TcpFraming) {
        self.stats.resyncs += 1;
        let prefix = framing.prefix();
        // Skip to the next position where a plausible prefix (length ≥ 12, and `'$'` for the
        // interleaved framing) is followed by a version-2 byte.
        let mut skip = 1;
        while let Some(w) = self.buf.get(skip..skip + prefix + 1) {
            let plausible = match framing {
                TcpFraming::Rfc4571 => u16::from_be_bytes([w[0], w[1]]) >= 12,
                TcpFraming::Interleaved => w[0] == b'$' && u16::from_be_bytes([w[2], w[3]]) >= 12,
            };
            if plausible && w[prefix] >> 6 == 2 {
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
    fn rfc4571_streams_decode_in_any_chunking() {
        let pkts: Vec<Vec<u8>> = (0..5u16)
            .map(|i| rtp_seq(i, 12 + 300 * usize::from(i)))
            .collect();
        let stream: Vec<u8> = pkts
            .iter()
            .flat_map(|p| frame(p).unwrap().to_vec())
            .collect();
        for chunk in [1, 2, 3, 7, 1000] {
            let (out, d) = run(&stream, chunk);
            assert_eq!(d.framing(), Some(TcpFraming::Rfc4571));
            assert_eq!(out.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), pkts);
            assert_eq!(d.stats().resyncs, 0);
        }
    }

    /// The gb28181-rs 0.14 framing (`frame_rtp_over_tcp`): `$`, channel 0, length, packet.
    fn dollar(p: &[u8]) -> Vec<u8> {
        let mut v = vec![b'$', 0];
        v.extend_from_slice(&(p.len() as u16).to_be_bytes());
        v.extend_from_slice(p);
        v
    }

    fn rtp_seq(seq: u16, n: usize) -> Vec<u8> {
        let mut v = vec![0x80, 96];
        v.extend_from_slice(&seq.to_be_bytes());
        v.resize(n, 0x78);
        v
    }

    fn run(stream: &[u8], chunk: usize) -> (Vec<Bytes>, Rfc4571Decoder) {
        let mut d = Rfc4571Decoder::new();
        let mut out = Vec::new();
        for c in stream.chunks(chunk) {
            d.push(c);
            while let Some(p) = d.next_packet() {
                out.push(p);
            }
        }
        (out, d)
    }

    #[test]
    fn quirk_rtp_over_tcp_dollar_framing_gb28181_rs() {
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| rtp_seq(i, 1412)).collect();
        let mut stream: Vec<u8> = pkts.iter().flat_map(|p| dollar(p)).collect();
        for chunk in [1, 4, 5, 999] {
            let (out, d) = run(&stream, chunk);
            assert_eq!(d.framing(), Some(TcpFraming::Interleaved));
            assert_eq!(out.len(), 5);
            assert_eq!(out[3].to_vec(), pkts[3]);
            assert_eq!(d.stats().resyncs, 0);
        }
        // Garbage in the middle is skipped and the next packet found.
        let at = stream.len() / 2;
        stream.splice(at..at, [0xde, 0xad, 0xbe, 0xef, 0x00].iter().copied());
        let (out, d) = run(&stream, 333);
        assert!(d.stats().resyncs >= 1);
        assert!(out.len() >= 4, "lost at most the packet the garbage was in");
        assert!(out.iter().all(|p| p[0] >> 6 == 2));
    }

    #[test]
    fn short_streams_wait_for_the_sniff() {
        let mut d = Rfc4571Decoder::new();
        d.push(&[b'$', 0]);
        assert_eq!(d.next_packet(), None);
        assert_eq!(d.framing(), None);
        // A length of 0x24xx followed by an RTP header is RFC 4571, not interleaved.
        let mut big = vec![0x80, 96];
        big.resize(0x2400 + 20, 0x11);
        let mut d = Rfc4571Decoder::new();
        d.push(&frame(&big).unwrap());
        assert_eq!(d.next_packet().map(|p| p.len()), Some(big.len()));
        assert_eq!(d.framing(), Some(TcpFraming::Rfc4571));
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
