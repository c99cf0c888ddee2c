//! `vigil rebuild-index`: re-creates the recording catalogue in the index from the segment
//! files alone (`vigil_store::rebuild_index`), for when the index was lost, restored from a
//! backup older than the video, or the store disk was moved to another machine. It replaces
//! whatever catalogue the index had and makes the index adopt the store directory's identity.
//! Runs offline: it locks the data directory, so it refuses while the daemon runs.

use std::path::PathBuf;

use anyhow::Context;
use vigil_api::audit::{self, Change};

use crate::commands::{cli_actor, data_dir, open};
use crate::config::Config;
use crate::progress::Progress;
use crate::service::now;

/// Runs the rebuild and prints what it found.
pub fn run(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = data_dir(config, dir);
    let (_data, index) = open(config, &dir, "vigil rebuild-index")?;
    let store = config.recording.store_config(&dir);
    let progress = Progress::spinner(&format!(
        "rebuilding the recording catalogue from {}",
        store.root.display()
    ));
    let report = vigil_store::rebuild_index(&store, &index)
        .with_context(|| format!("rebuilding the catalogue of {}", store.root.display()))?;
    progress.finish(&format!(
        "{} cameras, {} segments",
        report.cameras, report.segments
    ));
    audit::append(
        &index,
        now(),
        Change {
            actor: cli_actor(),
            action: "recordings.rebuild_index",
            target: store.root.display().to_string(),
            before: None,
            after: Some(serde_json::json!({
                "cameras": report.cameras,
                "segments": report.segments,
                "bytes": report.bytes,
                "records_replaced": report.records_replaced,
                "files_truncated": report.files_truncated,
                "files_removed": report.files_removed,
                "files_skipped": report.files_skipped.len(),
            })),
        },
    )?;
    index.flush()?;
    println!(
        "{}: {} cameras, {} segments, {} bytes; {} earlier records replaced; {} files cut after \
         their last good fragment, {} removed (no complete fragment)",
        store.root.display(),
        report.cameras,
        report.segments,
        report.bytes,
        report.records_replaced,
        report.files_truncated,
        report.files_removed
    );
    for (path, reason) in &report.files_skipped {
        println!("  skipped {}: {reason}", path.display());
    }
    Ok(())
}
