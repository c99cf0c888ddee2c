//! NAL unit framing shared by H.264 and H.265: Annex B (start codes) and length-prefixed
//! ("AVCC", 4-byte big-endian lengths, as in MP4 samples and [`crate::VideoFrame`]).

use bytes::{BufMut, BytesMut};

/// Errors walking length-prefixed NAL units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NalError {
    /// A length prefix was cut off.
    #[error("length prefix at offset {offset} is truncated ({remaining} bytes left, need 4)")]
    TruncatedLength {
        /// Offset of the prefix in the sample.
        offset: usize,
        /// Bytes left in the sample.
        remaining: usize,
    },
    /// A length prefix points past the end of the sample.
    #[error("NAL unit at offset {offset} claims {length} bytes but only {remaining} remain")]
    LengthOverrun {
        /// Offset of the prefix in the sample.
        offset: usize,
        /// The claimed NAL length.
        length: usize,
        /// Bytes left after the prefix.
        remaining: usize,
    },
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Index of the first `00 00 01` at or after `from` (the index of its first zero).
///
/// This is the hot loop of the PS demuxer, so it skips eight bytes at a time while none of them
/// is `0x00` or `0x01` (every byte of a start code is one of those two values).
pub fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let n = data.len();
    while i + 3 <= n {
        if let Some(word) = data.get(i..i + 8) {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            let x = u64::from_le_bytes(le);
            // Classic "has a byte less than 2" test: no false negatives.
            // A start code beginning anywhere in the word has its first byte (0x00) in it.
            if x.wrapping_sub(2 * ONES) & !x & HIGHS == 0 {
                i += 8;
                continue;
            }
        }
        match data.get(i + 2) {
            Some(&b) if b > 1 => i += 3,
            Some(&1) => {
                if data[i] == 0 && data[i + 1] == 0 {
                    return Some(i);
                }
                i += 3;
            }
            Some(_) => i += 1,
            None => break,
        }
    }
    None
}

/// Iterator over the NAL units of an Annex B byte stream, without start codes and without the
/// trailing zero bytes that may precede the next start code. Bytes before the first start code
/// are not a NAL unit and are skipped.
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's payload, `None` when exhausted.
    next: Option<usize>,
}

impl<'a> AnnexBNals<'a> {
    /// Walks `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let next = find_start_code(data, 0).map(|p| p + 3);
        Self { data, next }
    }
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let (end, next) = match find_start_code(self.data, start) {
                Some(sc) => (sc, Some(sc + 3)),
                None => (self.data.len(), None),
            };
            self.next = next;
            let nal = trim_trailing_zeros(self.data.get(start..end).unwrap_or(&[]));
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// Strips trailing zero bytes: a NAL unit never ends in 0x00 (H.264 7.4.1, H.265 7.4.2), so
/// they are `trailing_zero_8bits` or the first byte of a 4-byte start code.
pub fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &nal[..end]
}

/// Iterator over 4-byte length-prefixed NAL units.
#[derive(Debug, Clone)]
pub struct AvccNals<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> AvccNals<'a> {
    /// Walks `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = Result<&'a [u8], NalError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let offset = self.pos;
        let Some(prefix) = rest.get(..4) else {
            self.pos = self.data.len();
            return Some(Err(NalError::TruncatedLength {
                offset,
                remaining: rest.len(),
            }));
        };
        let length = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        match rest.get(4..).and_then(|r| r.get(..length)) {
            Some(nal) => {
                self.pos += 4 + length;
                Some(Ok(nal))
            }
            None => {
                self.pos = self.data.len();
                Some(Err(NalError::LengthOverrun {
                    offset,
                    length,
                    remaining: rest.len() - 4,
                }))
            }
        }
    }
}

/// Converts an Annex B byte stream to 4-byte length-prefixed NAL units, appending to `out`.
pub fn annexb_to_avcc(data: &[u8], out: &mut BytesMut) {
    out.reserve(data.len() + 16);
    for nal in AnnexBNals::new(data) {
        put_avcc_nal(out, nal);
    }
}

/// Appends one NAL unit with its 4-byte length prefix.
pub fn put_avcc_nal(out: &mut BytesMut, nal: &[u8]) {
    // NAL units come from PES payloads (< 16 MiB frames, see the PS demuxer's limit), so the
    // length always fits; saturate rather than wrap if a caller passes something absurd.
    out.put_u32(u32::try_from(nal.len()).unwrap_or(u32::MAX));
    out.put_slice(nal);
}

/// Converts 4-byte length-prefixed NAL units to Annex B with 4-byte start codes, appending to
/// `out`.
pub fn avcc_to_annexb(data: &[u8], out: &mut BytesMut) -> Result<(), NalError> {
    out.reserve(data.len());
    for nal in AvccNals::new(data) {
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(nal?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_find(data: &[u8], from: usize) -> Option<usize> {
        (from..data.len().saturating_sub(2)).find(|&i| data[i..i + 3] == [0, 0, 1])
    }

    #[test]
    fn start_code_search_matches_naive_search() {
        let mut data = vec![0x78u8; 64];
        for pos in 0..62 {
            for shape in [[0u8, 0, 1], [0, 1, 1], [1, 0, 0]] {
                let mut d = data.clone();
                d[pos..pos + 3].copy_from_slice(&shape);
                for from in [0, pos.saturating_sub(1), pos, pos + 1] {
                    assert_eq!(
                        find_start_code(&d, from),
                        naive_find(&d, from),
                        "pos {pos} from {from} shape {shape:?}"
                    );
                }
            }
        }
        data.clear();
        assert_eq!(find_start_code(&data, 0), None);
        assert_eq!(find_start_code(&[0, 0], 0), None);
        assert_eq!(find_start_code(&[0, 0, 0, 0, 1], 0), Some(2));
    }

    #[test]
    fn annexb_iteration_and_conversion() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5, 6, 0,
        ];
        let nals: Vec<&[u8]> = AnnexBNals::new(&stream).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5, 6]]);

        let mut avcc = BytesMut::new();
        annexb_to_avcc(&stream, &mut avcc);
        assert_eq!(
            &avcc[..],
            &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 4, 0x65, 4, 5, 6]
        );
        let mut back = BytesMut::new();
        avcc_to_annexb(&avcc, &mut back).unwrap();
        assert_eq!(
            &back[..],
            &[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 6]
        );
    }

    #[test]
    fn avcc_errors_name_the_offset() {
        let bad = [0, 0, 0, 1, 9, 0, 0, 0, 5, 1];
        let r: Vec<_> = AvccNals::new(&bad).collect();
        assert_eq!(r[0], Ok(&[9u8][..]));
        assert_eq!(
            r[1],
            Err(NalError::LengthOverrun {
                offset: 5,
                length: 5,
                remaining: 1
            })
        );
        let r: Vec<_> = AvccNals::new(&[0, 0]).collect();
        assert_eq!(
            r,
            vec![Err(NalError::TruncatedLength {
                offset: 0,
                remaining: 2
            })]
        );
    }
}
