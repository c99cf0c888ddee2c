//! Simulated GB/T 28181 devices, sans-IO, built on `vigil_gb28181`'s own state machines: each
//! device registers and keeps alive with an [`UplinkClient`] (the device side of REGISTER +
//! digest + keepalive is the same as a lower platform's), answers queries with the MANSCDP
//! builders, answers catalog SUBSCRIBEs, and answers INVITEs with [`Answer`] SDP.
//!
//! A [`SimGroup`] drives many devices behind one SIP socket: one transaction layer, one timer
//! heap. Its output is [`Action`]s for the tokio driver: datagrams to send, media streams to
//! start and stop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vigil_gb28181::gbid::{DomainCode, GbId};
use vigil_gb28181::manscdp::build::{
    catalog_notify, catalog_response, device_info_response, device_status_response, BodyEncoding,
    PacketLimits,
};
use vigil_gb28181::manscdp::{parse_body, CatalogItem, CmdType, DeviceInfo, DeviceStatus, Payload};
use vigil_gb28181::registry::KeepalivePolicy;
use vigil_gb28181::sdp::{Answer, MediaTransport, Sdp};
use vigil_gb28181::sip::transaction::{
    ClientKey, Incoming, ResponseOutcome, ServerKey, TimerConfig, TimerEvent, TransactionLayer,
};
use vigil_gb28181::sip::{
    GbVersion, Header, HeaderName, Message, Method, OutgoingRequest, Peer, ResponseBuilder,
    Transmit,
};
use vigil_gb28181::token::TokenGen;
use vigil_gb28181::uas::PendingInvites;
use vigil_gb28181::uplink::{UplinkClient, UplinkConfig, UplinkEvent, UplinkOutput};

/// How a simulated device answers INVITEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InviteBehavior {
    /// 100 Trying, then 200 OK with an SDP answer; media after the ACK.
    #[default]
    Answer,
    /// Never answers (not even 100 Trying).
    Ignore,
    /// Answers with this final status.
    Reject(u16),
}

/// A fault in the media a simulated device sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaFault {
    /// Good media.
    #[default]
    None,
    /// RTP with an SSRC other than the negotiated one.
    WrongSsrc,
    /// RTP whose payload is random bytes instead of PS.
    GarbagePayload,
    /// Good media that stops (socket kept) after this long.
    StopAfter(Duration),
    /// Good PS whose every other frame starts with a broken start code (`00 00 02 BA`
    /// instead of the pack header's `00 00 01 BA`): the receiver must resynchronise on the
    /// next pack header and keep the frames in between.
    BrokenStartCodes,
}

/// Settings shared by every device of a group.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The server's SIP ID.
    pub server_id: GbId,
    /// The SIP domain.
    pub domain: DomainCode,
    /// The server's SIP address.
    pub server: Peer,
    /// Our SIP address (Via, Contact).
    pub local: SocketAddr,
    /// Our media address for SDP answers (UDP: the port media is sent from).
    pub media_ip: IpAddr,
    /// The UDP port media is sent from.
    pub media_udp_port: u16,
    /// Registration lifetime requested.
    pub register_expires: u32,
    /// Keepalive interval.
    pub keepalive_interval: Duration,
    /// Wait before re-registering after a failure.
    pub retry_interval: Duration,
    /// Catalog items per MESSAGE.
    pub catalog_items_per_packet: usize,
    /// Added to the announced `SumNum` (a lying device); 0 for honest devices.
    pub sum_num_offset: i64,
    /// GB edition announced in `X-GB-Ver`.
    pub version: GbVersion,
    /// INVITE behaviour.
    pub invite: InviteBehavior,
    /// Accept catalog SUBSCRIBEs (else 489).
    pub subscribe: bool,
    /// User-Agent.
    pub user_agent: String,
    /// SIP timer T1.
    pub t1: Duration,
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Device ID (IPC 132 or NVR 118 ...).
    pub id: GbId,
    /// Password.
    pub password: String,
    /// Catalog items (channels, and for NVRs/platforms any groups).
    pub channels: Vec<CatalogItem>,
    /// Port of this device's TCP media listener (for INVITEs that want the device to listen).
    pub media_tcp_port: Option<u16>,
}

/// Counters of a simulator (shared by its groups).
#[derive(Debug, Default)]
pub struct SimStats {
    /// Devices registered now.
    pub registered: AtomicU64,
    /// Registrations that failed (refused, timed out).
    pub register_failures: AtomicU64,
    /// Keepalive and other requests sent.
    pub requests_sent: AtomicU64,
    /// Catalog queries answered.
    pub catalog_queries: AtomicU64,
    /// Catalog MESSAGEs sent.
    pub catalog_packets: AtomicU64,
    /// INVITEs received.
    pub invites: AtomicU64,
    /// Media streams running.
    pub streams: AtomicU64,
    /// RTP packets sent.
    pub rtp_packets: AtomicU64,
    /// Catalog SUBSCRIBEs accepted.
    pub subscriptions: AtomicU64,
}

/// A copy of [`SimStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStatsSnapshot {
    /// Devices registered now.
    pub registered: u64,
    /// Failed registrations.
    pub register_failures: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Catalog queries answered.
    pub catalog_queries: u64,
    /// Catalog MESSAGEs sent.
    pub catalog_packets: u64,
    /// INVITEs received.
    pub invites: u64,
    /// Media streams running.
    pub streams: u64,
    /// RTP packets sent.
    pub rtp_packets: u64,
    /// Catalog SUBSCRIBEs accepted.
    pub subscriptions: u64,
}

impl SimStats {
    /// Copies the counters.
    pub fn snapshot(&self) -> SimStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStatsSnapshot {
            registered: l(&self.registered),
            register_failures: l(&self.register_failures),
            requests_sent: l(&self.requests_sent),
            catalog_queries: l(&self.catalog_queries),
            catalog_packets: l(&self.catalog_packets),
            invites: l(&self.invites),
            streams: l(&self.streams),
            rtp_packets: l(&self.rtp_packets),
            subscriptions: l(&self.subscriptions),
        }
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// How a media stream is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDest {
    /// RTP over UDP to this address.
    Udp(SocketAddr),
    /// RTP over TCP (RFC 4571), we connect to this address.
    TcpConnect(SocketAddr),
    /// RTP over TCP (RFC 4571), the server connects to the device's listener on this port.
    TcpAccept(u16),
}

/// A media stream to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaJob {
    /// The session's Call-ID (to stop it).
    pub call_id: String,
    /// Device index in the group.
    pub device: usize,
    /// Channel.
    pub channel: GbId,
    /// SSRC to send with.
    pub ssrc: u32,
    /// Where to.
    pub dest: MediaDest,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send bytes.
    Send(Transmit),
    /// Start streaming.
    StartMedia(MediaJob),
    /// Stop the stream of this call.
    StopMedia(String),
}

#[derive(Debug)]
struct Session {
    job: MediaJob,
}

#[derive(Debug)]
struct SubDialog {
    call_id: String,
    /// The server's From value (our To in NOTIFYs).
    remote: Bytes,
    /// Our tag.
    local_tag: String,
    /// Where NOTIFYs go (the SUBSCRIBE's Contact).
    target: String,
    cseq: u32,
    expires_at: Instant,
}

#[derive(Debug)]
struct SimDevice {
    spec: DeviceSpec,
    client: UplinkClient,
    up: bool,
    armed: Option<Instant>,
    sessions: HashMap<String, Session>,
    subscription: Option<SubDialog>,
    cseq: u32,
}

/// What a client transaction of the group is for.
#[derive(Debug, Clone)]
enum Purpose {
    /// Registration / keepalive of a device (the UplinkClient's requests), with its Call-ID.
    Client(usize, String),
    /// Anything else (catalog packets, answers, NOTIFYs).
    Other,
}

/// Many devices behind one SIP socket. See the module documentation.
#[derive(Debug)]
pub struct SimGroup {
    cfg: GroupConfig,
    devices: Vec<SimDevice>,
    /// Device and channel IDs → device index.
    index: HashMap<String, usize>,
    txn: TransactionLayer,
    tokens: TokenGen,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    pending: HashMap<ClientKey, Purpose>,
    invites: PendingInvites,
    stats: Arc<SimStats>,
}

impl SimGroup {
    /// A group of devices (not started).
    pub fn new(
        cfg: GroupConfig,
        specs: Vec<DeviceSpec>,
        seed: [u8; 32],
        stats: Arc<SimStats>,
    ) -> Self {
        let mut tokens = TokenGen::new(seed);
        let mut index = HashMap::new();
        let devices = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                index.insert(spec.id.to_string(), i);
                for c in &spec.channels {
                    index.entry(c.device_id.clone()).or_insert(i);
                }
                let mut ucfg = UplinkConfig::new(
                    spec.id,
                    cfg.domain,
                    cfg.server_id,
                    cfg.domain,
                    cfg.server,
                    cfg.local,
                    spec.password.clone(),
                );
                ucfg.expires = cfg.register_expires;
                ucfg.keepalive = KeepalivePolicy {
                    interval: cfg.keepalive_interval,
                    max_missed: 3,
                };
                ucfg.retry_interval = cfg.retry_interval;
                ucfg.user_agent = cfg.user_agent.clone();
                ucfg.version = cfg.version;
                let seed = tokens.next_bytes();
                SimDevice {
                    spec,
                    client: UplinkClient::new(ucfg, seed),
                    up: false,
                    armed: None,
                    sessions: HashMap::new(),
                    subscription: None,
                    cseq: 0,
                }
            })
            .collect();
        SimGroup {
            txn: TransactionLayer::new(TimerConfig {
                t1: cfg.t1,
                ..TimerConfig::default()
            }),
            cfg,
            devices,
            index,
            tokens,
            heap: BinaryHeap::new(),
            pending: HashMap::new(),
            invites: PendingInvites::new(),
            stats,
        }
    }

    /// Devices in the group.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the group has no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Device `i`'s ID.
    pub fn device_id(&self, i: usize) -> Option<GbId> {
        self.devices.get(i).map(|d| d.spec.id)
    }

    /// Whether device `i` is registered.
    pub fn is_up(&self, i: usize) -> bool {
        self.devices.get(i).is_some_and(|d| d.up)
    }

    /// Starts device `i` (first REGISTER).
    pub fn start_device(&mut self, i: usize, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(d) = self.devices.get_mut(i) {
            let o = d.client.start(now);
            self.client_output(i, o, now, &mut out);
        }
        out
    }

    /// Unregisters device `i` (`Expires: 0`).
    pub fn stop_device(&mut self, i: usize, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(d) = self.devices.get_mut(i) {
            let o = d.client.stop(now);
            self.client_output(i, o, now, &mut out);
        }
        out
    }

    fn rearm(&mut self, i: usize) {
        let d = &mut self.devices[i];
        let next = d.client.next_deadline();
        if next != d.armed {
            d.armed = next;
            if let Some(t) = next {
                self.heap.push(Reverse((t, i)));
            }
        }
    }

    fn client_output(&mut self, i: usize, o: UplinkOutput, now: Instant, out: &mut Vec<Action>) {
        for msg in o.send {
            let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
            self.send(msg, Purpose::Client(i, call_id), now, out);
        }
        for ev in o.events {
            let d = &mut self.devices[i];
            match ev {
                UplinkEvent::Up { .. } => {
                    if !d.up {
                        d.up = true;
                        inc(&self.stats.registered);
                    }
                }
                UplinkEvent::Down { .. } => {
                    if d.up {
                        d.up = false;
                        self.stats.registered.fetch_sub(1, Ordering::Relaxed);
                    }
                    inc(&self.stats.register_failures);
                }
            }
        }
        self.rearm(i);
    }

    fn send(&mut self, msg: Message, purpose: Purpose, now: Instant, out: &mut Vec<Action>) {
        if let Ok((key, t)) = self.txn.send_request(msg, self.cfg.server, now) {
            inc(&self.stats.requests_sent);
            self.pending.insert(key, purpose);
            out.push(Action::Send(t));
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.txn.next_deadline(),
            self.heap.peek().map(|Reverse((t, _))| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for ev in self.txn.handle_timeout(now) {
            match ev {
                TimerEvent::Transmit(t) => out.push(Action::Send(t)),
                TimerEvent::ClientTimeout { key, .. } => {
                    if let Some(Purpose::Client(i, call_id)) = self.pending.remove(&key) {
                        let o = self.devices[i].client.on_timeout(&call_id, now);
                        self.client_output(i, o, now, &mut out);
                    }
                }
                TimerEvent::ServerTimeout { key, .. } => {
                    self.invites.remove(&key);
                }
            }
        }
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, i))) = self.heap.pop() else {
                break;
            };
            if self.devices[i].armed != Some(t) {
                continue;
            }
            self.devices[i].armed = None;
            let o = self.devices[i].client.handle_timeout(now);
            self.client_output(i, o, now, &mut out);
            self.expire_subscription(i, now);
        }
        out
    }

    fn expire_subscription(&mut self, i: usize, now: Instant) {
        let d = &mut self.devices[i];
        if d.subscription.as_ref().is_some_and(|s| s.expires_at <= now) {
            d.subscription = None;
        }
    }

    /// A SIP message from the server.
    pub fn on_message(&mut self, msg: Message, from: Peer, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if msg.is_request() {
            match self.txn.on_request(msg, from, now) {
                Ok(Incoming::Request {
                    key,
                    request,
                    cancels,
                }) => self.request(key, request, from, cancels, now, &mut out),
                Ok(Incoming::Ack { request }) => self.ack(&request, &mut out),
                Ok(Incoming::Retransmission { resend }) => {
                    if let Some(t) = resend {
                        out.push(Action::Send(t));
                    }
                }
                Ok(Incoming::Absorbed) | Err(_) => {}
            }
        } else {
            match self.txn.on_response(msg, now) {
                Ok(ResponseOutcome::Deliver {
                    key,
                    response,
                    send,
                }) => {
                    if let Some(t) = send {
                        out.push(Action::Send(t));
                    }
                    let purpose = if response.status().is_some_and(|c| c >= 200) {
                        self.pending.remove(&key)
                    } else {
                        self.pending.get(&key).cloned()
                    };
                    if let Some(Purpose::Client(i, _)) = purpose {
                        if let Some(o) = self.devices[i].client.on_response(&response, now) {
                            self.client_output(i, o, now, &mut out);
                        }
                    }
                }
                Ok(ResponseOutcome::Retransmission { resend, .. }) => {
                    if let Some(t) = resend {
                        out.push(Action::Send(t));
                    }
                }
                Ok(ResponseOutcome::Stray { .. }) | Err(_) => {}
            }
        }
        out
    }

    fn device_of(&self, req: &Message) -> Option<usize> {
        let user = req.request_uri()?.ok()?.user?;
        self.index.get(&user).copied()
    }

    fn respond(&mut self, key: &ServerKey, resp: Message, now: Instant, out: &mut Vec<Action>) {
        if let Ok(t) = self.txn.respond(key, resp, now) {
            out.push(Action::Send(t));
        }
    }

    fn simple(&mut self, req: &Message, from: Peer, code: u16) -> Option<Message> {
        let tag = self.tokens.tag();
        ResponseBuilder::new(req, code)
            .source(from.addr)
            .to_tag(&tag)
            .header(HeaderName::UserAgent, self.cfg.user_agent.clone())
            .build()
            .ok()
    }

    fn request(
        &mut self,
        key: ServerKey,
        req: Message,
        from: Peer,
        cancels: Option<ServerKey>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(i) = self.device_of(&req) else {
            if let Some(r) = self.simple(&req, from, 404) {
                self.respond(&key, r, now, out);
            }
            return;
        };
        match req.method() {
            Some(Method::Message) => self.message(i, key, &req, from, now, out),
            Some(Method::Subscribe) => self.subscribe(i, key, &req, from, now, out),
            Some(Method::Invite) => self.invite(i, key, &req, from, now, out),
            Some(Method::Bye) => {
                let call_id = req.call_id().map(|c| c.into_owned()).unwrap_or_default();
                let known = self.devices[i].sessions.remove(&call_id).is_some();
                if known {
                    out.push(Action::StopMedia(call_id));
                }
                if let Some(r) = self.simple(&req, from, if known { 200 } else { 481 }) {
                    self.respond(&key, r, now, out);
                }
            }
            Some(Method::Cancel) => {
                let c = self.invites.on_cancel(&req, cancels.as_ref(), from.addr);
                if let Ok(r) = c.cancel_response {
                    self.respond(&key, r, now, out);
                }
                if let Some((ik, Ok(r))) = c.invite_response {
                    self.respond(&ik, r, now, out);
                }
            }
            _ => {
                if let Some(r) = self.simple(&req, from, 405) {
                    self.respond(&key, r, now, out);
                }
            }
        }
    }

    /// A MESSAGE of ours to the server from device `i`.
    fn device_message(&mut self, i: usize, body: Bytes, now: Instant, out: &mut Vec<Action>) {
        let d = &mut self.devices[i];
        d.cseq = d.cseq.wrapping_add(1).max(1);
        let id = d.spec.id.to_string();
        let server = self.cfg.server_id.to_string();
        let domain = self.cfg.domain.to_string();
        let msg = OutgoingRequest {
            method: Method::Message,
            from_user: &id,
            domain: &domain,
            to_user: &server,
            target: self.cfg.server,
            local: self.cfg.local,
            cseq: d.cseq,
            call_id: None,
            body: Some(("Application/MANSCDP+xml", body)),
            user_agent: &self.cfg.user_agent,
            extra_headers: Vec::new(),
        }
        .build(&mut self.tokens);
        self.send(msg, Purpose::Other, now, out);
    }

    fn message(
        &mut self,
        i: usize,
        key: ServerKey,
        req: &Message,
        from: Peer,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let id = self.devices[i].spec.id;
        let doc = match parse_body(&req.body, None) {
            Ok(d) => d,
            Err(_) => {
                if let Some(r) = self.simple(req, from, 400) {
                    self.respond(&key, r, now, out);
                }
                return;
            }
        };
        if let Some(r) = self.simple(req, from, 200) {
            self.respond(&key, r, now, out);
        }
        let sn = doc.sn.unwrap_or(0);
        let Payload::Query(_) = doc.payload else {
            return;
        };
        match doc.cmd_type {
            CmdType::Catalog => {
                inc(&self.stats.catalog_queries);
                let limits = PacketLimits {
                    max_items: self.cfg.catalog_items_per_packet.max(1),
                    max_body_bytes: if self.cfg.server.transport.is_reliable() {
                        60_000
                    } else {
                        1200
                    },
                };
                let mut packets = catalog_response(
                    id.as_str(),
                    sn,
                    &self.devices[i].spec.channels,
                    limits,
                    BodyEncoding::Gb2312,
                );
                if self.cfg.sum_num_offset != 0 {
                    let n = self.devices[i].spec.channels.len() as i64;
                    let from = format!("<SumNum>{n}</SumNum>");
                    let to = format!("<SumNum>{}</SumNum>", (n + self.cfg.sum_num_offset).max(0));
                    packets = packets
                        .into_iter()
                        .map(|p| Bytes::from(replace_bytes(&p, from.as_bytes(), to.as_bytes())))
                        .collect();
                }
                for p in packets {
                    inc(&self.stats.catalog_packets);
                    self.device_message(i, p, now, out);
                }
            }
            CmdType::DeviceInfo => {
                let info = DeviceInfo {
                    device_name: Some(format!("sim {id}")),
                    result: Some("OK".into()),
                    device_type: Some("IPC".into()),
                    manufacturer: Some("vigil-sim".into()),
                    model: Some("GB-SIM-1".into()),
                    firmware: Some(env!("CARGO_PKG_VERSION").into()),
                    max_camera: u32::try_from(self.devices[i].spec.channels.len()).ok(),
                    max_alarm: Some(0),
                    channel: u32::try_from(self.devices[i].spec.channels.len()).ok(),
                };
                let body = device_info_response(sn, id.as_str(), &info, BodyEncoding::Gb2312);
                self.device_message(i, body, now, out);
            }
            CmdType::DeviceStatus => {
                let st = DeviceStatus {
                    result: Some("OK".into()),
                    online: Some(true),
                    status: Some("OK".into()),
                    encode: Some("ON".into()),
                    record: Some("OFF".into()),
                    ..DeviceStatus::default()
                };
                let body = device_status_response(sn, id.as_str(), &st, BodyEncoding::Gb2312);
                self.device_message(i, body, now, out);
            }
            _ => {}
        }
    }

    fn subscribe(
        &mut self,
        i: usize,
        key: ServerKey,
        req: &Message,
        from: Peer,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let event_ok = req
            .header_str(&HeaderName::Event)
            .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("catalog"));
        if !self.cfg.subscribe || !event_ok {
            if let Some(r) = self.simple(req, from, 489) {
                self.respond(&key, r, now, out);
            }
            return;
        }
        let expires = req.expires().ok().flatten().unwrap_or(3600);
        let call_id = req.call_id().map(|c| c.into_owned()).unwrap_or_default();
        // In-dialog refresh keeps our tag; a new subscription gets one.
        let existing_tag = self.devices[i]
            .subscription
            .as_ref()
            .filter(|s| s.call_id == call_id)
            .map(|s| s.local_tag.clone());
        let tag = existing_tag.unwrap_or_else(|| self.tokens.tag());
        let contact = format!("<sip:{}@{}>", self.devices[i].spec.id, self.cfg.local);
        let Ok(resp) = ResponseBuilder::new(req, 200)
            .source(from.addr)
            .to_tag(&tag)
            .header(HeaderName::Expires, expires.to_string())
            .header(HeaderName::Contact, contact)
            .header(HeaderName::UserAgent, self.cfg.user_agent.clone())
            .build()
        else {
            return;
        };
        self.respond(&key, resp, now, out);
        if expires == 0 {
            self.devices[i].subscription = None;
            return;
        }
        let target = req
            .contact()
            .ok()
            .flatten()
            .map(|c| c.uri.to_string())
            .unwrap_or_else(|| format!("sip:{}@{}", self.cfg.server_id, self.cfg.server.addr));
        let remote = req
            .header(&HeaderName::From)
            .map(|h| h.value.clone())
            .unwrap_or_default();
        let new = self.devices[i]
            .subscription
            .as_ref()
            .is_none_or(|s| s.call_id != call_id);
        let cseq = self.devices[i].subscription.as_ref().map_or(0, |s| s.cseq);
        self.devices[i].subscription = Some(SubDialog {
            call_id,
            remote,
            local_tag: tag,
            target,
            cseq,
            expires_at: now + Duration::from_secs(u64::from(expires)),
        });
        if new {
            inc(&self.stats.subscriptions);
        }
    }

    /// Pushes catalog changes of device `i` (items carry their `<Event>`): as NOTIFYs on the
    /// catalog subscription when there is one, else as MESSAGE `<Notify>`s.
    pub fn notify_catalog(&mut self, i: usize, items: &[CatalogItem], now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(d) = self.devices.get(i) else {
            return out;
        };
        let id = d.spec.id;
        let sn = self.tokens.next_u64() % 1_000_000;
        let packets = catalog_notify(
            id.as_str(),
            sn,
            items,
            PacketLimits {
                max_items: self.cfg.catalog_items_per_packet.max(1),
                max_body_bytes: 1200,
            },
            BodyEncoding::Gb2312,
        );
        for body in packets {
            let has_sub = self.devices[i]
                .subscription
                .as_ref()
                .is_some_and(|s| s.expires_at > now);
            if has_sub {
                let branch = self.tokens.branch();
                let local = self.cfg.local;
                let transport = self.cfg.server.transport;
                let ua = self.cfg.user_agent.clone();
                let domain = self.cfg.domain;
                let Some(s) = self.devices[i].subscription.as_mut() else {
                    continue;
                };
                s.cseq += 1;
                let remaining = s.expires_at.saturating_duration_since(now).as_secs();
                let mut m = Message::request(Method::Notify, &s.target);
                m.push_header(
                    HeaderName::Via,
                    format!(
                        "SIP/2.0/{} {local};rport;branch={branch}",
                        transport.as_str()
                    ),
                );
                m.push_header(
                    HeaderName::From,
                    format!("<sip:{id}@{domain}>;tag={}", s.local_tag),
                );
                m.headers.push(Header {
                    name: HeaderName::To,
                    value: s.remote.clone(),
                });
                m.push_header(HeaderName::CallId, s.call_id.clone());
                m.push_header(HeaderName::CSeq, format!("{} NOTIFY", s.cseq));
                m.push_header(HeaderName::Contact, format!("<sip:{id}@{local}>"));
                m.push_header(HeaderName::MaxForwards, "70");
                m.push_header(HeaderName::UserAgent, ua);
                m.push_header(HeaderName::Event, "Catalog");
                m.push_header(
                    HeaderName::SubscriptionState,
                    format!("active;expires={remaining}"),
                );
                let m = m.with_body("Application/MANSCDP+xml", body);
                self.send(m, Purpose::Other, now, &mut out);
            } else {
                self.device_message(i, body, now, &mut out);
            }
        }
        out
    }

    fn invite(
        &mut self,
        i: usize,
        key: ServerKey,
        req: &Message,
        from: Peer,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        inc(&self.stats.invites);
        match self.cfg.invite {
            InviteBehavior::Ignore => return,
            InviteBehavior::Reject(code) => {
                if let Some(r) = self.simple(req, from, code.max(300)) {
                    self.respond(&key, r, now, out);
                }
                return;
            }
            InviteBehavior::Answer => {}
        }
        let tag = self.tokens.tag();
        if let Ok(trying) = self.invites.on_invite(key.clone(), req, from.addr, tag) {
            self.respond(&key, trying, now, out);
        }
        let channel = req
            .request_uri()
            .and_then(|u| u.ok())
            .and_then(|u| u.user)
            .and_then(|u| GbId::parse(&u).ok());
        let offer = Sdp::parse(&req.body).ok();
        let (Some(channel), Some(offer)) = (channel, offer) else {
            if let Some(Ok(r)) = self
                .invites
                .answer(&key, 400, None, None, &self.cfg.user_agent)
            {
                self.respond(&key, r, now, out);
            }
            return;
        };
        let Some(ours) = offer.media_transport().map(MediaTransport::counterpart) else {
            if let Some(Ok(r)) = self
                .invites
                .answer(&key, 488, None, None, &self.cfg.user_agent)
            {
                self.respond(&key, r, now, out);
            }
            return;
        };
        let dest_addr = match (offer.media_ip(), offer.video()) {
            (Some(ip), Some(v)) => Some(SocketAddr::new(ip, v.port)),
            _ => None,
        };
        let (port, dest) = match ours {
            MediaTransport::Udp => (self.cfg.media_udp_port, dest_addr.map(MediaDest::Udp)),
            MediaTransport::TcpActive => (9, dest_addr.map(MediaDest::TcpConnect)),
            MediaTransport::TcpPassive => match self.devices[i].spec.media_tcp_port {
                Some(p) => (p, Some(MediaDest::TcpAccept(p))),
                None => (0, None),
            },
        };
        let answer = Answer::for_offer(&offer, channel.as_str(), self.cfg.media_ip, port);
        let (Some(dest), Some(answer)) = (dest, answer) else {
            if let Some(Ok(r)) = self
                .invites
                .answer(&key, 488, None, None, &self.cfg.user_agent)
            {
                self.respond(&key, r, now, out);
            }
            return;
        };
        let call_id = req.call_id().map(|c| c.into_owned()).unwrap_or_default();
        let contact = format!("<sip:{channel}@{}>", self.cfg.local);
        let body = Bytes::from(answer.to_sdp().to_text());
        if let Some(Ok(r)) = self.invites.answer(
            &key,
            200,
            Some(("application/sdp", body)),
            Some(contact),
            &self.cfg.user_agent,
        ) {
            self.respond(&key, r, now, out);
        }
        self.devices[i].sessions.insert(
            call_id.clone(),
            Session {
                job: MediaJob {
                    call_id,
                    device: i,
                    channel,
                    ssrc: answer.ssrc.rtp(),
                    dest,
                },
            },
        );
    }

    fn ack(&mut self, req: &Message, out: &mut Vec<Action>) {
        let Some(i) = self.device_of(req) else {
            return;
        };
        let call_id = req.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if let Some(s) = self.devices[i].sessions.get(&call_id) {
            out.push(Action::StartMedia(s.job.clone()));
        }
    }
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match hay.windows(from.len()).position(|w| w == from) {
        Some(p) => {
            let mut v = hay[..p].to_vec();
            v.extend_from_slice(to);
            v.extend_from_slice(&hay[p + from.len()..]);
            v
        }
        None => hay.to_vec(),
    }
}
