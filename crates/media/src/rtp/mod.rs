//! RTP (RFC 3550) for GB/T 28181 media: header parsing, SSRC filtering, reordering, frame
//! assembly, RFC 4571 framing over TCP, and packetizing PS for the device simulator.
//!
//! A GB/T 28181 receive path is: datagrams (or [`Rfc4571Decoder`] packets) →
//! [`RtpReceiver`] (parse, SSRC filter, [`ReorderBuffer`]) → payloads in order, with losses
//! reported → [`crate::ps::PsDemuxer`] (told about each loss via `discontinuity`).

mod assembler;
mod packet;
mod packetizer;
mod reorder;
mod rfc4571;

pub use assembler::{FrameAssembler, RtpFrame};
pub use packet::{write_header, RtpError, RtpHeader, RtpPacket};
pub use packetizer::PsRtpPacketizer;
pub use reorder::{ReorderBuffer, ReorderConfig, ReorderStats, Reordered};
pub use rfc4571::{frame as rfc4571_frame, Rfc4571Decoder, Rfc4571Stats, TcpFraming};

use bytes::Bytes;

/// Which SSRC a receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsrcPolicy {
    /// Only this SSRC (GB/T 28181: the value of the SDP `y=` line).
    Expect(u32),
    /// Lock onto the SSRC of the first valid packet.
    LearnFirst,
}

/// Why [`RtpReceiver::receive`] rejected a datagram. Rejections are also counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// Not a parsable RTP packet.
    #[error(transparent)]
    Invalid(#[from] RtpError),
    /// The SSRC is not the expected one (stray stream, or a device that ignores the SDP
    /// `y=` value).
    #[error("RTP SSRC {found:#010x} rejected, expected {expected:#010x}")]
    SsrcMismatch {
        /// The SSRC in the packet.
        found: u32,
        /// The accepted SSRC.
        expected: u32,
    },
    /// The payload type is not the expected one.
    #[error("RTP payload type {found} rejected, expected {expected}")]
    PayloadTypeMismatch {
        /// The payload type in the packet.
        found: u8,
        /// The accepted payload type.
        expected: u8,
    },
    /// Too many consecutive packets were rejected: the session should be torn down.
    #[error("{count} consecutive RTP packets rejected (limit {limit}), last: {last}")]
    TooManyRejected {
        /// Consecutive rejections.
        count: u32,
        /// The configured limit.
        limit: u32,
        /// The last rejection.
        last: Box<ReceiveError>,
    },
}

/// Counters of a receiver (the reorder buffer has its own: [`RtpReceiver::reorder_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Datagrams that were not RTP.
    pub invalid: u64,
    /// Packets with another SSRC.
    pub ssrc_mismatches: u64,
    /// Packets with another payload type.
    pub payload_type_mismatches: u64,
}

/// Settings of an [`RtpReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Accepted SSRC.
    pub ssrc: SsrcPolicy,
    /// Accepted payload type, if any is enforced (GB/T 28181 PS uses 96).
    pub payload_type: Option<u8>,
    /// Reordering.
    pub reorder: ReorderConfig,
    /// After this many consecutive rejections [`RtpReceiver::receive`] returns
    /// [`ReceiveError::TooManyRejected`] (SRS uses 16 for the PS path).
    pub max_consecutive_rejects: u32,
}

impl ReceiverConfig {
    /// GB/T 28181 defaults for a session whose SDP said `y=<ssrc>`.
    pub fn gb28181(ssrc: u32) -> Self {
        Self {
            ssrc: SsrcPolicy::Expect(ssrc),
            payload_type: None,
            reorder: ReorderConfig::default(),
            max_consecutive_rejects: 16,
        }
    }
}

/// Parse + SSRC/payload-type filter + reorder buffer.
#[derive(Debug)]
pub struct RtpReceiver {
    cfg: ReceiverConfig,
    ssrc: Option<u32>,
    reorder: ReorderBuffer,
    stats: ReceiverStats,
    consecutive_rejects: u32,
}

impl RtpReceiver {
    /// A receiver.
    pub fn new(cfg: ReceiverConfig) -> Self {
        let ssrc = match cfg.ssrc {
            SsrcPolicy::Expect(s) => Some(s),
            SsrcPolicy::LearnFirst => None,
        };
        Self {
            cfg,
            ssrc,
            reorder: ReorderBuffer::new(cfg.reorder),
            stats: ReceiverStats::default(),
            consecutive_rejects: 0,
        }
    }

    /// Takes one datagram (or RFC 4571 packet). Accepted packets go to the reorder buffer;
    /// collect the output with [`RtpReceiver::pop`].
    pub fn receive(&mut self, datagram: Bytes) -> Result<(), ReceiveError> {
        match self.check(datagram) {
            Ok(pkt) => {
                self.consecutive_rejects = 0;
                self.reorder.push(pkt);
                Ok(())
            }
            Err(e) => {
                self.consecutive_rejects = self.consecutive_rejects.saturating_add(1);
                if self.consecutive_rejects > self.cfg.max_consecutive_rejects {
                    return Err(ReceiveError::TooManyRejected {
                        count: self.consecutive_rejects,
                        limit: self.cfg.max_consecutive_rejects,
                        last: Box::new(e),
                    });
                }
                Err(e)
            }
        }
    }

    fn check(&mut self, datagram: Bytes) -> Result<RtpPacket, ReceiveError> {
        let pkt = RtpPacket::parse(datagram).inspect_err(|_| self.stats.invalid += 1)?;
        let found = pkt.header.ssrc;
        match self.ssrc {
            Some(expected) if expected != found => {
                self.stats.ssrc_mismatches += 1;
                return Err(ReceiveError::SsrcMismatch { found, expected });
            }
            Some(_) => {}
            None => self.ssrc = Some(found),
        }
        if let Some(expected) = self.cfg.payload_type {
            if pkt.header.payload_type != expected {
                self.stats.payload_type_mismatches += 1;
                return Err(ReceiveError::PayloadTypeMismatch {
                    found: pkt.header.payload_type,
                    expected,
                });
            }
        }
        Ok(pkt)
    }

    /// Next in-order packet or loss report.
    pub fn pop(&mut self) -> Option<Reordered> {
        self.reorder.pop()
    }

    /// See [`ReorderBuffer::skip_gap`].
    pub fn skip_gap(&mut self) {
        self.reorder.skip_gap();
    }

    /// See [`ReorderBuffer::flush`].
    pub fn flush(&mut self) {
        self.reorder.flush();
    }

    /// The SSRC being accepted (learned or configured).
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// Rejection counters.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Reorder counters (loss, duplicates, late, ...).
    pub fn reorder_stats(&self) -> ReorderStats {
        self.reorder.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn datagram(ssrc: u32, seq: u16) -> Bytes {
        let mut b = BytesMut::new();
        write_header(&mut b, false, 96, seq, 0, ssrc);
        b.extend_from_slice(b"ps");
        b.freeze()
    }

    #[test]
    fn ssrc_mismatch_is_counted_and_rejected() {
        let mut r = RtpReceiver::new(ReceiverConfig::gb28181(0x0BEB_DFA1));
        assert!(r.receive(datagram(0x0BEB_DFA1, 1)).is_ok());
        assert_eq!(
            r.receive(datagram(7, 2)),
            Err(ReceiveError::SsrcMismatch {
                found: 7,
                expected: 0x0BEB_DFA1
            })
        );
        assert_eq!(r.stats().ssrc_mismatches, 1);
        assert!(matches!(r.pop(), Some(Reordered::Packet(_))));
        assert!(r.pop().is_none());
    }

    #[test]
    fn learns_first_ssrc() {
        let mut r = RtpReceiver::new(ReceiverConfig {
            ssrc: SsrcPolicy::LearnFirst,
            ..ReceiverConfig::gb28181(0)
        });
        r.receive(datagram(42, 1)).unwrap();
        assert_eq!(r.ssrc(), Some(42));
        assert!(r.receive(datagram(43, 2)).is_err());
    }
}
