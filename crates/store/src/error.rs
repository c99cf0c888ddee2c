//! Errors of the store. Every variant names the camera, segment or path involved and the reason.

use std::io;
use std::path::PathBuf;

use thiserror::Error;
use vigil_core::id::GbId;
use vigil_index::IndexError;

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("creating segment", "fsyncing directory", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment file was removed (or replaced) while the recorder was writing it.
    #[error("segment {path} vanished while camera {camera} was recording into it")]
    Vanished {
        /// The camera.
        camera: GbId,
        /// The file.
        path: PathBuf,
    },
    /// A segment file does not hold what the index says.
    #[error("segment {path} of camera {camera} is unusable: {reason}")]
    BadSegment {
        /// The camera.
        camera: GbId,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The index failed.
    #[error("index error for camera {camera}: {source}")]
    Index {
        /// The camera ("00000000000000000000" for store-wide operations).
        camera: GbId,
        /// The index's error.
        #[source]
        source: IndexError,
    },
    /// The index failed during a store-wide operation.
    #[error("index error while {context}: {source}")]
    IndexWide {
        /// What was being done.
        context: String,
        /// The index's error.
        #[source]
        source: IndexError,
    },
    /// The store directory and the index do not belong together (wrong disk mounted, index
    /// restored from another machine, disk not mounted at all).
    #[error(
        "store at {root} does not match the index: {reason}; refusing to record or delete \
         (mount the right disk, or rebuild the index from the files with `rebuild_index`)"
    )]
    IdentityMismatch {
        /// The store root.
        root: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A recorder is already running for this camera.
    #[error("camera {camera} already has a running recorder")]
    AlreadyRecording {
        /// The camera.
        camera: GbId,
    },
    /// An export request is not acceptable.
    #[error("export of camera {camera}: {reason}")]
    BadExport {
        /// The camera.
        camera: GbId,
        /// Why.
        reason: String,
    },
    /// A media-level failure while building a fragment.
    #[error("camera {camera}: cannot build fragment: {reason}")]
    Media {
        /// The camera.
        camera: GbId,
        /// Why.
        reason: String,
    },
    /// The blocking worker running a file operation panicked or was cancelled.
    #[error("background file task for camera {camera} failed: {reason}")]
    Worker {
        /// The camera.
        camera: GbId,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn index(camera: GbId, source: IndexError) -> Self {
        StoreError::Index { camera, source }
    }

    pub(crate) fn index_wide(context: impl Into<String>, source: IndexError) -> Self {
        StoreError::IndexWide {
            context: context.into(),
            source,
        }
    }

    /// Whether this is "no space left on device" (the retention task is woken early).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. }
            if source.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()))
    }
}
