//! Sans-IO media: H.264/H.265 NAL units and SPS, RTP reassembly, MPEG-PS demux, fragmented MP4
//! writer and reader.
//!
//! Nothing here touches a socket or a file: every type takes bytes (and, where relevant, the
//! caller's notion of "the stream broke here") and gives back frames, events and bytes. Media
//! timestamps are 90 kHz ticks ([`frame::CLOCK_RATE`]).
//!
//! The frame that travels from sources to the store is [`VideoFrame`] (4-byte length-prefixed
//! NAL units, key flag, 90 kHz timestamp) together with [`VideoParameters`] (codec, size, frame
//! rate, RFC 6381 codec string and the MP4 sample entry).
//!
//! # Paths through the crate
//!
//! - **GB/T 28181** (PS over RTP): UDP datagrams, or [`rtp::Rfc4571Decoder`] packets for TCP →
//!   [`rtp::RtpReceiver`] (SSRC filter, reordering; pass each [`rtp::Reordered::Lost`] on to
//!   [`ps::PsDemuxer::discontinuity`]) → [`ps::PsDemuxer::push`] → [`ps::PsEvent`]s:
//!   `Parameters` (codec parameters from the in-band SPS/PPS), `Video`, `Audio`.
//! - **RTSP** (retina): [`VideoParameters::from_sample_entry`] with the client's sample entry;
//!   frames are already length-prefixed, wrap them in [`VideoFrame`].
//! - **Store**: [`fmp4::init_segment`], a [`fmp4::FragmentBuilder`] per fragment (GOP), and
//!   [`fmp4::Walker`] / [`fmp4::walk`] for recovery and reads, [`fmp4::retime`] for export.
//! - **Simulator and tests**: [`AccessUnitSplitter`] (raw `.h264`/`.h265` → frames),
//!   [`ps::PsMuxer`], [`rtp::PsRtpPacketizer`], [`rtp::rfc4571_frame`].
//!
//! ```
//! use vigil_media::fmp4::{init_segment, FragmentBuilder};
//! use vigil_media::ps::{PsDemuxer, PsEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut demux = PsDemuxer::default();
//! let mut fragment = FragmentBuilder::default();
//! let mut init = None;
//! for rtp_payload in [&b""[..]] {
//!     demux.push(rtp_payload)?;
//!     while let Some(event) = demux.next_event() {
//!         match event {
//!             PsEvent::Parameters(p) => init = Some(init_segment(&p)),
//!             PsEvent::Video(frame) => {
//!                 if fragment.starts_new_gop(&frame) {
//!                     let f = fragment.finish(1, 0, Some(frame.pts))?;
//!                     let _bytes_to_write = f.chunks();
//!                 }
//!                 fragment.push(frame);
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! # let _ = init;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_unit;
pub mod bits;
pub mod fmp4;
pub mod frame;
pub mod h264;
pub mod h265;
mod mp4box;
pub mod nal;
pub mod params;
pub mod ps;
pub mod rtp;

pub use access_unit::AccessUnitSplitter;
pub use bits::SpsError;
pub use frame::{AudioCodec, AudioPacket, TimestampUnwrapper, VideoFrame, CLOCK_RATE};
pub use params::{ParameterSets, ParamsError, VideoCodec, VideoParameters};
