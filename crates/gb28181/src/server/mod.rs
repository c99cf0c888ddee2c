//! The GB/T 28181 SIP server (tokio): the only module of this crate that does I/O.
//!
//! [`GbServer::start`] binds the SIP UDP socket (and TCP listener) and spawns:
//! - one **core task** owning every sans-IO state machine (transactions, registry, catalog
//!   assembler, subscriptions, play sessions, uplinks), woken by inputs, handle commands and the
//!   earliest `next_deadline()`;
//! - a UDP receive task (parses datagrams off the core task) and a UDP writer for sends that
//!   would block;
//! - a TCP accept task and one task per TCP connection ([`crate::sip::StreamFramer`]; a
//!   closed connection takes the devices registered over it offline);
//! - one task per live media session ([`media::run_session`]): RTP (UDP / TCP) → SSRC filter →
//!   reorder/loss → PS demux → [`vigil_store::SourceEvent`]s into the channel's sink;
//! - one task per upper-platform INVITE we serve (cascade), copying a channel's RTP upward.
//!
//! Outputs: a stream of [`GbEvent`]s (registration, liveness, DeviceInfo/Status, catalogs and
//! changes, channel status, media state, uplink state) and a [`GbHandle`] for views and
//! control. Where frames go is decided by the caller through a [`SinkProvider`].
//!
//! Isolation: every problem with one device (garbage, truncated SIP, bad XML, wrong SumNum,
//! wrong SSRC, broken PS, an INVITE never answered, a dropped TCP connection) is logged with
//! the device ID, counted in [`Metrics`], and affects only that device or channel.

pub mod config;
mod core;
mod devices;
pub mod events;
pub mod handle;
pub mod media;
pub mod metrics;
mod recording;
mod relay;
mod transport;
mod upper;
mod views;

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_store::SourceEvent;

pub use self::config::{
    CatalogSettings, GbConfig, MediaSettings, PortRange, RecordingMode, RecordingPolicy, Secret,
    TransportPreference, UplinkSettings,
};
pub use self::events::{
    CatalogChange, CatalogEntry, CatalogSnapshot, GbEvent, MediaState, NotifyVia,
    SubscriptionChange, UplinkState,
};
pub use self::handle::{
    ChannelView, DeviceView, GbHandle, HandleError, RecordingView, SessionView, UplinkView,
};
pub use self::metrics::{ChannelCountersSnapshot, Metrics, MetricsSnapshot};
pub use self::upper::UplinkConfigError;
pub use crate::play::ChannelKey;

use self::config::secs;
use self::core::{Core, PortAllocator};
use crate::catalog::{AssemblerConfig, CatalogAssembler};
use crate::digest::{AuthPolicy, BanPolicy};
use crate::gbid::{DomainCode, GbId};
use crate::play::{PlayConfig, PlayManager};
use crate::registry::{KeepalivePolicy, Registry, RegistryConfig};
use crate::sip::transaction::{TimerConfig, TransactionLayer};
use crate::subscription::{CatalogSubscriptions, SubscriptionConfig};
use crate::token::{hmac_sha256, TokenGen};

/// Decides where a channel's frames go (the daemon connects it to the store).
pub trait SinkProvider: Send + Sync + 'static {
    /// The sender for `channel`'s recording, or `None` if it must not be recorded.
    fn sink(&self, channel: &ChannelKey) -> Option<mpsc::Sender<SourceEvent>>;
}

impl<F> SinkProvider for F
where
    F: Fn(&ChannelKey) -> Option<mpsc::Sender<SourceEvent>> + Send + Sync + 'static,
{
    fn sink(&self, channel: &ChannelKey) -> Option<mpsc::Sender<SourceEvent>> {
        self(channel)
    }
}

/// A provider with no sinks: only channels started with an explicit sender are recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSinks;

impl SinkProvider for NoSinks {
    fn sink(&self, _channel: &ChannelKey) -> Option<mpsc::Sender<SourceEvent>> {
        None
    }
}

/// Why the server did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A configuration value is unusable.
    #[error("invalid GB/T 28181 configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An uplink is misconfigured.
    #[error(transparent)]
    Uplink(#[from] UplinkConfigError),
    /// A socket could not be bound.
    #[error("cannot bind SIP {what} on {addr}: {source}")]
    Bind {
        /// UDP or TCP.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The OS random source failed.
    #[error("cannot read the OS random source: {0}")]
    Random(String),
}

/// A running server.
pub struct GbServer {
    /// Views and control.
    pub handle: GbHandle,
    /// Events for the daemon (drain it; events beyond the queue capacity are dropped).
    pub events: mpsc::Receiver<GbEvent>,
    /// The core task; it ends after [`GbHandle::shutdown`] (or when every handle is dropped)
    /// once media sessions have sent their `Interrupted`.
    pub task: JoinHandle<()>,
}

impl std::fmt::Debug for GbServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbServer")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// A non-blocking UDP socket with `SO_RCVBUF` raised to `recv_buffer` (best effort: the kernel
/// caps it).
pub(crate) fn bind_udp_std(
    addr: SocketAddr,
    recv_buffer: usize,
) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if recv_buffer > 0 {
        if let Err(e) = s.set_recv_buffer_size(recv_buffer) {
            tracing::debug!(%addr, error = %e, "cannot raise SO_RCVBUF");
        }
    }
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    UdpSocket::from_std(bind_udp_std(addr, recv_buffer)?)
}

fn random_seed() -> Result<[u8; 32], StartError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| StartError::Random(e.to_string()))?;
    Ok(b)
}

/// The local address the OS uses towards `remote` (for the uplink's Via/Contact).
fn route_to(remote: IpAddr, external: Option<IpAddr>, listen: IpAddr) -> IpAddr {
    if let Some(ip) = external {
        return ip;
    }
    if !listen.is_unspecified() {
        return listen;
    }
    let bind: SocketAddr = if remote.is_ipv6() {
        "[::]:0"
            .parse()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    } else {
        SocketAddr::from(([0, 0, 0, 0], 0))
    };
    std::net::UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(SocketAddr::new(remote, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

impl GbServer {
    /// Validates the configuration, binds the sockets and starts the server in the current
    /// tokio runtime.
    pub async fn start(
        config: GbConfig,
        sinks: Arc<dyn SinkProvider>,
    ) -> Result<GbServer, StartError> {
        let bad = |field: &'static str, reason: String| StartError::Config { field, reason };
        let our_id = GbId::parse(&config.sip_id)
            .map_err(|e| bad("sip_id", format!("{:?}: {e}", config.sip_id)))?;
        let domain = DomainCode::parse(&config.domain)
            .map_err(|e| bad("domain", format!("{:?}: {e}", config.domain)))?;
        let mut passwords = Vec::new();
        for (id, pw) in &config.device_passwords {
            let gid =
                GbId::parse(id).map_err(|e| bad("device_passwords", format!("{id:?}: {e}")))?;
            passwords.push((gid, pw.expose().to_owned()));
        }
        for id in config.media.device_transport.keys() {
            GbId::parse(id).map_err(|e| bad("media.device_transport", format!("{id:?}: {e}")))?;
        }
        if config.keepalive_interval_secs == 0 {
            return Err(bad("keepalive_interval_secs", "must be at least 1".into()));
        }
        if config.media.rtp_ports.start != 0
            && config.media.rtp_ports.end < config.media.rtp_ports.start
        {
            return Err(bad("media.rtp_ports", "end is before start".into()));
        }
        let secret = random_seed()?;
        let t0 = Instant::now();

        let udp = bind_udp(config.listen, config.udp_recv_buffer_bytes).map_err(|source| {
            StartError::Bind {
                what: "UDP",
                addr: config.listen,
                source,
            }
        })?;
        let udp_addr = udp.local_addr().map_err(|source| StartError::Bind {
            what: "UDP",
            addr: config.listen,
            source,
        })?;
        let tcp = if config.tcp {
            // Same port as UDP, so that one advertised address serves both.
            let addr = SocketAddr::new(config.listen.ip(), udp_addr.port());
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        what: "TCP",
                        addr,
                        source,
                    })?,
            )
        } else {
            None
        };
        let tcp_addr = match &tcp {
            Some(l) => Some(l.local_addr().map_err(|source| StartError::Bind {
                what: "TCP",
                addr: config.listen,
                source,
            })?),
            None => None,
        };

        let mut rc = RegistryConfig::new(our_id, domain);
        rc.realm = config.realm.clone();
        rc.default_password = config
            .default_password
            .as_ref()
            .map(|s| s.expose().to_owned());
        rc.require_auth = config.require_auth;
        rc.auth = AuthPolicy::default();
        rc.ban = BanPolicy {
            max_failures: config.ban_max_failures.max(1),
            window: secs(config.ban_window_secs),
            ban: secs(config.ban_secs),
            ..BanPolicy::default()
        };
        rc.keepalive = KeepalivePolicy {
            interval: secs(config.keepalive_interval_secs),
            max_missed: config.keepalive_max_missed.max(1),
        };
        rc.default_expires = config.register_default_expires_secs;
        rc.min_expires = config.register_min_expires_secs;
        rc.max_expires = config.register_max_expires_secs;
        rc.user_agent = config.user_agent.clone();
        rc.max_devices = config.max_devices;
        let mut registry = Registry::new(rc, hmac_sha256(&secret, &[b"registry"]), t0);
        for (id, pw) in passwords {
            registry.passwords_mut().set(id, pw);
        }

        let timers = TimerConfig {
            t1: Duration::from_millis(config.sip_t1_ms.max(1)),
            max_transactions: config.sip_max_transactions.max(1),
            ..TimerConfig::default()
        };
        let assembler = CatalogAssembler::new(AssemblerConfig {
            quiet_timeout: secs(config.catalog.quiet_timeout_secs.max(1)),
            no_response_timeout: secs(config.catalog.no_response_timeout_secs.max(1)),
            ..AssemblerConfig::default()
        });
        let subs = CatalogSubscriptions::new(
            SubscriptionConfig {
                expires: config.catalog.subscribe_expires_secs.max(60),
                user_agent: config.user_agent.clone(),
                ..SubscriptionConfig::default()
            },
            our_id,
            domain,
            hmac_sha256(&secret, &[b"subscriptions"]),
        );
        let play = PlayManager::new(
            PlayConfig {
                invite_timeout: secs(config.media.invite_timeout_secs.max(1)),
                retry_initial: secs(config.media.retry_initial_secs.max(1)),
                retry_max: secs(config.media.retry_max_secs.max(1)),
                healthy_after: secs(config.media.healthy_after_secs),
                user_agent: config.user_agent.clone(),
                ..PlayConfig::default()
            },
            our_id,
            domain,
            hmac_sha256(&secret, &[b"play"]),
        );
        let mut uplinks = Vec::new();
        for (i, s) in config.uplinks.iter().enumerate() {
            let local = SocketAddr::new(
                route_to(s.addr.ip(), config.external_ip, config.listen.ip()),
                udp_addr.port(),
            );
            let seed = hmac_sha256(&secret, &[b"uplink", &(i as u64).to_be_bytes()]);
            uplinks.push(upper::Uplink::new(
                s,
                our_id,
                domain,
                local,
                &config.user_agent,
                seed,
            )?);
        }

        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let udp = Arc::new(udp);
        let (input_tx, input_rx) = mpsc::channel(8192);
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (event_tx, event_rx) = mpsc::channel(config.event_queue.max(16));
        let (udp_out_tx, udp_out_rx) = mpsc::channel(8192);

        tokio::spawn(transport::udp_receiver(
            udp.clone(),
            input_tx.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(transport::udp_writer(
            udp.clone(),
            udp_out_rx,
            metrics.clone(),
        ));
        if let Some(l) = tcp {
            tokio::spawn(transport::tcp_listener(
                l,
                input_tx.clone(),
                metrics.clone(),
                config.max_tcp_connections,
                shutdown.clone(),
            ));
        }

        let record_list: HashSet<String> = config.recording.channels.iter().cloned().collect();
        let ports = PortAllocator::new(
            config.media.rtp_ports.start,
            config.media.rtp_ports.end,
            config.udp_recv_buffer_bytes,
        );
        let listen_ip = config.listen.ip();
        let core = Core {
            cfg: Arc::new(config),
            our_id,
            domain,
            udp,
            udp_out: udp_out_tx,
            sip_port: udp_addr.port(),
            listen_ip,
            tcp: HashMap::new(),
            txn: TransactionLayer::new(timers),
            registry,
            assembler,
            subs,
            play,
            uplinks,
            shared: Vec::new(),
            pending: HashMap::new(),
            devices: HashMap::new(),
            catalog_heap: BinaryHeap::new(),
            catalog_owner: HashMap::new(),
            overrides: HashMap::new(),
            explicit_sinks: HashMap::new(),
            record_list,
            media: HashMap::new(),
            media_tasks: Vec::new(),
            waiting: VecDeque::new(),
            stats: HashMap::new(),
            ports,
            sinks,
            events: event_tx,
            metrics: metrics.clone(),
            input_tx,
            tokens: TokenGen::new(hmac_sha256(&secret, &[b"core tokens"])),
            route_cache: HashMap::new(),
            sn: 0,
            events_dropped_logged: 0,
            relays: HashMap::new(),
            upper_sessions: HashMap::new(),
            upper_invites: crate::uas::PendingInvites::new(),
            relay_seq: 0,
        };
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                core.run(input_rx, cmd_rx, shutdown.clone()).await;
                // Stop the transports too (they hold the sockets).
                shutdown.cancel();
            }
        });
        let handle = GbHandle {
            tx: cmd_tx,
            metrics,
            shutdown,
            sip_udp: udp_addr,
            sip_tcp: tcp_addr,
        };
        Ok(GbServer {
            handle,
            events: event_rx,
            task,
        })
    }
}
