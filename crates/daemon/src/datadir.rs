//! The data directory: where the index lives, who is using it, and when the daemon was last
//! known to be alive.
//!
//! ```text
//! <dir>/index/        the sled metadata index
//! <dir>/vigil.lock    held (flock) by the one process using the directory; says who it is
//! <dir>/vigil.state   {"last_alive": …, "clean": …}: the daemon's heartbeat
//! ```
//!
//! sled allows one process per database, and so does vigil: the daemon and each CLI command
//! take `vigil.lock` before opening the index, so a second user gets a message naming the
//! process that holds the directory rather than sled's lock error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use fs2::FileExt;
use serde::{Deserialize, Serialize};
use vigil_core::time::Timestamp;
use vigil_index::{Index, IndexOptions};

/// A data directory, locked for this process.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    /// Holds the lock while it lives (closing the file releases it).
    _lock: File,
}

const LOCK: &str = "vigil.lock";
const STATE: &str = "vigil.state";

impl DataDir {
    /// Creates the directory if needed and locks it for `purpose` (e.g. `vigil run`). Fails
    /// with a message naming the holder if another process has it.
    pub fn lock(root: &Path, purpose: &str) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the data directory {}", root.display()))?;
        let path = root.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if file.try_lock_exclusive().is_err() {
            let mut holder = String::new();
            // The lock is advisory: the holder's note can be read while it is held.
            let _ = file.read_to_string(&mut holder);
            return Err(in_use(root, holder.trim()));
        }
        let note = format!(
            "pid {} ({purpose}) since {}",
            std::process::id(),
            Timestamp::from_system_time(std::time::SystemTime::now())
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .and_then(|_| file.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(DataDir {
            root: root.to_owned(),
            _lock: file,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the index lives.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("index")
    }

    /// Opens the index (the directory is locked, so sled's own lock cannot be contended).
    pub fn open_index(&self, options: &IndexOptions) -> anyhow::Result<Index> {
        let path = self.index_path();
        Index::open_with(&path, options)
            .with_context(|| format!("opening the index at {}", path.display()))
    }

    /// The daemon's last recorded state, if any.
    pub fn run_state(&self) -> anyhow::Result<Option<RunState>> {
        let path = self.root.join(STATE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Records the daemon's state (write to a temporary file, fsync, rename: never torn).
    pub fn set_run_state(&self, state: &RunState) -> anyhow::Result<()> {
        let path = self.root.join(STATE);
        let tmp = self.root.join(format!("{STATE}.tmp"));
        let bytes = serde_json::to_vec(state)?;
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
    }
}

fn in_use(root: &Path, holder: &str) -> anyhow::Error {
    let who = if holder.is_empty() {
        "another vigil process".to_owned()
    } else {
        format!("another vigil process: {holder}")
    };
    anyhow!(
        "the data directory {} is in use by {who}. If the daemon is running, use the HTTP API \
         (or stop the daemon) instead: the index can be opened by one process at a time",
        root.display()
    )
}

/// What the daemon records about itself between runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The last instant the daemon was known to be alive.
    pub last_alive: Timestamp,
    /// Whether it stopped cleanly (open intervals already closed).
    pub clean: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDir::lock(dir.path(), "vigil run").unwrap();
        let e = DataDir::lock(dir.path(), "vigil token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("vigil run"), "{e}");
        drop(held);
        DataDir::lock(dir.path(), "vigil token").unwrap();
    }

    #[test]
    fn run_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::lock(dir.path(), "test").unwrap();
        assert_eq!(d.run_state().unwrap(), None);
        let s = RunState {
            last_alive: Timestamp::from_millis(1_700_000_000_000),
            clean: false,
        };
        d.set_run_state(&s).unwrap();
        assert_eq!(d.run_state().unwrap(), Some(s));
    }
}
