//! Reordering RTP packets by sequence number, with loss, duplicate and late accounting.

use std::collections::VecDeque;

use super::RtpPacket;

/// Reorder buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorderConfig {
    /// How many sequence numbers ahead of the next expected one a packet may arrive before the
    /// missing ones are declared lost. Larger windows tolerate more reordering but delay
    /// delivery after a real loss. Default 64 (well under a second of 2 Mbit/s video).
    pub window: u16,
    /// A forward jump larger than this is treated as a possible source restart (RFC 3550
    /// appendix A.1 `MAX_DROPOUT`). Default 3000.
    pub max_dropout: u16,
    /// A packet further behind than this is treated as a possible source restart rather than
    /// a late packet (`MAX_MISORDER`). Default 100.
    pub max_misorder: u16,
}

impl Default for ReorderConfig {
    fn default() -> Self {
        Self {
            window: 64,
            max_dropout: 3000,
            max_misorder: 100,
        }
    }
}

/// Counters of a reorder buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets delivered in order.
    pub delivered: u64,
    /// Sequence numbers never received (declared lost).
    pub lost: u64,
    /// Packets received twice (dropped).
    pub duplicates: u64,
    /// Packets that arrived after their sequence number was declared lost (dropped).
    pub late: u64,
    /// Packets that arrived out of order but in time (filled a gap).
    pub reordered: u64,
    /// Times the buffer restarted on a new sequence (source restart, RFC 3550 A.1).
    pub resyncs: u64,
    /// Packets dropped as strays while a possible restart was being confirmed.
    pub strays: u64,
}

/// What the reorder buffer delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reordered {
    /// The next packet in sequence order.
    Packet(RtpPacket),
    /// `count` sequence numbers starting at `first` were lost; the stream is discontinuous
    /// here.
    Lost {
        /// First missing sequence number.
        first: u16,
        /// Number of consecutive missing sequence numbers.
        count: u32,
    },
}

const HISTORY: usize = 1024;

/// Reorders packets by sequence number (wrap-around safe). Push packets as they arrive, pop
/// [`Reordered`] items in order.
///
/// Packets are released as soon as they are in sequence. A gap is declared lost when a packet
/// `window` or more ahead arrives, or when the caller gives up waiting with
/// [`ReorderBuffer::skip_gap`] (the buffer is sans-IO and has no clock).
#[derive(Debug)]
pub struct ReorderBuffer {
    cfg: ReorderConfig,
    /// Next sequence number to deliver; `None` before the first packet.
    next: Option<u16>,
    /// `slots[i]` holds sequence `next + i`.
    slots: VecDeque<Option<RtpPacket>>,
    /// Delivered sequence numbers, by `seq % HISTORY`, for duplicate detection.
    delivered: [u64; HISTORY / 64],
    /// RFC 3550 A.1 `bad_seq`: a far-off packet must be followed by its successor to resync.
    bad_seq: Option<u16>,
    out: VecDeque<Reordered>,
    stats: ReorderStats,
}

impl ReorderBuffer {
    /// A buffer with the given settings (window at least 1).
    pub fn new(mut cfg: ReorderConfig) -> Self {
        cfg.window = cfg.window.clamp(1, (HISTORY / 2) as u16);
        Self {
            cfg,
            next: None,
            slots: VecDeque::new(),
            delivered: [0; HISTORY / 64],
            bad_seq: None,
            out: VecDeque::new(),
            stats: ReorderStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Packets held waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Next delivered item, if any.
    pub fn pop(&mut self) -> Option<Reordered> {
        self.out.pop_front()
    }

    /// Adds a received packet.
    pub fn push(&mut self, pkt: RtpPacket) {
        self.stats.received += 1;
        let seq = pkt.header.sequence_number;
        let Some(next) = self.next else {
            self.next = Some(seq);
            self.insert(0, pkt);
            return;
        };
        let distance = seq.wrapping_sub(next) as i16;
        if distance < 0 {
            let behind = distance.unsigned_abs();
            if usize::from(behind) < HISTORY && self.was_delivered(seq) {
                self.stats.duplicates += 1;
            } else if behind <= self.cfg.max_misorder {
                self.stats.late += 1;
            } else {
                self.maybe_restart(pkt);
            }
            return;
        }
        let ahead = distance as u16;
        if ahead > self.cfg.max_dropout {
            self.maybe_restart(pkt);
            return;
        }
        self.bad_seq = None;
        while ahead as usize - self.advanced_since(next) >= usize::from(self.cfg.window) {
            // Make room: the oldest slot is either delivered or declared lost.
            self.release_front();
        }
        let index = ahead as usize - self.advanced_since(next);
        self.insert(index, pkt);
    }

    /// Gives up on the current gap: declares the missing sequence numbers before the next held
    /// packet lost and delivers what follows. Call it when a packet has been awaited too long.
    pub fn skip_gap(&mut self) {
        if !self.slots.iter().any(Option::is_some) {
            return;
        }
        while matches!(self.slots.front(), Some(None)) {
            self.release_front();
        }
        self.drain_ready();
    }

    /// Delivers everything held, declaring every gap lost (end of stream).
    pub fn flush(&mut self) {
        while !self.slots.is_empty() {
            self.release_front();
        }
    }

    /// How far `next` moved since `old_next` (during the current `push`).
    fn advanced_since(&self, old_next: u16) -> usize {
        usize::from(self.next.unwrap_or(old_next).wrapping_sub(old_next))
    }

    fn insert(&mut self, index: usize, pkt: RtpPacket) {
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        } else if self.slots[index].is_some() {
            self.stats.duplicates += 1;
            return;
        } else if index + 1 < self.slots.len() {
            // A later packet is already here: this one filled a gap.
            self.stats.reordered += 1;
        }
        self.slots[index] = Some(pkt);
        self.drain_ready();
    }

    fn drain_ready(&mut self) {
        while matches!(self.slots.front(), Some(Some(_))) {
            self.release_front();
        }
    }

    /// Delivers the front slot, or declares its sequence number lost.
    fn release_front(&mut self) {
        let Some(next) = self.next else { return };
        match self.slots.pop_front() {
            Some(Some(pkt)) => {
                self.mark_delivered(next, true);
                self.stats.delivered += 1;
                self.out.push_back(Reordered::Packet(pkt));
            }
            Some(None) | None => {
                self.mark_delivered(next, false);
                self.stats.lost += 1;
                match self.out.back_mut() {
                    Some(Reordered::Lost { first, count })
                        if first.wrapping_add(*count as u16) == next =>
                    {
                        *count += 1
                    }
                    _ => self.out.push_back(Reordered::Lost {
                        first: next,
                        count: 1,
                    }),
                }
            }
        }
        self.next = Some(next.wrapping_add(1));
    }

    /// RFC 3550 A.1: a packet far from the expected sequence is dropped unless it follows the
    /// previous such packet, in which case the source restarted and we follow it.
    fn maybe_restart(&mut self, pkt: RtpPacket) {
        let seq = pkt.header.sequence_number;
        if self.bad_seq == Some(seq) {
            self.flush();
            self.stats.resyncs += 1;
            self.delivered = [0; HISTORY / 64];
            self.bad_seq = None;
            self.next = Some(seq);
            self.insert(0, pkt);
        } else {
            self.stats.strays += 1;
            self.bad_seq = Some(seq.wrapping_add(1));
        }
    }

    fn mark_delivered(&mut self, seq: u16, delivered: bool) {
        let i = usize::from(seq) % HISTORY;
        if delivered {
            self.delivered[i / 64] |= 1 << (i % 64);
        } else {
            self.delivered[i / 64] &= !(1 << (i % 64));
        }
    }

    fn was_delivered(&self, seq: u16) -> bool {
        let i = usize::from(seq) % HISTORY;
        self.delivered[i / 64] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;
    use bytes::Bytes;

    fn pkt(seq: u16) -> RtpPacket {
        RtpPacket {
            header: RtpHeader {
                marker: false,
                payload_type: 96,
                sequence_number: seq,
                timestamp: 0,
                ssrc: 1,
                csrcs: Vec::new(),
                extension: None,
                padding: 0,
            },
            payload: Bytes::new(),
        }
    }

    fn drain(b: &mut ReorderBuffer) -> Vec<String> {
        std::iter::from_fn(|| b.pop())
            .map(|r| match r {
                Reordered::Packet(p) => p.header.sequence_number.to_string(),
                Reordered::Lost { first, count } => format!("lost {first}+{count}"),
            })
            .collect()
    }

    fn buffer(window: u16) -> ReorderBuffer {
        ReorderBuffer::new(ReorderConfig {
            window,
            ..ReorderConfig::default()
        })
    }

    #[test]
    fn reorders_across_wraparound() {
        let mut b = buffer(8);
        for s in [65534, 0, 65535, 1] {
            b.push(pkt(s));
        }
        assert_eq!(drain(&mut b), ["65534", "65535", "0", "1"]);
        assert_eq!(b.stats().reordered, 1);
    }

    #[test]
    fn declares_loss_when_window_is_exceeded() {
        let mut b = buffer(4);
        b.push(pkt(10));
        b.push(pkt(12));
        b.push(pkt(13));
        assert_eq!(drain(&mut b), ["10"]);
        b.push(pkt(15)); // 11 is now 4 behind the newest: give up on it
        assert_eq!(drain(&mut b), ["lost 11+1", "12", "13"]);
        b.push(pkt(11)); // too late
        b.push(pkt(13)); // already delivered
        b.push(pkt(15)); // already held
        assert_eq!(drain(&mut b), Vec::<String>::new());
        let s = b.stats();
        assert_eq!((s.lost, s.late, s.duplicates), (1, 1, 2));
        b.skip_gap();
        assert_eq!(drain(&mut b), ["lost 14+1", "15"]);
    }

    #[test]
    fn source_restart_needs_two_sequential_packets() {
        let mut b = buffer(8);
        b.push(pkt(100));
        b.push(pkt(40_000)); // stray
        b.push(pkt(101));
        b.push(pkt(50_000));
        b.push(pkt(50_001)); // confirms the restart
        b.push(pkt(50_002));
        assert_eq!(drain(&mut b), ["100", "101", "50001", "50002"]);
        let s = b.stats();
        assert_eq!((s.strays, s.resyncs), (2, 1));
    }

    #[test]
    fn flush_reports_gaps() {
        let mut b = buffer(16);
        b.push(pkt(1));
        b.push(pkt(4));
        b.flush();
        assert_eq!(drain(&mut b), ["1", "lost 2+2", "4"]);
    }
}
