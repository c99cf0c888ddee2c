//! The boundary between video sources and the store.
//!
//! Every source (the RTSP puller, a GB/T 28181 media session) turns what it receives into an
//! ordered stream of [`SourceEvent`]s for one camera and hands them to the store. The store does not
//! know or care which protocol produced them; everything that must behave the same for every
//! source (tying media time to wall-clock time, surviving camera clock jumps, cutting segments,
//! recording intervals and gaps) is decided on the store's side of this boundary.

use std::sync::Arc;

use vigil_core::time::Timestamp;
use vigil_media::{VideoFrame, VideoParameters};

/// One event from a camera's source, in the order the source observed them.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// A video access unit.
    Frame {
        /// The codec parameters in force for this frame. Sources keep one `Arc` while the
        /// parameters stay the same; a different value (compared by `==`) starts a new segment.
        params: Arc<VideoParameters>,
        /// The frame with the camera's own 90 kHz timestamp (which may jump or wrap).
        frame: VideoFrame,
        /// Wall-clock time at which the source received the frame's last byte.
        received_at: Timestamp,
    },
    /// The source lost the stream (disconnect, stall, refused, bad data). The store ends the
    /// recording interval here; the next `Frame` starts a new segment.
    Interrupted {
        /// When the stream was lost (the source's clock).
        at: Timestamp,
        /// Why, in words an operator understands (it ends up in the camera's state).
        reason: String,
    },
}
