//! The metadata index: cameras, grids, sites, targets and status history on sled 0.34 behind our
//! own boundary. No sled type appears in this crate's public API.
//!
//! # Shape
//! The index keeps the whole domain state in memory as a [`vigil_core::model::Registry`], loaded
//! from sled at [`Index::open`] and updated on every write, so reports
//! ([`Index::report`], [`Index::rank`]) run `vigil_core::compliance` without touching disk.
//!
//! # Concurrency
//! - Writers are serialised by one mutex. A write validates against the in-memory model (read
//!   lock), persists to sled, then applies the change to the model under a short write lock.
//! - Readers (queries, reports) take the read lock. A report holds it only to take a snapshot —
//!   a shallow clone, about a millisecond for a 200 000-camera city — and computes on the
//!   snapshot after releasing it, so a 100 ms report blocks writers for about a millisecond.
//!   A writer changing a camera that a live snapshot still shares copies only that camera.
//!
//! # Durability (what is on disk when)
//! sled keeps recent writes in memory and its background thread writes and fsyncs them every
//! [`IndexOptions::flush_every_ms`] (default 500 ms). On top of that:
//! - **fsynced before the call returns**: grid, site and camera changes (single and bulk), target
//!   changes, credentials, token changes, audit entries, history and diagnosis imports, and
//!   [`Index::close_open_intervals`]. After `Ok`, a crash loses none of these.
//! - **not fsynced per call**: live status transitions ([`Index::set_status`],
//!   [`Index::set_uplink`]) and single diagnoses ([`Index::record_diagnosis`]); they are
//!   durable at the next periodic flush. A crash loses at most the last flush period of them:
//!   typically an interval that was closed comes back open (or one that was opened is missing).
//!   On restart the daemon should call [`Index::close_open_intervals`] with the last instant it
//!   knows the service was alive, and re-probe devices.
//! - Every multi-key change is one sled batch, which sled applies atomically: after a crash it
//!   is entirely present or entirely absent.
//! - [`Index::flush`] fsyncs everything; call it on graceful shutdown.
//! - Order is store first, memory second: if the store write fails the model is unchanged and
//!   the caller gets the error. The in-memory model is never authoritative; a restart rebuilds it.

mod audit;
mod catalog;
mod error;
mod history;
mod import;
mod keys;
mod load;
mod query;
mod recordings;
mod tokens;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vigil_core::compliance::{
    self, ComplianceOptions, GridReport, RankRequest, RankedGrid, ReportRequest,
};
use vigil_core::model::{Model, Registry};
use vigil_core::target::Targets;

pub use audit::{AuditCursor, AuditDraft, AuditEntry, AuditPage};
pub use error::{IndexError, StorageError};
pub use import::{ImportMode, ImportReport, RtspIdPolicy};
pub use query::{CameraFilter, CameraView, Page, SiteFilter};
pub use recordings::{RetentionPolicy, SegmentKey, SegmentRecord, SegmentState, StreamInfo};
pub use tokens::TokenRecord;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Tuning for [`Index::open_with`].
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// sled page-cache size in bytes. The in-memory model already holds everything reports
    /// need, so the cache only speeds up writes; default 64 MiB.
    pub cache_bytes: u64,
    /// Background flush period (ms). Bounds how much live status a crash can lose.
    pub flush_every_ms: u64,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            cache_bytes: 64 << 20,
            flush_every_ms: 500,
        }
    }
}

/// The metadata index (see the crate docs for concurrency and durability).
pub struct Index {
    db: sled::Db,
    path: String,
    state: RwLock<Registry>,
    writer: Mutex<()>,
    /// Bumped by every change to camera records or credentials (see
    /// [`Index::camera_generation`]).
    camera_changes: AtomicU64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

impl Index {
    /// Opens (or creates) the index at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Index, IndexError> {
        Index::open_with(path, &IndexOptions::default())
    }

    /// Opens (or creates) the index at `path`.
    pub fn open_with(path: impl AsRef<Path>, opts: &IndexOptions) -> Result<Index, IndexError> {
        let display = path.as_ref().display().to_string();
        let db = sled::Config::new()
            .path(path.as_ref())
            .cache_capacity(opts.cache_bytes)
            .flush_every_ms(Some(opts.flush_every_ms))
            .open()
            .map_err(|e| IndexError::storage(format!("opening {display}"), e))?;
        Index::from_db(db, display)
    }

    /// A throw-away index (deleted when dropped), for tests and demos.
    pub fn temporary() -> Result<Index, IndexError> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(IndexOptions::default().cache_bytes)
            .open()
            .map_err(|e| IndexError::storage("opening a temporary index", e))?;
        Index::from_db(db, "(temporary)".to_owned())
    }

    fn from_db(db: sled::Db, path: String) -> Result<Index, IndexError> {
        check_schema(&db, &path)?;
        let registry = load::load(&db)?;
        Ok(Index {
            db,
            path,
            state: RwLock::new(registry),
            writer: Mutex::new(()),
            camera_changes: AtomicU64::new(0),
        })
    }

    /// Writes everything buffered to disk and fsyncs (graceful shutdown).
    pub fn flush(&self) -> Result<(), IndexError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| IndexError::storage("flushing the index", e))
    }

    /// The path the index was opened at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A consistent snapshot of the model for callers that run several computations on the
    /// same state (cheap; see the crate docs).
    pub fn snapshot(&self) -> Result<Model, IndexError> {
        Ok(self.read()?.snapshot())
    }

    /// The compliance report for one grid, computed on a snapshot.
    pub fn report(
        &self,
        opts: &ComplianceOptions,
        req: &ReportRequest,
    ) -> Result<GridReport, IndexError> {
        let model = self.snapshot()?;
        Ok(compliance::report(&model, opts, req)?)
    }

    /// Ranks the grids at one depth, computed on a snapshot.
    pub fn rank(
        &self,
        opts: &ComplianceOptions,
        req: &RankRequest,
    ) -> Result<Vec<RankedGrid>, IndexError> {
        let model = self.snapshot()?;
        Ok(compliance::rank(&model, opts, req)?)
    }

    /// The current targets.
    pub fn targets(&self) -> Result<Targets, IndexError> {
        Ok(self.read()?.model().targets().clone())
    }

    /// Replaces the targets (fsynced).
    pub fn set_targets(&self, targets: Targets) -> Result<(), IndexError> {
        let _w = self.lock_writer()?;
        let bytes = encode_json("targets", &targets)?;
        self.db
            .insert(keys::TARGETS_KEY, bytes)
            .map_err(|e| IndexError::storage("saving targets", e))?;
        self.flush()?;
        self.write()?.set_targets(targets);
        Ok(())
    }

    /// A counter that changes whenever this process changes a camera record, adds or deletes
    /// a camera, or changes RTSP credentials (single writes and imports alike). Sources that
    /// follow the register (the RTSP pullers) poll it to notice changes without re-reading
    /// every camera. Starts at 0 when the index is opened.
    pub fn camera_generation(&self) -> u64 {
        self.camera_changes.load(Ordering::Acquire)
    }

    pub(crate) fn cameras_changed(&self) {
        self.camera_changes.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, Registry>, IndexError> {
        self.state.read().map_err(|_| IndexError::Poisoned)
    }

    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Registry>, IndexError> {
        self.state.write().map_err(|_| IndexError::Poisoned)
    }

    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, ()>, IndexError> {
        self.writer.lock().map_err(|_| IndexError::Poisoned)
    }

    /// Applies a batch atomically and, if `durable`, fsyncs before returning.
    pub(crate) fn commit(
        &self,
        batch: sled::Batch,
        durable: bool,
        context: impl Fn() -> String,
    ) -> Result<(), IndexError> {
        self.db
            .apply_batch(batch)
            .map_err(|e| IndexError::storage(context(), e))?;
        if durable {
            self.db
                .flush()
                .map_err(|e| IndexError::storage(context(), e))?;
        }
        Ok(())
    }
}

pub(crate) fn encode_json<T: serde::Serialize>(item: &str, v: &T) -> Result<Vec<u8>, IndexError> {
    serde_json::to_vec(v).map_err(|e| IndexError::Encode {
        item: item.to_owned(),
        reason: e.to_string(),
    })
}

fn check_schema(db: &sled::Db, path: &str) -> Result<(), IndexError> {
    let stored = db
        .get(keys::SCHEMA_KEY)
        .map_err(|e| IndexError::storage("reading the schema version", e))?;
    match stored {
        None => {
            if db.iter().next().is_some() {
                return Err(IndexError::SchemaUnknown {
                    path: path.to_owned(),
                    reason: "the database has data but no schema version".to_owned(),
                });
            }
            db.insert(keys::SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                .map_err(|e| IndexError::storage("writing the schema version", e))?;
            db.flush()
                .map_err(|e| IndexError::storage("writing the schema version", e))?;
            Ok(())
        }
        Some(v) => {
            let arr: [u8; 4] = v
                .as_ref()
                .try_into()
                .map_err(|_| IndexError::SchemaUnknown {
                    path: path.to_owned(),
                    reason: format!("schema version value has {} bytes, expected 4", v.len()),
                })?;
            let found = u32::from_be_bytes(arr);
            match found.cmp(&SCHEMA_VERSION) {
                std::cmp::Ordering::Equal => Ok(()),
                std::cmp::Ordering::Greater => Err(IndexError::SchemaTooNew {
                    path: path.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                }),
                std::cmp::Ordering::Less => Err(IndexError::SchemaTooOld {
                    path: path.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                }),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
