//! Fragmented MP4 (ISO/IEC 14496-12): the on-disk format of the store's segments.
//!
//! A segment is an init segment (`ftyp` + `moov`, one video track, timescale 90 000) followed
//! by fragments (`moof` + `mdat`), one per GOP or per configured duration; the caller decides
//! where to cut. [`writer`] builds them, [`reader`] walks them back (crash recovery, export,
//! time-range reads) and [`reader::retime`] renumbers a fragment for splicing.

pub mod reader;
pub mod writer;

pub use reader::{
    retime, walk, FragmentInfo, InitInfo, SampleInfo, SegmentIndex, Tail, WalkError, WalkOptions,
    Walker, WalkerStep,
};
pub use writer::{init_segment, Fragment, FragmentBuilder, WriteError};

/// Timescale of the video track (and of the movie): 90 kHz, the RTP/MPEG media clock.
pub const TIMESCALE: u32 = 90_000;

/// Track id of the single video track.
pub const TRACK_ID: u32 = 1;

/// Sample flags of a sync sample: `sample_depends_on` = 2 (does not depend on others).
pub const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;

/// Sample flags of a non-sync sample: `sample_depends_on` = 1, `sample_is_non_sync_sample` = 1.
pub const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// Whether sample flags describe a sync sample (`sample_is_non_sync_sample` clear).
pub fn is_sync_sample(flags: u32) -> bool {
    flags & 0x0001_0000 == 0
}
