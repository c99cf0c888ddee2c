//! One segment file being written (blocking; the recorder runs these calls on the blocking
//! thread pool).
//!
//! The order of operations is the store's durability contract (see the crate docs):
//! create (`O_EXCL`, directories made durable first) → append with one `writev` → `fdatasync`
//! → on the first append also `fsync` the day directory → check the file still has a name →
//! only then does the caller record the new length in the index.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use vigil_core::id::GbId;

use crate::error::StoreError;
use crate::fsutil;
use crate::layout::{self, Layout};

/// Collision suffixes tried before giving up (a collision means two segments of one camera
/// start in the same millisecond, which monotonic store time rules out; this is a safety net).
const MAX_NAME_TRIES: u32 = 100;

/// An open segment file.
#[derive(Debug)]
pub struct SegmentFile {
    camera: GbId,
    file: File,
    path: PathBuf,
    rel: String,
    /// Bytes fsynced so far.
    len: u64,
    dir_synced: bool,
}

impl SegmentFile {
    /// Creates the file of a segment starting at `start_90k` (never overwriting anything).
    pub fn create(layout: &Layout, camera: &GbId, start_90k: i64) -> Result<Self, StoreError> {
        let day_dir = layout
            .camera_dir(camera)
            .join(layout::day_dir_name(start_90k));
        fsutil::create_dir_durable(&day_dir)
            .map_err(|e| StoreError::io("creating directory", &day_dir, e))?;
        for n in 0..MAX_NAME_TRIES {
            let rel = layout::segment_rel_name(start_90k, n);
            let path = layout.segment_path(camera, &rel);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(SegmentFile {
                        camera: *camera,
                        file,
                        path,
                        rel,
                        len: 0,
                        dir_synced: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    tracing::warn!(path = %path.display(), "segment name taken; trying the next suffix");
                }
                Err(e) => return Err(StoreError::io("creating segment", &path, e)),
            }
        }
        Err(StoreError::io(
            "creating segment",
            layout.segment_path(camera, &layout::segment_rel_name(start_90k, 0)),
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "every collision suffix is taken",
            ),
        ))
    }

    /// The absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The camera-relative name (as stored in the index).
    pub fn rel_name(&self) -> &str {
        &self.rel
    }

    /// Appends `parts` and makes them durable; returns the new durable length. On error the
    /// file must be [`abandon`](Self::abandon)ed: after a failed write or fsync the kernel's
    /// view of the file is not trustworthy, so it is never written again.
    pub fn append(&mut self, parts: &[Bytes]) -> Result<u64, StoreError> {
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        fsutil::write_all_vectored(&mut self.file, &mut slices)
            .map_err(|e| StoreError::io("writing segment", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| StoreError::io("fsyncing segment", &self.path, e))?;
        if !self.dir_synced {
            if let Some(dir) = self.path.parent() {
                fsutil::sync_dir(dir).map_err(|e| StoreError::io("fsyncing directory", dir, e))?;
            }
            self.dir_synced = true;
        }
        let meta = self
            .file
            .metadata()
            .map_err(|e| StoreError::io("checking segment", &self.path, e))?;
        if meta.nlink() == 0 {
            return Err(StoreError::Vanished {
                camera: self.camera,
                path: self.path.clone(),
            });
        }
        self.len += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(self.len)
    }

    /// Gives up on the file after a failed append: cuts it back to its durable length (best
    /// effort) or, if nothing in it is durable, removes it. Recovery would do the same at the
    /// next start; doing it now keeps the directory clean.
    pub fn abandon(self) {
        let path = self.path.clone();
        if self.len == 0 {
            drop(self.file);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    if let Some(dir) = path.parent() {
                        let _ = fsutil::sync_dir(dir);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove an abandoned empty segment; recovery will");
                }
            }
            return;
        }
        let res = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, durable_len = self.len,
                "could not cut an abandoned segment back to its durable length; recovery will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> GbId {
        GbId::parse("34010000001320000001").unwrap()
    }

    #[test]
    fn create_append_and_abandon() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let start = 1_700_000_000_000 * 90;
        let mut f = SegmentFile::create(&layout, &cam(), start).unwrap();
        assert_eq!(f.len, 0);
        let len = f
            .append(&[Bytes::from_static(b"abc"), Bytes::from_static(b"defg")])
            .unwrap();
        assert_eq!(len, 7);
        // A second segment at the same instant gets a suffix instead of overwriting.
        let g = SegmentFile::create(&layout, &cam(), start).unwrap();
        assert!(g.rel_name().ends_with("-1.mp4"), "{}", g.rel_name());
        let g_path = g.path().to_owned();
        g.abandon();
        assert!(!g_path.exists(), "an empty abandoned segment is removed");
        // Simulate a partial write past the durable length, then abandon.
        use std::io::Write;
        f.file.write_all(b"partial").unwrap();
        let path = f.path().to_owned();
        f.abandon();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefg");
    }

    #[test]
    fn a_vanished_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let mut f = SegmentFile::create(&layout, &cam(), 0).unwrap();
        f.append(&[Bytes::from_static(b"x")]).unwrap();
        std::fs::remove_file(f.path()).unwrap();
        let err = f.append(&[Bytes::from_static(b"y")]).unwrap_err();
        assert!(matches!(err, StoreError::Vanished { .. }), "{err}");
        assert!(err.to_string().contains("vanished"));
    }
}
