//! Errors of the index. No sled type is visible: storage failures are wrapped in
//! [`StorageError`], whose inner value is private.

use std::fmt;

use thiserror::Error;
use vigil_core::compliance::ComplianceError;
use vigil_core::import::RowError;
use vigil_core::model::ModelError;

/// A failure of the underlying store (I/O, corruption detected by the store itself).
#[derive(Debug)]
pub struct StorageError(pub(crate) sled::Error);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// Everything that can go wrong in the index; each variant names the item and the reason.
#[derive(Debug, Error)]
pub enum IndexError {
    /// The store failed while doing `context`.
    #[error("storage error while {context}: {source}")]
    Storage {
        /// What was being done (e.g. "importing 200000 cameras").
        context: String,
        /// The store's error.
        #[source]
        source: StorageError,
    },
    /// The database was written by a newer vigil.
    #[error(
        "index at {path} has schema version {found}, newer than the {supported} this build \
         supports; refusing to open it (upgrade vigil or restore a backup)"
    )]
    SchemaTooNew {
        /// Database path.
        path: String,
        /// Version found.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
    /// The database has an older schema and no migration exists.
    #[error("index at {path} has schema version {found}; this build ({supported}) has no migration from it")]
    SchemaTooOld {
        /// Database path.
        path: String,
        /// Version found.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
    /// The database is not a vigil index (non-empty without a version, or an unreadable one).
    #[error("index at {path} is not a vigil index: {reason}")]
    SchemaUnknown {
        /// Database path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored record could not be decoded.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt {
        /// The key, printable.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("could not encode {item}: {reason}")]
    Encode {
        /// What was being encoded.
        item: String,
        /// Why it failed.
        reason: String,
    },
    /// No camera ID could be assigned.
    #[error(transparent)]
    Id(#[from] vigil_core::id::IdError),
    /// A change was refused by the domain rules.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A bulk import was refused as a whole (all-or-nothing mode); nothing was applied.
    #[error("import rejected, nothing applied: {} bad item(s); first: {}", .errors.len(), first_error(.errors))]
    ImportRejected {
        /// Every bad item, by item index and field.
        errors: Vec<RowError>,
    },
    /// A report could not be computed.
    #[error(transparent)]
    Report(#[from] ComplianceError),
    /// A token with this ID already exists.
    #[error("API token {id:?} already exists")]
    TokenExists {
        /// Token ID.
        id: String,
    },
    /// No token with this ID.
    #[error("API token {id:?} does not exist")]
    UnknownToken {
        /// Token ID.
        id: String,
    },
    /// A token ID with a bad form.
    #[error("API token id {id:?} is invalid: {reason}")]
    BadTokenId {
        /// Token ID.
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A thread panicked while holding an index lock; the in-memory model may be inconsistent
    /// with the store, so the index refuses further use (reopen to reload from the store).
    #[error("index lock poisoned by a panic in another thread; reopen the index")]
    Poisoned,
}

fn first_error(errors: &[RowError]) -> String {
    errors
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| "none".to_owned())
}

impl IndexError {
    pub(crate) fn storage(context: impl Into<String>, e: sled::Error) -> Self {
        IndexError::Storage {
            context: context.into(),
            source: StorageError(e),
        }
    }

    pub(crate) fn corrupt(key: &[u8], reason: impl fmt::Display) -> Self {
        IndexError::Corrupt {
            key: crate::keys::printable(key),
            reason: reason.to_string(),
        }
    }
}
