//! A clip the simulator serves in a loop: access units packetized once into RTP payloads.

use std::sync::Arc;

use bytes::Bytes;
use vigil_media::{AccessUnitSplitter, ParameterSets, ParamsError, VideoCodec, VideoParameters};

use super::packetize::packetize_nal;

/// One access unit of the clip, ready to send.
#[derive(Debug, Clone)]
pub struct ClipFrame {
    /// RTP payloads in order; the last one carries the marker bit.
    pub payloads: Vec<Bytes>,
    pub is_key: bool,
    pub bytes: usize,
}

/// A looped clip. Cheap to share between sessions.
#[derive(Debug, Clone)]
pub struct Clip {
    pub codec: VideoCodec,
    /// Frames per second the clip is paced at.
    pub fps: u32,
    /// Parameter sets in codec order (H.264: SPS, PPS; H.265: VPS, SPS, PPS) for the SDP.
    pub parameter_sets: Vec<Bytes>,
    /// What the parameter sets describe (size, codec string), parsed by `vigil-media`; tests
    /// compare what a client reports against it.
    pub params: VideoParameters,
    pub frames: Arc<[ClipFrame]>,
}

/// Why a clip cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the clip has no frames")]
    Empty,
    #[error("the clip does not start with a key frame carrying its parameter sets")]
    NoParameterSets,
    #[error("the clip's parameter sets are unusable: {0}")]
    Params(#[from] ParamsError),
    #[error("the clip's frame rate must be between 1 and 240, not {0}")]
    FrameRate(u32),
    #[error("access unit {index} of the clip is malformed: {reason}")]
    BadAccessUnit { index: usize, reason: String },
}

/// RTP payload budget: an Ethernet MTU minus IP, UDP and RTP headers, with room to spare.
pub const MAX_RTP_PAYLOAD: usize = 1400;

/// One access unit as NAL units (no start codes, no length prefixes).
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub nals: Vec<Bytes>,
    pub is_key: bool,
}

impl Clip {
    /// Builds a clip from access units. `parameter_sets` come from the first key frame
    /// (H.264: SPS, PPS; H.265: VPS, SPS, PPS) and must parse.
    pub fn new(
        codec: VideoCodec,
        fps: u32,
        parameter_sets: Vec<Bytes>,
        access_units: impl IntoIterator<Item = AccessUnit>,
    ) -> Result<Self, ClipError> {
        if !(1..=240).contains(&fps) {
            return Err(ClipError::FrameRate(fps));
        }
        let frames: Vec<ClipFrame> = access_units
            .into_iter()
            .map(|au| {
                let mut payloads = Vec::new();
                for nal in &au.nals {
                    packetize_nal(codec, nal, MAX_RTP_PAYLOAD, &mut payloads);
                }
                ClipFrame {
                    bytes: au.nals.iter().map(Bytes::len).sum(),
                    payloads,
                    is_key: au.is_key,
                }
            })
            .collect();
        if frames.is_empty() {
            return Err(ClipError::Empty);
        }
        let sets: Vec<&[u8]> = parameter_sets.iter().map(|s| &s[..]).collect();
        let params = match (codec, sets.as_slice()) {
            (VideoCodec::H264, [sps, pps]) => VideoParameters::from_h264(&[sps], &[pps])?,
            (VideoCodec::H265, [vps, sps, pps]) => {
                VideoParameters::from_h265(&[vps], &[sps], &[pps])?
            }
            _ => return Err(ClipError::NoParameterSets),
        };
        if !frames[0].is_key {
            return Err(ClipError::NoParameterSets);
        }
        Ok(Clip {
            codec,
            fps,
            parameter_sets,
            params,
            frames: frames.into(),
        })
    }

    /// Builds a clip from a raw Annex B elementary stream (a `.h264`/`.h265` file), cut into
    /// access units by `vigil-media`'s splitter. The parameter sets for the SDP are the first
    /// of each kind in the first key frame; leading frames before that key frame are dropped
    /// (a loop must start where a decoder can start).
    pub fn from_annex_b(codec: VideoCodec, annex_b: &[u8], fps: u32) -> Result<Self, ClipError> {
        if !(1..=240).contains(&fps) {
            return Err(ClipError::FrameRate(fps));
        }
        let mut splitter = AccessUnitSplitter::new(Some(codec), 90_000 / fps);
        splitter.push(annex_b);
        splitter.flush();
        let frames: Vec<_> = std::iter::from_fn(|| splitter.next_frame())
            .skip_while(|f| !f.is_key)
            .collect();
        let first = frames.first().ok_or(ClipError::Empty)?;
        let sets = ParameterSets::from_access_unit(codec, &first.data);
        let mut parameter_sets = Vec::new();
        if codec == VideoCodec::H265 {
            parameter_sets.extend(sets.vps.first().map(|s| first.data.slice_ref(s)));
        }
        parameter_sets.extend(sets.sps.first().map(|s| first.data.slice_ref(s)));
        parameter_sets.extend(sets.pps.first().map(|s| first.data.slice_ref(s)));

        let mut access_units = Vec::with_capacity(frames.len());
        for (index, frame) in frames.iter().enumerate() {
            let nals = frame
                .nal_units()
                .map(|nal| nal.map(|n| frame.data.slice_ref(n)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClipError::BadAccessUnit {
                    index,
                    reason: e.to_string(),
                })?;
            access_units.push(AccessUnit {
                nals,
                is_key: frame.is_key,
            });
        }
        Self::new(codec, fps, parameter_sets, access_units)
    }

    /// The 90 kHz duration of one frame.
    pub fn frame_ticks(&self) -> u32 {
        90_000 / self.fps
    }

    /// Average bit rate of the clip at its frame rate.
    pub fn bits_per_second(&self) -> u64 {
        let bytes: usize = self.frames.iter().map(|f| f.bytes).sum();
        bytes as u64 * 8 * u64::from(self.fps) / self.frames.len() as u64
    }

    /// Frames between consecutive key frames (the first GOP's length), if the clip has a
    /// second key frame.
    pub fn gop_frames(&self) -> Option<usize> {
        self.frames
            .iter()
            .skip(1)
            .position(|f| f.is_key)
            .map(|p| p + 1)
    }
}

/// The clips bundled with the simulator (`crates/sim/assets`, see `SOURCES.md` there): 4 s of
/// `testsrc2`, 25 fps, a key frame every second, no B-frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoClip {
    /// H.264 High, 1280×720.
    H264_720p,
    /// H.265 Main, 1280×720.
    H265_720p,
    /// H.264 Main, 640×360: deliberately below the default HD requirement.
    H264_360p,
}

impl DemoClip {
    /// Every bundled clip.
    pub const ALL: [DemoClip; 3] = [Self::H264_720p, Self::H265_720p, Self::H264_360p];

    /// The raw Annex B bytes.
    pub fn annex_b(self) -> &'static [u8] {
        match self {
            Self::H264_720p => include_bytes!("../../assets/demo-720p.h264"),
            Self::H265_720p => include_bytes!("../../assets/demo-720p.h265"),
            Self::H264_360p => include_bytes!("../../assets/demo-360p.h264"),
        }
    }

    pub fn codec(self) -> VideoCodec {
        match self {
            Self::H264_720p | Self::H264_360p => VideoCodec::H264,
            Self::H265_720p => VideoCodec::H265,
        }
    }

    /// The file name under `assets/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::H264_720p => "demo-720p.h264",
            Self::H265_720p => "demo-720p.h265",
            Self::H264_360p => "demo-360p.h264",
        }
    }

    /// The frame rate the clip was encoded at.
    pub fn fps(self) -> u32 {
        25
    }

    /// Splits and packetizes the clip (a few milliseconds; share the result with an `Arc`).
    pub fn load(self) -> Result<Clip, ClipError> {
        Clip::from_annex_b(self.codec(), self.annex_b(), self.fps())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_clips_load_with_their_documented_geometry() {
        for (clip, size) in [
            (DemoClip::H264_720p, (1280, 720)),
            (DemoClip::H265_720p, (1280, 720)),
            (DemoClip::H264_360p, (640, 360)),
        ] {
            let loaded = clip.load().unwrap();
            assert_eq!(loaded.codec, clip.codec(), "{clip:?}");
            assert_eq!(
                (loaded.params.width(), loaded.params.height()),
                size,
                "{clip:?}"
            );
            // 4 s at 25 fps, one key frame per second.
            assert_eq!(loaded.frames.len(), 100, "{clip:?}");
            assert_eq!(loaded.frames.iter().filter(|f| f.is_key).count(), 4);
            assert_eq!(loaded.gop_frames(), Some(25));
            assert!(loaded.bits_per_second() > 10_000, "{clip:?}");
        }
    }

    #[test]
    fn sdp_parameter_sets_are_in_codec_order() {
        let h264 = DemoClip::H264_720p.load().unwrap();
        let types: Vec<u8> = h264.parameter_sets.iter().map(|s| s[0] & 0x1f).collect();
        assert_eq!(types, [7, 8]);
        let h265 = DemoClip::H265_720p.load().unwrap();
        let types: Vec<u8> = h265
            .parameter_sets
            .iter()
            .map(|s| (s[0] >> 1) & 0x3f)
            .collect();
        assert_eq!(types, [32, 33, 34]);
    }

    #[test]
    fn leading_frames_before_the_first_key_frame_are_dropped() {
        let bytes = DemoClip::H264_720p.annex_b();
        // Cut inside the first GOP: the stream now starts with non-key slices.
        let mut splitter = AccessUnitSplitter::new(Some(VideoCodec::H264), 3600);
        splitter.push(bytes);
        splitter.flush();
        let whole: Vec<_> = std::iter::from_fn(|| splitter.next_frame()).collect();
        let mut cut = Vec::new();
        for f in &whole[3..] {
            cut.extend_from_slice(&f.to_annexb().unwrap());
        }
        let clip = Clip::from_annex_b(VideoCodec::H264, &cut, 25).unwrap();
        assert!(clip.frames[0].is_key);
        assert_eq!(clip.frames.len(), whole.len() - 25);
    }

    #[test]
    fn rejects_streams_without_key_frame_or_bad_rate() {
        assert_eq!(
            Clip::from_annex_b(VideoCodec::H264, &[0, 0, 0, 1, 0x41, 0x9a, 0x00], 25).unwrap_err(),
            ClipError::Empty
        );
        assert_eq!(
            Clip::from_annex_b(VideoCodec::H264, DemoClip::H264_720p.annex_b(), 0).unwrap_err(),
            ClipError::FrameRate(0)
        );
    }

    #[test]
    fn wrong_parameter_set_count_is_refused() {
        let clip = DemoClip::H264_720p.load().unwrap();
        let au = AccessUnit {
            nals: vec![Bytes::from_static(&[0x65, 0x88])],
            is_key: true,
        };
        let err = Clip::new(
            VideoCodec::H265,
            25,
            clip.parameter_sets.clone(),
            [au.clone()],
        )
        .unwrap_err();
        assert_eq!(err, ClipError::NoParameterSets);
        let err = Clip::new(
            VideoCodec::H264,
            25,
            vec![
                Bytes::from_static(&[0x67, 0xff]),
                clip.parameter_sets[1].clone(),
            ],
            [au],
        )
        .unwrap_err();
        assert!(matches!(err, ClipError::Params(_)), "{err:?}");
    }
}
