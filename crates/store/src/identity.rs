//! The store's identity: a random id in `<root>/vigil-store.id`, recorded in the index. A
//! directory and an index that do not carry the same id are not used together — this catches
//! an unmounted disk (an empty mount point), a swapped disk, or an index restored from another
//! machine before recovery or retention could "clean up" the wrong files.

use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::Path;

use vigil_index::Index;

use crate::error::StoreError;
use crate::fsutil;
use crate::layout::Layout;

/// The identity in the directory, created if there is none.
pub(crate) fn ensure(layout: &Layout) -> Result<String, StoreError> {
    let path = layout.identity_file();
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = new_identity();
            write(&path, &id)?;
            Ok(id)
        }
        Err(e) => Err(StoreError::io("reading store identity", &path, e)),
    }
}

/// Checks the identity file against the index. Returns whether the index had no identity
/// (and adopted the directory's).
pub(crate) fn check(layout: &Layout, index: &Index) -> Result<bool, StoreError> {
    let path = layout.identity_file();
    let in_file = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s.trim().to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(StoreError::io("reading store identity", &path, e)),
    };
    let in_index = index
        .store_id()
        .map_err(|e| StoreError::index_wide("reading the store identity", e))?;
    let mismatch = |reason: String| StoreError::IdentityMismatch {
        root: layout.root().to_owned(),
        reason,
    };
    match (in_file, in_index) {
        (Some(f), Some(i)) if f == i => Ok(false),
        (Some(f), Some(i)) => Err(mismatch(format!(
            "the directory is store {f:?} but the index describes store {i:?}"
        ))),
        (None, Some(i)) => Err(mismatch(format!(
            "{} is missing but the index describes store {i:?} (is the disk mounted?)",
            path.display()
        ))),
        (Some(f), None) => {
            index
                .set_store_id(&f)
                .map_err(|e| StoreError::index_wide("recording the store identity", e))?;
            Ok(true)
        }
        (None, None) => {
            let id = new_identity();
            write(&path, &id)?;
            index
                .set_store_id(&id)
                .map_err(|e| StoreError::index_wide("recording the store identity", e))?;
            Ok(true)
        }
    }
}

fn new_identity() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("vigil-store-{:016x}{:08x}", h.finish(), nanos as u32)
}

fn write(path: &Path, id: &str) -> Result<(), StoreError> {
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(id.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        match path.parent() {
            Some(dir) => fsutil::sync_dir(dir),
            None => Ok(()),
        }
    })();
    res.map_err(|e| StoreError::io("writing store identity", path, e))
}
