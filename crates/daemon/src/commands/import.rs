//! `vigil import`: a bulk import straight into the data directory, with the same parsing,
//! validation, modes and audit entry as `POST /api/v1/imports/...`.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use vigil_api::audit;
use vigil_api::imports::{self, ImportKind, ImportRequest};
use vigil_api::ingest::FileFormat;
use vigil_api::views::ImportOutcome;

use crate::commands::{cli_actor, data_dir, open};
use crate::config::Config;
use crate::progress::Progress;
use crate::service::now;

/// Options of `vigil import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// What the file holds: grids, sites, cameras, intervals or diagnoses.
    #[arg(value_parser = parse_kind)]
    kind: ImportKind,
    /// The file (.csv with a header line, or .json with an array of objects).
    file: PathBuf,
    /// csv or json; default: from the file's extension.
    #[arg(long, value_parser = parse_format)]
    format: Option<FileFormat>,
    /// The text encoding when it is not detected (utf-8, gbk, gb2312, gb18030).
    #[arg(long)]
    charset: Option<String>,
    /// all-or-nothing (any bad row rejects the file) or apply-valid (write the good rows).
    #[arg(long, default_value = "all-or-nothing", value_parser = imports::parse_mode)]
    mode: vigil_index::ImportMode,
    /// Validate against the current data and report; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_kind(text: &str) -> Result<ImportKind, String> {
    text.parse()
}

fn parse_format(text: &str) -> Result<FileFormat, String> {
    match text {
        "csv" => Ok(FileFormat::Csv),
        "json" => Ok(FileFormat::Json),
        _ => Err("expected csv or json".to_owned()),
    }
}

/// How many rejected rows to print.
const SHOW: usize = 50;

/// Runs an import.
pub fn run(config: &Config, dir: Option<PathBuf>, args: ImportArgs) -> anyhow::Result<()> {
    let format = match args.format {
        Some(f) => f,
        None => FileFormat::from_path(&args.file).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {} from its name; pass --format csv or --format json",
                args.file.display()
            )
        })?,
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let dir = data_dir(config, dir);
    let (_data, index) = open(config, &dir, "vigil import")?;
    let req = ImportRequest {
        kind: args.kind,
        mode: args.mode,
        dry_run: args.dry_run,
        rtsp_ids: config.ids.policy()?,
    };

    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parsing: Option<Progress> = None;
    let mut applying: Option<Progress> = None;
    let result = imports::run(
        &index,
        &req,
        &bytes,
        args.charset.as_deref(),
        format,
        &mut |done, total| {
            let bar =
                parsing.get_or_insert_with(|| Progress::bytes(&format!("reading {name}"), total));
            bar.set(done);
            if done >= total && applying.is_none() {
                if let Some(bar) = parsing.take() {
                    bar.finish("read");
                }
                applying = Some(Progress::spinner(if req.dry_run {
                    "validating the rows"
                } else {
                    "validating and writing the rows"
                }));
            }
        },
    );
    if let Some(spinner) = applying {
        spinner.finish(if result.is_ok() { "done" } else { "refused" });
    }
    let outcome = result.map_err(|p| anyhow!("{name}: {p}"))?.outcome(&req);
    if !req.dry_run && outcome.applied > 0 {
        audit::append(
            &index,
            now(),
            imports::audit_change(cli_actor(), req.kind, &outcome),
        )?;
    }
    index.flush()?;
    report(&name, &outcome, args.json)
}

fn report(name: &str, o: &ImportOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(o)?);
        return Ok(());
    }
    println!(
        "{name}: {} rows, {} {}, {} rejected ({}, {}, sha256 {})",
        o.rows,
        o.applied,
        if o.dry_run {
            "would be applied"
        } else {
            "applied"
        },
        o.rejected.len(),
        o.encoding,
        o.mode,
        o.sha256
    );
    for e in o.rejected.iter().take(SHOW) {
        println!(
            "  row {}, {}: {}",
            e.row.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            e.field.as_deref().unwrap_or("-"),
            e.reason
        );
    }
    if o.rejected.len() > SHOW {
        println!("  … and {} more", o.rejected.len() - SHOW);
    }
    Ok(())
}
