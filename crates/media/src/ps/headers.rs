//! MPEG-2 program stream headers (ISO/IEC 13818-1 2.5.3): pack header and SCR, program stream
//! map, PES header and PTS/DTS. Pure functions over a slice that begins at a start code; they
//! say how many bytes they need when the slice is short.

use super::{PsError, StreamType};

/// Outcome of parsing a header from a possibly incomplete slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parse<T> {
    /// At least this many bytes (from the start code) are needed.
    Need(usize),
    /// Parsed.
    Done(T),
}

/// A pack header (`00 00 01 BA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeader {
    /// System clock reference base, 90 kHz, 33 bits.
    pub scr_base: u64,
    /// System clock reference extension, 27 MHz remainder (0..300).
    pub scr_ext: u16,
    /// `program_mux_rate`, in units of 50 bytes/s.
    pub mux_rate: u32,
    /// Number of stuffing bytes that followed (skipped by count, whatever their value).
    pub stuffing_len: u8,
}

impl PackHeader {
    /// Parses the pack header at the start of `b` (beginning with `00 00 01 BA`); `Ok(None)`
    /// if `b` is too short to hold it.
    pub fn parse(b: &[u8]) -> Result<Option<Self>, PsError> {
        if b.len() >= 4 && b[..4] != [0, 0, 1, 0xBA] {
            let found = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
            return Err(PsError::BadStartCode { offset: 0, found });
        }
        Ok(match parse_pack_header(b, 0)? {
            Parse::Need(_) => None,
            Parse::Done(p) => Some(p),
        })
    }

    /// Bytes the pack header occupies.
    pub fn len(&self) -> usize {
        14 + usize::from(self.stuffing_len)
    }

    /// Always false (kept for symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses a pack header. `offset` is the stream offset of `b[0]`, for errors.
///
/// Policy `PackStuffingByLength`: the stuffing bytes are skipped by `pack_stuffing_length`
/// without checking that they are 0xFF; Hikvision cameras put a counter there (`ff ff 01 78
/// 46 c7`, `ff ff 00 00 a0 05`). Marker bits are not checked either, only the `01` prefix
/// that tells MPEG-2 from MPEG-1.
pub(crate) fn parse_pack_header(b: &[u8], offset: u64) -> Result<Parse<PackHeader>, PsError> {
    let Some(h) = b.get(..14) else {
        return Ok(Parse::Need(14));
    };
    if h[4] >> 6 != 0b01 {
        return Err(PsError::BadPackHeader {
            offset,
            reason: if h[4] >> 4 == 0b0010 {
                "MPEG-1 pack header (GB/T 28181 requires MPEG-2)"
            } else {
                "missing the '01' marker of an MPEG-2 pack header"
            },
        });
    }
    let scr_base = (u64::from(h[4] >> 3) & 0x7) << 30
        | (u64::from(h[4]) & 0x3) << 28
        | u64::from(h[5]) << 20
        | u64::from(h[6] >> 3) << 15
        | (u64::from(h[6]) & 0x3) << 13
        | u64::from(h[7]) << 5
        | u64::from(h[8] >> 3);
    let scr_ext = (u16::from(h[8]) & 0x3) << 7 | u16::from(h[9] >> 1);
    let mux_rate = u32::from(h[10]) << 14 | u32::from(h[11]) << 6 | u32::from(h[12] >> 2);
    let stuffing_len = h[13] & 0x7;
    let header = PackHeader {
        scr_base,
        scr_ext,
        mux_rate,
        stuffing_len,
    };
    if b.len() < header.len() {
        return Ok(Parse::Need(header.len()));
    }
    Ok(Parse::Done(header))
}

/// One elementary stream entry of a program stream map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsmEntry {
    /// `stream_type`.
    pub stream_type: StreamType,
    /// `elementary_stream_id` (0xE0.., 0xC0..).
    pub stream_id: u8,
}

/// How the `CRC_32` of a program stream map compares with the computed CRC-32/MPEG-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsmCrc {
    /// Big-endian, as the standard says.
    Valid,
    /// Byte-swapped: Hikvision IPCs write the CRC little-endian.
    LittleEndian,
    /// Neither.
    Mismatch,
}

/// A program stream map (`00 00 01 BC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psm {
    /// `program_stream_map_version`.
    pub version: u8,
    /// Elementary streams.
    pub entries: Vec<PsmEntry>,
    /// The CRC check result (informative only: policy `PsmCrc` accepts the map either way).
    pub crc: PsmCrc,
}

impl Psm {
    /// The stream type the map declares for `stream_id`.
    pub fn stream_type(&self, stream_id: u8) -> Option<StreamType> {
        self.entries
            .iter()
            .find(|e| e.stream_id == stream_id)
            .map(|e| e.stream_type)
    }
}

/// Parses a whole PSM (`b` starts at its start code and holds `6 + length` bytes, or fewer to
/// ask for them).
///
/// Policy `PsmCrc`: the `CRC_32` is computed and reported in [`Psm::crc`] but never causes the
/// map to be rejected: Hikvision cameras store it byte-swapped, and a map whose entries parse
/// is more useful than none. Descriptors (Hikvision "HK" tags 0x40..0x43) are skipped by
/// length.
pub(crate) fn parse_psm(b: &[u8], offset: u64) -> Result<Parse<Psm>, PsError> {
    let Some(h) = b.get(..6) else {
        return Ok(Parse::Need(6));
    };
    let total = 6 + usize::from(u16::from_be_bytes([h[4], h[5]]));
    let Some(psm) = b.get(..total) else {
        return Ok(Parse::Need(total));
    };
    let bad = |reason| PsError::BadPsm { offset, reason };
    // Fixed part: flags(1) + marker(1) + program_stream_info_length(2), then the CRC at the end.
    if total < 6 + 4 + 2 + 4 {
        return Err(bad("shorter than its fixed fields"));
    }
    let version = psm[6] & 0x1f;
    let info_len = usize::from(u16::from_be_bytes([psm[8], psm[9]]));
    let map_len_at = 10 + info_len;
    let map_len = psm
        .get(map_len_at..map_len_at + 2)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        .ok_or(bad("program_stream_info_length runs past the map"))?;
    let map_start = map_len_at + 2;
    let map_end = map_start + map_len;
    if map_end + 4 > total {
        return Err(bad("elementary_stream_map_length runs past the map"));
    }
    let mut entries = Vec::new();
    let mut pos = map_start;
    while pos < map_end {
        let e = psm
            .get(pos..pos + 4)
            .filter(|_| pos + 4 <= map_end)
            .ok_or(bad("truncated elementary stream entry"))?;
        let info = usize::from(u16::from_be_bytes([e[2], e[3]]));
        entries.push(PsmEntry {
            stream_type: StreamType(e[0]),
            stream_id: e[1],
        });
        pos += 4 + info;
        if pos > map_end {
            return Err(bad("elementary_stream_info_length runs past the map"));
        }
    }
    let stored = [
        psm[total - 4],
        psm[total - 3],
        psm[total - 2],
        psm[total - 1],
    ];
    let computed = super::crc32_mpeg2(&psm[..total - 4]);
    let crc = if u32::from_be_bytes(stored) == computed {
        PsmCrc::Valid
    } else if u32::from_le_bytes(stored) == computed {
        PsmCrc::LittleEndian
    } else {
        PsmCrc::Mismatch
    };
    Ok(Parse::Done(Psm {
        version,
        entries,
        crc,
    }))
}

/// A PES header (`00 00 01 <stream_id> <length>` and, for streams that have it, the MPEG-2
/// optional header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// `stream_id`.
    pub stream_id: u8,
    /// Total PES size: 6 + `PES_packet_length`.
    pub packet_len: usize,
    /// Bytes before the payload (6, or 9 + `PES_header_data_length`).
    pub header_len: usize,
    /// Raw 33-bit PTS.
    pub pts: Option<u64>,
    /// Raw 33-bit DTS.
    pub dts: Option<u64>,
    /// The header had the gb28181-rs layout without the `'10'` marker byte and was read by
    /// policy `PesHeaderWithoutMarkerByte` (see [`parse_pes_header`]).
    pub marker_byte_missing: bool,
}

impl PesHeader {
    /// Payload bytes following the header.
    pub fn payload_len(&self) -> usize {
        self.packet_len - self.header_len
    }
}

/// Streams whose PES packets have no optional header (13818-1 table 2-21 conditions).
fn has_no_optional_header(stream_id: u8) -> bool {
    matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

/// How [`parse_pes_header`] treats headers that are not quite standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesPolicy {
    /// Policy `PtsMarkerBits`.
    pub check_markers: bool,
    /// Policy `PesHeaderWithoutMarkerByte`.
    pub accept_missing_marker_byte: bool,
}

#[cfg(test)]
impl PesPolicy {
    /// Both policies on (the demuxer's default).
    pub const DEFAULT: PesPolicy = PesPolicy {
        check_markers: true,
        accept_missing_marker_byte: true,
    };
}

/// Parses a PES header.
///
/// Policy `PesStuffingByLength`: header stuffing is skipped by `PES_header_data_length`, not by
/// value (Hikvision ends it with `fc`/`fd`/`fa`/`f8`). Policy `PtsMarkerBits` (when
/// `check_markers`): the three marker bits of a PTS/DTS must be set; a header whose
/// timestamps fail that is treated as corruption (it is what SRS's recovery vectors contain:
/// a PES header completed by filler bytes).
///
/// Policy `PesHeaderWithoutMarkerByte` (when `accept_missing_marker_byte`): the `gb28181-rs`
/// 0.14 device library (`src/ps.rs` `build_pes_packet`) omits the first flags byte (the one
/// carrying the `'10'` marker) and writes a `0x00` filler after the PTS/DTS instead, so the
/// header has the standard total length but every field is one byte early:
///
/// ```text
/// standard:     00 00 01 E0 LL LL 80 C0 0A [PTS 5] [DTS 5] payload…
/// gb28181-rs:   00 00 01 E0 LL LL C0 0A [PTS 5] [DTS 5] 00 payload…
/// continuation: 00 00 01 E0 LL LL 00 00 00 payload…   (standard: 80 00 00)
/// ```
///
/// Exactly this shape is read as the header it means: a first byte with `PTS_DTS_flags` in
/// its top bits and zero below, a header length matching those flags (0, 5 or 10), the PTS/DTS
/// prefix nibbles and first marker bits in place, and the `0x00` filler. The shape is checked
/// before the standard layout. A standard header matches only if its second flags byte is
/// exactly 0, 5 or 10 *and* its header data is laid out like a timestamp followed by a zero,
/// which no encoder in the vector sets does.
pub(crate) fn parse_pes_header(
    b: &[u8],
    offset: u64,
    policy: PesPolicy,
) -> Result<Parse<PesHeader>, PsError> {
    let check_markers = policy.check_markers;
    let Some(h) = b.get(..6) else {
        return Ok(Parse::Need(6));
    };
    let stream_id = h[3];
    let length = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let packet_len = 6 + length;
    let bad = |reason| PsError::BadPesHeader {
        offset,
        stream_id,
        reason,
    };
    if has_no_optional_header(stream_id) {
        return Ok(Parse::Done(PesHeader {
            stream_id,
            packet_len,
            header_len: 6,
            pts: None,
            dts: None,
            marker_byte_missing: false,
        }));
    }
    if length == 0 {
        return Err(bad(
            "PES_packet_length 0 (unbounded) is not allowed in a program stream",
        ));
    }
    if length < 3 {
        return Err(bad("PES_packet_length too short for the optional header"));
    }
    let Some(opt) = b.get(..9) else {
        return Ok(Parse::Need(9));
    };
    if policy.accept_missing_marker_byte {
        match without_marker_byte(b, packet_len, check_markers) {
            Some(Parse::Need(n)) => return Ok(Parse::Need(n)),
            Some(Parse::Done((pts, dts))) => {
                return Ok(Parse::Done(PesHeader {
                    stream_id,
                    packet_len,
                    header_len: 9 + usize::from(opt[7]),
                    pts,
                    dts,
                    marker_byte_missing: true,
                }))
            }
            None => {}
        }
    }
    if opt[6] >> 6 != 0b10 {
        return Err(bad("missing the '10' marker of an MPEG-2 PES header"));
    }
    let pts_dts = opt[7] >> 6;
    let data_len = usize::from(opt[8]);
    let header_len = 9 + data_len;
    if header_len > packet_len {
        return Err(bad("PES_header_data_length runs past PES_packet_length"));
    }
    let Some(full) = b.get(..header_len) else {
        return Ok(Parse::Need(header_len));
    };
    let fields = &full[9..];
    let (pts, dts) = match pts_dts {
        0b10 => {
            let p = fields
                .get(..5)
                .ok_or(bad("PTS flag set but header too short"))?;
            (
                Some(read_timestamp(p, check_markers).ok_or(bad("PTS marker bits not set"))?),
                None,
            )
        }
        0b11 => {
            let p = fields
                .get(..10)
                .ok_or(bad("PTS/DTS flags set but header too short"))?;
            let pts =
                read_timestamp(&p[..5], check_markers).ok_or(bad("PTS marker bits not set"))?;
            let dts =
                read_timestamp(&p[5..], check_markers).ok_or(bad("DTS marker bits not set"))?;
            (Some(pts), Some(dts))
        }
        // '01' is forbidden; treat it like '00' (no timestamps) rather than dropping data.
        _ => (None, None),
    };
    Ok(Parse::Done(PesHeader {
        stream_id,
        packet_len,
        header_len,
        pts,
        dts,
        marker_byte_missing: false,
    }))
}

/// PTS and DTS of a PES header.
type Timestamps = (Option<u64>, Option<u64>);

/// Policy `PesHeaderWithoutMarkerByte` (see [`parse_pes_header`]): `Some` when the header at
/// `b` (which holds at least 9 bytes) has the gb28181-rs layout, with its PTS and DTS; `None`
/// when it does not (then it is parsed as a standard header).
///
/// It never asks for more bytes than the header has if it turns out standard: more than 9
/// bytes are asked for only after a PTS prefix byte matched, and a standard header whose
/// `PES_header_data_length` byte is such a prefix byte (≥ 0x20) is longer than 19 bytes.
fn without_marker_byte(
    b: &[u8],
    packet_len: usize,
    check_markers: bool,
) -> Option<Parse<Timestamps>> {
    let flags = b[6];
    let len = usize::from(b[7]);
    if flags & 0x3f != 0 {
        return None;
    }
    let prefixes: &[u8] = match (flags >> 6, len) {
        (0b00, 0) => &[],
        (0b10, 5) => &[0x2],
        (0b11, 10) => &[0x3, 0x1],
        _ => return None,
    };
    // Header: 6 + flags byte + length byte + timestamps + the 0x00 filler.
    let header_len = 9 + len;
    if header_len > packet_len {
        return None;
    }
    for (k, p) in prefixes.iter().enumerate() {
        let at = 8 + 5 * k;
        let Some(&first) = b.get(at) else {
            return Some(Parse::Need(at + 1));
        };
        // Prefix nibble and the first marker bit of the 5-byte timestamp.
        if first >> 4 != *p || first & 1 != 1 {
            return None;
        }
    }
    let Some(h) = b.get(..header_len) else {
        return Some(Parse::Need(header_len));
    };
    if h[8 + len] != 0 {
        return None;
    }
    let ts = |k: usize| read_timestamp(&h[8 + 5 * k..13 + 5 * k], check_markers);
    let parsed = match prefixes.len() {
        0 => (None, None),
        1 => (Some(ts(0)?), None),
        _ => (Some(ts(0)?), Some(ts(1)?)),
    };
    Some(Parse::Done(parsed))
}

/// Decodes a 5-byte PTS/DTS field; `None` if markers are checked and missing.
fn read_timestamp(p: &[u8], check_markers: bool) -> Option<u64> {
    if check_markers && (p[0] & 1 == 0 || p[2] & 1 == 0 || p[4] & 1 == 0) {
        return None;
    }
    Some(
        (u64::from(p[0] >> 1) & 0x7) << 30
            | u64::from(p[1]) << 22
            | u64::from(p[2] >> 1) << 15
            | u64::from(p[3]) << 7
            | u64::from(p[4] >> 1),
    )
}

/// Encodes a PTS/DTS field with the given 4-bit prefix (`0010` PTS only, `0011`/`0001`).
pub(crate) fn write_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & ((1 << 33) - 1);
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x7) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pack header of a Hikvision IPC (ps/PsPacketDecodeNormal_1.bin @0).
    const HIK_PACK: &[u8] = &[
        0x00, 0x00, 0x01, 0xba, 0x44, 0x68, 0x6e, 0x4c, 0x94, 0x01, 0x01, 0x30, 0x13, 0xfe, 0xff,
        0xff, 0x00, 0x00, 0xa0, 0x05,
    ];

    #[test]
    fn hikvision_pack_header_with_counter_stuffing() {
        assert_eq!(parse_pack_header(&HIK_PACK[..10], 0), Ok(Parse::Need(14)));
        assert_eq!(parse_pack_header(&HIK_PACK[..15], 0), Ok(Parse::Need(20)));
        let Ok(Parse::Done(p)) = parse_pack_header(HIK_PACK, 0) else {
            panic!("not parsed")
        };
        assert_eq!(
            (p.scr_base, p.scr_ext, p.mux_rate, p.len()),
            (109_496_722, 0, 19460, 20)
        );
    }

    #[test]
    fn mpeg1_pack_is_rejected() {
        let mut h = HIK_PACK.to_vec();
        h[4] = 0x21;
        assert!(matches!(
            parse_pack_header(&h, 7),
            Err(PsError::BadPackHeader { offset: 7, .. })
        ));
    }

    #[test]
    fn timestamps_round_trip() {
        for ts in [0u64, 1, 109_496_722, (1 << 33) - 1, 6_687_742_899] {
            assert_eq!(read_timestamp(&write_timestamp(0b0010, ts), true), Some(ts));
        }
        // SRS recovery vector: a PES header completed by 'x' filler has no marker bits.
        assert_eq!(read_timestamp(b"xxxxx", true), None);
    }

    #[test]
    fn pes_header_needs_and_errors() {
        let hdr = [0x00, 0x00, 0x01, 0xc0, 0x00, 0x82, 0x8c, 0x80];
        assert_eq!(
            parse_pes_header(&hdr[..5], 0, PesPolicy::DEFAULT),
            Ok(Parse::Need(6))
        );
        assert_eq!(
            parse_pes_header(&hdr, 0, PesPolicy::DEFAULT),
            Ok(Parse::Need(9))
        );
        let mut with_len = hdr.to_vec();
        with_len.push(0x09);
        assert_eq!(
            parse_pes_header(&with_len, 0, PesPolicy::DEFAULT),
            Ok(Parse::Need(18))
        );
        let zero = [0x00, 0x00, 0x01, 0xe0, 0x00, 0x00];
        assert!(matches!(
            parse_pes_header(&zero, 3, PesPolicy::DEFAULT),
            Err(PsError::BadPesHeader {
                offset: 3,
                stream_id: 0xe0,
                ..
            })
        ));
        let padding = [0x00, 0x00, 0x01, 0xbe, 0x00, 0x10];
        let Ok(Parse::Done(p)) = parse_pes_header(&padding, 0, PesPolicy::DEFAULT) else {
            panic!()
        };
        assert_eq!((p.header_len, p.payload_len()), (6, 16));
    }
}
