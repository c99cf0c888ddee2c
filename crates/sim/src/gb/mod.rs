//! Simulated GB/T 28181 devices (IPCs or NVRs with M channels) for load benches, demos and
//! fault tests: they register with digest authentication, keep alive, answer Catalog (in
//! several packets), DeviceInfo and DeviceStatus queries, accept catalog subscriptions, push
//! catalog changes, and answer INVITEs by streaming a bundled clip as PS over RTP (UDP, or TCP
//! with RFC 4571 framing, connecting or listening).
//!
//! Built on `vigil_gb28181`'s sans-IO code ([`device::SimGroup`]) and `vigil_media`'s
//! [`vigil_media::ps::PsMuxer`] and [`vigil_media::rtp::PsRtpPacketizer`]. It is a load
//! generator and a demo source, never the only proof that the server works: the tests also use
//! sipp and a third-party device implementation.

pub mod clip;
pub mod device;
mod fleet;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_gb28181::gbid::{CivilCode, DomainCode, GbId};
use vigil_gb28181::manscdp::{CatalogItem, ChannelStatus};
use vigil_gb28181::sip::{GbVersion, Peer};
use vigil_gb28181::token::hmac_sha256;

pub use clip::{ClipPacketizer, GbClip, GbClipError};
pub use device::{
    DeviceSpec, GroupConfig, InviteBehavior, MediaFault, SimGroup, SimStats, SimStatsSnapshot,
};
use fleet::{GroupCmd, GroupRuntime};

/// SIP transport of the simulated devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipTransport {
    /// UDP; many devices share one socket.
    #[default]
    Udp,
    /// TCP; one connection per device.
    Tcp,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct GbSimConfig {
    /// The server's SIP address.
    pub server: SocketAddr,
    /// The server's SIP ID.
    pub server_id: String,
    /// The SIP domain.
    pub domain: String,
    /// Password of every device.
    pub password: String,
    /// SIP transport.
    pub transport: SipTransport,
    /// Number of devices.
    pub devices: usize,
    /// Channels per device.
    pub channels_per_device: usize,
    /// Device type code in the IDs (132 IPC, 118 NVR, 200 platform).
    pub device_type: u16,
    /// 8-digit centre code the IDs start with.
    pub centre: String,
    /// Serial of the first device (IDs are consecutive).
    pub first_serial: u32,
    /// CivilCode of every channel (unless `channel_civil_codes` is given).
    pub civil_code: String,
    /// CivilCode of channel `k` of every device: `channel_civil_codes[k % len]`; an empty
    /// string sends no CivilCode. Empty list: `civil_code` for all.
    pub channel_civil_codes: Vec<String>,
    /// Keepalive interval.
    pub keepalive_interval: Duration,
    /// Registration lifetime requested.
    pub register_expires: u32,
    /// Re-register delay after a failure.
    pub retry_interval: Duration,
    /// Catalog items per MESSAGE.
    pub catalog_items_per_packet: usize,
    /// Added to the announced `SumNum` (a lying device); 0 for honest devices.
    pub sum_num_offset: i64,
    /// Devices per SIP UDP socket.
    pub devices_per_socket: usize,
    /// Local IP to bind.
    pub bind_ip: IpAddr,
    /// The clip streamed on INVITE (`None`: INVITEs are answered but nothing is sent).
    pub clip: Option<Arc<GbClip>>,
    /// INVITE behaviour.
    pub invite: InviteBehavior,
    /// Media fault.
    pub media_fault: MediaFault,
    /// Accept catalog SUBSCRIBEs.
    pub subscribe: bool,
    /// `X-GB-Ver` edition.
    pub version: GbVersion,
    /// Bind a TCP media listener per device (for offers asking the device to listen).
    pub tcp_media_listen: bool,
    /// Spread the first REGISTERs over this long (zero: all at once).
    pub register_spread: Duration,
    /// SIP timer T1.
    pub t1: Duration,
}

impl Default for GbSimConfig {
    fn default() -> Self {
        GbSimConfig {
            server: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            server_id: "34020000002000000001".into(),
            domain: "3402000000".into(),
            password: "12345678".into(),
            transport: SipTransport::Udp,
            devices: 1,
            channels_per_device: 1,
            device_type: 132,
            centre: "34020000".into(),
            first_serial: 1,
            civil_code: "340200".into(),
            channel_civil_codes: Vec::new(),
            keepalive_interval: Duration::from_secs(60),
            register_expires: 3600,
            retry_interval: Duration::from_secs(5),
            catalog_items_per_packet: 4,
            sum_num_offset: 0,
            devices_per_socket: 200,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            clip: None,
            invite: InviteBehavior::Answer,
            media_fault: MediaFault::None,
            subscribe: true,
            version: GbVersion::V2016,
            tcp_media_listen: false,
            register_spread: Duration::ZERO,
            t1: Duration::from_millis(500),
        }
    }
}

/// Why the simulator did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration value is unusable.
    #[error("simulator configuration: {0}")]
    Config(String),
    /// A socket could not be bound.
    #[error("simulator socket: {0}")]
    Io(#[from] std::io::Error),
    /// The simulator stopped.
    #[error("the simulator is not running")]
    Stopped,
}

fn compose(centre: &str, type_code: u16, serial: u64) -> Result<GbId, SimError> {
    // Network digit carries serials beyond 10^6 (large catalogs).
    let network = serial / 1_000_000;
    if network > 9 {
        return Err(SimError::Config(format!("serial {serial} too large")));
    }
    let text = format!("{centre}00{type_code:03}{network}{:06}", serial % 1_000_000);
    GbId::parse(&text).map_err(|e| SimError::Config(format!("ID {text}: {e}")))
}

/// The catalog items of device number `n` (0-based) under `cfg`.
pub fn channels_of(
    cfg: &GbSimConfig,
    device: &GbId,
    n: usize,
) -> Result<Vec<CatalogItem>, SimError> {
    let parse = |text: &str| -> Result<Option<CivilCode>, SimError> {
        if text.is_empty() {
            return Ok(None);
        }
        CivilCode::parse(text)
            .map(Some)
            .map_err(|e| SimError::Config(format!("civil code {text:?}: {e}")))
    };
    let civil = parse(&cfg.civil_code)?;
    let per_channel = cfg
        .channel_civil_codes
        .iter()
        .map(|c| parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    (0..cfg.channels_per_device)
        .map(|k| {
            let civil = match per_channel.len() {
                0 => civil,
                n => per_channel[k % n],
            };
            let serial = (u64::from(cfg.first_serial) + n as u64) * cfg.channels_per_device as u64
                + k as u64;
            let id = compose(&cfg.centre, 131, serial)?;
            Ok(CatalogItem {
                device_id: id.to_string(),
                name: Some(format!("模拟通道 {n}-{k}")),
                manufacturer: Some("vigil-sim".into()),
                model: Some("GB-SIM-1".into()),
                owner: Some("vigil".into()),
                civil_code: civil,
                address: Some(format!("模拟路 {k} 号")),
                parental: Some(false),
                parent_id: Some(device.to_string()),
                register_way: Some(1),
                secrecy: Some(0),
                status: Some(ChannelStatus::On),
                longitude: Some(117.0 + (k % 1000) as f64 / 10_000.0),
                latitude: Some(31.0 + (n % 1000) as f64 / 10_000.0),
                ..CatalogItem::default()
            })
        })
        .collect()
}

/// A UDP socket with a large receive buffer (a group's socket takes bursts for hundreds of
/// devices; the kernel caps the size at `net.core.rmem_max`).
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

struct GroupHandle {
    tx: mpsc::Sender<GroupCmd>,
    first: usize,
    len: usize,
}

/// A running fleet of simulated devices.
pub struct GbSimFleet {
    stats: Arc<SimStats>,
    cancel: CancellationToken,
    groups: Vec<GroupHandle>,
    ids: Vec<GbId>,
    channels: Vec<Vec<GbId>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for GbSimFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbSimFleet")
            .field("devices", &self.ids.len())
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl GbSimFleet {
    /// Binds the sockets and starts every device (registrations are spread over
    /// `register_spread`).
    pub async fn start(cfg: GbSimConfig) -> Result<GbSimFleet, SimError> {
        let server_id =
            GbId::parse(&cfg.server_id).map_err(|e| SimError::Config(format!("server_id: {e}")))?;
        let domain =
            DomainCode::parse(&cfg.domain).map_err(|e| SimError::Config(format!("domain: {e}")))?;
        let stats = Arc::new(SimStats::default());
        let cancel = CancellationToken::new();
        let mut ids = Vec::with_capacity(cfg.devices);
        let mut specs = Vec::with_capacity(cfg.devices);
        let mut channels = Vec::with_capacity(cfg.devices);
        for n in 0..cfg.devices {
            let id = compose(
                &cfg.centre,
                cfg.device_type,
                u64::from(cfg.first_serial) + n as u64,
            )?;
            let items = channels_of(&cfg, &id, n)?;
            channels.push(
                items
                    .iter()
                    .filter_map(|c| GbId::parse(&c.device_id).ok())
                    .collect(),
            );
            ids.push(id);
            specs.push(DeviceSpec {
                id,
                password: cfg.password.clone(),
                channels: items,
                media_tcp_port: None,
            });
        }
        let per_group = match cfg.transport {
            SipTransport::Udp => cfg.devices_per_socket.max(1),
            SipTransport::Tcp => 1,
        };
        let t0 = Instant::now();
        let n = cfg.devices.max(1) as u32;
        let mut groups = Vec::new();
        let mut tasks = Vec::new();
        let mut first = 0;
        let mut seed_counter = 0u64;
        let mut specs = specs.into_iter();
        while first < cfg.devices {
            let len = per_group.min(cfg.devices - first);
            let mut group_specs: Vec<DeviceSpec> = specs.by_ref().take(len).collect();
            let media_udp = Arc::new(bind_udp(SocketAddr::new(cfg.bind_ip, 0))?);
            let media_udp_port = media_udp.local_addr()?.port();
            let mut listeners = std::collections::HashMap::new();
            if cfg.tcp_media_listen {
                for (i, s) in group_specs.iter_mut().enumerate() {
                    let l = TcpListener::bind(SocketAddr::new(cfg.bind_ip, 0)).await?;
                    s.media_tcp_port = Some(l.local_addr()?.port());
                    listeners.insert(i, Arc::new(l));
                }
            }
            let (sip, local) = match cfg.transport {
                SipTransport::Udp => {
                    let s = bind_udp(SocketAddr::new(cfg.bind_ip, 0))?;
                    let local = s.local_addr()?;
                    (Some(Arc::new(s)), local)
                }
                SipTransport::Tcp => {
                    // Reserve a local port for the connection (Via/Contact must name it).
                    let probe = std::net::TcpListener::bind(SocketAddr::new(cfg.bind_ip, 0))?;
                    let local = probe.local_addr()?;
                    drop(probe);
                    (None, local)
                }
            };
            let server = match cfg.transport {
                SipTransport::Udp => Peer::udp(cfg.server),
                SipTransport::Tcp => Peer::tcp(cfg.server),
            };
            let gcfg = GroupConfig {
                server_id,
                domain,
                server,
                local,
                media_ip: cfg.bind_ip,
                media_udp_port,
                register_expires: cfg.register_expires,
                keepalive_interval: cfg.keepalive_interval,
                retry_interval: cfg.retry_interval,
                catalog_items_per_packet: cfg.catalog_items_per_packet,
                sum_num_offset: cfg.sum_num_offset,
                version: cfg.version,
                invite: cfg.invite,
                subscribe: cfg.subscribe,
                user_agent: "vigil-sim".into(),
                t1: cfg.t1,
            };
            seed_counter += 1;
            let seed = hmac_sha256(b"vigil-sim", &[&seed_counter.to_be_bytes()]);
            let group = SimGroup::new(gcfg, group_specs, seed, stats.clone());
            let starts = (0..len)
                .map(|i| {
                    let idx = (first + i) as u32;
                    (t0 + cfg.register_spread * idx / n, i)
                })
                .collect();
            let rt = GroupRuntime {
                clip: cfg.clip.clone(),
                media_udp,
                listeners,
                fault: cfg.media_fault,
                stats: stats.clone(),
                cancel: cancel.clone(),
                starts,
            };
            let (tx, rx) = mpsc::channel(64);
            let task = match (cfg.transport, sip) {
                (SipTransport::Udp, Some(s)) => {
                    tokio::spawn(fleet::run_udp_group(group, s, rt, rx))
                }
                _ => tokio::spawn(fleet::run_tcp_group(group, cfg.server, local, rt, rx)),
            };
            tasks.push(task);
            groups.push(GroupHandle { tx, first, len });
            first += len;
        }
        Ok(GbSimFleet {
            stats,
            cancel,
            groups,
            ids,
            channels,
            tasks,
        })
    }

    /// Counters.
    pub fn stats(&self) -> SimStatsSnapshot {
        self.stats.snapshot()
    }

    /// Device IDs, in order.
    pub fn device_ids(&self) -> &[GbId] {
        &self.ids
    }

    /// Channel IDs of device `n`.
    pub fn channel_ids(&self, n: usize) -> &[GbId] {
        self.channels.get(n).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Waits until at least `n` devices are registered; false on timeout.
    pub async fn wait_registered(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.stats.snapshot().registered >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stats.snapshot().registered >= n
    }

    /// Pushes catalog changes of device `n` (items carry their `<Event>`).
    pub async fn notify_catalog(&self, n: usize, items: Vec<CatalogItem>) -> Result<(), SimError> {
        let g = self
            .groups
            .iter()
            .find(|g| n >= g.first && n < g.first + g.len)
            .ok_or(SimError::Config(format!("no device {n}")))?;
        g.tx.send(GroupCmd::Notify {
            device: n - g.first,
            items,
        })
        .await
        .map_err(|_| SimError::Stopped)
    }

    /// Stops every device; with `unregister`, each sends `Expires: 0` first.
    pub async fn stop(mut self, unregister: bool) {
        for g in &self.groups {
            let (done, wait) = oneshot::channel();
            if g.tx
                .send(GroupCmd::Shutdown { unregister, done })
                .await
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
            }
        }
        self.cancel.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for GbSimFleet {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
