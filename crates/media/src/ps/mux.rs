//! Writing a GB/T 28181-style program stream: a pack header per video frame, system header and
//! PSM before key frames, PES packets split at the 16-bit length limit.

use bytes::{BufMut, BytesMut};

use super::crc::crc32_mpeg2;
use super::headers::write_timestamp;
use super::StreamType;
use crate::nal::{AvccNals, NalError};
use crate::{AudioCodec, AudioPacket, VideoCodec, VideoFrame, VideoParameters};

/// Muxer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsMuxConfig {
    /// Video codec (0xE0).
    pub video: VideoCodec,
    /// Audio codec (0xC0), if audio packets will be muxed.
    pub audio: Option<AudioCodec>,
    /// `program_mux_rate` in units of 50 bytes/s (default 20 000 = 8 Mbit/s; informative).
    pub mux_rate: u32,
}

impl PsMuxConfig {
    /// Video only.
    pub fn video(codec: VideoCodec) -> Self {
        Self {
            video: codec,
            audio: None,
            mux_rate: 20_000,
        }
    }
}

/// Largest `PES_packet_length`.
const MAX_PES_LEN: usize = 0xFFFF;
const VIDEO_ID: u8 = 0xE0;
const AUDIO_ID: u8 = 0xC0;

/// Muxes video frames (and optionally audio packets) into a program stream.
#[derive(Debug, Clone)]
pub struct PsMuxer {
    cfg: PsMuxConfig,
    params: Option<VideoParameters>,
}

impl PsMuxer {
    /// A muxer.
    pub fn new(cfg: PsMuxConfig) -> Self {
        Self { cfg, params: None }
    }

    /// Codec parameters whose parameter sets are put in front of key frames that lack an SPS
    /// (policy `InsertParameterSets`: RTSP cameras often send them only in the SDP, but a PS
    /// receiver needs them in band).
    pub fn set_parameters(&mut self, params: VideoParameters) {
        self.params = Some(params);
    }

    /// Appends one video frame: pack header, on key frames the system header and PSM, then PES
    /// packets carrying the access unit in Annex B form (PTS on the first).
    pub fn mux_video(&mut self, frame: &VideoFrame, out: &mut BytesMut) -> Result<(), NalError> {
        let mut es = BytesMut::with_capacity(frame.data.len() + 256);
        if frame.is_key {
            self.put_missing_parameter_sets(frame, &mut es)?;
        }
        for nal in AvccNals::new(&frame.data) {
            es.put_slice(&[0, 0, 0, 1]);
            es.put_slice(nal?);
        }
        let pts = ts33(frame.pts);
        self.put_pack_header(out, pts);
        if frame.is_key {
            self.put_system_header(out);
            self.put_psm(out);
        }
        put_pes(out, VIDEO_ID, Some(pts), &es);
        Ok(())
    }

    /// Appends one audio PES (no pack header, as cameras interleave audio after video).
    pub fn mux_audio(&mut self, packet: &AudioPacket, out: &mut BytesMut) {
        put_pes(out, AUDIO_ID, packet.pts.map(ts33), &packet.data);
    }

    /// An MPEG program end code (`00 00 01 B9`).
    pub fn end(&self, out: &mut BytesMut) {
        out.put_slice(&[0, 0, 1, 0xB9]);
    }

    fn put_missing_parameter_sets(
        &self,
        frame: &VideoFrame,
        es: &mut BytesMut,
    ) -> Result<(), NalError> {
        let Some(params) = &self.params else {
            return Ok(());
        };
        let codec = self.cfg.video;
        let mut has_sps = false;
        for nal in AvccNals::new(&frame.data) {
            let nal = nal?;
            let is_sps = match codec {
                VideoCodec::H264 => crate::h264::nal_type(nal) == Some(crate::h264::nal_type::SPS),
                VideoCodec::H265 => crate::h265::nal_type(nal) == Some(crate::h265::nal_type::SPS),
            };
            has_sps |= is_sps;
        }
        if !has_sps && params.codec() == codec {
            for set in params.parameter_sets() {
                es.put_slice(&[0, 0, 0, 1]);
                es.put_slice(&set);
            }
        }
        Ok(())
    }

    fn put_pack_header(&self, out: &mut BytesMut, scr: u64) {
        // SCR = PTS, as Hikvision devices do: the receiver has no decoder buffer model to
        // satisfy, only a clock to read.
        let rate = self.cfg.mux_rate & 0x3F_FFFF;
        out.put_slice(&[0, 0, 1, 0xBA]);
        out.put_u8(0x40 | (((scr >> 30) as u8 & 0x7) << 3) | 0x04 | ((scr >> 28) as u8 & 0x3));
        out.put_u8((scr >> 20) as u8);
        out.put_u8((((scr >> 15) as u8 & 0x1F) << 3) | 0x04 | ((scr >> 13) as u8 & 0x3));
        out.put_u8((scr >> 5) as u8);
        out.put_u8(((scr as u8 & 0x1F) << 3) | 0x04); // SCR extension 0
        out.put_u8(0x01);
        out.put_u8((rate >> 14) as u8);
        out.put_u8((rate >> 6) as u8);
        out.put_u8(((rate as u8 & 0x3F) << 2) | 0x03);
        out.put_u8(0xF8); // reserved, no stuffing
    }

    fn put_system_header(&self, out: &mut BytesMut) {
        let rate = self.cfg.mux_rate & 0x3F_FFFF;
        let audio = self.cfg.audio.is_some();
        let streams = if audio { 2 } else { 1 };
        out.put_slice(&[0, 0, 1, 0xBB]);
        out.put_u16(6 + 3 * streams);
        out.put_u8(0x80 | (rate >> 15) as u8);
        out.put_u8((rate >> 7) as u8);
        out.put_u8(((rate as u8 & 0x7F) << 1) | 1);
        out.put_u8(u8::from(audio) << 2); // audio_bound, fixed 0, CSPS 0
        out.put_u8(0xE1); // audio/video lock, marker, video_bound 1
        out.put_u8(0x7F); // packet_rate_restriction 0, reserved
                          // P-STD buffer bound of the video stream: scale 1 (1024-byte units) × 128 = 128 KiB.
        out.put_slice(&[VIDEO_ID, 0xE0, 0x80]);
        if audio {
            // scale 0 (128-byte units), 32 × 128 = 4 KiB.
            out.put_slice(&[AUDIO_ID, 0xC0, 0x20]);
        }
    }

    fn put_psm(&self, out: &mut BytesMut) {
        let mut entries: Vec<(StreamType, u8)> =
            vec![(StreamType::for_video(self.cfg.video), VIDEO_ID)];
        if let Some(t) = self.cfg.audio.and_then(StreamType::for_audio) {
            entries.push((t, AUDIO_ID));
        }
        let start = out.len();
        out.put_slice(&[0, 0, 1, 0xBC]);
        // Length after this field: 2 flags + 2 info length + 2 map length + 4 per entry + CRC.
        out.put_u16((6 + 4 * entries.len() + 4) as u16);
        out.put_u8(0xE0); // current_next_indicator, reserved, version 0
        out.put_u8(0xFF); // reserved, marker
        out.put_u16(0); // program_stream_info_length
        out.put_u16((4 * entries.len()) as u16);
        for (t, id) in entries {
            out.put_u8(t.0);
            out.put_u8(id);
            out.put_u16(0); // elementary_stream_info_length
        }
        let crc = crc32_mpeg2(&out[start..]);
        out.put_u32(crc);
    }
}

/// 33-bit wrap of a 64-bit 90 kHz timestamp.
fn ts33(t: i64) -> u64 {
    (t as u64) & ((1 << 33) - 1)
}

/// Writes `payload` as one or more PES packets; only the first carries the PTS.
fn put_pes(out: &mut BytesMut, stream_id: u8, pts: Option<u64>, payload: &[u8]) {
    let mut rest = payload;
    let mut first = true;
    loop {
        let header_data = if first && pts.is_some() { 5 } else { 0 };
        let room = MAX_PES_LEN - 3 - header_data;
        let n = rest.len().min(room);
        out.reserve(9 + header_data + n);
        out.put_slice(&[0, 0, 1, stream_id]);
        out.put_u16((3 + header_data + n) as u16);
        // '10', not scrambled, data_alignment_indicator on the first PES of the frame.
        out.put_u8(if first { 0x84 } else { 0x80 });
        out.put_u8(if header_data == 5 { 0x80 } else { 0x00 });
        out.put_u8(header_data as u8);
        if let (true, Some(pts)) = (header_data == 5, pts) {
            out.put_slice(&write_timestamp(0b0010, pts));
        }
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        first = false;
        if rest.is_empty() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::headers::{parse_pack_header, parse_pes_header, parse_psm, Parse, PesPolicy};
    use super::*;
    use bytes::Bytes;

    #[test]
    fn pack_header_round_trips() {
        let m = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
        for scr in [0u64, 109_496_722, (1 << 33) - 1, 6_687_742_899] {
            let mut b = BytesMut::new();
            m.put_pack_header(&mut b, scr);
            let Ok(Parse::Done(p)) = parse_pack_header(&b, 0) else {
                panic!("unparsable")
            };
            assert_eq!((p.scr_base, p.mux_rate, p.len()), (scr, 20_000, 14));
        }
    }

    #[test]
    fn psm_has_valid_crc_and_entries() {
        let m = PsMuxer::new(PsMuxConfig {
            audio: Some(AudioCodec::G711A),
            ..PsMuxConfig::video(VideoCodec::H265)
        });
        let mut b = BytesMut::new();
        m.put_psm(&mut b);
        let Ok(Parse::Done(psm)) = parse_psm(&b, 0) else {
            panic!("unparsable")
        };
        assert_eq!(psm.crc, super::super::PsmCrc::Valid);
        assert_eq!(psm.stream_type(0xE0), Some(StreamType::H265));
        assert_eq!(psm.stream_type(0xC0), Some(StreamType::G711A));
    }

    #[test]
    fn large_frames_are_split_into_max_size_pes() {
        let mut m = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
        let mut data = BytesMut::new();
        data.put_u32(150_000);
        data.put_u8(0x65);
        data.put_bytes(0x78, 149_999);
        let frame = VideoFrame::new(90_000, true, data.freeze());
        let mut out = BytesMut::new();
        m.mux_video(&frame, &mut out).unwrap();
        // Walk the PES packets after pack + system header + PSM.
        let mut pos = 14;
        let mut lens = Vec::new();
        while pos < out.len() {
            let id = out[pos + 3];
            let len = usize::from(u16::from_be_bytes([out[pos + 4], out[pos + 5]]));
            if id == 0xE0 {
                let Ok(Parse::Done(h)) = parse_pes_header(&out[pos..], 0, PesPolicy::DEFAULT)
                else {
                    panic!("bad PES")
                };
                lens.push((h.payload_len(), h.pts));
            }
            pos += 6 + len;
        }
        assert_eq!(pos, out.len());
        assert_eq!(
            lens,
            [
                (65_527, Some(90_000)),
                (65_532, None),
                (150_004 - 65_527 - 65_532, None)
            ]
        );
    }

    #[test]
    fn bad_avcc_is_an_error() {
        let mut m = PsMuxer::new(PsMuxConfig::video(VideoCodec::H264));
        let frame = VideoFrame::new(0, false, Bytes::from_static(&[0, 0, 0, 9, 1]));
        assert!(m.mux_video(&frame, &mut BytesMut::new()).is_err());
    }
}
