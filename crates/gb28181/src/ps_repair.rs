//! Repair of a PES header layout some device stacks get wrong, applied to the program stream
//! before [`vigil_media::ps::PsDemuxer`], sans-IO.
//!
//! An MPEG-2 PES header (ISO/IEC 13818-1 2.4.3.6) after `00 00 01 sid LL LL` is: a flags byte
//! starting with the `'10'` marker (`0x80`), a flags byte whose top bits are
//! `PTS_DTS_flags`, `PES_header_data_length`, then the PTS/DTS. The `gb28181-rs` 0.14 device
//! library ([`Quirk::PesHeaderWithoutMarkerByte`]; `src/ps.rs` `build_pes_packet`) omits the
//! first flags byte and writes a `0x00` filler after the PTS/DTS instead, so the header has the
//! right total length but every field is one byte early:
//!
//! ```text
//! standard:    00 00 01 E0 LL LL 80 C0 0A [PTS 5] [DTS 5] payload…
//! gb28181-rs:  00 00 01 E0 LL LL C0 0A [PTS 5] [DTS 5] 00 payload…
//! continuation: 00 00 01 E0 LL LL 00 00 00 payload…   (standard: 80 00 00)
//! ```
//!
//! A standard demuxer rejects every such PES (the marker is missing), so no frame ever comes
//! out. [`PesRepair`] recognises exactly this shape — first byte with PTS_DTS_flags in its top
//! bits and zero below, a header length matching those flags, PTS/DTS prefix nibbles in
//! place, and the `0x00` filler — and rewrites it to the standard layout of the same length
//! (`PES_packet_length` stays right). Standard headers never match: their first flags byte
//! carries the `'10'` marker. Start codes cannot occur inside H.264/H.265 elementary stream
//! data (emulation prevention), so scanning for `00 00 01 sid` finds PES starts only.
//!
//! This belongs in the PS demuxer of `vigil-media` as a policy; it lives here until it moves.

use std::borrow::Cow;

use crate::quirks::Quirk;

/// Bytes from a start code to the end of the longest header we rewrite
/// (`00 00 01 sid LL LL` + 2 + 10 PTS/DTS bytes + filler).
const SPAN: usize = 6 + 2 + 10 + 1;

fn is_pes_stream(sid: u8) -> bool {
    (0xC0..=0xEF).contains(&sid)
}

/// Whether the header at `h` (starting at the start code) has the gb28181-rs shape; `h` holds
/// at least [`SPAN`] bytes or the whole rest of the stream.
fn broken_shape(h: &[u8]) -> Option<usize> {
    let flags = *h.get(6)?;
    let len = usize::from(*h.get(7)?);
    if flags & 0x3f != 0 {
        return None;
    }
    let (want, prefixes): (usize, &[u8]) = match flags >> 6 {
        0b00 => (0, &[]),
        0b10 => (5, &[0x2]),
        0b11 => (10, &[0x3, 0x1]),
        _ => return None,
    };
    if len != want {
        return None;
    }
    for (k, p) in prefixes.iter().enumerate() {
        let b = *h.get(8 + 5 * k)?;
        // Prefix nibble and the first marker bit of the 5-byte timestamp.
        if b >> 4 != *p || b & 1 != 1 {
            return None;
        }
    }
    (*h.get(8 + len)? == 0).then_some(len)
}

/// Streaming repair of gb28181-rs PES headers. Feed payload chunks in order; call
/// [`PesRepair::discontinuity`] when bytes were lost.
#[derive(Debug, Default)]
pub struct PesRepair {
    /// Bytes held back because a header may straddle the next chunk.
    tail: Vec<u8>,
    repaired: u64,
}

impl PesRepair {
    /// A repairer at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Headers rewritten so far.
    pub fn repaired(&self) -> u64 {
        self.repaired
    }

    /// The quirk, once it was seen.
    pub fn quirk(&self) -> Option<Quirk> {
        (self.repaired > 0).then_some(Quirk::PesHeaderWithoutMarkerByte)
    }

    /// Bytes were lost: the held-back tail is passed on as it is.
    pub fn discontinuity(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tail)
    }

    /// Processes the next chunk; returns the bytes to hand to the demuxer (possibly fewer or
    /// more than the input: a possible partial header at the end is held back until the next
    /// chunk).
    pub fn process<'a>(&mut self, input: &'a [u8]) -> Cow<'a, [u8]> {
        if self.tail.is_empty() && !needs_work(input) {
            return Cow::Borrowed(input);
        }
        let mut buf = std::mem::take(&mut self.tail);
        buf.extend_from_slice(input);
        let n = buf.len();
        let mut i = 0;
        let mut hold_from = n;
        while i + 3 < n {
            if buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1 && is_pes_stream(buf[i + 3]) {
                if n - i < SPAN {
                    hold_from = i;
                    break;
                }
                if let Some(len) = broken_shape(&buf[i..]) {
                    // [flags2 len ts… 00] → [80 flags2 len ts…]
                    let h = i + 6;
                    buf.copy_within(h..h + 2 + len, h + 1);
                    buf[h] = 0x80;
                    self.repaired += 1;
                }
                i += 4;
            } else {
                i += 1;
            }
        }
        // A start code cut by the chunk boundary (00 | 00 00 | 00 00 01) waits for the rest.
        if hold_from == n {
            for k in (n.saturating_sub(3)..n).rev() {
                let rest = &buf[k..];
                let prefix = [0u8, 0, 1];
                if rest.iter().zip(prefix.iter()).all(|(a, b)| a == b) {
                    hold_from = k;
                }
            }
        }
        self.tail = buf.split_off(hold_from);
        Cow::Owned(buf)
    }
}

/// Whether a chunk contains (or ends with part of) a PES start code.
fn needs_work(input: &[u8]) -> bool {
    let n = input.len();
    if n >= 1 && input[n - 1] == 0 {
        return true;
    }
    input
        .windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && is_pes_stream(w[3]))
        || (n >= 3 && input[n - 3] == 0 && input[n - 2] == 0 && input[n - 1] == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a PS frame muxed by gb28181-rs 0.14.1 `mux_h264_to_ps` (key frame of
    /// the 720p demo clip, PTS = DTS = 0): pack header, its 11-byte PSM, then the broken PES
    /// header and the start of the SPS (testdata/interop/SOURCES.md).
    const BROKEN: &[u8] = &[
        0x00, 0x00, 0x01, 0xba, 0x44, 0x00, 0x04, 0x00, 0x04, 0x01, 0x00, 0x9c, 0x43, 0xf8, 0x00,
        0x00, 0x01, 0xbb, 0x00, 0x0b, 0x01, 0x00, 0x00, 0x00, 0x04, 0x1b, 0xe0, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0xe0, 0x1b, 0xc9, 0xc0, 0x0a, 0x31, 0x00, 0x01, 0x00, 0x01, 0x11,
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x1f,
    ];

    fn fixed() -> Vec<u8> {
        let mut v = BROKEN.to_vec();
        // 80 C0 0A [PTS] [DTS], filler dropped: same length.
        let at = 37;
        v.splice(
            at..at + 13,
            [
                0x80, 0xc0, 0x0a, 0x31, 0x00, 0x01, 0x00, 0x01, 0x11, 0x00, 0x01, 0x00, 0x01,
            ],
        );
        v
    }

    fn run(input: &[u8], chunk: usize) -> (Vec<u8>, u64) {
        let mut r = PesRepair::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            out.extend_from_slice(&r.process(c));
        }
        out.extend(r.discontinuity());
        (out, r.repaired())
    }

    #[test]
    fn quirk_pes_header_without_marker_byte_gb28181_rs() {
        for chunk in [1, 2, 3, 5, 19, 40, 1000] {
            let (out, n) = run(BROKEN, chunk);
            assert_eq!(out, fixed(), "chunk {chunk}");
            assert_eq!(n, 1);
        }
        // A continuation PES without PTS: 00 00 00 → 80 00 00.
        let cont = [
            0, 0, 1, 0xe0, 0x00, 0x08, 0x00, 0x00, 0x00, 0x65, 0x88, 0x84, 0x00, 0x21,
        ];
        let mut padded = cont.to_vec();
        padded.extend_from_slice(&[0x42; 20]);
        let (out, n) = run(&padded, 7);
        assert_eq!(&out[..9], &[0, 0, 1, 0xe0, 0x00, 0x08, 0x80, 0x00, 0x00]);
        assert_eq!(out.len(), padded.len());
        assert_eq!(n, 1);
    }

    #[test]
    fn standard_streams_pass_untouched() {
        let good = fixed();
        for chunk in [1, 3, 1000] {
            let (out, n) = run(&good, chunk);
            assert_eq!(out, good);
            assert_eq!(n, 0);
        }
        let mut r = PesRepair::new();
        let plain = [0x41u8; 100];
        assert!(matches!(r.process(&plain), Cow::Borrowed(_)));
    }
}
