//! RTP payloads for H.264 (RFC 6184) and H.265 (RFC 7798): single NAL unit packets, and
//! fragmentation units for NAL units larger than the payload budget.
//!
//! The simulator packetizes its clip once at start-up; a session then only writes the 12-byte
//! RTP header in front of each prepared payload, which is what lets one process serve hundreds of
//! 4 Mbit/s streams.

use bytes::{BufMut, Bytes, BytesMut};

use vigil_media::VideoCodec;

/// Splits one NAL unit (without start code or length prefix) into RTP payloads of at most
/// `max_payload` bytes.
pub fn packetize_nal(codec: VideoCodec, nal: &[u8], max_payload: usize, out: &mut Vec<Bytes>) {
    if nal.len() <= max_payload {
        out.push(Bytes::copy_from_slice(nal));
        return;
    }
    match codec {
        VideoCodec::H264 => fragment(nal, 1, max_payload, out, |header, start, end| {
            // FU indicator: F and NRI of the original NAL, type 28 (FU-A).
            let indicator = (header[0] & 0xE0) | 28;
            let fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | (header[0] & 0x1F);
            vec![indicator, fu_header]
        }),
        VideoCodec::H265 => fragment(nal, 2, max_payload, out, |header, start, end| {
            // PayloadHdr: the original header with type 49 (FU); then the FU header.
            let nal_type = (header[0] >> 1) & 0x3F;
            let payload_hdr0 = (header[0] & 0x81) | (49 << 1);
            let fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type;
            vec![payload_hdr0, header[1], fu_header]
        }),
    }
}

/// Cuts `nal`'s body (after its `header_len`-byte NAL header) into fragments, each prefixed by
/// what `prefix(header, is_first, is_last)` returns.
fn fragment(
    nal: &[u8],
    header_len: usize,
    max_payload: usize,
    out: &mut Vec<Bytes>,
    prefix: impl Fn(&[u8], bool, bool) -> Vec<u8>,
) {
    let (header, body) = nal.split_at(header_len.min(nal.len()));
    let prefix_len = prefix(header, false, false).len();
    let chunk = max_payload.saturating_sub(prefix_len).max(1);
    let count = body.len().div_ceil(chunk);
    for (i, piece) in body.chunks(chunk).enumerate() {
        let mut payload = BytesMut::with_capacity(prefix_len + piece.len());
        payload.put_slice(&prefix(header, i == 0, i + 1 == count));
        payload.put_slice(piece);
        out.push(payload.freeze());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_nal_is_a_single_packet() {
        let mut out = Vec::new();
        packetize_nal(VideoCodec::H264, &[0x65, 1, 2, 3], 1400, &mut out);
        assert_eq!(out, vec![Bytes::from_static(&[0x65, 1, 2, 3])]);
    }

    #[test]
    fn h264_fu_a_reassembles_to_the_original() {
        let nal: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| i as u8))
            .collect();
        let mut out = Vec::new();
        packetize_nal(VideoCodec::H264, &nal, 1400, &mut out);
        assert!(out.len() > 3);
        assert!(out.iter().all(|p| p.len() <= 1400));
        assert_eq!(out[0][1] & 0x80, 0x80, "start bit on the first fragment");
        assert_eq!(out.last().unwrap()[1] & 0x40, 0x40, "end bit on the last");
        let mut rebuilt = vec![(out[0][0] & 0xE0) | (out[0][1] & 0x1F)];
        for p in &out {
            assert_eq!(p[0] & 0x1F, 28);
            rebuilt.extend_from_slice(&p[2..]);
        }
        assert_eq!(rebuilt, nal);
    }

    #[test]
    fn h265_fu_reassembles_to_the_original() {
        // IDR_W_RADL (type 19): header 0x26 0x01.
        let nal: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..4000u32).map(|i| i as u8))
            .collect();
        let mut out = Vec::new();
        packetize_nal(VideoCodec::H265, &nal, 1400, &mut out);
        let mut rebuilt = vec![(out[0][0] & 0x81) | ((out[0][2] & 0x3F) << 1), out[0][1]];
        for p in &out {
            assert_eq!((p[0] >> 1) & 0x3F, 49);
            rebuilt.extend_from_slice(&p[3..]);
        }
        assert_eq!(rebuilt, nal);
        assert_eq!(out[0][2] & 0x80, 0x80);
        assert_eq!(out.last().unwrap()[2] & 0x40, 0x40);
    }
}
