//! `[gb28181]`: the GB/T 28181 SIP server (every key of `vigil_gb28181::server::GbConfig`, in
//! the same table) plus what the daemon does with what devices report: `enabled`, the
//! CivilCode → grid table (`[gb28181.civil_codes]`), how channels are filed
//! (`[gb28181.filing]`) and how often the catalog shared with upper platforms is rebuilt.
//! Every option is documented with its default in `config/vigil.toml`.

use std::collections::BTreeMap;

use anyhow::anyhow;
use serde::Deserialize;
use vigil_core::civil::CivilCodeMap;
use vigil_core::grid::GridCode;
use vigil_core::id::GbId;
use vigil_gb28181::server::GbConfig;

/// `[gb28181]`
///
/// The server's own keys sit in the same table (so the server's documented TOML example is a
/// valid daemon section). Unknown keys are refused: the daemon's keys are taken out first and
/// the rest is read by the server's configuration, which denies unknown fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Gb28181Config {
    /// Run the GB/T 28181 server. Default false (it binds port 5060 and accepts devices).
    pub enabled: bool,
    /// CivilCode → grid code; a channel's CivilCode is looked up by longest prefix.
    pub civil_codes: BTreeMap<String, String>,
    /// How catalog channels become cameras in the register.
    pub filing: FilingConfig,
    /// Rebuild the catalog shared with upper platforms (cameras with `shared_upward`) this
    /// often, seconds. Only when uplinks are configured.
    pub shared_catalog_refresh_secs: u64,
    /// The SIP server.
    pub server: GbConfig,
}

/// The daemon's own keys of `[gb28181]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DaemonKeys {
    enabled: bool,
    civil_codes: BTreeMap<String, String>,
    filing: FilingConfig,
    shared_catalog_refresh_secs: u64,
}

impl Default for DaemonKeys {
    fn default() -> Self {
        let d = Gb28181Config::default();
        DaemonKeys {
            enabled: d.enabled,
            civil_codes: d.civil_codes,
            filing: d.filing,
            shared_catalog_refresh_secs: d.shared_catalog_refresh_secs,
        }
    }
}

impl<'de> Deserialize<'de> for Gb28181Config {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut own = toml::Table::new();
        for key in [
            "enabled",
            "civil_codes",
            "filing",
            "shared_catalog_refresh_secs",
        ] {
            if let Some(v) = table.remove(key) {
                own.insert(key.to_owned(), v);
            }
        }
        let own: DaemonKeys = toml::Value::Table(own)
            .try_into()
            .map_err(|e| D::Error::custom(format!("gb28181: {e}")))?;
        let server: GbConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e| D::Error::custom(format!("gb28181: {e}")))?;
        Ok(Gb28181Config {
            enabled: own.enabled,
            civil_codes: own.civil_codes,
            filing: own.filing,
            shared_catalog_refresh_secs: own.shared_catalog_refresh_secs,
            server,
        })
    }
}

impl Default for Gb28181Config {
    fn default() -> Self {
        Gb28181Config {
            enabled: false,
            civil_codes: BTreeMap::new(),
            filing: FilingConfig::default(),
            shared_catalog_refresh_secs: 60,
            server: GbConfig::default(),
        }
    }
}

/// `[gb28181.filing]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilingConfig {
    /// Grid for video channels whose CivilCode maps to no grid; empty: such channels are not
    /// filed (listed as unmapped) until their code is mapped.
    pub unmapped_grid: String,
    /// File new cameras as shared upward (offered to upper platforms).
    pub shared_upward: bool,
}

impl Gb28181Config {
    /// Checks what serde cannot (also when disabled, so a bad table is found early).
    pub fn check(&self) -> anyhow::Result<()> {
        self.civil_map()?;
        self.unmapped_grid()?;
        if self.enabled {
            GbId::parse(&self.server.sip_id)
                .map_err(|e| anyhow!("gb28181.sip_id {:?}: {e}", self.server.sip_id))?;
            vigil_core::id::DomainCode::parse(&self.server.domain)
                .map_err(|e| anyhow!("gb28181.domain {:?}: {e}", self.server.domain))?;
            for u in &self.server.uplinks {
                GbId::parse(&u.upper_id).map_err(|e| {
                    anyhow!(
                        "gb28181.uplinks {:?}: upper_id {:?}: {e}",
                        u.name,
                        u.upper_id
                    )
                })?;
            }
        }
        if self.shared_catalog_refresh_secs == 0 {
            return Err(anyhow!(
                "gb28181.shared_catalog_refresh_secs must be at least 1"
            ));
        }
        Ok(())
    }

    /// The CivilCode table.
    pub fn civil_map(&self) -> anyhow::Result<CivilCodeMap> {
        CivilCodeMap::parse(&self.civil_codes).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow!("gb28181.civil_codes: {}", list.join("; "))
        })
    }

    /// The grid of unmapped channels, if configured.
    pub fn unmapped_grid(&self) -> anyhow::Result<Option<GridCode>> {
        let g = self.filing.unmapped_grid.trim();
        if g.is_empty() {
            return Ok(None);
        }
        GridCode::parse(g)
            .map(Some)
            .map_err(|e| anyhow!("gb28181.filing.unmapped_grid {g:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        gb28181: Gb28181Config,
    }

    fn parse(text: &str) -> anyhow::Result<Gb28181Config> {
        let d: Doc = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        d.gb28181.check()?;
        Ok(d.gb28181)
    }

    #[test]
    fn server_keys_sit_in_the_same_table_and_typos_are_refused() {
        let c = parse(
            "[gb28181]\nenabled = true\nsip_id = \"37010000002000000001\"\n\
             domain = \"3701000000\"\nkeepalive_interval_secs = 30\n\
             [gb28181.civil_codes]\n\"370112\" = \"g1\"\n\
             [gb28181.filing]\nunmapped_grid = \"g0\"\n\
             [gb28181.media]\ntransport = \"tcp_passive\"\n",
        )
        .unwrap();
        assert!(c.enabled);
        assert_eq!(c.server.keepalive_interval_secs, 30);
        assert_eq!(c.server.domain, "3701000000");
        assert_eq!(c.civil_map().unwrap().len(), 1);
        assert_eq!(c.unmapped_grid().unwrap().unwrap().as_str(), "g0");
        let e = parse("[gb28181]\nkeepalive_intervall_secs = 30\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("keepalive_intervall_secs"),
            "{e:#}"
        );
        assert!(parse("[gb28181.filing]\nunmaped_grid = \"x\"\n").is_err());
        assert!(parse("[gb28181.civil_codes]\n\"12345\" = \"g\"\n").is_err());
        assert!(parse("[gb28181]\nenabled = true\nsip_id = \"123\"\n").is_err());
        assert_eq!(parse("[gb28181]\n").unwrap(), Gb28181Config::default());
    }
}
