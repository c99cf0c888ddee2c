//! Catalog subscriptions (RFC 6665 SUBSCRIBE/NOTIFY, GB/T 28181-2016 9.11), subscriber side,
//! sans-IO.
//!
//! A device that supports it reports catalog changes (ADD, DEL, ON, OFF, VLOST, DEFECT, UPDATE)
//! as NOTIFYs on a subscription we hold, instead of us re-querying its catalog. Many devices do
//! not support it (they answer 400/405/489/501) and some send the same changes as MESSAGE
//! `<Notify>` bodies without any subscription; the server handles both and uses periodic
//! catalog queries as the fallback.
//!
//! Driving it (one [`CatalogSubscriptions`] per server):
//! - [`CatalogSubscriptions::subscribe`] after a device came online; send the request through
//!   the transaction layer.
//! - Responses whose Call-ID is a subscription's → [`CatalogSubscriptions::on_response`];
//!   a transaction timeout of one of its requests → [`CatalogSubscriptions::on_timeout`].
//! - Every received NOTIFY → [`CatalogSubscriptions::on_notify`] (answer it 200 OK either way;
//!   the body is parsed by the caller with [`crate::manscdp::parse_body`]).
//! - [`CatalogSubscriptions::handle_timeout`] at [`CatalogSubscriptions::next_deadline`]
//!   refreshes subscriptions before they expire and retries failed ones with backoff.
//! - [`CatalogSubscriptions::forget`] when the device goes offline (no request is sent), and
//!   [`CatalogSubscriptions::unsubscribe`] to end one politely (`Expires: 0`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::gbid::{DomainCode, GbId};
use crate::manscdp::build::{query, BodyEncoding};
use crate::manscdp::CmdType;
use crate::sip::values::{parse_params, Param};
use crate::sip::{HeaderName, Message, Method, Peer, SipError, Transport};
use crate::token::TokenGen;

/// The state in a `Subscription-State` header (RFC 6665 8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// `active`.
    Active,
    /// `pending`.
    Pending,
    /// `terminated`.
    Terminated,
    /// Any other token (an extension), lower-cased.
    Other(String),
}

/// A parsed `Subscription-State` header value, e.g. `active;expires=3600` or
/// `terminated;reason=timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The state.
    pub state: SubState,
    /// `expires`, seconds.
    pub expires: Option<u32>,
    /// `reason` (for `terminated`).
    pub reason: Option<String>,
    /// `retry-after`, seconds.
    pub retry_after: Option<u32>,
}

impl SubscriptionState {
    /// Parses a header value. Unknown parameters are ignored; a numeric parameter that does not
    /// parse is an error naming the header.
    pub fn parse(value: &str) -> Result<SubscriptionState, SipError> {
        let v = value.trim();
        let (state, params) = match v.split_once(';') {
            Some((s, p)) => (s.trim(), parse_params(p)),
            None => (v, Vec::new()),
        };
        let bad = |reason: &'static str| SipError::InvalidHeader {
            name: HeaderName::SubscriptionState,
            value: v.chars().take(64).collect(),
            reason,
        };
        if state.is_empty()
            || !state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("no state token"));
        }
        let state = match state.to_ascii_lowercase().as_str() {
            "active" => SubState::Active,
            "pending" => SubState::Pending,
            "terminated" => SubState::Terminated,
            other => SubState::Other(other.to_owned()),
        };
        let number = |p: &[Param], name: &str| -> Result<Option<u32>, SipError> {
            match p.iter().find(|x| x.name.eq_ignore_ascii_case(name)) {
                None => Ok(None),
                Some(Param { value: None, .. }) => Err(bad("parameter without a value")),
                Some(Param { value: Some(v), .. }) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| bad("parameter is not a 32-bit unsigned integer")),
            }
        };
        Ok(SubscriptionState {
            expires: number(&params, "expires")?,
            retry_after: number(&params, "retry-after")?,
            reason: params
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case("reason"))
                .and_then(|x| x.value.clone()),
            state,
        })
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            SubState::Active => f.write_str("active")?,
            SubState::Pending => f.write_str("pending")?,
            SubState::Terminated => f.write_str("terminated")?,
            SubState::Other(s) => f.write_str(s)?,
        }
        if let Some(r) = &self.reason {
            write!(f, ";reason={r}")?;
        }
        if let Some(e) = self.expires {
            write!(f, ";expires={e}")?;
        }
        if let Some(r) = self.retry_after {
            write!(f, ";retry-after={r}")?;
        }
        Ok(())
    }
}

/// Subscription settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Requested lifetime. Default 3600 s.
    pub expires: u32,
    /// First retry after a failure (timeout, 5xx, terminated by the device); doubles per
    /// consecutive failure up to `max_retry`. Default 30 s.
    pub retry: Duration,
    /// Longest retry interval. Default 30 min.
    pub max_retry: Duration,
    /// After a refusal meaning "not supported" (400, 403, 404, 405, 415, 488, 489, 501), try
    /// again only after this long (a firmware upgrade may add support). Default 24 h.
    pub unsupported_retry: Duration,
    /// Our User-Agent.
    pub user_agent: String,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            expires: 3600,
            retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(1800),
            unsupported_retry: Duration::from_secs(86_400),
            user_agent: "vigil".into(),
        }
    }
}

/// Where a device's catalog subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// SUBSCRIBE sent, no final answer yet.
    Subscribing,
    /// Accepted; NOTIFYs are expected until `expires_at` (refreshed before).
    Active {
        /// When the subscription lapses unless refreshed.
        expires_at: Instant,
    },
    /// Failed; retried at `retry_at`.
    Retrying {
        /// Next attempt.
        retry_at: Instant,
        /// Consecutive failures.
        failures: u32,
    },
    /// The device refused with a code meaning it does not support catalog subscriptions.
    Unsupported {
        /// The refusal.
        code: u16,
        /// Next attempt.
        retry_at: Instant,
    },
    /// `Expires: 0` sent.
    Unsubscribing,
}

/// Why a subscription attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionFailure {
    /// No final response (transaction timeout).
    Timeout,
    /// A failure response that may be temporary (408, 480, 5xx, ...).
    Rejected {
        /// Status code.
        code: u16,
    },
    /// The device ended the subscription (`Subscription-State: terminated`).
    TerminatedByDevice {
        /// `reason` parameter, if any.
        reason: Option<String>,
    },
}

impl fmt::Display for SubscriptionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionFailure::Timeout => f.write_str("SUBSCRIBE got no final response"),
            SubscriptionFailure::Rejected { code } => write!(f, "SUBSCRIBE refused with {code}"),
            SubscriptionFailure::TerminatedByDevice { reason } => write!(
                f,
                "subscription terminated by the device ({})",
                reason.as_deref().unwrap_or("no reason")
            ),
        }
    }
}

/// What the subscription layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// A subscription became active (first time, or again after a failure).
    Active {
        /// Device.
        device: GbId,
        /// Granted lifetime.
        expires: Duration,
    },
    /// The device does not support catalog subscriptions.
    Unsupported {
        /// Device.
        device: GbId,
        /// The refusal code.
        code: u16,
    },
    /// An attempt failed or an active subscription ended; it is retried.
    Failed {
        /// Device.
        device: GbId,
        /// Why.
        failure: SubscriptionFailure,
        /// When it is retried.
        retry_in: Duration,
    },
}

/// Requests to send and events.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionOutput {
    /// Requests for the transaction layer, with their destination.
    pub send: Vec<(Message, Peer)>,
    /// Events.
    pub events: Vec<SubscriptionEvent>,
}

/// The result of [`CatalogSubscriptions::on_notify`].
#[derive(Debug, Clone, Default)]
pub struct NotifyMatch {
    /// The device whose subscription the NOTIFY belongs to (`None`: no subscription of ours;
    /// the caller still accepts a catalog NOTIFY from a registered device, e.g. after our
    /// restart).
    pub device: Option<GbId>,
    /// The `Subscription-State`, if present and valid.
    pub state: Option<SubscriptionState>,
    /// A `Subscription-State` that did not parse (the NOTIFY is still accepted).
    pub state_error: Option<SipError>,
    /// What to send / report as a consequence.
    pub output: SubscriptionOutput,
}

#[derive(Debug, Clone)]
struct Sub {
    device: GbId,
    peer: Peer,
    local: SocketAddr,
    status: SubscriptionStatus,
    call_id: String,
    from_tag: String,
    /// The device's To value with its tag (once the dialog exists), verbatim.
    remote: Option<Bytes>,
    remote_target: Option<String>,
    cseq: u32,
    event_id: u64,
    requested: u32,
    failures: u32,
    /// When handle_timeout has work for this subscription (refresh or retry).
    due: Option<Instant>,
    was_active: bool,
}

/// Every catalog subscription we hold. See the module documentation.
#[derive(Debug)]
pub struct CatalogSubscriptions {
    config: SubscriptionConfig,
    our_id: GbId,
    domain: DomainCode,
    tokens: TokenGen,
    subs: HashMap<GbId, Sub>,
    by_call_id: HashMap<String, GbId>,
    heap: BinaryHeap<Reverse<(Instant, GbId)>>,
}

/// Refusal codes that mean "no catalog subscription here".
fn means_unsupported(code: u16) -> bool {
    matches!(code, 400 | 403 | 404 | 405 | 415 | 488 | 489 | 501)
}

impl CatalogSubscriptions {
    /// A subscriber with our identity; `seed` keys tags and Call-IDs (32 bytes from the OS RNG).
    pub fn new(
        config: SubscriptionConfig,
        our_id: GbId,
        domain: DomainCode,
        seed: [u8; 32],
    ) -> Self {
        CatalogSubscriptions {
            config,
            our_id,
            domain,
            tokens: TokenGen::new(seed),
            subs: HashMap::new(),
            by_call_id: HashMap::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// The status of a device's subscription.
    pub fn status(&self, device: &GbId) -> Option<SubscriptionStatus> {
        self.subs.get(device).map(|s| s.status)
    }

    /// Whether `call_id` is one of our subscriptions' dialogs.
    pub fn owns_call_id(&self, call_id: &str) -> bool {
        self.by_call_id.contains_key(call_id)
    }

    /// Subscriptions held (any status).
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether no subscription is held.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    fn arm(&mut self, device: &GbId, at: Option<Instant>) {
        if let Some(s) = self.subs.get_mut(device) {
            s.due = at;
            if let Some(at) = at {
                self.heap.push(Reverse((at, *device)));
            }
        }
    }

    /// Starts (or restarts) the catalog subscription of `device` at `peer`. `local` is our
    /// address as the device reaches us; `sn` is the SN of the query body and the `Event` id.
    /// Any previous subscription of the device is forgotten (a re-registered device has lost
    /// it anyway).
    pub fn subscribe(
        &mut self,
        device: GbId,
        peer: Peer,
        local: SocketAddr,
        sn: u64,
        _now: Instant,
    ) -> Message {
        self.forget(&device);
        let call_id = self.tokens.call_id(Some(&local.ip().to_string()));
        let from_tag = self.tokens.tag();
        let sub = Sub {
            device,
            peer,
            local,
            status: SubscriptionStatus::Subscribing,
            call_id: call_id.clone(),
            from_tag,
            remote: None,
            remote_target: None,
            cseq: 0,
            event_id: sn,
            requested: self.config.expires,
            failures: 0,
            due: None,
            was_active: false,
        };
        self.by_call_id.insert(call_id, device);
        self.subs.insert(device, sub);
        self.request(&device, self.config.expires)
            .map(|(m, _)| m)
            .unwrap_or_else(|| Message::request(Method::Subscribe, "sip:invalid"))
    }

    /// Builds the next SUBSCRIBE of the subscription (in-dialog once the device answered).
    fn request(&mut self, device: &GbId, expires: u32) -> Option<(Message, Peer)> {
        let branch = self.tokens.branch();
        let our_id = self.our_id;
        let domain = self.domain;
        let user_agent = self.config.user_agent.clone();
        let s = self.subs.get_mut(device)?;
        s.cseq = s.cseq.wrapping_add(1).max(1);
        s.requested = expires;
        let uri = s
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:{}@{}", s.device, s.peer.addr));
        let mut m = Message::request(Method::Subscribe, uri);
        m.push_header(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};rport;branch={branch}",
                s.peer.transport.as_str(),
                s.local
            ),
        );
        m.push_header(
            HeaderName::From,
            format!("<sip:{our_id}@{domain}>;tag={}", s.from_tag),
        );
        match &s.remote {
            Some(to) => m.headers.push(crate::sip::Header {
                name: HeaderName::To,
                value: to.clone(),
            }),
            None => m.push_header(HeaderName::To, format!("<sip:{}@{domain}>", s.device)),
        }
        m.push_header(HeaderName::CallId, s.call_id.clone());
        m.push_header(HeaderName::CSeq, format!("{} SUBSCRIBE", s.cseq));
        let tp = if s.peer.transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        m.push_header(
            HeaderName::Contact,
            format!("<sip:{our_id}@{}{tp}>", s.local),
        );
        m.push_header(HeaderName::MaxForwards, "70");
        m.push_header(HeaderName::UserAgent, user_agent);
        m.push_header(HeaderName::Event, format!("Catalog;id={}", s.event_id));
        m.push_header(HeaderName::Expires, expires.to_string());
        let body = query(
            &CmdType::Catalog,
            s.event_id,
            s.device.as_str(),
            BodyEncoding::Undeclared,
        );
        let peer = s.peer;
        Some((m.with_body("Application/MANSCDP+xml", body), peer))
    }

    /// Ends a subscription with `Expires: 0`. Returns the request to send, if the device had a
    /// subscription. The subscription is forgotten once the answer (or a timeout) arrives.
    pub fn unsubscribe(&mut self, device: &GbId, _now: Instant) -> Option<(Message, Peer)> {
        let s = self.subs.get_mut(device)?;
        s.status = SubscriptionStatus::Unsubscribing;
        s.due = None;
        self.request(device, 0)
    }

    /// Forgets a device's subscription without sending anything (it went offline).
    pub fn forget(&mut self, device: &GbId) {
        if let Some(s) = self.subs.remove(device) {
            self.by_call_id.remove(&s.call_id);
        }
    }

    /// A device moved (same registration, new address): requests go there from now on.
    pub fn update_peer(&mut self, device: &GbId, peer: Peer) {
        if let Some(s) = self.subs.get_mut(device) {
            s.peer = peer;
        }
    }

    fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.config
            .retry
            .saturating_mul(factor)
            .min(self.config.max_retry)
    }

    fn fail(
        &mut self,
        device: GbId,
        failure: SubscriptionFailure,
        now: Instant,
        out: &mut SubscriptionOutput,
    ) {
        let failures = match self.subs.get_mut(&device) {
            Some(s) => {
                s.failures = s.failures.saturating_add(1);
                s.failures
            }
            None => return,
        };
        let delay = self.retry_delay(failures);
        let retry_at = now + delay;
        if let Some(s) = self.subs.get_mut(&device) {
            s.status = SubscriptionStatus::Retrying { retry_at, failures };
            s.was_active = false;
            // A new attempt starts a new dialog.
            s.remote = None;
            s.remote_target = None;
        }
        self.arm(&device, Some(retry_at));
        out.events.push(SubscriptionEvent::Failed {
            device,
            failure,
            retry_in: delay,
        });
    }

    /// Handles a response to one of our SUBSCRIBEs; `None` if the Call-ID is not ours.
    pub fn on_response(&mut self, resp: &Message, now: Instant) -> Option<SubscriptionOutput> {
        let code = resp.status()?;
        let call_id = resp.call_id().ok()?;
        let device = *self.by_call_id.get(call_id.as_ref())?;
        let mut out = SubscriptionOutput::default();
        if code < 200 {
            return Some(out);
        }
        let s = self.subs.get_mut(&device)?;
        if s.status == SubscriptionStatus::Unsubscribing {
            self.forget(&device);
            return Some(out);
        }
        if (200..300).contains(&code) {
            let granted = resp
                .expires()
                .ok()
                .flatten()
                .unwrap_or(s.requested)
                .min(s.requested.max(1));
            if granted == 0 {
                self.fail(
                    device,
                    SubscriptionFailure::TerminatedByDevice {
                        reason: Some("granted Expires: 0".into()),
                    },
                    now,
                    &mut out,
                );
                return Some(out);
            }
            if s.remote.is_none() {
                s.remote = resp.header(&HeaderName::To).map(|h| h.value.clone());
            }
            if let Ok(Some(c)) = resp.contact() {
                s.remote_target = Some(c.uri.to_string());
            }
            let lifetime = Duration::from_secs(u64::from(granted));
            let expires_at = now + lifetime;
            s.status = SubscriptionStatus::Active { expires_at };
            s.failures = 0;
            // Refresh at 80 % of the lifetime, but never later than 30 s before it ends.
            let refresh = (lifetime * 4 / 5)
                .min(lifetime.saturating_sub(Duration::from_secs(30)))
                .max(Duration::from_secs(1));
            let newly = !s.was_active;
            s.was_active = true;
            self.arm(&device, Some(now + refresh));
            if newly {
                out.events.push(SubscriptionEvent::Active {
                    device,
                    expires: lifetime,
                });
            }
            return Some(out);
        }
        if code == 423 {
            if let Some(min) = resp
                .header_str(&HeaderName::MinExpires)
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                if min > s.requested && min <= 86_400 {
                    if let Some(req) = self.request(&device, min) {
                        out.send.push(req);
                    }
                    return Some(out);
                }
            }
        }
        if code == 481 && s.remote.is_some() {
            // The device lost our dialog (reboot): start a fresh subscription right away.
            let (peer, local, sn) = (s.peer, s.local, s.event_id);
            let m = self.subscribe(device, peer, local, sn, now);
            out.send.push((m, peer));
            return Some(out);
        }
        if means_unsupported(code) {
            let retry_at = now + self.config.unsupported_retry;
            if let Some(s) = self.subs.get_mut(&device) {
                s.status = SubscriptionStatus::Unsupported { code, retry_at };
                s.was_active = false;
                s.remote = None;
                s.remote_target = None;
            }
            self.arm(&device, Some(retry_at));
            out.events
                .push(SubscriptionEvent::Unsupported { device, code });
            return Some(out);
        }
        self.fail(
            device,
            SubscriptionFailure::Rejected { code },
            now,
            &mut out,
        );
        Some(out)
    }

    /// A SUBSCRIBE of ours got no final response. Returns `None` if the Call-ID is not ours.
    pub fn on_timeout(&mut self, call_id: &str, now: Instant) -> Option<SubscriptionOutput> {
        let device = *self.by_call_id.get(call_id)?;
        let mut out = SubscriptionOutput::default();
        if self.subs.get(&device)?.status == SubscriptionStatus::Unsubscribing {
            self.forget(&device);
            return Some(out);
        }
        self.fail(device, SubscriptionFailure::Timeout, now, &mut out);
        Some(out)
    }

    /// Classifies a received NOTIFY (answer it 200 OK in any case).
    pub fn on_notify(&mut self, req: &Message, now: Instant) -> NotifyMatch {
        let mut m = NotifyMatch::default();
        if let Some(v) = req.header_str(&HeaderName::SubscriptionState) {
            match SubscriptionState::parse(&v) {
                Ok(st) => m.state = Some(st),
                Err(e) => m.state_error = Some(e),
            }
        }
        let Some(device) = req
            .call_id()
            .ok()
            .and_then(|c| self.by_call_id.get(c.as_ref()).copied())
        else {
            return m;
        };
        m.device = Some(device);
        let terminated = m
            .state
            .as_ref()
            .is_some_and(|s| s.state == SubState::Terminated);
        if terminated {
            let reason = m.state.as_ref().and_then(|s| s.reason.clone());
            let retry_after = m.state.as_ref().and_then(|s| s.retry_after);
            let permanent = matches!(reason.as_deref(), Some("rejected" | "noresource"));
            if permanent {
                let retry_at = now + self.config.unsupported_retry;
                if let Some(s) = self.subs.get_mut(&device) {
                    s.status = SubscriptionStatus::Unsupported { code: 0, retry_at };
                    s.was_active = false;
                    s.remote = None;
                    s.remote_target = None;
                }
                self.arm(&device, Some(retry_at));
                m.output
                    .events
                    .push(SubscriptionEvent::Unsupported { device, code: 0 });
            } else {
                self.fail(
                    device,
                    SubscriptionFailure::TerminatedByDevice { reason },
                    now,
                    &mut m.output,
                );
                if let Some(ra) = retry_after {
                    let at = now + Duration::from_secs(u64::from(ra));
                    if let Some(s) = self.subs.get_mut(&device) {
                        if let SubscriptionStatus::Retrying { failures, .. } = s.status {
                            s.status = SubscriptionStatus::Retrying {
                                retry_at: at,
                                failures,
                            };
                        }
                    }
                    self.arm(&device, Some(at));
                }
            }
            return m;
        }
        // A NOTIFY may arrive before the 2xx (RFC 6665 4.1.2.4): it confirms the dialog.
        if let Some(s) = self.subs.get_mut(&device) {
            if s.remote.is_none() {
                // The NOTIFY's From is the device side of the dialog.
                s.remote = req.header(&HeaderName::From).map(|h| h.value.clone());
            }
            if s.remote_target.is_none() {
                if let Ok(Some(c)) = req.contact() {
                    s.remote_target = Some(c.uri.to_string());
                }
            }
            if let (SubscriptionStatus::Subscribing, Some(st)) = (s.status, &m.state) {
                if st.state == SubState::Active {
                    let lifetime =
                        Duration::from_secs(u64::from(st.expires.unwrap_or(s.requested)));
                    s.status = SubscriptionStatus::Active {
                        expires_at: now + lifetime,
                    };
                }
            }
        }
        m
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) may have work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Refreshes and retries due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> SubscriptionOutput {
        let mut out = SubscriptionOutput::default();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, device))) = self.heap.pop() else {
                break;
            };
            let Some(s) = self.subs.get_mut(&device) else {
                continue;
            };
            if s.due != Some(t) {
                continue;
            }
            s.due = None;
            match s.status {
                SubscriptionStatus::Active { .. } => {
                    // In-dialog refresh.
                    let expires = self.config.expires;
                    if let Some(r) = self.request(&device, expires) {
                        out.send.push(r);
                    }
                }
                SubscriptionStatus::Retrying { .. } | SubscriptionStatus::Unsupported { .. } => {
                    let (peer, local, sn, failures) = (s.peer, s.local, s.event_id, s.failures);
                    let m = self.subscribe(device, peer, local, sn, now);
                    if let Some(s) = self.subs.get_mut(&device) {
                        s.failures = failures;
                    }
                    out.send.push((m, peer));
                }
                SubscriptionStatus::Subscribing | SubscriptionStatus::Unsubscribing => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse_datagram, ResponseBuilder};

    const DEV: &str = "34020000001320000002";

    fn setup() -> (CatalogSubscriptions, GbId, Peer, SocketAddr, Instant) {
        let subs = CatalogSubscriptions::new(
            SubscriptionConfig::default(),
            GbId::parse("34020000002000000001").unwrap(),
            DomainCode::parse("3402000000").unwrap(),
            [7; 32],
        );
        (
            subs,
            GbId::parse(DEV).unwrap(),
            Peer::udp("192.168.6.71:5060".parse().unwrap()),
            "192.168.6.106:5060".parse().unwrap(),
            Instant::now(),
        )
    }

    fn answer(req: &Message, code: u16, expires: Option<u32>) -> Message {
        let mut b = ResponseBuilder::new(req, code).to_tag("998877").header(
            HeaderName::Contact,
            format!("<sip:{DEV}@192.168.6.71:5060>"),
        );
        if let Some(e) = expires {
            b = b.header(HeaderName::Expires, e.to_string());
        }
        // Through the wire format, as a device would send it.
        parse_datagram(b.build().unwrap().to_bytes()).unwrap()
    }

    #[test]
    fn subscription_state_parses_rfc_6665_forms() {
        let s = SubscriptionState::parse("active;expires=3600").unwrap();
        assert_eq!((s.state, s.expires), (SubState::Active, Some(3600)));
        let s = SubscriptionState::parse(" Terminated ; reason=timeout;retry-after=20").unwrap();
        assert_eq!(s.state, SubState::Terminated);
        assert_eq!(s.reason.as_deref(), Some("timeout"));
        assert_eq!(s.retry_after, Some(20));
        assert_eq!(s.to_string(), "terminated;reason=timeout;retry-after=20");
        assert_eq!(
            SubscriptionState::parse("x-custom").unwrap().state,
            SubState::Other("x-custom".into())
        );
        assert!(SubscriptionState::parse("").is_err());
        assert!(SubscriptionState::parse("active;expires=soon").is_err());
        assert!(SubscriptionState::parse("active;expires").is_err());
    }

    #[test]
    fn subscribe_is_a_gb_catalog_subscribe_and_refreshes_in_dialog() {
        let (mut subs, dev, peer, local, t0) = setup();
        let req = subs.subscribe(dev, peer, local, 17, t0);
        let wire = parse_datagram(req.to_bytes()).unwrap();
        assert_eq!(wire.method(), Some(&Method::Subscribe));
        assert_eq!(
            wire.header_str(&HeaderName::Event).as_deref(),
            Some("Catalog;id=17")
        );
        assert_eq!(wire.expires().unwrap(), Some(3600));
        assert!(wire.content_type().unwrap().unwrap().is_manscdp());
        let body = crate::manscdp::parse_body(&wire.body, None).unwrap();
        assert_eq!(body.cmd_type, CmdType::Catalog);
        assert_eq!(body.device_id, DEV);
        assert_eq!(subs.status(&dev), Some(SubscriptionStatus::Subscribing));

        let out = subs
            .on_response(&answer(&wire, 200, Some(600)), t0)
            .unwrap();
        assert_eq!(
            out.events,
            vec![SubscriptionEvent::Active {
                device: dev,
                expires: Duration::from_secs(600)
            }]
        );
        // Refresh at 80 % (480 s), in the same dialog: same Call-ID, CSeq 2, To with the tag.
        assert_eq!(subs.next_deadline(), Some(t0 + Duration::from_secs(480)));
        assert!(subs
            .handle_timeout(t0 + Duration::from_secs(479))
            .send
            .is_empty());
        let out = subs.handle_timeout(t0 + Duration::from_secs(480));
        assert_eq!(out.send.len(), 1);
        let refresh = parse_datagram(out.send[0].0.to_bytes()).unwrap();
        assert_eq!(refresh.call_id().unwrap(), wire.call_id().unwrap());
        assert_eq!(refresh.cseq().unwrap().seq, 2);
        assert_eq!(refresh.to().unwrap().tag(), Some("998877"));
        assert_eq!(
            refresh.request_uri().unwrap().unwrap().to_string(),
            format!("sip:{DEV}@192.168.6.71:5060")
        );
        // A refresh answer produces no new Active event.
        let out = subs
            .on_response(&answer(&refresh, 200, None), t0 + Duration::from_secs(481))
            .unwrap();
        assert!(out.events.is_empty());
    }

    #[test]
    fn unsupported_devices_are_left_alone_for_a_day() {
        let (mut subs, dev, peer, local, t0) = setup();
        let req = subs.subscribe(dev, peer, local, 1, t0);
        let out = subs.on_response(&answer(&req, 489, None), t0).unwrap();
        assert_eq!(
            out.events,
            vec![SubscriptionEvent::Unsupported {
                device: dev,
                code: 489
            }]
        );
        assert_eq!(subs.next_deadline(), Some(t0 + Duration::from_secs(86_400)));
        let out = subs.handle_timeout(t0 + Duration::from_secs(86_400));
        assert_eq!(out.send.len(), 1, "tried again after the unsupported delay");
    }

    #[test]
    fn failures_back_off_and_timeouts_retry() {
        let (mut subs, dev, peer, local, t0) = setup();
        let req = subs.subscribe(dev, peer, local, 1, t0);
        let call_id = req.call_id().unwrap().into_owned();
        let out = subs.on_timeout(&call_id, t0).unwrap();
        assert!(matches!(
            &out.events[..],
            [SubscriptionEvent::Failed { failure: SubscriptionFailure::Timeout, retry_in, .. }]
                if *retry_in == Duration::from_secs(30)
        ));
        let out = subs.handle_timeout(t0 + Duration::from_secs(30));
        let again = &out.send[0].0;
        assert_ne!(again.call_id().unwrap(), call_id.as_str(), "a new dialog");
        let out = subs
            .on_response(&answer(again, 503, None), t0 + Duration::from_secs(31))
            .unwrap();
        assert!(matches!(
            &out.events[..],
            [SubscriptionEvent::Failed { failure: SubscriptionFailure::Rejected { code: 503 }, retry_in, .. }]
                if *retry_in == Duration::from_secs(60)
        ));
        assert!(subs.on_timeout("not-ours", t0).is_none());
    }

    #[test]
    fn notify_matching_and_termination() {
        let (mut subs, dev, peer, local, t0) = setup();
        let req = subs.subscribe(dev, peer, local, 1, t0);
        subs.on_response(&answer(&req, 200, Some(3600)), t0)
            .unwrap();
        let notify = |state: &str, call_id: &str| {
            let text = format!(
                "NOTIFY sip:34020000002000000001@192.168.6.106:5060 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 192.168.6.71:5060;rport;branch=z9hG4bK1\r\n\
                 From: <sip:{DEV}@3402000000>;tag=998877\r\n\
                 To: <sip:34020000002000000001@3402000000>;tag=1\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\nEvent: Catalog\r\n\
                 Subscription-State: {state}\r\nContent-Length: 0\r\n\r\n"
            );
            parse_datagram(text.into_bytes()).unwrap()
        };
        let call_id = req.call_id().unwrap().into_owned();
        let m = subs.on_notify(&notify("active;expires=3000", &call_id), t0);
        assert_eq!(m.device, Some(dev));
        assert!(m.output.events.is_empty());
        let m = subs.on_notify(&notify("active", "someone-else"), t0);
        assert_eq!(m.device, None);
        let m = subs.on_notify(&notify("active;expires=x", &call_id), t0);
        assert!(m.state_error.is_some());
        let m = subs.on_notify(&notify("terminated;reason=deactivated", &call_id), t0);
        assert!(matches!(
            &m.output.events[..],
            [SubscriptionEvent::Failed {
                failure: SubscriptionFailure::TerminatedByDevice { .. },
                ..
            }]
        ));
        assert!(matches!(
            subs.status(&dev),
            Some(SubscriptionStatus::Retrying { .. })
        ));
    }

    #[test]
    fn unsubscribe_and_forget() {
        let (mut subs, dev, peer, local, t0) = setup();
        let req = subs.subscribe(dev, peer, local, 1, t0);
        subs.on_response(&answer(&req, 200, Some(3600)), t0)
            .unwrap();
        let (bye, _) = subs.unsubscribe(&dev, t0).unwrap();
        assert_eq!(bye.expires().unwrap(), Some(0));
        subs.on_response(&answer(&bye, 200, Some(0)), t0).unwrap();
        assert!(subs.is_empty());
        subs.subscribe(dev, peer, local, 2, t0);
        subs.forget(&dev);
        assert!(subs.status(&dev).is_none());
        assert!(subs
            .handle_timeout(t0 + Duration::from_secs(100_000))
            .send
            .is_empty());
    }
}
