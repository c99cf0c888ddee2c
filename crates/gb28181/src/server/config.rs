//! Server configuration, embedded in the daemon's TOML as a `[gb28181]` table.
//!
//! Every field has a default. An empty table gives a server that requires authentication but
//! knows no password: no device can register until `default_password` or `device_passwords`
//! is set.
//!
//! ```toml
//! [gb28181]
//! sip_id = "34020000002000000001"
//! domain = "3402000000"
//! listen = "0.0.0.0:5060"
//! external_ip = "10.20.30.40"
//! default_password = "change-me"
//! keepalive_interval_secs = 60
//! keepalive_max_missed = 3
//! ban_max_failures = 5
//!
//! [gb28181.device_passwords]
//! "34020000001320000001" = "its-own-password"
//!
//! [gb28181.catalog]
//! refresh_interval_secs = 3600
//! subscribe = true
//!
//! [gb28181.media]
//! rtp_ports = { start = 30000, end = 30999 }
//! transport = "udp"            # or "tcp_passive" / "tcp_active"
//! device_transport = { "34020000001320000009" = "tcp_passive" }
//! no_rtp_timeout_secs = 10
//!
//! [gb28181.recording]
//! mode = "list"                # "all" (every video channel) / "none" / "list"
//! channels = ["34020000001310000001"]
//!
//! [[gb28181.uplinks]]
//! name = "city-psb"
//! upper_id = "44010000002000000001"
//! upper_domain = "4401000000"
//! addr = "10.1.1.1:5060"
//! password = "upper-password"
//! ``` Durations are whole seconds (`*_secs`) or
//! milliseconds (`*_ms`) so that the TOML stays plain.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sdp::MediaTransport;

/// A password: serialised as a plain string, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// The GB/T 28181 SIP server: identity, sockets, authentication, liveness, catalog, media,
/// recording policy and uplinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbConfig {
    /// Our SIP server ID: 20 digits, type 200 (e.g. `34020000002000000001`).
    pub sip_id: String,
    /// Our SIP domain: the 10-digit prefix devices are configured with (e.g. `3402000000`).
    pub domain: String,
    /// Digest realm; the domain when absent (what GB/T 28181 devices expect).
    pub realm: Option<String>,
    /// Address for the SIP UDP socket and TCP listener. Default `0.0.0.0:5060`; port 0 picks a
    /// free port (tests).
    pub listen: SocketAddr,
    /// Accept SIP over TCP as well as UDP. Default true.
    pub tcp: bool,
    /// The IP devices reach us at, written into Via/Contact and into the SDP `c=` line of our
    /// INVITEs. When absent: the `listen` IP if it is specific, otherwise the local address the
    /// operating system routes towards each device.
    pub external_ip: Option<IpAddr>,
    /// Our `User-Agent`. Default `vigil`.
    pub user_agent: String,
    /// Password for every device without its own entry. Absent: only devices listed in
    /// `device_passwords` can register.
    pub default_password: Option<Secret>,
    /// Per-device passwords, by 20-digit device ID.
    pub device_passwords: BTreeMap<String, Secret>,
    /// Require digest authentication on REGISTER. Default true.
    pub require_auth: bool,
    /// Expected keepalive interval, seconds (GB/T 28181 default 60).
    pub keepalive_interval_secs: u64,
    /// Missed keepalives before a device is offline. Default 3.
    pub keepalive_max_missed: u32,
    /// Registration lifetime granted when a device asks for none, seconds. Default 3600.
    pub register_default_expires_secs: u32,
    /// Shortest registration lifetime granted, seconds. Default 60.
    pub register_min_expires_secs: u32,
    /// Longest registration lifetime granted, seconds. Default 86 400.
    pub register_max_expires_secs: u32,
    /// Failed REGISTER authentications from one source IP before it is banned. Default 5.
    pub ban_max_failures: u32,
    /// Window in which failures are counted, seconds. Default 600.
    pub ban_window_secs: u64,
    /// Ban duration, seconds (banned sources get no answer at all). Default 600.
    pub ban_secs: u64,
    /// Registered devices at most; beyond it REGISTER gets 503. Default 200 000.
    pub max_devices: usize,
    /// Concurrent SIP TCP connections at most. Default 20 000.
    pub max_tcp_connections: usize,
    /// SIP timer T1 (RTT estimate), milliseconds. Default 500; requests time out after 64·T1.
    pub sip_t1_ms: u64,
    /// Live SIP transactions at most (each side). A UDP non-INVITE transaction lingers 64·T1
    /// (32 s) after its answer to absorb retransmissions, so this bounds the sustained request
    /// rate to about `max / 32 s` (default 400 000: 12 500 requests/s; 50 000 devices with 60 s
    /// keepalives need ~27 000). Beyond it new requests are dropped and counted
    /// (`transaction_errors`). About 1.2 KiB per transaction (measured by benches/gb_load.rs).
    pub sip_max_transactions: usize,
    /// `SO_RCVBUF` of the SIP UDP socket and of every RTP UDP socket, bytes; the kernel caps it at
    /// `net.core.rmem_max`. Bursts (a catalog of thousands of MESSAGEs, an I-frame) are dropped
    /// by the kernel when it is too small. Default 4 MiB.
    pub udp_recv_buffer_bytes: usize,
    /// Catalog queries and subscriptions.
    pub catalog: CatalogSettings,
    /// Live media sessions.
    pub media: MediaSettings,
    /// Which channels are recorded continuously.
    pub recording: RecordingPolicy,
    /// Upper platforms we register to (cascade).
    pub uplinks: Vec<UplinkSettings>,
    /// Capacity of the event channel to the daemon; events beyond it are dropped and counted
    /// (`events_dropped`). Default 65 536.
    pub event_queue: usize,
}

impl Default for GbConfig {
    fn default() -> Self {
        GbConfig {
            sip_id: "34020000002000000001".into(),
            domain: "3402000000".into(),
            realm: None,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060),
            tcp: true,
            external_ip: None,
            user_agent: "vigil".into(),
            default_password: None,
            device_passwords: BTreeMap::new(),
            require_auth: true,
            keepalive_interval_secs: 60,
            keepalive_max_missed: 3,
            register_default_expires_secs: 3600,
            register_min_expires_secs: 60,
            register_max_expires_secs: 86_400,
            ban_max_failures: 5,
            ban_window_secs: 600,
            ban_secs: 600,
            max_devices: 200_000,
            max_tcp_connections: 20_000,
            sip_t1_ms: 500,
            sip_max_transactions: 400_000,
            udp_recv_buffer_bytes: 4 << 20,
            catalog: CatalogSettings::default(),
            media: MediaSettings::default(),
            recording: RecordingPolicy::default(),
            uplinks: Vec::new(),
            event_queue: 65_536,
        }
    }
}

/// Catalog queries and subscriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// Re-query every online device's catalog this often, seconds (after the query sent when it
    /// came online). 0 disables periodic queries. Default 3600.
    pub refresh_interval_secs: u64,
    /// Subscribe to catalog changes (SUBSCRIBE `Event: Catalog`) on devices that support it.
    /// Default true.
    pub subscribe: bool,
    /// Requested subscription lifetime, seconds. Default 3600.
    pub subscribe_expires_secs: u32,
    /// A catalog is complete after this long without a packet (when fewer items than `SumNum`
    /// arrived), seconds. Default 10.
    pub quiet_timeout_secs: u64,
    /// A catalog query with no packet at all within this long is reported as unanswered,
    /// seconds. Default 30.
    pub no_response_timeout_secs: u64,
    /// Also query DeviceStatus when a device comes online. Default true.
    pub query_status_on_online: bool,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings {
            refresh_interval_secs: 3600,
            subscribe: true,
            subscribe_expires_secs: 3600,
            quiet_timeout_secs: 10,
            no_response_timeout_secs: 30,
            query_status_on_online: true,
        }
    }
}

/// Media transport preference, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransportPreference {
    /// RTP over UDP.
    #[default]
    Udp,
    /// RTP over TCP, we listen and the device connects (`a=setup:passive` in our offer).
    TcpPassive,
    /// RTP over TCP, the device listens and we connect (`a=setup:active`).
    TcpActive,
}

impl TransportPreference {
    /// The SDP transport of our offer.
    pub fn media_transport(self) -> MediaTransport {
        match self {
            TransportPreference::Udp => MediaTransport::Udp,
            TransportPreference::TcpPassive => MediaTransport::TcpPassive,
            TransportPreference::TcpActive => MediaTransport::TcpActive,
        }
    }
}

/// An inclusive port range; `start = 0` lets the operating system pick each port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

/// Live media sessions (INVITE, RTP receive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Ports for RTP (UDP sockets and TCP passive listeners). Default 30000-39999.
    pub rtp_ports: PortRange,
    /// Transport of our offers. Default `udp`.
    pub transport: TransportPreference,
    /// Per-device transport overrides, by device ID (NAT'd devices usually need `tcp_passive`).
    pub device_transport: BTreeMap<String, TransportPreference>,
    /// Give up on an INVITE without a final answer after this long, seconds. Default 15.
    pub invite_timeout_secs: u64,
    /// A session with no RTP for this long is interrupted and re-INVITEd, seconds. Default 10.
    pub no_rtp_timeout_secs: u64,
    /// First re-INVITE delay after a failure, seconds; doubles per failure. Default 2.
    pub retry_initial_secs: u64,
    /// Longest re-INVITE delay, seconds. Default 120.
    pub retry_max_secs: u64,
    /// A stream up this long resets the backoff, seconds. Default 60.
    pub healthy_after_secs: u64,
    /// Concurrent media sessions at most (INVITEs beyond it wait). Default 2 000.
    pub max_sessions: usize,
    /// Frames queued towards the store per channel before frames are dropped (counted) rather
    /// than stalling the receiver. This is the capacity hint for the channels the daemon
    /// creates; the server itself never blocks on a sink. Default 256.
    pub sink_queue: usize,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            rtp_ports: PortRange {
                start: 30_000,
                end: 39_999,
            },
            transport: TransportPreference::Udp,
            device_transport: BTreeMap::new(),
            invite_timeout_secs: 15,
            no_rtp_timeout_secs: 10,
            retry_initial_secs: 2,
            retry_max_secs: 120,
            healthy_after_secs: 60,
            max_sessions: 2_000,
            sink_queue: 256,
        }
    }
}

/// Which channels are pulled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Every video channel (catalog items of type 131/132) of every online device.
    All,
    /// None (only channels started through the handle).
    #[default]
    None,
    /// The channels listed in `channels`.
    List,
}

/// The recording policy. The handle's start/stop calls override it per channel until
/// [`crate::server::GbHandle::reset_recording`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingPolicy {
    /// Mode. Default `none`.
    pub mode: RecordingMode,
    /// Channel IDs recorded in `list` mode.
    pub channels: Vec<String>,
}

/// One upper platform we register to as a lower platform (级联 cascade). Over UDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UplinkSettings {
    /// A name for logs, events and the uplink history (e.g. `city-psb`).
    pub name: String,
    /// The upper platform's SIP server ID (20 digits).
    pub upper_id: String,
    /// The upper platform's domain (10 digits; its realm).
    pub upper_domain: String,
    /// The upper platform's SIP address (UDP).
    pub addr: SocketAddr,
    /// Digest user name; our SIP ID when absent.
    pub username: Option<String>,
    /// Digest password.
    pub password: Secret,
    /// Requested registration lifetime, seconds. Default 3600.
    pub expires_secs: u32,
    /// Keepalive interval, seconds. Default 60.
    pub keepalive_interval_secs: u64,
    /// Keepalives without an answer before the link counts as down. Default 3.
    pub keepalive_max_missed: u32,
    /// Wait before re-registering after a failure, seconds (GB/T 28181: at least 60).
    /// Default 60.
    pub retry_interval_secs: u64,
    /// Items per MESSAGE when answering the upper platform's catalog query. Default 4.
    pub catalog_items_per_packet: usize,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        UplinkSettings {
            name: "upper".into(),
            upper_id: String::new(),
            upper_domain: String::new(),
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            username: None,
            password: Secret::default(),
            expires_secs: 3600,
            keepalive_interval_secs: 60,
            keepalive_max_missed: 3,
            retry_interval_secs: 60,
            catalog_items_per_packet: 4,
        }
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_passwords_stay_out_of_debug() {
        let mut c = GbConfig {
            default_password: Some("s3cret-default".into()),
            ..GbConfig::default()
        };
        c.device_passwords
            .insert("34020000001320000001".into(), "per-device-pw".into());
        c.uplinks.push(UplinkSettings {
            password: "uplink-pw".into(),
            ..UplinkSettings::default()
        });
        let dbg = format!("{c:?}");
        for pw in ["s3cret-default", "per-device-pw", "uplink-pw"] {
            assert!(!dbg.contains(pw), "{pw} leaked into Debug");
        }
        let json = serde_json::to_string(&c).unwrap();
        let back: GbConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let empty: GbConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, GbConfig::default());
        let t: MediaSettings =
            serde_json::from_str(r#"{"transport":"tcp_passive","rtp_ports":{"start":0,"end":0}}"#)
                .unwrap();
        assert_eq!(t.transport.media_transport(), MediaTransport::TcpPassive);
        assert!(serde_json::from_str::<GbConfig>(r#"{"unknown_field":1}"#).is_err());
    }

    #[test]
    fn state_machine_configs_redact_passwords_too() {
        use crate::gbid::{DomainCode, GbId};
        let id = GbId::parse("34020000002000000001").unwrap();
        let dom = DomainCode::parse("3402000000").unwrap();
        let mut rc = crate::registry::RegistryConfig::new(id, dom);
        rc.default_password = Some("registry-pw".into());
        let uc = crate::uplink::UplinkConfig::new(
            id,
            dom,
            id,
            dom,
            crate::sip::Peer::udp("127.0.0.1:5060".parse().unwrap()),
            "127.0.0.1:5061".parse().unwrap(),
            "uplink-pw".into(),
        );
        let text = format!("{rc:?} {uc:?}");
        assert!(
            !text.contains("registry-pw") && !text.contains("uplink-pw"),
            "{text}"
        );
        assert!(text.contains("has_default_password: true"));
    }

    #[test]
    fn the_documented_toml_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| {
                l.strip_prefix("//!")
                    .unwrap_or(l)
                    .strip_prefix(' ')
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\n");
        #[derive(Deserialize)]
        struct Daemon {
            gb28181: GbConfig,
        }
        let d: Daemon = toml::from_str(&example).unwrap();
        let c = d.gb28181;
        assert_eq!(c.external_ip, Some("10.20.30.40".parse().unwrap()));
        assert_eq!(
            c.media.rtp_ports,
            PortRange {
                start: 30000,
                end: 30999
            }
        );
        assert_eq!(
            c.media.device_transport.get("34020000001320000009"),
            Some(&TransportPreference::TcpPassive)
        );
        assert_eq!(c.recording.mode, RecordingMode::List);
        assert_eq!(c.uplinks[0].password.expose(), "upper-password");
        assert_eq!(
            c.uplinks[0].keepalive_interval_secs, 60,
            "defaults fill the rest"
        );
        assert_eq!(c.device_passwords.len(), 1);
    }
}
