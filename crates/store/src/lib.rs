//! The segmented on-disk recording store: crash-safe writer, recovery, retention and
//! time-range reader.
//!
//! Sources (RTSP, GB/T 28181) hand each camera's [`SourceEvent`]s to a recorder
//! ([`Store::spawn_recorder`] / [`Store::recorder_channel`]); the recorder writes self-contained
//! fragmented-MP4 segment files, records them in the index ([`vigil_index::SegmentRecord`]),
//! feeds the camera's `recording` and `upload` status history, and publishes live fragments.
//! Readers list recordings ([`Store::recordings`]), export time ranges as one MP4
//! ([`Store::export`]), subscribe to live video ([`Store::live`]) and take the latest key frame
//! ([`Store::latest_key_frame`]). [`Store::run_retention`] / [`Store::spawn_maintenance`]
//! delete old footage; [`Store::open`] recovers after a crash; [`rebuild_index`] re-creates
//! the catalogue from the files.
//!
//! # On-disk layout
//! ```text
//! <root>/vigil-store.id                                  store identity (also in the index)
//! <root>/<camera GB ID>/<YYYYMMDD>/<YYYYMMDDTHHMMSS.mmmZ>.mp4   one segment (UTC start)
//! ```
//! A segment is a fragmented MP4 that any player accepts on its own: `ftyp` + `moov` (one
//! video track, 90 kHz), then fragments. Each fragment is
//! `prft │ moof │ mdat │ free(trailer)` ([`boxes`]): the `prft` carries the wall-clock time
//! of the fragment's first frame, the `moof`'s `tfdt` counts from the segment start, the
//! trailer holds a CRC-32 of the fragment. **Segments are the source of truth**: start, end,
//! codec, frame counts and every frame's wall-clock time can be recomputed from the files
//! alone ([`rebuild_index`]).
//!
//! Segments are cut at a key frame after [`StoreConfig::segment_duration`] (default 60 s),
//! staggered per camera; a fragment holds one GOP, at most
//! [`StoreConfig::max_fragment_duration`] (default 4 s). A codec parameter change, an
//! `Interrupted` event, a gap or a write error also ends the segment.
//!
//! # Durability rules
//! 1. **Write, then fsync, then record.** A fragment is appended with one `writev`, then the
//!    file is `fdatasync`ed (a new file: created with `O_EXCL`, its directories created and
//!    their parents fsynced first, and its directory fsynced after the first fragment); only
//!    then is the fragment recorded in the index (segment length, end time). **The index never
//!    points at bytes that were not fsynced.**
//! 2. **At most one fragment is at risk.** Each fragment is fsynced before the next is
//!    written, so after a crash or power loss only the fragment being written can be
//!    incomplete or garbage; recovery cuts it off (structure + CRC). Index updates for
//!    fragments are not fsynced one by one (sled flushes every 500 ms); recovery re-derives
//!    what the index missed from the files, verifying every byte it did not confirm.
//! 3. **A failed write or fsync abandons the file.** After a failed `fsync` the page cache
//!    may claim data the disk does not have, so the store never retries on the same file: it
//!    cuts the file back to its last fsynced length, closes the segment in the index at
//!    that length, reports the error in the camera's [`RecorderState`] and starts a new file
//!    at a later key frame (backoff 1 s doubling to 60 s). Other cameras are unaffected.
//! 4. **Deletion is mark → unlink → fsync directory → forget** ([`retention`]); a crash in
//!    between is finished by recovery.
//! 5. **Identity.** The store directory and the index carry the same random id; if they do
//!    not match (wrong disk, disk not mounted) the store refuses to open instead of
//!    "recovering" ([`StoreError::IdentityMismatch`]).
//!
//! Compared with Moonfire NVR, which writes a recording's sample index to SQLite only when
//! the (one-minute) recording is finished and so loses the recording in progress on a crash,
//! this store loses at most the fragment in progress (one GOP), and its files can be played
//! and re-indexed without the database.
//!
//! # Time
//! Store time is 90 kHz ticks since the Unix epoch ([`time`]), tied to the wall-clock
//! receive time and strictly increasing per camera; see [`timeline`] for the anchoring,
//! slewing and clock-jump policy. At the API boundary it becomes
//! [`vigil_core::time::Timestamp`].
//!
//! # Threads and cost
//! One async task per camera; file I/O and index updates run on tokio's blocking pool, one
//! hop per fragment (`writev` + `fdatasync` + `fstat` + one sled insert). Frame data is never
//! copied on the write path: the `Bytes` from the source go to `writev` as they are. The CRC
//! is the only per-byte work. Disk load: one `fdatasync` per camera per fragment, i.e. 100
//! cameras with 2 s GOPs cause 50 fsyncs/s — fine on SSDs; on a single spinning disk raise
//! `max_fragment_duration` and ask cameras for longer GOPs (fewer, larger fsyncs) or use a
//! RAID controller with a write cache.

#![warn(missing_docs)]

pub mod boxes;
pub mod config;
pub mod error;
pub mod export;
pub mod fsutil;
mod identity;
pub mod ingest;
pub mod layout;
pub mod list;
pub mod live;
pub mod rebuild;
mod recorder;
pub mod recovery;
pub mod retention;
pub mod scan;
mod segment;
pub mod state;
mod store;
#[cfg(test)]
mod test_util;
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod timeline;
mod util;

pub use config::StoreConfig;
pub use error::StoreError;
pub use export::Export;
pub use ingest::SourceEvent;
pub use list::{RecordingList, RecordingRun};
pub use live::{KeyFrame, LiveEvent, LiveFragment, LiveSubscription};
pub use rebuild::{rebuild_index, RebuildReport};
pub use recovery::RecoveryReport;
pub use retention::{DeleteReason, DeletedSegment, RetentionReport};
pub use state::{RecorderState, RecorderStatus};
pub use store::{RecorderHandle, Store};
