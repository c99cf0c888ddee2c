//! The two boxes the store adds around each fragment (`moof` + `mdat` come from
//! `vigil_media::fmp4`):
//!
//! ```text
//! prft (32 B) │ moof │ mdat │ free (20 B trailer)
//! ```
//!
//! - `prft` (ProducerReferenceTimeBox, ISO/IEC 14496-12 §8.16.5, version 1, flags 8 =
//!   "arbitrary consistent clock"): the wall-clock time of the fragment's first sample as a
//!   64-bit NTP timestamp, and that sample's media time (the fragment's `tfdt`). This is what
//!   makes a segment file self-describing in wall-clock time; players ignore or expose it.
//! - `free` trailer: magic `vgl1`, CRC-32 (IEEE) of every byte from the `prft` to the end of
//!   the `mdat`, and the length of that span. A fragment without its trailer, or with a
//!   mismatching one, was not completely written: recovery cuts the file before it. `free`
//!   boxes are ignored by every MP4 reader, so the segment stays a plain fMP4 file.

use crate::time;

/// Size of the `prft` box the store writes.
pub const PRFT_LEN: usize = 32;
/// Size of the trailer box.
pub const TRAILER_LEN: usize = 20;

const TRAILER_MAGIC: &[u8; 4] = b"vgl1";
const PRFT_FLAGS: u32 = 8;

/// A `prft` box for a fragment whose first sample is at wall clock `wall_90k` and media time
/// `media_time` (the fragment's `tfdt`), on track 1.
pub fn prft(wall_90k: i64, media_time: u64) -> [u8; PRFT_LEN] {
    let mut b = [0u8; PRFT_LEN];
    b[0..4].copy_from_slice(&(PRFT_LEN as u32).to_be_bytes());
    b[4..8].copy_from_slice(b"prft");
    b[8..12].copy_from_slice(&((1u32 << 24) | PRFT_FLAGS).to_be_bytes());
    b[12..16].copy_from_slice(&vigil_media::fmp4::TRACK_ID.to_be_bytes());
    b[16..24].copy_from_slice(&time::to_ntp(wall_90k).to_be_bytes());
    b[24..32].copy_from_slice(&media_time.to_be_bytes());
    b
}

/// Reads a `prft` written by [`prft`] (version 1, or version 0 with a 32-bit media time):
/// `(wall_90k, media_time)`. `None` if `b` does not start with such a box.
pub fn parse_prft(b: &[u8]) -> Option<(i64, u64)> {
    let size = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    if b.get(4..8)? != b"prft" || size > b.len() {
        return None;
    }
    let version = *b.get(8)?;
    let ntp = u64::from_be_bytes(b.get(16..24)?.try_into().ok()?);
    let media = match (version, size) {
        (1, 32) => u64::from_be_bytes(b.get(24..32)?.try_into().ok()?),
        (0, 28) => u64::from(u32::from_be_bytes(b.get(24..28)?.try_into().ok()?)),
        _ => return None,
    };
    Some((time::from_ntp(ntp), media))
}

/// The trailer for a fragment span of `covered` bytes with CRC-32 `crc`.
pub fn trailer(crc: u32, covered: u32) -> [u8; TRAILER_LEN] {
    let mut b = [0u8; TRAILER_LEN];
    b[0..4].copy_from_slice(&(TRAILER_LEN as u32).to_be_bytes());
    b[4..8].copy_from_slice(b"free");
    b[8..12].copy_from_slice(TRAILER_MAGIC);
    b[12..16].copy_from_slice(&crc.to_be_bytes());
    b[16..20].copy_from_slice(&covered.to_be_bytes());
    b
}

/// Reads a trailer: `(crc, covered)`. `None` if `b` does not start with one.
pub fn parse_trailer(b: &[u8]) -> Option<(u32, u32)> {
    let b = b.get(..TRAILER_LEN)?;
    if b[0..4] != (TRAILER_LEN as u32).to_be_bytes() || &b[4..8] != b"free" {
        return None;
    }
    if &b[8..12] != TRAILER_MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(b[12..16].try_into().ok()?);
    let covered = u32::from_be_bytes(b[16..20].try_into().ok()?);
    Some((crc, covered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prft_round_trips_and_rejects_other_boxes() {
        let wall = 1_700_000_000_123 * 90 + 7;
        let b = prft(wall, 123_456);
        assert_eq!(parse_prft(&b), Some((wall, 123_456)));
        let mut other = b;
        other[4..8].copy_from_slice(b"moof");
        assert_eq!(parse_prft(&other), None);
        assert_eq!(parse_prft(&b[..20]), None);
        // Version 0 (32-bit media time), as other writers produce it.
        let mut v0 = [0u8; 28];
        v0[0..4].copy_from_slice(&28u32.to_be_bytes());
        v0[4..8].copy_from_slice(b"prft");
        v0[16..24].copy_from_slice(&b[16..24]);
        v0[24..28].copy_from_slice(&5u32.to_be_bytes());
        assert_eq!(parse_prft(&v0), Some((wall, 5)));
    }

    #[test]
    fn trailer_round_trips_and_needs_its_magic() {
        let t = trailer(0xdead_beef, 4242);
        assert_eq!(parse_trailer(&t), Some((0xdead_beef, 4242)));
        let mut plain_free = t;
        plain_free[8..12].copy_from_slice(b"xxxx");
        assert_eq!(parse_trailer(&plain_free), None);
        assert_eq!(parse_trailer(&t[..19]), None);
    }
}
