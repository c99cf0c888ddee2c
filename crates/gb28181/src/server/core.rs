//! The core task: owns every state machine (transactions, registry, catalog assembler,
//! subscriptions, play sessions, uplinks) and drives them from one loop — inputs from the
//! transports and media tasks, commands from handles, and the earliest timer deadline.
//!
//! Nothing here awaits I/O: sends are non-blocking (`try_send_to`, bounded queues), so one slow
//! or broken device cannot stall the others.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use vigil_core::time::Timestamp;
use vigil_store::SourceEvent;

use super::config::GbConfig;
use super::events::GbEvent;
use super::handle::Command;
use super::media::MediaSocket;
use super::metrics::{inc, ChannelCounters, LastFrame, Metrics};
use super::transport::Input;
use super::upper::Uplink;
use super::SinkProvider;
use crate::catalog::CatalogAssembler;
use crate::gbid::{DomainCode, GbId};
use crate::manscdp::{CatalogItem, CmdType, DeviceInfo};
use crate::play::{ChannelKey, PlayManager};
use crate::quirks::QuirkSet;
use crate::registry::Registry;
use crate::sip::transaction::{
    ClientKey, Incoming, ResponseOutcome, ServerKey, TimerEvent, TransactionLayer,
};
use crate::sip::{
    HeaderName, Message, Method, Peer, ResponseBuilder, SipError, Transmit, Transport,
};
use crate::subscription::CatalogSubscriptions;
use crate::time::Now;
use crate::token::TokenGen;

/// What one of our client transactions is for.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Query {
        device: GbId,
        cmd: CmdType,
    },
    Subscribe {
        call_id: String,
    },
    Play {
        call_id: String,
    },
    Uplink {
        idx: usize,
        call_id: String,
    },
    /// A MESSAGE to an upper platform (catalog packets, DeviceInfo answers).
    UplinkMessage {
        idx: usize,
    },
}

/// A channel in a device's catalog.
#[derive(Debug, Clone)]
pub(crate) struct ChannelState {
    pub item: CatalogItem,
    pub kind: crate::catalog::ItemKind,
    pub id: Option<GbId>,
}

/// What the server knows about a device beyond the registry.
#[derive(Debug)]
pub(crate) struct DeviceState {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub version: crate::sip::GbVersion,
    pub x_gb_ver: Option<String>,
    pub user_agent: Option<String>,
    pub online: bool,
    pub registered_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub quirks: QuirkSet,
    pub info: Option<DeviceInfo>,
    pub channels: std::collections::BTreeMap<String, ChannelState>,
    pub catalog_at: Option<Timestamp>,
    pub next_catalog: Option<Instant>,
    pub span: tracing::Span,
}

impl DeviceState {
    pub(crate) fn new(id: GbId, addr: SocketAddr, transport: Transport) -> Self {
        DeviceState {
            addr,
            transport,
            version: crate::sip::GbVersion::V2016,
            x_gb_ver: None,
            user_agent: None,
            online: false,
            registered_at: None,
            last_error: None,
            quirks: QuirkSet::new(),
            info: None,
            channels: Default::default(),
            catalog_at: None,
            next_catalog: None,
            span: tracing::info_span!("gb_device", device = %id),
        }
    }
}

/// A channel's media resources while a session attempt is in progress.
#[derive(Debug)]
pub(crate) struct MediaSlot {
    pub call_id: String,
    /// Socket bound before the INVITE, handed to the task on 2xx.
    pub prebound: Option<MediaSocket>,
    pub sink: mpsc::Sender<SourceEvent>,
    pub stop: Option<oneshot::Sender<String>>,
    /// Attaches relays to the running media task.
    pub relay_ctl: Option<mpsc::UnboundedSender<super::media::RelayCmd>>,
    pub accepted: bool,
    pub flowing: bool,
}

/// Per-channel counters kept across sessions.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelStats {
    pub counters: Arc<ChannelCounters>,
    pub last_frame: Arc<LastFrame>,
    pub last_error: Option<String>,
}

/// Media port allocation over the configured range.
#[derive(Debug)]
pub(crate) struct PortAllocator {
    start: u16,
    end: u16,
    next: u16,
    recv_buffer: usize,
}

impl PortAllocator {
    pub(crate) fn new(start: u16, end: u16, recv_buffer: usize) -> Self {
        PortAllocator {
            start,
            end: end.max(start),
            next: start,
            recv_buffer,
        }
    }

    fn try_ports<T>(
        &mut self,
        ip: IpAddr,
        bind: impl Fn(SocketAddr) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        if self.start == 0 {
            return bind(SocketAddr::new(ip, 0));
        }
        let span = u32::from(self.end - self.start) + 1;
        let mut last = None;
        for _ in 0..span {
            let port = self.next;
            self.next = if self.next >= self.end {
                self.start
            } else {
                self.next + 1
            };
            match bind(SocketAddr::new(ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("empty RTP port range")))
    }

    pub(crate) fn bind_udp(&mut self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let rb = self.recv_buffer;
        let s = self.try_ports(ip, |a| super::bind_udp_std(a, rb))?;
        UdpSocket::from_std(s)
    }

    pub(crate) fn bind_tcp(&mut self, ip: IpAddr) -> std::io::Result<tokio::net::TcpListener> {
        let s = self.try_ports(ip, std::net::TcpListener::bind)?;
        s.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(s)
    }
}

pub(crate) struct Core {
    pub cfg: Arc<GbConfig>,
    pub our_id: GbId,
    pub domain: DomainCode,
    pub udp: Arc<UdpSocket>,
    pub udp_out: mpsc::Sender<(Bytes, SocketAddr)>,
    pub sip_port: u16,
    pub listen_ip: IpAddr,
    pub tcp: HashMap<SocketAddr, mpsc::Sender<Bytes>>,
    pub txn: TransactionLayer,
    pub registry: Registry,
    pub assembler: CatalogAssembler,
    pub subs: CatalogSubscriptions,
    pub play: PlayManager,
    pub uplinks: Vec<Uplink>,
    pub shared: Vec<CatalogItem>,
    pub pending: HashMap<ClientKey, Pending>,
    pub devices: HashMap<GbId, DeviceState>,
    pub catalog_heap: BinaryHeap<Reverse<(Instant, GbId)>>,
    /// Catalog document DeviceID → the registered device that sent it.
    pub catalog_owner: HashMap<String, GbId>,
    pub overrides: HashMap<ChannelKey, bool>,
    pub explicit_sinks: HashMap<ChannelKey, mpsc::Sender<SourceEvent>>,
    pub record_list: HashSet<String>,
    pub media: HashMap<ChannelKey, MediaSlot>,
    pub media_tasks: Vec<JoinHandle<()>>,
    pub waiting: VecDeque<ChannelKey>,
    pub stats: HashMap<ChannelKey, ChannelStats>,
    pub ports: PortAllocator,
    pub sinks: Arc<dyn SinkProvider>,
    pub events: mpsc::Sender<GbEvent>,
    pub metrics: Arc<Metrics>,
    pub input_tx: mpsc::Sender<Input>,
    pub tokens: TokenGen,
    pub route_cache: HashMap<IpAddr, IpAddr>,
    pub sn: u64,
    pub events_dropped_logged: u64,
    /// Relays to upper platforms, by channel.
    pub relays: HashMap<ChannelKey, Vec<(u64, mpsc::Sender<super::media::RtpChunk>)>>,
    /// Upper platforms' INVITE sessions, by Call-ID.
    pub upper_sessions: HashMap<String, super::relay::UpperSession>,
    /// Upper platforms' INVITEs not answered yet.
    pub upper_invites: crate::uas::PendingInvites,
    pub relay_seq: u64,
}

pub(crate) fn now_ts() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

pub(crate) fn now() -> Now {
    let ts = now_ts();
    Now::new(Instant::now(), ts.as_millis())
}

impl Core {
    /// The main loop; returns after shutdown.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        self.start_uplinks();
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(c) => self.command(c),
                    None => break,
                },
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.input(input);
                    // Drain a batch before looking at timers again.
                    for _ in 0..256 {
                        match inputs.try_recv() {
                            Ok(i) => self.input(i),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep => {}
            }
            self.timers(Instant::now());
            self.gauges();
        }
        self.shutdown().await;
    }

    fn gauges(&self) {
        let m = &self.metrics;
        let (servers, clients) = self.txn.len();
        super::metrics::set(
            &m.registered_devices_now,
            self.registry.registered_count() as u64,
        );
        super::metrics::set(&m.online_devices_now, self.registry.online_count() as u64);
        super::metrics::set(&m.live_transactions_now, (servers + clients) as u64);
        super::metrics::set(&m.media_sessions_now, self.media.len() as u64);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.txn.next_deadline(),
            self.registry.next_deadline(),
            self.assembler.next_deadline(),
            self.subs.next_deadline(),
            self.play.next_deadline(),
            self.catalog_heap.peek().map(|Reverse((t, _))| *t),
        ]
        .into_iter()
        .flatten()
        .chain(self.uplinks.iter().filter_map(|u| u.client.next_deadline()))
        .min()
    }

    pub(crate) fn next_sn(&mut self) -> u64 {
        self.sn += 1;
        self.sn
    }

    /// Sends an event to the daemon without ever blocking the server.
    pub(crate) fn emit(&mut self, ev: GbEvent) {
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                inc(&self.metrics.events_dropped);
                if self.events_dropped_logged % 1000 == 0 {
                    warn!(
                        event = ev.kind(),
                        dropped = self.events_dropped_logged + 1,
                        "event channel full: event dropped"
                    );
                }
                self.events_dropped_logged += 1;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Our IP as a peer at `remote` sees it.
    pub(crate) fn local_ip_for(&mut self, remote: IpAddr) -> IpAddr {
        if let Some(ip) = self.cfg.external_ip {
            return ip;
        }
        if !self.listen_ip.is_unspecified() {
            return self.listen_ip;
        }
        if let Some(ip) = self.route_cache.get(&remote) {
            return *ip;
        }
        // Ask the routing table which source address reaches the peer (no packet is sent).
        let unspecified: IpAddr = if remote.is_ipv6() {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let ip = std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))
            .and_then(|s| {
                s.connect(SocketAddr::new(remote, 9))?;
                s.local_addr()
            })
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if self.route_cache.len() > 100_000 {
            self.route_cache.clear();
        }
        self.route_cache.insert(remote, ip);
        ip
    }

    /// Our SIP address as `peer` sees it.
    pub(crate) fn local_for(&mut self, peer: Peer) -> SocketAddr {
        SocketAddr::new(self.local_ip_for(peer.addr.ip()), self.sip_port)
    }

    /// Sends bytes without blocking.
    pub(crate) fn transmit(&mut self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => match self.udp.try_send_to(&t.bytes, t.peer.addr) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.udp_out.try_send((t.bytes, t.peer.addr)).is_err() {
                        inc(&self.metrics.send_failures);
                    }
                }
                Err(e) => {
                    inc(&self.metrics.send_failures);
                    debug!(to = %t.peer.addr, error = %e, "SIP UDP send failed");
                }
            },
            Transport::Tcp => match self.tcp.get(&t.peer.addr) {
                Some(tx) => {
                    if tx.try_send(t.bytes).is_err() {
                        inc(&self.metrics.send_failures);
                        warn!(to = %t.peer.addr, "SIP TCP connection queue full or closed: message dropped");
                    }
                }
                None => {
                    inc(&self.metrics.send_failures);
                    debug!(to = %t.peer.addr, "no SIP TCP connection to send on");
                }
            },
        }
    }

    /// Sends one of our requests through the transaction layer.
    pub(crate) fn send_request(
        &mut self,
        msg: Message,
        peer: Peer,
        pending: Pending,
        now: Instant,
    ) -> Result<(), String> {
        match self.txn.send_request(msg, peer, now) {
            Ok((key, t)) => {
                self.pending.insert(key, pending);
                inc(&self.metrics.requests_out);
                self.transmit(t);
                Ok(())
            }
            Err(e) => {
                inc(&self.metrics.transaction_errors);
                warn!(to = %peer, error = %e, "cannot send request");
                Err(e.to_string())
            }
        }
    }

    /// Sends a response on a server transaction.
    pub(crate) fn respond(&mut self, key: &ServerKey, resp: Message, now: Instant) {
        match self.txn.respond(key, resp, now) {
            Ok(t) => self.transmit(t),
            Err(e) => {
                inc(&self.metrics.transaction_errors);
                debug!(error = %e, "cannot respond");
            }
        }
    }

    /// A plain response (`code`) to `req` with our tag and User-Agent.
    pub(crate) fn simple_response(
        &mut self,
        req: &Message,
        peer: Peer,
        code: u16,
        extra: &[(HeaderName, String)],
    ) -> Result<Message, SipError> {
        let tag = self.tokens.tag();
        let mut b = ResponseBuilder::new(req, code)
            .source(peer.addr)
            .to_tag(&tag)
            .header(HeaderName::UserAgent, self.cfg.user_agent.clone());
        for (n, v) in extra {
            b = b.header(n.clone(), v.clone());
        }
        b.build()
    }

    pub(crate) fn reply(
        &mut self,
        key: &ServerKey,
        req: &Message,
        peer: Peer,
        code: u16,
        now: Instant,
    ) {
        match self.simple_response(req, peer, code, &[]) {
            Ok(r) => self.respond(key, r, now),
            Err(e) => debug!(from = %peer, error = %e, "cannot build a response"),
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Udp { msg, from } => match msg {
                Ok(m) => self.message(m, Peer::udp(from)),
                Err(e) => {
                    inc(&self.metrics.sip_parse_errors);
                    debug!(%from, error = %e, "unparsable SIP datagram dropped");
                }
            },
            Input::Tcp { msg, from } => self.message(msg, Peer::tcp(from)),
            Input::TcpGarbage { from, error } => {
                debug!(%from, %error, "SIP TCP stream: bytes skipped");
            }
            Input::TcpOpened { addr, tx } => {
                self.tcp.insert(addr, tx);
            }
            Input::TcpClosed { addr, reason } => {
                self.tcp.remove(&addr);
                debug!(%addr, %reason, "SIP TCP connection closed");
                let now = Instant::now();
                let events = self.registry.connection_closed(addr, now);
                self.registry_events(events, crate::server::core::now());
            }
            Input::Media(report) => self.media_report(report),
        }
    }

    fn message(&mut self, msg: Message, peer: Peer) {
        if msg.is_request() {
            inc(&self.metrics.requests_in);
            let now = now();
            match self.txn.on_request(msg, peer, now.instant) {
                Ok(Incoming::Request {
                    key,
                    request,
                    cancels,
                }) => self.request(key, request, peer, cancels, now),
                Ok(Incoming::Ack { request }) => self.ack(request, peer, now),
                Ok(Incoming::Retransmission { resend }) => {
                    inc(&self.metrics.retransmissions_in);
                    if let Some(t) = resend {
                        self.transmit(t);
                    }
                }
                Ok(Incoming::Absorbed) => {}
                Err(e) => {
                    inc(&self.metrics.transaction_errors);
                    debug!(from = %peer, error = %e, "request dropped");
                }
            }
        } else {
            inc(&self.metrics.responses_in);
            self.response(msg, Instant::now());
        }
    }

    fn request(
        &mut self,
        key: ServerKey,
        req: Message,
        peer: Peer,
        cancels: Option<ServerKey>,
        now: Now,
    ) {
        if let Some(idx) = self.uplink_for(&req, peer) {
            self.upper_request(idx, key, req, peer, cancels, now);
            return;
        }
        match req.method() {
            Some(Method::Register | Method::Message) => self.device_request(key, req, peer, now),
            Some(Method::Notify) => self.notify(key, req, peer, now),
            Some(Method::Bye) => self.bye(key, req, peer, now),
            Some(Method::Options) => {
                let allow = (
                    HeaderName::Allow,
                    "REGISTER, MESSAGE, NOTIFY, INVITE, ACK, BYE, CANCEL, OPTIONS".to_owned(),
                );
                match self.simple_response(&req, peer, 200, &[allow]) {
                    Ok(r) => self.respond(&key, r, now.instant),
                    Err(e) => debug!(from = %peer, error = %e, "cannot answer OPTIONS"),
                }
            }
            Some(Method::Cancel) => self.reply(&key, &req, peer, 481, now.instant),
            Some(Method::Subscribe) => self.reply(&key, &req, peer, 489, now.instant),
            // Devices do not INVITE us (voice broadcast is not supported).
            Some(Method::Invite) => self.reply(&key, &req, peer, 488, now.instant),
            _ => {
                let allow = (
                    HeaderName::Allow,
                    "REGISTER, MESSAGE, NOTIFY, INVITE, ACK, BYE, CANCEL, OPTIONS".to_owned(),
                );
                match self.simple_response(&req, peer, 405, &[allow]) {
                    Ok(r) => self.respond(&key, r, now.instant),
                    Err(e) => debug!(from = %peer, error = %e, "cannot answer"),
                }
            }
        }
    }

    fn ack(&mut self, req: Message, peer: Peer, _now: Now) {
        // The only 2xx we send to INVITEs are to upper platforms, whose relay starts at once;
        // the ACK confirms nothing we wait for.
        debug!(from = %peer, call_id = ?req.call_id().ok(), "ACK");
    }

    fn response(&mut self, resp: Message, now: Instant) {
        match self.txn.on_response(resp, now) {
            Ok(ResponseOutcome::Deliver {
                key,
                response,
                send,
            }) => {
                if let Some(t) = send {
                    self.transmit(t);
                }
                let is_final = response.status().is_some_and(|c| c >= 200);
                let pending = if is_final {
                    self.pending.remove(&key)
                } else {
                    self.pending.get(&key).cloned()
                };
                if let Some(p) = pending {
                    self.dispatch_response(p, key, &response, now);
                }
            }
            Ok(ResponseOutcome::Retransmission { resend, .. }) => {
                if let Some(t) = resend {
                    self.transmit(t);
                }
            }
            Ok(ResponseOutcome::Stray { response }) => {
                // A 2xx to an INVITE whose transaction is over still needs its ACK/BYE.
                let ours = response.call_id().is_ok_and(|c| self.play.owns_call_id(&c));
                if ours {
                    if let Some(out) = self.play.on_response(&response, now) {
                        self.play_output(out, None, now);
                    }
                } else {
                    inc(&self.metrics.responses_stray);
                }
            }
            Err(e) => {
                inc(&self.metrics.transaction_errors);
                debug!(error = %e, "response dropped");
            }
        }
    }

    fn dispatch_response(&mut self, p: Pending, key: ClientKey, resp: &Message, now: Instant) {
        let code = resp.status().unwrap_or(0);
        match p {
            Pending::Query { device, cmd } => {
                if code >= 300 {
                    let why = format!("{cmd} query refused with {code}");
                    warn!(%device, %why, "query refused");
                    self.device_error(&device, why);
                }
            }
            Pending::Subscribe { .. } => {
                if let Some(out) = self.subs.on_response(resp, now) {
                    self.subscription_output(out, now);
                }
            }
            Pending::Play { .. } => {
                if let Some(out) = self.play.on_response(resp, now) {
                    self.play_output(out, Some(&key), now);
                }
            }
            Pending::Uplink { idx, .. } => self.uplink_response(idx, resp, now),
            Pending::UplinkMessage { idx } => {
                if code >= 300 {
                    let name = self
                        .uplinks
                        .get(idx)
                        .map(|u| u.name.clone())
                        .unwrap_or_default();
                    warn!(uplink = %name, code, "upper platform refused our MESSAGE");
                }
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        if self.txn.next_deadline().is_some_and(|d| d <= now) {
            for ev in self.txn.handle_timeout(now) {
                match ev {
                    TimerEvent::Transmit(t) => self.transmit(t),
                    TimerEvent::ClientTimeout { key, peer } => {
                        if let Some(p) = self.pending.remove(&key) {
                            self.client_timeout(p, peer, now);
                        }
                    }
                    TimerEvent::ServerTimeout { key, peer } => {
                        self.upper_invites.remove(&key);
                        debug!(%peer, "our final response was never acknowledged");
                    }
                }
            }
        }
        if self.registry.next_deadline().is_some_and(|d| d <= now) {
            let events = self.registry.handle_timeout(now);
            if !events.is_empty() {
                self.registry_events(events, crate::server::core::now());
            }
        }
        if self.assembler.next_deadline().is_some_and(|d| d <= now) {
            for ev in self.assembler.handle_timeout(now) {
                self.assembler_event(ev);
            }
        }
        if self.subs.next_deadline().is_some_and(|d| d <= now) {
            let out = self.subs.handle_timeout(now);
            self.subscription_output(out, now);
        }
        if self.play.next_deadline().is_some_and(|d| d <= now) {
            let out = self.play.handle_timeout(now);
            self.play_output(out, None, now);
        }
        self.catalog_timers(now);
        self.uplink_timers(now);
    }

    fn client_timeout(&mut self, p: Pending, peer: Peer, now: Instant) {
        match p {
            Pending::Query { device, cmd } => {
                if cmd != CmdType::Catalog {
                    inc(&self.metrics.query_timeouts);
                    let why = format!("{cmd} query to {peer} got no answer");
                    warn!(%device, %why, "query timed out");
                    self.device_error(&device, why);
                }
            }
            Pending::Subscribe { call_id } => {
                if let Some(out) = self.subs.on_timeout(&call_id, now) {
                    self.subscription_output(out, now);
                }
            }
            Pending::Play { call_id } => {
                if let Some(out) = self.play.on_transaction_timeout(&call_id, now) {
                    self.play_output(out, None, now);
                }
            }
            Pending::Uplink { idx, call_id } => self.uplink_timeout(idx, &call_id, now),
            Pending::UplinkMessage { idx } => {
                let name = self
                    .uplinks
                    .get(idx)
                    .map(|u| u.name.clone())
                    .unwrap_or_default();
                debug!(uplink = %name, "MESSAGE to the upper platform timed out");
            }
        }
    }

    pub(crate) fn device_error(&mut self, device: &GbId, why: String) {
        if let Some(d) = self.devices.get_mut(device) {
            d.last_error = Some(why);
        }
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        self.stop_uplinks(now);
        let keys: Vec<ChannelKey> = self.play.channels().copied().collect();
        for k in keys {
            let out = self.play.stop(&k, now);
            self.play_output_with_reason(out, None, now, "the server is shutting down");
        }
        for (_, mut slot) in self.media.drain() {
            if let Some(stop) = slot.stop.take() {
                let _ = stop.send("the server is shutting down".into());
            }
        }
        // Media tasks send their Interrupted before ending.
        for t in self.media_tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    }
}
