//! Device registration and liveness, sans-IO.
//!
//! Inputs:
//! - [`Registry::handle_request`] for every request a device sends (after the transaction
//!   layer): REGISTER and MESSAGE are handled here; anything else comes back untouched.
//! - [`Registry::transport_lost`] / [`Registry::connection_closed`] when a TCP connection drops.
//! - [`Registry::handle_timeout`] at [`Registry::next_deadline`].
//!
//! Outputs ([`RequestOutcome`] and `Vec<RegistryEvent>`): the response to send through the
//! transaction layer, status events for the history (registered, online, offline with a reason,
//! authentication failures, bans), what to do next (query DeviceInfo/Catalog of a device), and
//! the parsed MANSCDP body of MESSAGEs the registry does not consume itself (catalog responses,
//! alarms...), so the server never parses a body twice.
//!
//! Liveness rules: a device is online from a successful REGISTER until it unregisters
//! (`Expires: 0`), its registration expires (plus a grace period), no Keepalive arrives for
//! `interval × max_missed` (defaults 60 s × 3, configurable globally and per device), or its TCP
//! connection drops. A Keepalive after a keepalive timeout brings it back online without a new
//! REGISTER (the registration is still valid). Keepalives are accepted only from the IP address
//! the device registered from: they are not authenticated, so a third party must not be able to
//! keep a dead device "online".

mod liveness;
mod register;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::digest::{
    Algorithm, AuthFailure, AuthPolicy, BanPolicy, DigestServer, FailureTracker, PasswordBook,
};
use crate::gbid::{DomainCode, GbId};
use crate::manscdp::{CmdType, Manscdp, ManscdpError};
use crate::quirks::QuirkSet;
use crate::sip::{GbVersion, Message, Method, OutgoingRequest, Peer};
use crate::time::Now;
use crate::token::{hmac_sha256, TokenGen};

/// Keepalive expectations for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepalivePolicy {
    /// Expected interval. Default 60 s (GB/T 28181 default).
    pub interval: Duration,
    /// Missed keepalives before the device is offline. Default 3.
    pub max_missed: u32,
}

impl Default for KeepalivePolicy {
    fn default() -> Self {
        KeepalivePolicy {
            interval: Duration::from_secs(60),
            max_missed: 3,
        }
    }
}

impl KeepalivePolicy {
    fn timeout(&self) -> Duration {
        self.interval.saturating_mul(self.max_missed.max(1))
    }
}

/// Registry settings.
#[derive(Clone)]
pub struct RegistryConfig {
    /// Our SIP server ID.
    pub server_id: GbId,
    /// Our SIP domain; the digest realm unless `realm` is set.
    pub domain: DomainCode,
    /// Digest realm, when it is not the domain (GB/T 28181 uses the 10-digit domain).
    pub realm: Option<String>,
    /// Password for devices without their own. `None`: only devices with a password may
    /// register.
    pub default_password: Option<String>,
    /// Require digest authentication. Default true.
    pub require_auth: bool,
    /// Challenge policy.
    pub auth: AuthPolicy,
    /// Failure bans.
    pub ban: BanPolicy,
    /// Default keepalive expectations.
    pub keepalive: KeepalivePolicy,
    /// Registration lifetime when the device asks for none. Default 3600 s.
    pub default_expires: u32,
    /// Shorter requests are raised to this (answered in the 200 OK). Default 60 s.
    pub min_expires: u32,
    /// Longer requests are lowered to this. Default 86 400 s (GB/T 28181 default).
    pub max_expires: u32,
    /// Grace after the registration lifetime before the device counts as expired (devices
    /// refresh at the last moment). Default 30 s.
    pub expiry_grace: Duration,
    /// Local time offset for the `Date` header (China: +480). Default 480.
    pub date_utc_offset_minutes: i32,
    /// Our User-Agent.
    pub user_agent: String,
    /// The newest GB edition we speak (answered in `X-GB-Ver`).
    pub our_version: GbVersion,
    /// Registered devices at most; beyond it new devices get 503.
    pub max_devices: usize,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("RegistryConfig")
            .field("server_id", &self.server_id)
            .field("domain", &self.domain)
            .field("realm", &self.realm)
            .field("has_default_password", &self.default_password.is_some())
            .field("require_auth", &self.require_auth)
            .field("auth", &self.auth)
            .field("ban", &self.ban)
            .field("keepalive", &self.keepalive)
            .field("default_expires", &self.default_expires)
            .field("min_expires", &self.min_expires)
            .field("max_expires", &self.max_expires)
            .field("expiry_grace", &self.expiry_grace)
            .field("date_utc_offset_minutes", &self.date_utc_offset_minutes)
            .field("user_agent", &self.user_agent)
            .field("our_version", &self.our_version)
            .field("max_devices", &self.max_devices)
            .finish()
    }
}

impl RegistryConfig {
    /// Defaults for a server ID and domain.
    pub fn new(server_id: GbId, domain: DomainCode) -> Self {
        RegistryConfig {
            server_id,
            domain,
            realm: None,
            default_password: None,
            require_auth: true,
            auth: AuthPolicy::default(),
            ban: BanPolicy::default(),
            keepalive: KeepalivePolicy::default(),
            default_expires: 3600,
            min_expires: 60,
            max_expires: 86_400,
            expiry_grace: Duration::from_secs(30),
            date_utc_offset_minutes: 480,
            user_agent: "vigil".into(),
            our_version: GbVersion::V2022,
            max_devices: 200_000,
        }
    }
}

/// Why a device went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    /// REGISTER with `Expires: 0`.
    Unregistered,
    /// The registration was not refreshed in time.
    Expired,
    /// No keepalive for `interval × max_missed`.
    KeepaliveTimeout,
    /// Its TCP connection dropped.
    TransportLost,
}

/// What the registry reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryEvent {
    /// A device registered: first time, after expiry/unregister, from a new address, or with a
    /// new Call-ID (it rebooted). Refreshes of a live registration produce no event.
    DeviceRegistered {
        /// Device.
        id: GbId,
        /// Source address.
        addr: SocketAddr,
        /// Transport.
        transport: crate::sip::Transport,
        /// Edition (`X-GB-Ver`; 2016 when absent or unknown).
        version: GbVersion,
        /// Raw `X-GB-Ver`, if sent.
        x_gb_ver: Option<String>,
        /// User-Agent, if sent.
        user_agent: Option<String>,
        /// Granted registration lifetime.
        expires: Duration,
        /// Digest algorithm used (`None` when authentication is off).
        algorithm: Option<Algorithm>,
    },
    /// The device is online.
    DeviceOnline {
        /// Device.
        id: GbId,
    },
    /// The device is offline.
    DeviceOffline {
        /// Device.
        id: GbId,
        /// Why.
        reason: OfflineReason,
    },
    /// A REGISTER failed authentication (counted towards a ban).
    AuthFailed {
        /// Source.
        source: SocketAddr,
        /// The device it claimed to be, if the From user was a GB ID.
        device: Option<GbId>,
        /// Why.
        reason: AuthFailure,
        /// Failures from this source in the current window.
        failures: u32,
    },
    /// A source is ignored until `until` after too many failures.
    SourceBanned {
        /// The IP.
        source: IpAddr,
        /// End of the ban.
        until: Instant,
        /// Failures that triggered it.
        failures: u32,
    },
    /// Next step: query the device's DeviceInfo (after it came online).
    QueryDeviceInfo {
        /// Device.
        id: GbId,
        /// Where to send.
        peer: Peer,
    },
    /// Next step: query the device's Catalog (after it came online).
    QueryCatalog {
        /// Device.
        id: GbId,
        /// Where to send.
        peer: Peer,
    },
    /// A device needed quirks it had not needed before (log once per device and quirk).
    QuirksSeen {
        /// Device.
        id: GbId,
        /// The newly seen quirks.
        quirks: QuirkSet,
    },
}

/// Why a request was refused or ignored (for debug logging; not status history).
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// The source is banned; no response is sent.
    Banned {
        /// End of the ban.
        until: Instant,
    },
    /// The device is not registered (403).
    NotRegistered,
    /// A keepalive or MESSAGE from an address other than the registered one (403).
    SourceMismatch {
        /// Where the device registered from.
        registered: SocketAddr,
    },
    /// The request is malformed (400): names the problem.
    BadRequest(String),
    /// The MESSAGE body did not parse (400).
    BadBody(ManscdpError),
    /// Too many devices (503).
    Full,
}

/// Result of [`Registry::handle_request`].
#[derive(Debug, Clone, Default)]
pub struct RequestOutcome {
    /// The response to send (through the transaction layer); `None` for requests the
    /// registry does not handle, and for banned sources.
    pub response: Option<Message>,
    /// Events.
    pub events: Vec<RegistryEvent>,
    /// The sender, when identified.
    pub device: Option<GbId>,
    /// A parsed MANSCDP body the registry did not consume (catalog response, alarm, ...) from
    /// a registered device: route it on.
    pub manscdp: Option<Manscdp>,
    /// Why the request was refused, if it was.
    pub rejection: Option<Rejection>,
    /// True when the request is not REGISTER or MESSAGE: the caller must handle it.
    pub not_handled: bool,
}

/// A registered device as the registry sees it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// Device ID.
    pub id: GbId,
    /// Where it registered from (and where requests to it go).
    pub peer: Peer,
    /// Contact it registered.
    pub contact: Option<String>,
    /// Edition.
    pub version: GbVersion,
    /// Raw `X-GB-Ver`.
    pub x_gb_ver: Option<String>,
    /// User-Agent.
    pub user_agent: Option<String>,
    /// Call-ID of its registration.
    pub call_id: String,
    /// When it first registered in this registration.
    pub registered_at: Instant,
    /// When the registration lapses (before grace).
    pub expires_at: Instant,
    /// Last REGISTER or keepalive.
    pub last_seen: Instant,
    /// Online now.
    pub online: bool,
    /// Digest algorithm of the last authentication.
    pub algorithm: Option<Algorithm>,
    /// Quirks seen from this device so far.
    pub quirks: QuirkSet,
    heap_at: Option<Instant>,
}

/// The registry. See the module documentation.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    digest: DigestServer,
    failures: FailureTracker,
    passwords: PasswordBook,
    tokens: TokenGen,
    devices: HashMap<GbId, DeviceRecord>,
    keepalive_overrides: HashMap<GbId, KeepalivePolicy>,
    heap: BinaryHeap<Reverse<(Instant, GbId)>>,
    online: usize,
    cseq: u32,
}

impl Registry {
    /// A registry. `secret` keys nonces and tokens (32 bytes from the OS RNG); `epoch` is any
    /// instant before the first input (usually "now" at start-up).
    pub fn new(config: RegistryConfig, secret: [u8; 32], epoch: Instant) -> Self {
        let digest_key = hmac_sha256(&secret, &[b"digest nonce key"]);
        let token_key = hmac_sha256(&secret, &[b"token key"]);
        Registry {
            digest: DigestServer::new(
                config.realm.as_deref().unwrap_or(config.domain.as_str()),
                digest_key,
                epoch,
                config.auth.clone(),
            ),
            failures: FailureTracker::new(config.ban),
            passwords: PasswordBook::new(config.default_password.clone()),
            tokens: TokenGen::new(token_key),
            devices: HashMap::new(),
            keepalive_overrides: HashMap::new(),
            heap: BinaryHeap::new(),
            online: 0,
            cseq: 0,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The password book (per-device passwords, default password).
    pub fn passwords_mut(&mut self) -> &mut PasswordBook {
        &mut self.passwords
    }

    /// Overrides (or with `None` resets) one device's keepalive expectations.
    pub fn set_keepalive_policy(&mut self, id: GbId, policy: Option<KeepalivePolicy>) {
        match policy {
            Some(p) => self.keepalive_overrides.insert(id, p),
            None => self.keepalive_overrides.remove(&id),
        };
        self.rearm(&id);
    }

    fn keepalive_of(&self, id: &GbId) -> KeepalivePolicy {
        self.keepalive_overrides
            .get(id)
            .copied()
            .unwrap_or(self.config.keepalive)
    }

    /// A registered device.
    pub fn device(&self, id: &GbId) -> Option<&DeviceRecord> {
        self.devices.get(id)
    }

    /// Every registered device.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceRecord> {
        self.devices.values()
    }

    /// Registered devices.
    pub fn registered_count(&self) -> usize {
        self.devices.len()
    }

    /// Online devices.
    pub fn online_count(&self) -> usize {
        self.online
    }

    /// Handles one request from a device. See [`RequestOutcome`].
    pub fn handle_request(&mut self, req: &Message, peer: Peer, now: Now) -> RequestOutcome {
        match req.method() {
            Some(Method::Register) => self.handle_register(req, peer, now),
            Some(Method::Message) => self.handle_message(req, peer, now),
            _ => RequestOutcome {
                not_handled: true,
                ..RequestOutcome::default()
            },
        }
    }

    /// Builds a query MESSAGE (Catalog, DeviceInfo, DeviceStatus...) to a registered device.
    /// `local` is our address as the device reaches it. Returns the request and its
    /// destination; send it through the transaction layer.
    pub fn build_query(
        &mut self,
        id: &GbId,
        cmd: &CmdType,
        sn: u64,
        local: SocketAddr,
    ) -> Option<(Message, Peer)> {
        let d = self.devices.get(id)?;
        let peer = d.peer;
        let body = crate::manscdp::build::query(
            cmd,
            sn,
            id.as_str(),
            crate::manscdp::build::BodyEncoding::Undeclared,
        );
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let msg = OutgoingRequest {
            method: Method::Message,
            from_user: self.config.server_id.as_str(),
            domain: self.config.domain.as_str(),
            to_user: id.as_str(),
            target: peer,
            local,
            cseq: self.cseq,
            call_id: None,
            body: Some(("Application/MANSCDP+xml", body)),
            user_agent: &self.config.user_agent,
            extra_headers: Vec::new(),
        }
        .build(&mut self.tokens);
        Some((msg, peer))
    }

    fn set_online(
        &mut self,
        id: &GbId,
        online: bool,
        events: &mut Vec<RegistryEvent>,
        reason: Option<OfflineReason>,
    ) {
        let Some(d) = self.devices.get_mut(id) else {
            return;
        };
        if d.online == online {
            return;
        }
        d.online = online;
        if online {
            self.online += 1;
            events.push(RegistryEvent::DeviceOnline { id: *id });
        } else {
            self.online -= 1;
            events.push(RegistryEvent::DeviceOffline {
                id: *id,
                reason: reason.unwrap_or(OfflineReason::Expired),
            });
        }
    }

    fn note_quirks(&mut self, id: &GbId, quirks: QuirkSet, events: &mut Vec<RegistryEvent>) {
        let Some(d) = self.devices.get_mut(id) else {
            return;
        };
        let mut new = QuirkSet::new();
        for q in quirks.iter() {
            if !d.quirks.contains(q) {
                new.insert(q);
            }
        }
        if !new.is_empty() {
            d.quirks.extend(new);
            events.push(RegistryEvent::QuirksSeen {
                id: *id,
                quirks: new,
            });
        }
    }

    /// Pushes a heap entry if the device's deadline moved earlier than its pending entry.
    fn rearm(&mut self, id: &GbId) {
        let ka = self.keepalive_of(id);
        let grace = self.config.expiry_grace;
        let Some(d) = self.devices.get_mut(id) else {
            return;
        };
        let expiry = d.expires_at + grace;
        // A per-device policy may be absurdly long; never overflow the clock.
        let due = match d.last_seen.checked_add(ka.timeout()) {
            Some(ka_due) if d.online => expiry.min(ka_due),
            _ => expiry,
        };
        if d.heap_at.is_none_or(|h| due < h) {
            d.heap_at = Some(due);
            self.heap.push(Reverse((due, *id)));
        }
    }
}

#[cfg(test)]
mod tests;
