//! The vigil daemon and command line.
//!
//! `vigil run` serves the HTTP API and records; `vigil demo` serves a generated city on a
//! throwaway data directory; `vigil token`, `vigil import`, `vigil report` and
//! `vigil rebuild-index` work on the data directory directly (and so refuse while the daemon
//! holds it). Layout of this crate:
//! - [`config`]: the TOML configuration (`config/vigil.toml`), one section per subsystem;
//! - [`datadir`]: the data directory, its lock and the daemon's heartbeat;
//! - [`service`], [`supervisor`], [`http`]: starting, running and stopping the subsystems;
//! - [`recording`]: the segment store and one RTSP puller and recorder per camera;
//! - [`gb28181`]: the GB/T 28181 server, filing its devices' channels as cameras, recording them;
//! - [`commands`]: the subcommands; [`progress`]: progress output; [`logging`], [`shutdown`].

mod commands;
mod config;
mod datadir;
mod gb28181;
mod http;
mod logging;
mod progress;
mod recording;
mod service;
mod shutdown;
mod supervisor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::logging::LogFormat;

/// vigil: metadata index and compliance reports for video monitoring centres.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Without it, the built-in defaults, which are exactly the
    /// values documented in config/vigil.toml.
    #[arg(long, short, global = true, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data.dir`. For `demo`: use (and keep) this directory
    /// instead of a throwaway one.
    #[arg(long, global = true, env = "VIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log format on stderr; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTP API) until SIGTERM or SIGINT.
    Run(commands::run::RunArgs),
    /// Run the service on a generated demo city and print its URL and an admin token.
    Demo(commands::demo::DemoArgs),
    /// Create, list and revoke API tokens (works on the data directory directly).
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Import a grids, sites, cameras, intervals or diagnoses file (CSV or JSON, UTF-8 or
    /// GB18030) into the data directory directly.
    Import(commands::import::ImportArgs),
    /// Compute a report from the data directory directly.
    Report(commands::report::ReportArgs),
    /// Re-create the recording catalogue in the index from the segment files (the daemon must
    /// not run).
    RebuildIndex,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    logging::init(&config.log)?;
    match cli.command {
        Command::Run(args) => runtime()?.block_on(commands::run::run(config, cli.data_dir, args)),
        Command::Demo(args) => runtime()?.block_on(commands::demo::run(config, cli.data_dir, args)),
        Command::Token(cmd) => commands::token::run(&config, cli.data_dir, cmd),
        Command::Import(args) => commands::import::run(&config, cli.data_dir, args),
        Command::Report(args) => commands::report::run(&config, cli.data_dir, args),
        Command::RebuildIndex => commands::rebuild_index::run(&config, cli.data_dir),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
