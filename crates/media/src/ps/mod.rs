//! MPEG-2 program stream (ISO/IEC 13818-1) as GB/T 28181 devices send it: a demuxer that turns
//! PS bytes, fed in arbitrary chunks, into video access units and audio packets; and a muxer
//! (with [`crate::rtp::PsRtpPacketizer`]) for the device simulator and tests.

mod crc;
mod demux;
mod headers;
mod mux;

pub use crc::crc32_mpeg2;
pub use demux::{PsDemuxConfig, PsDemuxer, PsEvent, PsStats};
pub use headers::{PackHeader, PesHeader, Psm, PsmCrc, PsmEntry};
pub use mux::{PsMuxConfig, PsMuxer};

use crate::{AudioCodec, VideoCodec};

/// The `stream_type` byte of a program stream map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamType(pub u8);

impl StreamType {
    /// MPEG-1 audio.
    pub const MPEG1_AUDIO: Self = Self(0x03);
    /// MPEG-2 audio.
    pub const MPEG2_AUDIO: Self = Self(0x04);
    /// AAC with ADTS.
    pub const AAC: Self = Self(0x0F);
    /// MPEG-4 part 2 video.
    pub const MPEG4_VIDEO: Self = Self(0x10);
    /// H.264.
    pub const H264: Self = Self(0x1B);
    /// H.265.
    pub const H265: Self = Self(0x24);
    /// SVAC video (GB/T 25724), used by some Chinese devices.
    pub const SVAC_VIDEO: Self = Self(0x80);
    /// G.711 A-law.
    pub const G711A: Self = Self(0x90);
    /// G.711 µ-law.
    pub const G711U: Self = Self(0x91);
    /// G.722.1.
    pub const G7221: Self = Self(0x92);
    /// G.723.1.
    pub const G7231: Self = Self(0x93);
    /// G.729.
    pub const G729: Self = Self(0x99);
    /// SVAC audio.
    pub const SVAC_AUDIO: Self = Self(0x9B);

    /// The video codec, if this is H.264 or H.265.
    pub fn video_codec(self) -> Option<VideoCodec> {
        match self {
            Self::H264 => Some(VideoCodec::H264),
            Self::H265 => Some(VideoCodec::H265),
            _ => None,
        }
    }

    /// The audio codec, if this is an audio stream type.
    pub fn audio_codec(self) -> Option<AudioCodec> {
        Some(match self {
            Self::AAC => AudioCodec::Aac,
            Self::G711A => AudioCodec::G711A,
            Self::G711U => AudioCodec::G711U,
            Self::G7221 => AudioCodec::G7221,
            Self::G7231 => AudioCodec::G7231,
            Self::G729 => AudioCodec::G729,
            Self::SVAC_AUDIO => AudioCodec::Svac,
            Self::MPEG1_AUDIO | Self::MPEG2_AUDIO => AudioCodec::MpegAudio,
            _ => return None,
        })
    }

    /// The stream type that signals `codec`.
    pub fn for_video(codec: VideoCodec) -> Self {
        match codec {
            VideoCodec::H264 => Self::H264,
            VideoCodec::H265 => Self::H265,
        }
    }

    /// The stream type that signals `codec` (`None` for [`AudioCodec::Unknown`]).
    pub fn for_audio(codec: AudioCodec) -> Option<Self> {
        Some(match codec {
            AudioCodec::Aac => Self::AAC,
            AudioCodec::G711A => Self::G711A,
            AudioCodec::G711U => Self::G711U,
            AudioCodec::G7221 => Self::G7221,
            AudioCodec::G7231 => Self::G7231,
            AudioCodec::G729 => Self::G729,
            AudioCodec::Svac => Self::SVAC_AUDIO,
            AudioCodec::MpegAudio => Self::MPEG2_AUDIO,
            AudioCodec::Unknown => return None,
        })
    }
}

/// A problem in the program stream, with the stream offset (bytes since the demuxer was
/// created) where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsError {
    /// No `00 00 01` start code where a unit must begin.
    #[error("offset {offset}: expected a start code, found {found}")]
    BadStartCode {
        /// Stream offset.
        offset: u64,
        /// The bytes found, in hex.
        found: String,
    },
    /// A start code whose id cannot begin a program stream unit (e.g. a raw NAL unit).
    #[error("offset {offset}: stream id {stream_id:#04x} does not begin a program stream unit")]
    BadStreamId {
        /// Stream offset.
        offset: u64,
        /// The id after the start code.
        stream_id: u8,
    },
    /// A malformed pack header.
    #[error("offset {offset}: pack header: {reason}")]
    BadPackHeader {
        /// Stream offset.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A malformed program stream map.
    #[error("offset {offset}: program stream map: {reason}")]
    BadPsm {
        /// Stream offset.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A malformed PES header.
    #[error("offset {offset}: PES header of stream {stream_id:#04x}: {reason}")]
    BadPesHeader {
        /// Stream offset.
        offset: u64,
        /// The stream id.
        stream_id: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A video access unit grew past the limit without ending; it was dropped.
    #[error("offset {offset}: video access unit exceeds {limit} bytes, dropped")]
    FrameTooLarge {
        /// Stream offset.
        offset: u64,
        /// [`PsDemuxConfig::max_frame_size`].
        limit: usize,
    },
    /// Too many consecutive chunks without a usable pack header: the input is probably not
    /// a program stream. The session should be torn down.
    #[error("{count} consecutive chunks without a usable pack header (limit {limit})")]
    TooManyBadChunks {
        /// Consecutive bad chunks.
        count: u32,
        /// [`PsDemuxConfig::max_consecutive_bad_chunks`].
        limit: u32,
    },
}
