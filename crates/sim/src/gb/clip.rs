//! The clip a simulated GB/T 28181 device streams: a bundled Annex B file cut into access units
//! with [`AccessUnitSplitter`], muxed into MPEG-PS ([`PsMuxer`]) and packetized into RTP
//! ([`PsRtpPacketizer`]) frame by frame as it is sent, looping with increasing timestamps.

use bytes::{Bytes, BytesMut};
use vigil_media::ps::{PsMuxConfig, PsMuxer};
use vigil_media::rtp::PsRtpPacketizer;
use vigil_media::{AccessUnitSplitter, VideoCodec, VideoFrame, VideoParameters};

/// `demo-720p.h264` (see `assets/SOURCES.md`): 4 s, 25 fps, 1280×720, H.264 High.
pub const DEMO_720P_H264: &[u8] = include_bytes!("../../assets/demo-720p.h264");
/// `demo-720p.h265`: 4 s, 25 fps, 1280×720, H.265 Main.
pub const DEMO_720P_H265: &[u8] = include_bytes!("../../assets/demo-720p.h265");
/// `demo-360p.h264`: 4 s, 25 fps, 640×360, H.264 Main.
pub const DEMO_360P_H264: &[u8] = include_bytes!("../../assets/demo-360p.h264");

/// Why a clip cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GbClipError {
    /// No access unit in the stream.
    #[error("the clip has no access units")]
    Empty,
    /// The first access unit carries no parameter sets.
    #[error("the clip's first access unit carries no SPS")]
    NoParameters,
    /// The parameter sets do not parse.
    #[error("the clip's parameter sets are unusable: {0}")]
    Parameters(String),
    /// The frame rate is out of range.
    #[error("frame rate {0} is not between 1 and 240")]
    FrameRate(u32),
}

/// A looped clip. Cheap to share (`Arc`) between streams.
#[derive(Debug, Clone)]
pub struct GbClip {
    /// Codec.
    pub codec: VideoCodec,
    /// Codec parameters from the first key frame.
    pub params: VideoParameters,
    /// Access units with `pts = n × frame_ticks`.
    pub frames: Vec<VideoFrame>,
    /// Frames per second it is paced at.
    pub fps: u32,
}

impl GbClip {
    /// Cuts an Annex B stream into a clip paced at `fps`.
    pub fn from_annexb(annexb: &[u8], codec: VideoCodec, fps: u32) -> Result<GbClip, GbClipError> {
        if !(1..=240).contains(&fps) {
            return Err(GbClipError::FrameRate(fps));
        }
        let mut s = AccessUnitSplitter::new(Some(codec), 90_000 / fps);
        s.push(annexb);
        s.flush();
        let mut frames = Vec::new();
        while let Some(f) = s.next_frame() {
            frames.push(f);
        }
        let first = frames.first().ok_or(GbClipError::Empty)?;
        let params = VideoParameters::from_access_unit(codec, &first.data)
            .map_err(|e| GbClipError::Parameters(e.to_string()))?
            .ok_or(GbClipError::NoParameters)?;
        Ok(GbClip {
            codec,
            params,
            frames,
            fps,
        })
    }

    /// The bundled 720p H.264 demo clip.
    pub fn demo_h264() -> Result<GbClip, GbClipError> {
        Self::from_annexb(DEMO_720P_H264, VideoCodec::H264, 25)
    }

    /// The bundled 720p H.265 demo clip.
    pub fn demo_h265() -> Result<GbClip, GbClipError> {
        Self::from_annexb(DEMO_720P_H265, VideoCodec::H265, 25)
    }

    /// The bundled 360p H.264 demo clip.
    pub fn demo_360p() -> Result<GbClip, GbClipError> {
        Self::from_annexb(DEMO_360P_H264, VideoCodec::H264, 25)
    }

    /// 90 kHz ticks per frame.
    pub fn frame_ticks(&self) -> u32 {
        90_000 / self.fps
    }
}

/// Produces the RTP packets of a clip, frame by frame, forever.
#[derive(Debug)]
pub struct ClipPacketizer<'a> {
    clip: &'a GbClip,
    mux: PsMuxer,
    rtp: PsRtpPacketizer,
    next: u64,
}

impl<'a> ClipPacketizer<'a> {
    /// A packetizer for `ssrc` (payload type 96, 1400-byte packets).
    pub fn new(clip: &'a GbClip, ssrc: u32, first_sequence: u16) -> Self {
        let mut mux = PsMuxer::new(PsMuxConfig::video(clip.codec));
        mux.set_parameters(clip.params.clone());
        ClipPacketizer {
            clip,
            mux,
            rtp: PsRtpPacketizer::new(ssrc, 96, first_sequence, 1400),
            next: 0,
        }
    }

    /// The RTP packets of the next frame (appended to `out`).
    pub fn next_frame(&mut self, out: &mut Vec<Bytes>) {
        let n = self.clip.frames.len() as u64;
        let f = &self.clip.frames[(self.next % n) as usize];
        let pts = self.next as i64 * i64::from(self.clip.frame_ticks());
        self.next += 1;
        let frame = VideoFrame::new(pts, f.is_key, f.data.clone());
        let mut ps = BytesMut::with_capacity(frame.len() + 256);
        if self.mux.mux_video(&frame, &mut ps).is_err() {
            return;
        }
        self.rtp.packetize(&ps, pts as u32, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_media::ps::{PsDemuxer, PsEvent};
    use vigil_media::rtp::RtpPacket;

    #[test]
    fn demo_clips_load_and_round_trip_through_ps() {
        for (clip, codec) in [
            (GbClip::demo_h264().unwrap(), VideoCodec::H264),
            (GbClip::demo_h265().unwrap(), VideoCodec::H265),
        ] {
            assert_eq!(clip.params.codec(), codec);
            assert_eq!((clip.params.width(), clip.params.height()), (1280, 720));
            assert_eq!(clip.frames.len(), 100);
            let mut p = ClipPacketizer::new(&clip, 7, 0);
            let mut demux = PsDemuxer::default();
            let mut frames = 0;
            for _ in 0..30 {
                let mut pkts = Vec::new();
                p.next_frame(&mut pkts);
                for pkt in pkts {
                    let rtp = RtpPacket::parse(pkt).unwrap();
                    assert_eq!(rtp.header.ssrc, 7);
                    demux.push(&rtp.payload).unwrap();
                }
                while let Some(e) = demux.next_event() {
                    if matches!(e, PsEvent::Video(_)) {
                        frames += 1;
                    }
                }
            }
            demux.flush();
            while let Some(e) = demux.next_event() {
                if matches!(e, PsEvent::Video(_)) {
                    frames += 1;
                }
            }
            assert_eq!(frames, 30, "{codec:?}");
        }
    }
}
