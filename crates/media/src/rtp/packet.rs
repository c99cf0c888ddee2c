//! RTP fixed header (RFC 3550 5.1), CSRC list, header extension and padding.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte header")]
    TooShort {
        /// Packet length.
        len: usize,
    },
    /// Version field is not 2.
    #[error("RTP version {version} at byte 0, expected 2")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The CSRC list runs past the end of the packet.
    #[error("RTP CSRC list of {count} entries runs past the {len}-byte packet")]
    CsrcOverrun {
        /// CSRC count.
        count: u8,
        /// Packet length.
        len: usize,
    },
    /// The header extension runs past the end of the packet.
    #[error(
        "RTP header extension at byte {offset} ({words} words) runs past the {len}-byte packet"
    )]
    ExtensionOverrun {
        /// Offset of the extension header.
        offset: usize,
        /// Its declared length in 32-bit words.
        words: u16,
        /// Packet length.
        len: usize,
    },
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding count {padding} is invalid for a {payload_len}-byte payload")]
    BadPadding {
        /// The padding count (last byte of the packet).
        padding: u8,
        /// Payload length before removing padding.
        payload_len: usize,
    },
}

/// The parsed fixed header and its variable parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit (end of a frame for most video payloads).
    pub marker: bool,
    /// Payload type (96 for GB/T 28181 PS).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// Media timestamp (90 kHz for video).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources.
    pub csrcs: Vec<u32>,
    /// Header extension: profile-defined 16 bits and its data.
    pub extension: Option<(u16, Bytes)>,
    /// Number of padding bytes removed from the end.
    pub padding: u8,
}

/// An RTP packet whose payload is a zero-copy slice of the received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// The header.
    pub header: RtpHeader,
    /// The payload, padding removed.
    pub payload: Bytes,
}

impl RtpPacket {
    /// Parses a datagram (or an RFC 4571 frame).
    pub fn parse(data: Bytes) -> Result<Self, RtpError> {
        let len = data.len();
        let fixed = data.get(..12).ok_or(RtpError::TooShort { len })?;
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = fixed[0] & 0x0f;
        let marker = fixed[1] & 0x80 != 0;
        let payload_type = fixed[1] & 0x7f;
        let sequence_number = u16::from_be_bytes([fixed[2], fixed[3]]);
        let timestamp = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let ssrc = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);

        let mut pos = 12;
        let csrc_end = pos + 4 * usize::from(csrc_count);
        let csrc_bytes = data.get(pos..csrc_end).ok_or(RtpError::CsrcOverrun {
            count: csrc_count,
            len,
        })?;
        let csrcs = csrc_bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        pos = csrc_end;

        let mut extension = None;
        if has_extension {
            let overrun = |words| RtpError::ExtensionOverrun {
                offset: pos,
                words,
                len,
            };
            let head = data.get(pos..pos + 4).ok_or_else(|| overrun(0))?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let words = u16::from_be_bytes([head[2], head[3]]);
            let end = pos + 4 + 4 * usize::from(words);
            if end > len {
                return Err(overrun(words));
            }
            extension = Some((profile, data.slice(pos + 4..end)));
            pos = end;
        }

        let mut end = len;
        let mut padding = 0;
        if has_padding {
            padding = data.last().copied().unwrap_or(0);
            let payload_len = len - pos;
            if padding == 0 || usize::from(padding) > payload_len {
                return Err(RtpError::BadPadding {
                    padding,
                    payload_len,
                });
            }
            end -= usize::from(padding);
        }

        Ok(Self {
            header: RtpHeader {
                marker,
                payload_type,
                sequence_number,
                timestamp,
                ssrc,
                csrcs,
                extension,
                padding,
            },
            payload: data.slice(pos..end),
        })
    }
}

/// Writes a 12-byte fixed header (no CSRC, extension or padding).
pub fn write_header(
    out: &mut BytesMut,
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out.put_u8(0x80);
    out.put_u8((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.put_u16(sequence_number);
    out.put_u32(timestamp);
    out.put_u32(ssrc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_header() {
        let mut b = BytesMut::new();
        write_header(&mut b, true, 96, 31916, 95_652_000, 0x0BEB_D135);
        b.put_slice(b"payload");
        let p = RtpPacket::parse(b.freeze()).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 96);
        assert_eq!(p.header.sequence_number, 31916);
        assert_eq!(p.header.timestamp, 95_652_000);
        assert_eq!(p.header.ssrc, 0x0BEB_D135);
        assert_eq!(&p.payload[..], b"payload");
    }

    #[test]
    fn csrc_extension_padding() {
        let mut b = BytesMut::new();
        b.put_u8(0x80 | 0x20 | 0x10 | 1); // padding, extension, 1 CSRC
        b.put_u8(96);
        b.put_u16(1);
        b.put_u32(2);
        b.put_u32(3);
        b.put_u32(0xAABB_CCDD); // CSRC
        b.put_u16(0xBEDE);
        b.put_u16(1);
        b.put_u32(0x1122_3344);
        b.put_slice(b"xy");
        b.put_slice(&[0, 0, 3]); // 3 bytes padding
        let p = RtpPacket::parse(b.freeze()).unwrap();
        assert_eq!(p.header.csrcs, vec![0xAABB_CCDD]);
        assert_eq!(
            p.header.extension,
            Some((0xBEDE, Bytes::from_static(&[0x11, 0x22, 0x33, 0x44])))
        );
        assert_eq!(p.header.padding, 3);
        assert_eq!(&p.payload[..], b"xy");
    }

    #[test]
    fn errors() {
        assert_eq!(
            RtpPacket::parse(Bytes::from_static(b"x8")),
            Err(RtpError::TooShort { len: 2 })
        );
        let mut v1 = [0u8; 12];
        v1[0] = 0x40;
        assert_eq!(
            RtpPacket::parse(Bytes::copy_from_slice(&v1)),
            Err(RtpError::BadVersion { version: 1 })
        );
        let mut csrc = [0u8; 12];
        csrc[0] = 0x8f;
        assert!(matches!(
            RtpPacket::parse(Bytes::copy_from_slice(&csrc)),
            Err(RtpError::CsrcOverrun { count: 15, .. })
        ));
        let mut ext = [0u8; 16];
        ext[0] = 0x90;
        ext[15] = 9;
        assert!(matches!(
            RtpPacket::parse(Bytes::copy_from_slice(&ext)),
            Err(RtpError::ExtensionOverrun {
                offset: 12,
                words: 9,
                ..
            })
        ));
        let mut pad = [0u8; 13];
        pad[0] = 0xa0;
        pad[12] = 5;
        assert!(matches!(
            RtpPacket::parse(Bytes::copy_from_slice(&pad)),
            Err(RtpError::BadPadding {
                padding: 5,
                payload_len: 1
            })
        ));
    }
}
