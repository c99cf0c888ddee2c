//! The subcommands. Those that work on the data directory directly (`token`, `import`,
//! `report`, `rebuild-index`) lock it first, so they refuse with a clear message while the
//! daemon runs.

use std::path::{Path, PathBuf};

use vigil_index::Index;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::progress::Progress;

pub mod demo;
pub mod import;
pub mod rebuild_index;
pub mod report;
pub mod run;
pub mod token;

/// The data directory to use: the command line's, else the configuration's.
pub fn data_dir(config: &Config, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| config.data.dir.clone())
}

/// Locks the data directory for `purpose` and opens its index (loading a city-size index takes
/// a moment, so a spinner shows it).
pub fn open(config: &Config, dir: &Path, purpose: &str) -> anyhow::Result<(DataDir, Index)> {
    let data = DataDir::lock(dir, purpose)?;
    let progress = Progress::spinner(&format!("opening the index in {}", dir.display()));
    let index = data.open_index(&config.index.options())?;
    progress.finish(&format!(
        "{} grids, {} cameras",
        index.grid_count()?,
        index.camera_count()?
    ));
    Ok((data, index))
}

/// The audit-log actor of a command-line change: `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}
