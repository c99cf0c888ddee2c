//! A clip the simulator serves in a loop: access units packetized once into RTP payloads.

use std::sync::Arc;

use bytes::Bytes;

use super::packetize::packetize_nal;

/// The video codec of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

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
    pub codec: Codec,
    /// Frames per second the clip is paced at.
    pub fps: u32,
    /// Parameter sets in codec order (H.264: SPS, PPS; H.265: VPS, SPS, PPS) for the SDP.
    pub parameter_sets: Vec<Bytes>,
    pub frames: Arc<[ClipFrame]>,
}

/// Why a clip cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the clip has no frames")]
    Empty,
    #[error("the clip does not start with a key frame carrying its parameter sets")]
    NoParameterSets,
    #[error("the clip's frame rate must be between 1 and 240, not {0}")]
    FrameRate(u32),
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
    /// Builds a clip from access units. `parameter_sets` come from the first key frame.
    pub fn new(
        codec: Codec,
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
        let expected = match codec {
            Codec::H264 => 2,
            Codec::H265 => 3,
        };
        if parameter_sets.len() != expected || !frames[0].is_key {
            return Err(ClipError::NoParameterSets);
        }
        Ok(Clip {
            codec,
            fps,
            parameter_sets,
            frames: frames.into(),
        })
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
}
