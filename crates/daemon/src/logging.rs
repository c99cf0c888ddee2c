//! Log output: human-readable for a terminal, JSON lines for a log collector.

use serde::Deserialize;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,vigil_gb28181=debug`. `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

/// Installs the global subscriber. Logs go to stderr so that commands can print results on stdout.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .map_err(|e| {
            anyhow::anyhow!("log.filter {:?} is not a valid filter: {e}", config.filter)
        })?;
    // A write error on stderr (a closed pipe) must not become a panic inside whatever task
    // logged: tracing's own report of it would go to the same broken stderr via `eprintln!`.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
