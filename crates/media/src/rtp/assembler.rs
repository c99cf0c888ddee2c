//! Grouping in-order RTP packets into frames (access units) by timestamp.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::{Reordered, RtpPacket};

/// The payloads of the packets that share one RTP timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFrame {
    /// The RTP timestamp shared by the packets.
    pub timestamp: u32,
    /// Sequence number of the first packet.
    pub first_sequence: u16,
    /// Whether the frame ended with a marker bit (otherwise it ended by a timestamp change or
    /// a flush).
    pub marker: bool,
    /// False when packets may be missing from this frame (a loss was reported inside it or
    /// just before it, or it was cut at the size limit).
    pub complete: bool,
    /// The payloads in order (zero-copy slices of the datagrams).
    pub payloads: Vec<Bytes>,
}

impl RtpFrame {
    /// Total payload bytes.
    pub fn len(&self) -> usize {
        self.payloads.iter().map(Bytes::len).sum()
    }

    /// Whether there is no payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payloads in one buffer (copies unless there is a single payload).
    pub fn concat(&self) -> Bytes {
        if let [one] = self.payloads.as_slice() {
            return one.clone();
        }
        let mut b = BytesMut::with_capacity(self.len());
        for p in &self.payloads {
            b.put_slice(p);
        }
        b.freeze()
    }
}

/// Groups packets into frames: a frame ends when the timestamp changes, and early when a packet
/// carries the marker bit (a hint: many GB/T 28181 devices never set it, so the timestamp
/// change is what is relied on).
#[derive(Debug)]
pub struct FrameAssembler {
    current: Option<RtpFrame>,
    current_len: usize,
    max_frame_bytes: usize,
    /// A loss was reported while no frame was open: the next frame may lack its start.
    loss_before_next: bool,
    out: VecDeque<RtpFrame>,
}

impl FrameAssembler {
    /// An assembler that cuts frames larger than `max_frame_bytes` (marked incomplete), so that
    /// a stream without timestamp changes cannot grow memory without bound.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            current: None,
            current_len: 0,
            max_frame_bytes: max_frame_bytes.max(1),
            loss_before_next: false,
            out: VecDeque::new(),
        }
    }

    /// Feeds one item from a [`super::ReorderBuffer`].
    pub fn push(&mut self, item: Reordered) {
        match item {
            Reordered::Packet(p) => self.push_packet(p),
            Reordered::Lost { .. } => self.lost(),
        }
    }

    /// Feeds a packet (in sequence order).
    pub fn push_packet(&mut self, pkt: RtpPacket) {
        let ts = pkt.header.timestamp;
        if self.current.as_ref().is_some_and(|c| c.timestamp != ts) {
            self.emit(false);
        }
        if self.current.is_none() {
            let loss_before = std::mem::take(&mut self.loss_before_next);
            self.current = Some(RtpFrame {
                timestamp: ts,
                first_sequence: pkt.header.sequence_number,
                marker: false,
                complete: !loss_before,
                payloads: Vec::new(),
            });
        }
        let Some(frame) = self.current.as_mut() else {
            return;
        };
        self.current_len += pkt.payload.len();
        frame.payloads.push(pkt.payload);
        if pkt.header.marker {
            self.emit(true);
        } else if self.current_len > self.max_frame_bytes {
            if let Some(c) = self.current.as_mut() {
                c.complete = false;
            }
            self.emit(false);
        }
    }

    /// Reports lost packets at this point of the sequence. Both the open frame and the next
    /// one are marked incomplete, since the missing packets may have ended one and started the
    /// other.
    pub fn lost(&mut self) {
        if let Some(c) = self.current.as_mut() {
            c.complete = false;
        }
        self.loss_before_next = true;
    }

    /// Ends the open frame (end of stream, or the caller knows the frame is over).
    pub fn flush(&mut self) {
        if self.current.is_some() {
            self.emit(false);
        }
    }

    /// Next finished frame.
    pub fn pop(&mut self) -> Option<RtpFrame> {
        self.out.pop_front()
    }

    fn emit(&mut self, marker: bool) {
        if let Some(mut f) = self.current.take() {
            f.marker = marker;
            self.out.push_back(f);
        }
        self.current_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn pkt(seq: u16, ts: u32, marker: bool, payload: &'static [u8]) -> RtpPacket {
        RtpPacket {
            header: RtpHeader {
                marker,
                payload_type: 96,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 1,
                csrcs: Vec::new(),
                extension: None,
                padding: 0,
            },
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn splits_on_timestamp_and_marker() {
        let mut a = FrameAssembler::new(1 << 20);
        a.push_packet(pkt(1, 0, false, b"ab"));
        a.push_packet(pkt(2, 0, false, b"cd"));
        a.push_packet(pkt(3, 3600, true, b"ef"));
        let f1 = a.pop().unwrap();
        assert_eq!((f1.timestamp, f1.marker, f1.complete), (0, false, true));
        assert_eq!(&f1.concat()[..], b"abcd");
        let f2 = a.pop().unwrap();
        assert_eq!(
            (f2.timestamp, f2.marker, f2.first_sequence),
            (3600, true, 3)
        );
        assert!(a.pop().is_none());
    }

    #[test]
    fn loss_marks_frames_incomplete() {
        let mut a = FrameAssembler::new(1 << 20);
        a.push_packet(pkt(1, 0, false, b"a"));
        a.push(Reordered::Lost { first: 2, count: 1 });
        a.push_packet(pkt(3, 0, false, b"c"));
        a.push_packet(pkt(4, 3600, false, b"d"));
        a.push_packet(pkt(5, 7200, false, b"e"));
        a.flush();
        let v: Vec<bool> = std::iter::from_fn(|| a.pop()).map(|f| f.complete).collect();
        assert_eq!(v, [false, false, true]);
    }

    #[test]
    fn oversize_frames_are_cut() {
        let mut a = FrameAssembler::new(3);
        a.push_packet(pkt(1, 0, false, b"ab"));
        a.push_packet(pkt(2, 0, false, b"cd"));
        let f = a.pop().unwrap();
        assert!(!f.complete);
        assert_eq!(f.len(), 4);
    }
}
