//! RTP over TCP as GB/T 28181 devices really send it, sans-IO.
//!
//! The standard framing is RFC 4571 (a 16-bit length before each packet), handled by
//! [`vigil_media::rtp::Rfc4571Decoder`]. Some device stacks write the RTSP-interleaved form
//! instead — `'$'`, a channel byte, the 16-bit length, the packet — calling it "GB28181 Annex C
//! `$`-framing" ([`Quirk::RtpOverTcpDollarFraming`]; seen from the `gb28181-rs` 0.14 device
//! library, `src/server.rs` `frame_rtp_over_tcp`). [`TcpRtpFramer`] detects the framing from
//! the first bytes of the stream and then decodes it; within the interleaved framing it
//! resynchronises on garbage the same way the RFC 4571 decoder does.
//!
//! Detection: an interleaved stream starts `24 cc LL LL 8x`, an RFC 4571 one `LL LL 8x`. A stream
//! whose first byte is `0x24` and whose fifth byte (not third) is an RTP version-2 header is
//! interleaved; everything else is RFC 4571.

use bytes::{Buf, Bytes, BytesMut};
use vigil_media::rtp::Rfc4571Decoder;

use crate::quirks::Quirk;

/// The framing a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpRtpFraming {
    /// RFC 4571: 16-bit length, packet.
    Rfc4571,
    /// RTSP interleaved (RFC 2326 10.12): `'$'`, channel, 16-bit length, packet.
    Interleaved,
}

/// Counters of a [`TcpRtpFramer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpRtpStats {
    /// Packets returned.
    pub packets: u64,
    /// Times framing was lost and searched for again.
    pub resyncs: u64,
    /// Bytes discarded while resynchronising.
    pub skipped_bytes: u64,
}

#[derive(Debug)]
enum Inner {
    Sniffing(BytesMut),
    Rfc4571(Rfc4571Decoder),
    Interleaved(BytesMut),
}

/// Splits a TCP media stream, fed in arbitrary chunks, into RTP packets. See the module
/// documentation.
#[derive(Debug)]
pub struct TcpRtpFramer {
    inner: Inner,
    stats: TcpRtpStats,
}

impl Default for TcpRtpFramer {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes needed to tell the framings apart.
const SNIFF: usize = 5;

impl TcpRtpFramer {
    /// A framer that has not seen the stream yet.
    pub fn new() -> Self {
        TcpRtpFramer {
            inner: Inner::Sniffing(BytesMut::new()),
            stats: TcpRtpStats::default(),
        }
    }

    /// The framing detected, once enough bytes arrived.
    pub fn framing(&self) -> Option<TcpRtpFraming> {
        match self.inner {
            Inner::Sniffing(_) => None,
            Inner::Rfc4571(_) => Some(TcpRtpFraming::Rfc4571),
            Inner::Interleaved(_) => Some(TcpRtpFraming::Interleaved),
        }
    }

    /// The quirk the stream needed, if any.
    pub fn quirk(&self) -> Option<Quirk> {
        (self.framing() == Some(TcpRtpFraming::Interleaved))
            .then_some(Quirk::RtpOverTcpDollarFraming)
    }

    /// Counters so far.
    pub fn stats(&self) -> TcpRtpStats {
        let mut s = self.stats;
        if let Inner::Rfc4571(d) = &self.inner {
            let d = d.stats();
            s.resyncs += d.resyncs;
            s.skipped_bytes += d.skipped_bytes;
        }
        s
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Sniffing(buf) => {
                buf.extend_from_slice(data);
                if buf.len() >= SNIFF {
                    let interleaved = buf[0] == b'$' && buf[2] >> 6 != 2 && buf[4] >> 6 == 2;
                    let bytes = std::mem::take(buf);
                    self.inner = if interleaved {
                        Inner::Interleaved(bytes)
                    } else {
                        let mut d = Rfc4571Decoder::new();
                        d.push(&bytes);
                        Inner::Rfc4571(d)
                    };
                }
            }
            Inner::Rfc4571(d) => d.push(data),
            Inner::Interleaved(buf) => buf.extend_from_slice(data),
        }
    }

    /// The next complete RTP packet, if one is buffered.
    pub fn next_packet(&mut self) -> Option<Bytes> {
        let pkt = match &mut self.inner {
            Inner::Sniffing(_) => None,
            Inner::Rfc4571(d) => d.next_packet(),
            Inner::Interleaved(buf) => next_interleaved(buf, &mut self.stats),
        };
        if pkt.is_some() {
            self.stats.packets += 1;
        }
        pkt
    }
}

fn next_interleaved(buf: &mut BytesMut, stats: &mut TcpRtpStats) -> Option<Bytes> {
    loop {
        let head = buf.get(..SNIFF)?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if head[0] != b'$' || len < 12 || head[4] >> 6 != 2 {
            stats.resyncs += 1;
            let mut skip = 1;
            while let Some(w) = buf.get(skip..skip + SNIFF) {
                let l = u16::from_be_bytes([w[2], w[3]]);
                if w[0] == b'$' && l >= 12 && w[4] >> 6 == 2 {
                    break;
                }
                skip += 1;
            }
            let skip = skip.min(buf.len());
            stats.skipped_bytes += skip as u64;
            buf.advance(skip);
            continue;
        }
        if buf.len() < 4 + len {
            return None;
        }
        buf.advance(4);
        return Some(buf.split_to(len).freeze());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_media::rtp::rfc4571_frame;

    fn rtp(seq: u16, n: usize) -> Vec<u8> {
        let mut v = vec![0x80, 96];
        v.extend_from_slice(&seq.to_be_bytes());
        v.resize(n, 0x78);
        v
    }

    /// The gb28181-rs 0.14 framing (`frame_rtp_over_tcp`): `$`, channel 0, length, packet.
    fn dollar(p: &[u8]) -> Vec<u8> {
        let mut v = vec![b'$', 0];
        v.extend_from_slice(&(p.len() as u16).to_be_bytes());
        v.extend_from_slice(p);
        v
    }

    fn run(stream: &[u8], chunk: usize) -> (Vec<Bytes>, TcpRtpFramer) {
        let mut f = TcpRtpFramer::new();
        let mut out = Vec::new();
        for c in stream.chunks(chunk) {
            f.push(c);
            while let Some(p) = f.next_packet() {
                out.push(p);
            }
        }
        (out, f)
    }

    #[test]
    fn rfc4571_streams_decode_in_any_chunking() {
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| rtp(i, 12 + 300 * i as usize)).collect();
        let stream: Vec<u8> = pkts
            .iter()
            .flat_map(|p| rfc4571_frame(p).unwrap().to_vec())
            .collect();
        for chunk in [1, 2, 3, 7, 1000] {
            let (out, f) = run(&stream, chunk);
            assert_eq!(f.framing(), Some(TcpRtpFraming::Rfc4571));
            assert_eq!(out.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), pkts);
            assert_eq!(f.quirk(), None);
            assert_eq!(f.stats().resyncs, 0);
        }
    }

    #[test]
    fn quirk_rtp_over_tcp_dollar_framing_gb28181_rs() {
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| rtp(i, 1412)).collect();
        let mut stream: Vec<u8> = pkts.iter().flat_map(|p| dollar(p)).collect();
        for chunk in [1, 4, 5, 999] {
            let (out, f) = run(&stream, chunk);
            assert_eq!(f.framing(), Some(TcpRtpFraming::Interleaved));
            assert_eq!(f.quirk(), Some(Quirk::RtpOverTcpDollarFraming));
            assert_eq!(out.len(), 5);
            assert_eq!(out[3].to_vec(), pkts[3]);
            assert_eq!(f.stats().resyncs, 0);
        }
        // Garbage in the middle is skipped and the next packet found.
        let at = stream.len() / 2;
        stream.splice(at..at, [0xde, 0xad, 0xbe, 0xef, 0x00].iter().copied());
        let (out, f) = run(&stream, 333);
        assert!(f.stats().resyncs >= 1);
        assert!(out.len() >= 4, "lost at most the packet the garbage was in");
        assert!(out.iter().all(|p| p[0] >> 6 == 2));
    }

    #[test]
    fn short_streams_wait_for_the_sniff() {
        let mut f = TcpRtpFramer::new();
        f.push(&[b'$', 0]);
        assert_eq!(f.next_packet(), None);
        assert_eq!(f.framing(), None);
    }
}
