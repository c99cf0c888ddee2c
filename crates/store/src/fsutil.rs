//! Small blocking file-system helpers with the durability steps spelled out. Every function
//! here blocks: call it from a blocking thread (`tokio::task::spawn_blocking`), never from an
//! async task directly.

use std::fs::{self, File};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// fsyncs a directory, making the creation, rename or removal of its entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `syncfs` on the file system holding `path`: one call that writes back every dirty file of
/// that file system (used to make many files durable at once during a rebuild). Since Linux
/// 5.8 it reports write-back errors of any file on the file system.
pub fn sync_fs(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    rustix::fs::syncfs(&f).map_err(io::Error::from)
}

/// Creates `dir` (and missing parents) so that its existence is durable: each directory
/// created is followed by an fsync of its parent. Existing directories are left alone.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_dir_durable(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Writes every buffer completely with as few `writev` calls as the kernel allows.
pub fn write_all_vectored(file: &mut File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    // Skip leading empty buffers so that a zero-length write means "no progress".
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "writev wrote nothing",
                ))
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Reads up to `len` bytes at `offset` (fewer only at end of file).
pub fn read_at_most(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Space on the file system holding `path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes available to unprivileged users (`f_bavail × f_frsize`).
    pub available: u64,
    /// Size of the file system (`f_blocks × f_frsize`).
    pub total: u64,
}

/// `statvfs(path)`.
pub fn space(path: &Path) -> io::Result<Space> {
    let s = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(Space {
        available: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_write_writes_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let parts: Vec<Vec<u8>> = (0..2000u32).map(|i| vec![(i % 251) as u8; 7]).collect();
        let mut slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&[]))
            .chain(parts.iter().map(|p| IoSlice::new(p)))
            .collect();
        write_all_vectored(&mut f, &mut slices).unwrap();
        let back = fs::read(&path).unwrap();
        assert_eq!(back, parts.concat());
        assert_eq!(
            read_at_most(&f, 13_990, 100).unwrap(),
            parts.concat()[13_990..]
        );
    }

    #[test]
    fn durable_directories_and_space() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durable(&deep).unwrap();
        sync_dir(&deep).unwrap();
        sync_fs(&deep).unwrap();
        let s = space(dir.path()).unwrap();
        assert!(s.total > 0 && s.available <= s.total);
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }
}
