//! ISO BMFF (ISO/IEC 14496-12) box writing and box header reading, shared by the sample entry
//! code and the fMP4 writer and reader.

use bytes::{BufMut, BytesMut};

/// Starts a box: writes a placeholder size and the type, returns the box start for [`end_box`].
pub(crate) fn begin_box(out: &mut BytesMut, box_type: &[u8; 4]) -> usize {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(box_type);
    start
}

/// Starts a full box (version and flags after the type).
pub(crate) fn begin_full_box(
    out: &mut BytesMut,
    box_type: &[u8; 4],
    version: u8,
    flags: u32,
) -> usize {
    let start = begin_box(out, box_type);
    out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    start
}

/// Patches the size of the box started at `start`.
///
/// Boxes built here are headers and codec configuration (kilobytes); a box over 4 GiB would be
/// a bug, so the size saturates instead of wrapping into a corrupt file.
pub(crate) fn end_box(out: &mut BytesMut, start: usize) {
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A parsed box header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    pub(crate) box_type: [u8; 4],
    /// 8, or 16 with a 64-bit `largesize`.
    pub(crate) header_len: usize,
    /// Total size including the header; `None` when the size field is 0 ("to end of file").
    pub(crate) size: Option<u64>,
}

/// Why a box header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Fewer bytes than the header needs.
    Short { need: usize },
    /// The size is smaller than the header itself.
    TooSmall { size: u64 },
}

impl BoxHeader {
    /// Parses the header at the start of `data`.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, HeaderProblem> {
        let Some(head) = data.get(..8) else {
            return Err(HeaderProblem::Short { need: 8 });
        };
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let box_type = [head[4], head[5], head[6], head[7]];
        match size32 {
            0 => Ok(Self {
                box_type,
                header_len: 8,
                size: None,
            }),
            1 => {
                let Some(large) = data.get(8..16) else {
                    return Err(HeaderProblem::Short { need: 16 });
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                let size = u64::from_be_bytes(b);
                if size < 16 {
                    return Err(HeaderProblem::TooSmall { size });
                }
                Ok(Self {
                    box_type,
                    header_len: 16,
                    size: Some(size),
                })
            }
            s if s < 8 => Err(HeaderProblem::TooSmall { size: u64::from(s) }),
            s => Ok(Self {
                box_type,
                header_len: 8,
                size: Some(u64::from(s)),
            }),
        }
    }
}

/// A child box found inside a parent's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildBox<'a> {
    pub(crate) box_type: [u8; 4],
    /// Offset of the box start within the parent payload passed to [`children`].
    pub(crate) offset: usize,
    /// Length of the box header (8, or 16 with a 64-bit size).
    pub(crate) header_len: usize,
    /// The box payload (after the header).
    pub(crate) payload: &'a [u8],
}

/// Iterates the boxes inside `payload`. Yields `Err(offset)` once and stops at the first box
/// whose header or size does not fit.
pub(crate) fn children(payload: &[u8]) -> impl Iterator<Item = Result<ChildBox<'_>, usize>> {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= payload.len() {
            return None;
        }
        let rest = &payload[pos..];
        let parsed = BoxHeader::parse(rest).ok().and_then(|h| {
            let size = h.size.unwrap_or(rest.len() as u64);
            let size = usize::try_from(size).ok().filter(|&s| s <= rest.len())?;
            Some((h, size))
        });
        match parsed {
            Some((h, size)) => {
                let child = ChildBox {
                    box_type: h.box_type,
                    offset: pos,
                    header_len: h.header_len,
                    payload: &rest[h.header_len..size],
                };
                pos += size;
                Some(Ok(child))
            }
            None => {
                failed = true;
                Some(Err(pos))
            }
        }
    })
}

/// Printable form of a box type for error messages.
pub(crate) fn fourcc(t: &[u8; 4]) -> String {
    t.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_walk() {
        let mut b = BytesMut::new();
        let outer = begin_box(&mut b, b"moov");
        let inner = begin_full_box(&mut b, b"mvhd", 1, 0x42);
        b.put_u8(7);
        end_box(&mut b, inner);
        end_box(&mut b, outer);
        assert_eq!(&b[..4], &[0, 0, 0, 21]);
        let h = BoxHeader::parse(&b).unwrap();
        assert_eq!((h.box_type, h.size), (*b"moov", Some(21)));
        let kids: Vec<_> = children(&b[8..]).collect();
        assert_eq!(kids.len(), 1);
        let k = kids[0].unwrap();
        assert_eq!(k.box_type, *b"mvhd");
        assert_eq!(k.payload, &[1, 0, 0, 0x42, 7]);
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            BoxHeader::parse(&[0, 0]),
            Err(HeaderProblem::Short { need: 8 })
        );
        assert_eq!(
            BoxHeader::parse(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']),
            Err(HeaderProblem::TooSmall { size: 4 })
        );
        assert_eq!(
            BoxHeader::parse(&[0, 0, 0, 1, b'm', b'd', b'a', b't', 0]),
            Err(HeaderProblem::Short { need: 16 })
        );
        let kids: Vec<_> = children(&[0, 0, 0, 9, b'f', b'r', b'e', b'e']).collect();
        assert_eq!(kids.len(), 1);
        assert!(kids[0].is_err());
    }
}
