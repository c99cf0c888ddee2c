//! Bit-level reading of RBSP data (H.264 / H.265 parameter sets) and removal of emulation
//! prevention bytes.
//!
//! Parameter sets come from the network, so every read is bounds-checked and reports the bit
//! offset at which the data ran out; exp-Golomb codes are capped at 32 leading zeros so that
//! garbage cannot make us loop or overflow.

use std::borrow::Cow;

/// Why a bit read failed. The parsers wrap this with the name of the syntax element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BitError {
    /// The RBSP ended before the element was complete.
    #[error("data ends at bit {bit}")]
    Eof {
        /// Bit offset (from the start of the RBSP) at which more data was needed.
        bit: usize,
    },
    /// An exp-Golomb code had more than 31 leading zero bits (its value would not fit in `u32`).
    #[error("exp-Golomb code at bit {bit} has more than 31 leading zeros")]
    ExpGolombTooLong {
        /// Bit offset of the code.
        bit: usize,
    },
}

/// MSB-first bit reader over an RBSP (emulation prevention already removed).
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reads from the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Current position in bits.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads one bit.
    pub fn bit(&mut self) -> Result<bool, BitError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(BitError::Eof { bit: self.pos })?;
        let v = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(v == 1)
    }

    /// Reads `n` (≤ 32) bits as an unsigned integer.
    pub fn bits(&mut self, n: u32) -> Result<u32, BitError> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return Err(BitError::Eof {
                bit: self.data.len() * 8,
            });
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            // `remaining` was checked above, so each bit read succeeds.
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    /// Reads `n` (≤ 64) bits as an unsigned integer.
    pub fn bits64(&mut self, n: u32) -> Result<u64, BitError> {
        debug_assert!(n <= 64);
        if n > 32 {
            let hi = u64::from(self.bits(n - 32)?);
            let lo = u64::from(self.bits(32)?);
            Ok((hi << 32) | lo)
        } else {
            Ok(u64::from(self.bits(n)?))
        }
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<(), BitError> {
        if self.remaining() < n {
            return Err(BitError::Eof {
                bit: self.data.len() * 8,
            });
        }
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned exp-Golomb code `ue(v)`.
    pub fn ue(&mut self) -> Result<u32, BitError> {
        let start = self.pos;
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitError::ExpGolombTooLong { bit: start });
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.bits(zeros)?;
        // (1 << zeros) - 1 + rest, computed in u64 so that zeros == 31 cannot overflow.
        let v = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(v).map_err(|_| BitError::ExpGolombTooLong { bit: start })
    }

    /// Reads a signed exp-Golomb code `se(v)`.
    pub fn se(&mut self) -> Result<i32, BitError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| ≤ 2^31, which only overflows i32 for the single value +2^31.
        Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
}

/// A parameter set could not be parsed. Names the codec, the syntax element and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpsError {
    /// The NAL unit is too short or is not a sequence parameter set.
    #[error("{codec} SPS: NAL unit header {header:#06x} is not an SPS")]
    NotSps {
        /// "H.264" or "H.265".
        codec: &'static str,
        /// The NAL unit header (one byte for H.264, two for H.265; 0 if missing).
        header: u16,
    },
    /// The data ended (or an exp-Golomb code was malformed) inside a syntax element.
    #[error("{codec} SPS field `{field}`: {source}")]
    Read {
        /// "H.264" or "H.265".
        codec: &'static str,
        /// The syntax element being read, as named in the standard.
        field: &'static str,
        /// What went wrong at the bit level.
        source: BitError,
    },
    /// A syntax element has a value the standard forbids or that we refuse (for example a
    /// picture wider than 16384 samples).
    #[error("{codec} SPS field `{field}` = {value}: {reason}")]
    Invalid {
        /// "H.264" or "H.265".
        codec: &'static str,
        /// The syntax element, as named in the standard.
        field: &'static str,
        /// The value read.
        value: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
}

/// A [`BitReader`] that names the codec and the syntax element in its errors.
pub(crate) struct FieldReader<'a> {
    pub(crate) r: BitReader<'a>,
    pub(crate) codec: &'static str,
}

impl<'a> FieldReader<'a> {
    pub(crate) fn new(rbsp: &'a [u8], codec: &'static str) -> Self {
        Self {
            r: BitReader::new(rbsp),
            codec,
        }
    }

    fn wrap<T>(&self, field: &'static str, v: Result<T, BitError>) -> Result<T, SpsError> {
        v.map_err(|source| SpsError::Read {
            codec: self.codec,
            field,
            source,
        })
    }

    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, SpsError> {
        let v = self.r.bit();
        self.wrap(field, v)
    }

    pub(crate) fn bits(&mut self, field: &'static str, n: u32) -> Result<u32, SpsError> {
        let v = self.r.bits(n);
        self.wrap(field, v)
    }

    pub(crate) fn bits64(&mut self, field: &'static str, n: u32) -> Result<u64, SpsError> {
        let v = self.r.bits64(n);
        self.wrap(field, v)
    }

    pub(crate) fn skip(&mut self, field: &'static str, n: usize) -> Result<(), SpsError> {
        let v = self.r.skip(n);
        self.wrap(field, v)
    }

    pub(crate) fn ue(&mut self, field: &'static str) -> Result<u32, SpsError> {
        let v = self.r.ue();
        self.wrap(field, v)
    }

    /// `ue(v)` that must not exceed `max`.
    pub(crate) fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, SpsError> {
        let v = self.ue(field)?;
        if v > max {
            return Err(self.invalid(field, u64::from(v), "exceeds the limit of the standard"));
        }
        Ok(v)
    }

    pub(crate) fn se(&mut self, field: &'static str) -> Result<i32, SpsError> {
        let v = self.r.se();
        self.wrap(field, v)
    }

    pub(crate) fn invalid(
        &self,
        field: &'static str,
        value: u64,
        reason: &'static str,
    ) -> SpsError {
        SpsError::Invalid {
            codec: self.codec,
            field,
            value,
            reason,
        }
    }
}

/// The part of `vui_parameters()` that H.264 (E.1.1) and H.265 (E.2.1) share, up to and
/// including the chroma sample location: returns the sample aspect ratio, if signalled.
pub(crate) fn parse_vui_prefix(r: &mut FieldReader<'_>) -> Result<Option<(u16, u16)>, SpsError> {
    let mut sar = None;
    if r.flag("aspect_ratio_info_present_flag")? {
        let idc = r.bits("aspect_ratio_idc", 8)?;
        sar = if idc == 255 {
            let w = r.bits("sar_width", 16)? as u16;
            let h = r.bits("sar_height", 16)? as u16;
            (w != 0 && h != 0).then_some((w, h))
        } else {
            sample_aspect_ratio(idc)
        };
    }
    if r.flag("overscan_info_present_flag")? {
        r.flag("overscan_appropriate_flag")?;
    }
    if r.flag("video_signal_type_present_flag")? {
        r.bits("video_format", 3)?;
        r.flag("video_full_range_flag")?;
        if r.flag("colour_description_present_flag")? {
            r.bits("colour_primaries/transfer/matrix", 24)?;
        }
    }
    if r.flag("chroma_loc_info_present_flag")? {
        r.ue("chroma_sample_loc_type_top_field")?;
        r.ue("chroma_sample_loc_type_bottom_field")?;
    }
    Ok(sar)
}

/// Pixel aspect ratio for `aspect_ratio_idc` 1..=16 (H.264 table E-1, H.265 table E-1).
pub(crate) fn sample_aspect_ratio(idc: u32) -> Option<(u16, u16)> {
    const TABLE: [(u16, u16); 16] = [
        (1, 1),
        (12, 11),
        (10, 11),
        (16, 11),
        (40, 33),
        (24, 11),
        (20, 11),
        (32, 11),
        (80, 33),
        (18, 11),
        (15, 11),
        (64, 33),
        (160, 99),
        (4, 3),
        (3, 2),
        (2, 1),
    ];
    let i = usize::try_from(idc).ok()?.checked_sub(1)?;
    TABLE.get(i).copied()
}

/// Reduces `num/den` and returns it if it is a plausible camera frame rate.
///
/// Policy `ImplausibleVuiFrameRate`: cameras fill VUI timing with zeros or nonsense (for
/// example `time_scale` 0); anything outside (0, 1000] frames per second is reported as
/// unknown rather than passed on, since the store derives sample durations from timestamps
/// anyway and only uses the nominal rate as a fallback.
pub(crate) fn plausible_frame_rate(num: u64, den: u64) -> Option<(u32, u32)> {
    if num == 0 || den == 0 || num > 1000 * den {
        return None;
    }
    let g = gcd(num, den);
    let (n, d) = (num / g, den / g);
    Some((u32::try_from(n).ok()?, u32::try_from(d).ok()?))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`) from a NAL unit, giving its RBSP.
///
/// Borrows when the NAL contains no emulation prevention byte, which is the common case for
/// parameter sets.
pub fn to_rbsp(nal: &[u8]) -> Cow<'_, [u8]> {
    let first = find_emulation_prevention(nal, 0);
    let Some(mut epb) = first else {
        return Cow::Borrowed(nal);
    };
    let mut out = Vec::with_capacity(nal.len());
    let mut copied = 0;
    loop {
        // `epb` is the index of an 0x03 preceded by two zeros: keep everything before it.
        out.extend_from_slice(&nal[copied..epb]);
        copied = epb + 1;
        match find_emulation_prevention(nal, copied) {
            Some(next) => epb = next,
            None => break,
        }
    }
    out.extend_from_slice(&nal[copied..]);
    Cow::Owned(out)
}

/// Index of the next emulation prevention byte at or after `from`, where the zero run is counted
/// from `from` (a removed 0x03 resets the run, as in the spec's `00 00 03 00 00 03` case).
fn find_emulation_prevention(nal: &[u8], from: usize) -> Option<usize> {
    let mut zeros = 0;
    for (i, &b) in nal.iter().enumerate().skip(from) {
        if zeros >= 2 && b == 3 {
            return Some(i);
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_values() {
        // 1 | 010 | 011 | 00100 | 00101 → ue 0,1,2,3,4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Ok(0));
        assert_eq!(r.ue(), Ok(1));
        assert_eq!(r.ue(), Ok(2));
        assert_eq!(r.ue(), Ok(3));
        assert_eq!(r.ue(), Ok(4));
    }

    #[test]
    fn signed_exp_golomb() {
        // ue 1,2,3,4 → se +1,-1,+2,-2
        let data = [0b0100_1100, 0b1000_0101];
        let mut r = BitReader::new(&data);
        assert_eq!(r.se(), Ok(1));
        assert_eq!(r.se(), Ok(-1));
        assert_eq!(r.se(), Ok(2));
        assert_eq!(r.se(), Ok(-2));
    }

    #[test]
    fn exp_golomb_on_zeros_fails_cleanly() {
        let data = [0u8; 8];
        assert_eq!(
            BitReader::new(&data).ue(),
            Err(BitError::ExpGolombTooLong { bit: 0 })
        );
        let data = [0u8; 2];
        assert_eq!(BitReader::new(&data).ue(), Err(BitError::Eof { bit: 16 }));
    }

    #[test]
    fn largest_exp_golomb_fits() {
        // 31 zeros, a one, then 31 ones: 2^31 - 1 + 2^31 - 1 = u32::MAX - 1.
        let mut bits = vec![false; 31];
        bits.push(true);
        bits.extend(std::iter::repeat_n(true, 31));
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.iter().enumerate() {
            if *b {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        assert_eq!(BitReader::new(&bytes).ue(), Ok(u32::MAX - 1));
    }

    #[test]
    fn rbsp_removes_emulation_prevention() {
        assert_eq!(&*to_rbsp(&[1, 2, 3]), &[1, 2, 3]);
        assert!(matches!(to_rbsp(&[1, 2, 3]), Cow::Borrowed(_)));
        assert_eq!(&*to_rbsp(&[0, 0, 3, 1]), &[0, 0, 1]);
        assert_eq!(&*to_rbsp(&[0, 0, 3, 0, 0, 3]), &[0, 0, 0, 0]);
        assert_eq!(&*to_rbsp(&[0, 0, 0, 3]), &[0, 0, 0]);
        // A 0x03 after a single zero is data.
        assert_eq!(&*to_rbsp(&[0, 3, 0, 0, 3, 2]), &[0, 3, 0, 0, 2]);
    }
}
