//! Packetizing an MPEG-PS byte stream into RTP (GB/T 28181 appendix C: PT 96, 90 kHz
//! timestamps, one timestamp per frame, marker on the last packet of a frame).

use bytes::{Bytes, BytesMut};

use super::packet::write_header;

/// Splits PS frames into RTP packets no larger than `mtu` bytes (RTP header included).
#[derive(Debug, Clone)]
pub struct PsRtpPacketizer {
    ssrc: u32,
    payload_type: u8,
    next_sequence: u16,
    max_payload: usize,
}

impl PsRtpPacketizer {
    /// Smallest MTU accepted; smaller values are raised to it.
    pub const MIN_MTU: usize = 64;

    /// A packetizer. `mtu` is the largest RTP packet (typically 1400 for UDP, to stay below the
    /// Ethernet MTU with IP/UDP headers).
    pub fn new(ssrc: u32, payload_type: u8, first_sequence: u16, mtu: usize) -> Self {
        Self {
            ssrc,
            payload_type,
            next_sequence: first_sequence,
            max_payload: mtu.max(Self::MIN_MTU) - 12,
        }
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// Packetizes one PS frame (the output of [`crate::ps::PsMuxer`] for one access unit) with
    /// the given 90 kHz timestamp, appending packets to `out`. The last packet has the marker
    /// bit. An empty frame produces no packet.
    pub fn packetize(&mut self, ps_frame: &[u8], timestamp: u32, out: &mut Vec<Bytes>) {
        let mut chunks = ps_frame.chunks(self.max_payload).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mut b = BytesMut::with_capacity(12 + chunk.len());
            write_header(
                &mut b,
                last,
                self.payload_type,
                self.next_sequence,
                timestamp,
                self.ssrc,
            );
            b.extend_from_slice(chunk);
            out.push(b.freeze());
            self.next_sequence = self.next_sequence.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    #[test]
    fn fragments_to_mtu_with_marker_on_last() {
        let mut p = PsRtpPacketizer::new(0x0BEB_DFA1, 96, 65535, 100);
        let frame = vec![0x78u8; 250];
        let mut out = Vec::new();
        p.packetize(&frame, 3600, &mut out);
        assert_eq!(out.len(), 3);
        let parsed: Vec<_> = out
            .iter()
            .map(|b| RtpPacket::parse(b.clone()).unwrap())
            .collect();
        assert_eq!(
            parsed
                .iter()
                .map(|p| p.header.sequence_number)
                .collect::<Vec<_>>(),
            [65535, 0, 1]
        );
        assert_eq!(
            parsed.iter().map(|p| p.header.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert!(out.iter().all(|b| b.len() <= 100));
        assert_eq!(parsed.iter().map(|p| p.payload.len()).sum::<usize>(), 250);
        p.packetize(&[], 0, &mut out);
        assert_eq!(out.len(), 3);
    }
}
