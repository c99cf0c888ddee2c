//! `vigil report`: the reports of `/api/v1/reports/...`, computed from the data directory
//! directly, as JSON or CSV on stdout or into a file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use vigil_api::params::{self, OutputFormat};
use vigil_api::reports::{self, Scope};
use vigil_core::compliance::ItemPage;
use vigil_core::target::FigureKind;
use vigil_core::time::DAY_MS;

use crate::commands::{data_dir, open};
use crate::config::Config;
use crate::progress::Progress;
use crate::service::now;

/// Which report.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportKind {
    /// Every figure of a grid (numerator, denominator, target, verdict, failing items).
    Figures,
    /// The failing items of one figure (`--figure`).
    Failing,
    /// The grids at one depth ranked by score.
    Ranking,
    /// Key sites in the coverage scope without any camera.
    BlindSpots,
    /// Progress toward dated targets.
    Deadlines,
}

impl ReportKind {
    fn name(self) -> &'static str {
        match self {
            ReportKind::Figures => "figures",
            ReportKind::Failing => "failing-items",
            ReportKind::Ranking => "ranking",
            ReportKind::BlindSpots => "blind-spots",
            ReportKind::Deadlines => "deadlines",
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// JSON (as the API answers).
    Json,
    /// CSV (UTF-8 with a byte-order mark).
    Csv,
}

/// Options of `vigil report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    report: ReportKind,
    /// Grid code; default: the only root grid.
    #[arg(long)]
    grid: Option<String>,
    /// As of (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
    /// Window ending at `--at` (24h, 7d, 30d, …); default `compliance.default_window`.
    #[arg(long)]
    window: Option<String>,
    /// Ranking: depth of the grids to rank (roots are 0); default: the children of `--grid`.
    #[arg(long)]
    depth: Option<u32>,
    /// Figures/failing: only list failing items of this figure (e.g. `coverage`).
    #[arg(long)]
    figure: Option<String>,
    /// Deadlines: compare with `--at` minus this (default 7d).
    #[arg(long)]
    trend: Option<String>,
    /// Failing items (per figure) or blind spots to list.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Failing items or blind spots to skip.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Computes and writes a report.
pub fn run(config: &Config, dir: Option<PathBuf>, args: ReportArgs) -> anyhow::Result<()> {
    let opts = config.compliance.options()?;
    let at = params::time("at", args.at.as_deref(), now())?;
    let window_ms = params::duration(
        "window",
        args.window.as_deref(),
        config.compliance.default_window_ms()?,
    )?;
    let figure = params::opt_from_str::<FigureKind>("figure", args.figure.as_deref())?;
    let format = match args.format {
        Format::Json => OutputFormat::Json,
        Format::Csv => OutputFormat::Csv,
    };
    let dir = data_dir(config, dir);
    let (_data, index) = open(config, &dir, "vigil report")?;
    let scope = Scope {
        grid: reports::grid_or_root(&index, args.grid.as_deref())?,
        at,
        window_ms,
    };
    let page = ItemPage {
        offset: args.offset,
        limit: args.limit,
        figure,
    };
    let progress = Progress::spinner(&format!("computing the {} report", args.report.name()));
    let bytes = match args.report {
        ReportKind::Figures => {
            let r = reports::figures(&index, &opts, &scope, page, true)?;
            render(format, &r, || reports::figures_csv(&r))?
        }
        ReportKind::Failing => {
            let figure = figure.ok_or_else(|| anyhow::anyhow!("--figure is required"))?;
            let r = reports::figures(&index, &opts, &scope, page, false)?;
            match format {
                OutputFormat::Json => serde_json::to_vec_pretty(&r.figure(figure).failing)?,
                OutputFormat::Csv => reports::failing_csv(&r)?,
            }
        }
        ReportKind::Ranking => {
            let r = reports::ranking(&index, &opts, &scope, args.depth)?;
            render(format, &r, || reports::ranking_csv(&r))?
        }
        ReportKind::BlindSpots => {
            let r = reports::blind_spots(&index, &opts, &scope.grid, at, args.offset, args.limit)?;
            render(format, &r, || reports::blind_spots_csv(&r))?
        }
        ReportKind::Deadlines => {
            let trend = params::duration("trend", args.trend.as_deref(), 7 * DAY_MS)?;
            let r = reports::deadlines(&index, &opts, &scope, trend)?;
            render(format, &r, || reports::deadlines_csv(&r))?
        }
    };
    progress.finish(&format!("{} bytes", bytes.len()));
    match &args.output {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            if format == OutputFormat::Json {
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

fn render<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
    csv: impl FnOnce() -> Result<Vec<u8>, vigil_api::problem::Problem>,
) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        OutputFormat::Json => serde_json::to_vec_pretty(value)?,
        OutputFormat::Csv => csv()?,
    })
}
