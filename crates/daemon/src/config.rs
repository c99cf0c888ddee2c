//! The configuration file (TOML). `config/vigil.toml` is the documented default: every option
//! with its default value and what it does; a test keeps the file and [`Config::default`] equal.
//!
//! Each subsystem has its own section. A new subsystem (recording store and RTSP pullers,
//! GB/T 28181 server) adds its section struct here as one more field of [`Config`], with
//! `#[serde(default, deny_unknown_fields)]` like the others, and documents it in
//! `config/vigil.toml`. Unknown sections and keys are refused so a misspelt option is an error,
//! not a silently ignored line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use serde::Deserialize;
use vigil_api::params::parse_duration;
use vigil_api::ApiConfig;
use vigil_core::compliance::{ComplianceOptions, RecordingScope, ScoreWeights};
use vigil_core::id::DomainCode;
use vigil_core::target::FigureKind;
use vigil_index::{IndexOptions, RtspIdPolicy};

use crate::logging::LogConfig;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where vigil keeps its data.
    pub data: DataConfig,
    /// The HTTP API.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// The metadata index.
    pub index: IndexConfig,
    /// ID assignment.
    pub ids: IdsConfig,
    /// How figures are computed and reported.
    pub compliance: ComplianceConfig,
    /// Start and stop.
    pub service: ServiceConfig,
    /// Recording: segment store, RTSP pullers, access test, video routes.
    pub recording: crate::recording::RecordingConfig,
    /// GB/T 28181: SIP server, filing of catalog channels, CivilCode table, cascade.
    pub gb28181: crate::gb28181::Gb28181Config,
}

/// `[data]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// The data directory (the index lives in `<dir>/index`).
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("/var/lib/vigil"),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Largest request body in bytes; larger ones are refused with 413.
    pub max_body_bytes: usize,
    /// List page size when a request gives none.
    pub default_page_size: usize,
    /// Largest page size a request may ask for.
    pub max_page_size: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let api = ApiConfig::default();
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8480)),
            max_body_bytes: api.max_body_bytes,
            default_page_size: api.default_page_size,
            max_page_size: api.max_page_size,
        }
    }
}

/// `[index]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// sled page cache in MiB.
    pub cache_mb: u64,
    /// Background flush period in milliseconds.
    pub flush_every_ms: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let o = IndexOptions::default();
        IndexConfig {
            cache_mb: o.cache_bytes >> 20,
            flush_every_ms: o.flush_every_ms,
        }
    }
}

impl IndexConfig {
    /// The index's options.
    pub fn options(&self) -> IndexOptions {
        IndexOptions {
            cache_bytes: self.cache_mb << 20,
            flush_every_ms: self.flush_every_ms,
        }
    }
}

/// `[ids]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdsConfig {
    /// 10-digit domain under which RTSP cameras without an ID get one; empty: such cameras
    /// are refused.
    pub rtsp_domain: String,
    /// Network digit (14th digit) of assigned IDs.
    pub rtsp_network: u8,
}

impl IdsConfig {
    /// The ID policy, if a domain is configured.
    pub fn policy(&self) -> anyhow::Result<Option<RtspIdPolicy>> {
        if self.rtsp_domain.trim().is_empty() {
            return Ok(None);
        }
        let domain = DomainCode::parse(self.rtsp_domain.trim())
            .map_err(|e| anyhow!("ids.rtsp_domain: {e}"))?;
        if self.rtsp_network > 9 {
            return Err(anyhow!("ids.rtsp_network must be a digit 0-9"));
        }
        Ok(Some(RtspIdPolicy {
            domain,
            network: self.rtsp_network,
        }))
    }
}

/// `[compliance]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Report window when a request gives none (`24h`, `7d`, …).
    pub default_window: String,
    /// Which cameras must record: `all_cameras`, `key_site_cameras`, `government_public`.
    pub recording_scope: RecordingScope,
    /// Threads per report: 0 automatic, 1 the calling thread only, n exactly n.
    pub threads: usize,
    /// Ranking weights by figure code; when given, they replace the defaults entirely.
    pub weights: BTreeMap<String, u32>,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        let o = ComplianceOptions::default();
        ComplianceConfig {
            default_window: "24h".to_owned(),
            recording_scope: o.recording_scope,
            threads: o.threads,
            weights: o
                .weights
                .0
                .iter()
                .map(|(k, w)| (k.code().to_owned(), *w))
                .collect(),
        }
    }
}

impl ComplianceConfig {
    /// The engine's options.
    pub fn options(&self) -> anyhow::Result<ComplianceOptions> {
        let mut weights = BTreeMap::new();
        for (code, w) in &self.weights {
            let kind: FigureKind = code
                .parse()
                .map_err(|e| anyhow!("compliance.weights: {e}"))?;
            weights.insert(kind, *w);
        }
        Ok(ComplianceOptions {
            recording_scope: self.recording_scope,
            weights: ScoreWeights(weights),
            threads: self.threads,
        })
    }

    /// The default window in milliseconds.
    pub fn default_window_ms(&self) -> anyhow::Result<i64> {
        parse_duration(&self.default_window).map_err(|e| anyhow!("compliance.default_window: {e}"))
    }
}

/// `[service]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Seconds to let running requests finish after SIGTERM/SIGINT.
    pub grace_secs: u64,
    /// Seconds between "still alive" marks (bounds what a crash can misreport; see README).
    pub heartbeat_secs: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            grace_secs: 10,
            heartbeat_secs: 10,
        }
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        self.api()?;
        if self.service.heartbeat_secs == 0 {
            return Err(anyhow!("service.heartbeat_secs must be at least 1"));
        }
        if self.http.max_body_bytes == 0 {
            return Err(anyhow!("http.max_body_bytes must be positive"));
        }
        self.recording.check()?;
        self.gb28181.check()?;
        Ok(())
    }

    /// The API's settings.
    pub fn api(&self) -> anyhow::Result<ApiConfig> {
        Ok(ApiConfig {
            max_body_bytes: self.http.max_body_bytes,
            rtsp_ids: self.ids.policy()?,
            compliance: self.compliance.options()?,
            default_window_ms: self.compliance.default_window_ms()?,
            default_page_size: self.http.default_page_size.max(1),
            max_page_size: self.http.max_page_size.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_is_the_default() {
        let text = include_str!("../../../config/vigil.toml");
        let parsed = Config::parse(text).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn misspelt_options_are_refused() {
        let e = Config::parse("[http]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("listen_addr"), "{e:#}");
        assert!(Config::parse("[nosuch]\n").is_err());
    }

    #[test]
    fn values_are_checked() {
        assert!(Config::parse("[ids]\nrtsp_domain = \"123\"\n").is_err());
        assert!(Config::parse("[compliance]\ndefault_window = \"forever\"\n").is_err());
        assert!(Config::parse("[compliance.weights]\nsharpness = 3\n").is_err());
        let c = Config::parse("[ids]\nrtsp_domain = \"3701000000\"\n").unwrap();
        assert_eq!(
            c.api().unwrap().rtsp_ids.unwrap().domain.as_str(),
            "3701000000"
        );
        let c = Config::parse("[compliance.weights]\ncoverage = 1\n").unwrap();
        assert_eq!(c.compliance.options().unwrap().weights.0.len(), 1);
        assert!(Config::parse("[recording]\nsegment_secs = 0\n").is_err());
        assert!(Config::parse("[recording.rtsp]\ntransport = \"sctp\"\n").is_err());
        assert!(Config::parse("[recording.access_test]\nseconds = 120\n").is_err());
        let c =
            Config::parse("[recording]\nsegment_secs = 2\n[recording.rtsp]\ntransport = \"udp\"\n")
                .unwrap();
        assert_eq!(c.recording.segment_secs, 2);
        assert_eq!(
            c.recording.store_dir(Path::new("/d")),
            PathBuf::from("/d/recordings")
        );
        assert_eq!(c.recording.settings().transport, vigil_rtsp::Transport::Udp);
    }
}
