//! The cascade uplink (级联): registering upward to an upper platform as a lower platform, sans-IO.
//!
//! The uplink is what the networking-rate figure depends on, so its state is reported as
//! [`UplinkEvent::Up`] / [`UplinkEvent::Down`] with a reason.
//!
//! Driving it:
//! - [`UplinkClient::start`] sends the first REGISTER; [`UplinkClient::stop`] unregisters.
//! - Every response whose Call-ID is the uplink's goes to [`UplinkClient::on_response`] (it
//!   returns `None` for responses that are not its own).
//! - A transaction timeout (timer B/F from [`crate::sip::transaction`]) of one of its requests
//!   goes to [`UplinkClient::on_timeout`].
//! - [`UplinkClient::handle_timeout`] at [`UplinkClient::next_deadline`] refreshes the
//!   registration, sends keepalives and retries after failures.
//!
//! Outputs are requests to send (through the transaction layer, to [`UplinkConfig::upper`]) and
//! events. Rules: REGISTER without credentials, answer a 401 once per nonce (a second non-stale
//! 401 is a wrong password), refresh at 80 % of the granted lifetime, a keepalive every
//! `keepalive.interval`, down after `keepalive.max_missed` keepalives without a 2xx, and after any
//! failure re-register no sooner than `retry_interval` (GB/T 28181-2016: not shorter than 60 s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::digest::{authorize, choose_challenge, Challenge};
use crate::gbid::{DomainCode, GbId};
use crate::manscdp::build::{keepalive, BodyEncoding};
use crate::registry::KeepalivePolicy;
use crate::sip::{GbVersion, HeaderName, Message, Method, Peer, Transport};
use crate::token::TokenGen;

/// Uplink settings.
#[derive(Clone)]
pub struct UplinkConfig {
    /// Our platform ID (the lower platform).
    pub our_id: GbId,
    /// Our SIP domain.
    pub our_domain: DomainCode,
    /// The upper platform's SIP server ID.
    pub upper_id: GbId,
    /// The upper platform's domain (its realm).
    pub upper_domain: DomainCode,
    /// Where the upper platform is.
    pub upper: Peer,
    /// Our address as the upper platform reaches us.
    pub local: SocketAddr,
    /// Digest user name; our ID when `None`.
    pub username: Option<String>,
    /// Digest password.
    pub password: String,
    /// Requested registration lifetime. Default 3600 s.
    pub expires: u32,
    /// Keepalive interval and misses before the link is down. Default 60 s × 3.
    pub keepalive: KeepalivePolicy,
    /// Wait before re-registering after a failure. Default 60 s.
    pub retry_interval: Duration,
    /// Our User-Agent.
    pub user_agent: String,
    /// `X-GB-Ver` we announce.
    pub version: GbVersion,
}

impl std::fmt::Debug for UplinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("UplinkConfig")
            .field("our_id", &self.our_id)
            .field("our_domain", &self.our_domain)
            .field("upper_id", &self.upper_id)
            .field("upper_domain", &self.upper_domain)
            .field("upper", &self.upper)
            .field("local", &self.local)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires", &self.expires)
            .field("keepalive", &self.keepalive)
            .field("retry_interval", &self.retry_interval)
            .field("user_agent", &self.user_agent)
            .field("version", &self.version)
            .finish()
    }
}

impl UplinkConfig {
    /// Defaults for the given identities and addresses.
    pub fn new(
        our_id: GbId,
        our_domain: DomainCode,
        upper_id: GbId,
        upper_domain: DomainCode,
        upper: Peer,
        local: SocketAddr,
        password: String,
    ) -> Self {
        UplinkConfig {
            our_id,
            our_domain,
            upper_id,
            upper_domain,
            upper,
            local,
            username: None,
            password,
            expires: 3600,
            keepalive: KeepalivePolicy::default(),
            retry_interval: Duration::from_secs(60),
            user_agent: "vigil".into(),
            version: GbVersion::V2022,
        }
    }
}

/// Why the uplink is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The upper platform refused the REGISTER with this status.
    Rejected {
        /// Status code.
        code: u16,
    },
    /// Our credentials were refused (a second 401 for the same nonce).
    AuthFailed,
    /// A REGISTER got no final response.
    Timeout,
    /// Too many keepalives without a 2xx.
    KeepaliveFailed {
        /// Consecutive failures.
        missed: u32,
    },
    /// We unregistered ([`UplinkClient::stop`]).
    Stopped,
}

/// Uplink events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkEvent {
    /// Registered with the upper platform.
    Up {
        /// Granted lifetime.
        expires: Duration,
    },
    /// Not registered (any more).
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// What the uplink wants done.
#[derive(Debug, Clone, Default)]
pub struct UplinkOutput {
    /// Requests to send to [`UplinkConfig::upper`] through the transaction layer.
    pub send: Vec<Message>,
    /// Events.
    pub events: Vec<UplinkEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Registering,
    Registered,
    WaitingRetry,
    Unregistering,
}

/// The uplink state machine. See the module documentation.
#[derive(Debug)]
pub struct UplinkClient {
    config: UplinkConfig,
    tokens: TokenGen,
    state: State,
    up: bool,
    call_id: String,
    from_tag: String,
    cseq: u32,
    challenge: Option<Challenge>,
    answered_nonce: Option<String>,
    nc: u32,
    refresh_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    retry_at: Option<Instant>,
    keepalive_call_ids: Vec<String>,
    keepalive_sn: u64,
    missed: u32,
}

impl UplinkClient {
    /// A client; `seed` keys its tags, Call-IDs and cnonces (32 bytes from the OS RNG).
    pub fn new(config: UplinkConfig, seed: [u8; 32]) -> Self {
        let mut tokens = TokenGen::new(seed);
        let call_id = tokens.call_id(Some(&config.local.ip().to_string()));
        let from_tag = tokens.tag();
        UplinkClient {
            config,
            tokens,
            state: State::Idle,
            up: false,
            call_id,
            from_tag,
            cseq: 0,
            challenge: None,
            answered_nonce: None,
            nc: 0,
            refresh_at: None,
            keepalive_at: None,
            retry_at: None,
            keepalive_call_ids: Vec::new(),
            keepalive_sn: 0,
            missed: 0,
        }
    }

    /// Whether we are registered upward.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The Call-ID of our registration (responses with it belong to us).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    fn register_uri(&self) -> String {
        format!("sip:{}@{}", self.config.upper_id, self.config.upper_domain)
    }

    fn base_request(
        &mut self,
        method: Method,
        uri: &str,
        to: String,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
    ) -> Message {
        let c = &self.config;
        let t = c.upper.transport;
        let mut m = Message::request(method.clone(), uri);
        m.push_header(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};rport;branch={}",
                t.as_str(),
                c.local,
                self.tokens.branch()
            ),
        );
        m.push_header(
            HeaderName::From,
            format!("<sip:{}@{}>;tag={from_tag}", c.our_id, c.our_domain),
        );
        m.push_header(HeaderName::To, to);
        m.push_header(HeaderName::CallId, call_id);
        m.push_header(HeaderName::CSeq, format!("{cseq} {method}"));
        let tp = if t == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        m.push_header(
            HeaderName::Contact,
            format!("<sip:{}@{}{tp}>", c.our_id, c.local),
        );
        m.push_header(HeaderName::MaxForwards, "70");
        m.push_header(HeaderName::UserAgent, c.user_agent.clone());
        m.push_header(HeaderName::XGbVer, c.version.header_value());
        m
    }

    fn register(&mut self, expires: u32) -> Message {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let uri = self.register_uri();
        let to = format!("<sip:{}@{}>", self.config.our_id, self.config.our_domain);
        let (call_id, tag, cseq) = (self.call_id.clone(), self.from_tag.clone(), self.cseq);
        let mut m = self.base_request(Method::Register, &uri, to, &call_id, &tag, cseq);
        m.push_header(HeaderName::Expires, expires.to_string());
        if let Some(ch) = self.challenge.clone() {
            self.nc += 1;
            let user = self
                .config
                .username
                .clone()
                .unwrap_or_else(|| self.config.our_id.to_string());
            let cnonce = self.tokens.cnonce();
            let creds = authorize(
                &ch,
                "REGISTER",
                &uri,
                &user,
                &self.config.password,
                &cnonce,
                self.nc,
            );
            m.push_header(HeaderName::Authorization, creds.to_header_value());
            self.answered_nonce = Some(ch.nonce);
        }
        m
    }

    fn keepalive_request(&mut self) -> Message {
        self.keepalive_sn += 1;
        let uri = self.register_uri();
        let to = format!(
            "<sip:{}@{}>",
            self.config.upper_id, self.config.upper_domain
        );
        let call_id = self
            .tokens
            .call_id(Some(&self.config.local.ip().to_string()));
        let tag = self.tokens.tag();
        let mut m = self.base_request(Method::Message, &uri, to, &call_id, &tag, 1);
        m.remove_header(&HeaderName::Contact);
        let body = keepalive(
            self.keepalive_sn,
            self.config.our_id.as_str(),
            BodyEncoding::Gb2312,
        );
        self.keepalive_call_ids.push(call_id);
        // Only the outstanding ones matter; a long-dead upper platform must not grow this.
        if self.keepalive_call_ids.len() > 16 {
            self.keepalive_call_ids.remove(0);
        }
        m.with_body("Application/MANSCDP+xml", body)
    }

    /// Sends the first REGISTER.
    pub fn start(&mut self, _now: Instant) -> UplinkOutput {
        self.state = State::Registering;
        self.retry_at = None;
        let reg = self.register(self.config.expires);
        UplinkOutput {
            send: vec![reg],
            events: Vec::new(),
        }
    }

    /// Unregisters (`Expires: 0`) and stops keepalives.
    pub fn stop(&mut self, _now: Instant) -> UplinkOutput {
        let mut out = UplinkOutput::default();
        self.refresh_at = None;
        self.keepalive_at = None;
        self.retry_at = None;
        if self.state != State::Idle {
            self.state = State::Unregistering;
            out.send.push(self.register(0));
        }
        self.go_down(DownReason::Stopped, &mut out);
        out
    }

    fn go_down(&mut self, reason: DownReason, out: &mut UplinkOutput) {
        if self.up {
            self.up = false;
            out.events.push(UplinkEvent::Down { reason });
        }
    }

    fn fail(&mut self, reason: DownReason, now: Instant, out: &mut UplinkOutput) {
        self.go_down(reason, out);
        // Retries start without remembered credentials, so an old nonce cannot be mistaken
        // for a wrong password.
        self.challenge = None;
        self.answered_nonce = None;
        self.state = State::WaitingRetry;
        self.refresh_at = None;
        self.keepalive_at = None;
        self.keepalive_call_ids.clear();
        self.retry_at = Some(now + self.config.retry_interval);
    }

    /// Handles a response; `None` if it is not for one of our requests.
    pub fn on_response(&mut self, resp: &Message, now: Instant) -> Option<UplinkOutput> {
        let code = resp.status()?;
        let call_id = resp.call_id().ok()?.into_owned();
        if call_id == self.call_id {
            Some(self.on_register_response(resp, code, now))
        } else if let Some(i) = self.keepalive_call_ids.iter().position(|c| *c == call_id) {
            if code < 200 {
                return Some(UplinkOutput::default());
            }
            self.keepalive_call_ids.remove(i);
            let mut out = UplinkOutput::default();
            if (200..300).contains(&code) {
                self.missed = 0;
            } else {
                self.keepalive_failed(&mut out);
            }
            Some(out)
        } else {
            None
        }
    }

    fn on_register_response(&mut self, resp: &Message, code: u16, now: Instant) -> UplinkOutput {
        let mut out = UplinkOutput::default();
        if code < 200 {
            return out;
        }
        if self.state == State::Unregistering {
            self.state = State::Idle;
            return out;
        }
        if code == 401 || code == 407 {
            let challenges: Vec<Challenge> = resp
                .www_authenticate()
                .iter()
                .filter_map(|v| Challenge::parse(v).ok())
                .collect();
            let Some(ch) = choose_challenge(&challenges).cloned() else {
                self.fail(DownReason::Rejected { code }, now, &mut out);
                return out;
            };
            // A non-stale challenge in answer to credentials we just computed from a fresh
            // challenge means the password is wrong; answering again would only feed the upper
            // platform's ban. (A refresh with remembered credentials may be re-challenged
            // without `stale` by some platforms: that is answered once.)
            let wrong =
                !ch.stale && self.answered_nonce.is_some() && self.state == State::Registering;
            if wrong {
                self.fail(DownReason::AuthFailed, now, &mut out);
                return out;
            }
            if self.challenge.as_ref().map(|c| &c.nonce) != Some(&ch.nonce) {
                self.nc = 0;
            }
            self.challenge = Some(ch);
            self.state = State::Registering;
            out.send.push(self.register(self.config.expires));
            return out;
        }
        if (200..300).contains(&code) {
            let granted = resp
                .contact()
                .ok()
                .flatten()
                .and_then(|c| {
                    c.param("expires")
                        .and_then(|p| p.value.as_deref()?.trim().parse().ok())
                })
                .or_else(|| resp.expires().ok().flatten())
                .unwrap_or(self.config.expires)
                .max(1);
            self.state = State::Registered;
            self.answered_nonce = None;
            self.refresh_at = Some(now + Duration::from_secs(u64::from(granted)) * 4 / 5);
            if !self.up {
                self.up = true;
                self.missed = 0;
                out.events.push(UplinkEvent::Up {
                    expires: Duration::from_secs(u64::from(granted)),
                });
                self.keepalive_at = Some(now + self.config.keepalive.interval);
            }
            return out;
        }
        self.fail(DownReason::Rejected { code }, now, &mut out);
        out
    }

    fn keepalive_failed(&mut self, out: &mut UplinkOutput) {
        self.missed += 1;
        if self.missed >= self.config.keepalive.max_missed.max(1) {
            let missed = self.missed;
            self.missed = 0;
            self.go_down(DownReason::KeepaliveFailed { missed }, out);
            // The upper platform probably lost our registration: register again right away.
            self.keepalive_at = None;
            self.keepalive_call_ids.clear();
            self.challenge = None;
            self.answered_nonce = None;
            self.state = State::Registering;
            out.send.push(self.register(self.config.expires));
        }
    }

    /// A request of ours got no final response (transaction timer B/F). `call_id` is the
    /// request's Call-ID.
    pub fn on_timeout(&mut self, call_id: &str, now: Instant) -> UplinkOutput {
        let mut out = UplinkOutput::default();
        if call_id == self.call_id {
            if matches!(self.state, State::Registering | State::Registered) {
                self.fail(DownReason::Timeout, now, &mut out);
            } else if self.state == State::Unregistering {
                self.state = State::Idle;
            }
        } else if let Some(i) = self.keepalive_call_ids.iter().position(|c| c == call_id) {
            self.keepalive_call_ids.remove(i);
            self.keepalive_failed(&mut out);
        }
        out
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.refresh_at, self.keepalive_at, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Refreshes, keepalives and retries due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> UplinkOutput {
        let mut out = UplinkOutput::default();
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.state = State::Registering;
            out.send.push(self.register(self.config.expires));
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            out.send.push(self.register(self.config.expires));
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = Some(now + self.config.keepalive.interval);
            out.send.push(self.keepalive_request());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Registry, RegistryConfig, RegistryEvent};
    use crate::sip::{parse_datagram, ResponseBuilder};
    use crate::time::Now;

    const LOWER: &str = "34020000002000000001";
    const UPPER: &str = "44010000002000000001";

    fn upper_registry(t0: Instant, password: &str) -> Registry {
        let mut cfg = RegistryConfig::new(
            GbId::parse(UPPER).unwrap(),
            DomainCode::parse("4401000000").unwrap(),
        );
        cfg.default_password = Some(password.into());
        Registry::new(cfg, [2; 32], t0)
    }

    fn client(password: &str) -> UplinkClient {
        let cfg = UplinkConfig::new(
            GbId::parse(LOWER).unwrap(),
            DomainCode::parse("3402000000").unwrap(),
            GbId::parse(UPPER).unwrap(),
            DomainCode::parse("4401000000").unwrap(),
            Peer::udp("10.0.0.1:5060".parse().unwrap()),
            "10.0.0.2:5060".parse().unwrap(),
            password.into(),
        );
        UplinkClient::new(cfg, [4; 32])
    }

    /// Delivers each request to the upper registry over the wire format and feeds the
    /// responses back; returns every uplink and registry event.
    fn exchange(
        u: &mut UplinkClient,
        r: &mut Registry,
        mut send: Vec<Message>,
        now: Instant,
    ) -> (Vec<UplinkEvent>, Vec<RegistryEvent>) {
        let (mut ue, mut re) = (Vec::new(), Vec::new());
        let me = Peer::udp("10.0.0.2:5060".parse().unwrap());
        while let Some(req) = send.pop() {
            let req = parse_datagram(req.to_bytes()).unwrap();
            let out = r.handle_request(&req, me, Now::new(now, 0));
            re.extend(out.events);
            if let Some(resp) = out.response {
                let resp = parse_datagram(resp.to_bytes()).unwrap();
                let o = u.on_response(&resp, now).expect("our response");
                ue.extend(o.events);
                send.extend(o.send);
            }
        }
        (ue, re)
    }

    #[test]
    fn registers_upward_through_our_own_registrar_and_keeps_alive() {
        let t0 = Instant::now();
        let mut r = upper_registry(t0, "s3cret");
        let mut u = client("s3cret");
        let first = u.start(t0);
        assert!(first.send[0].authorization().is_none());
        let (ue, re) = exchange(&mut u, &mut r, first.send, t0);
        assert_eq!(
            ue,
            vec![UplinkEvent::Up {
                expires: Duration::from_secs(3600)
            }]
        );
        assert!(re
            .iter()
            .any(|e| matches!(e, RegistryEvent::DeviceRegistered { .. })));
        assert!(u.is_up());
        // The 2022 X-GB-Ver made the registrar offer SHA-256, which the client chose.
        let dev = r.device(&GbId::parse(LOWER).unwrap()).unwrap();
        assert_eq!(dev.algorithm, Some(crate::digest::Algorithm::Sha256));
        // Keepalive after 60 s, answered 200.
        assert_eq!(u.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let ka = u.handle_timeout(t0 + Duration::from_secs(60));
        assert_eq!(ka.send.len(), 1);
        let body = crate::manscdp::parse_body(&ka.send[0].body, None).unwrap();
        assert!(body.is_keepalive());
        let (ue, re) = exchange(&mut u, &mut r, ka.send, t0 + Duration::from_secs(60));
        assert!(ue.is_empty() && re.is_empty(), "{ue:?} {re:?}");
        // Refresh at 80 % of 3600 s, with proactive credentials (nc=2): no new challenge.
        let out = u.handle_timeout(t0 + Duration::from_secs(2880));
        let reg = out
            .send
            .iter()
            .find(|m| m.method() == Some(&Method::Register))
            .unwrap();
        assert!(reg.authorization().unwrap().contains("nc=00000002"));
    }

    #[test]
    fn wrong_password_stops_after_one_attempt_and_retries_later() {
        let t0 = Instant::now();
        let mut r = upper_registry(t0, "right");
        let mut u = client("wrong");
        let first = u.start(t0);
        let (ue, re) = exchange(&mut u, &mut r, first.send, t0);
        assert!(ue.is_empty(), "was never up");
        assert_eq!(
            re.iter()
                .filter(|e| matches!(e, RegistryEvent::AuthFailed { .. }))
                .count(),
            1
        );
        assert!(!u.is_up());
        assert_eq!(u.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let retry = u.handle_timeout(t0 + Duration::from_secs(60));
        assert_eq!(retry.send.len(), 1);
        assert!(
            retry.send[0].authorization().is_none(),
            "starts over without stale credentials"
        );
    }

    #[test]
    fn keepalive_failures_take_the_link_down_and_re_register() {
        let t0 = Instant::now();
        let mut r = upper_registry(t0, "pw");
        let mut u = client("pw");
        let first = u.start(t0);
        exchange(&mut u, &mut r, first.send, t0);
        let mut events = Vec::new();
        let mut resend = Vec::new();
        for k in 1..=3u64 {
            let out = u.handle_timeout(t0 + Duration::from_secs(60 * k));
            let ka = &out.send[0];
            // The upper platform never answers: the transaction layer reports a timeout.
            let o = u.on_timeout(
                &ka.call_id().unwrap(),
                t0 + Duration::from_secs(60 * k + 32),
            );
            events.extend(o.events);
            resend.extend(o.send);
        }
        assert_eq!(
            events,
            vec![UplinkEvent::Down {
                reason: DownReason::KeepaliveFailed { missed: 3 }
            }]
        );
        assert_eq!(resend.len(), 1);
        assert_eq!(resend[0].method(), Some(&Method::Register));
        let (ue, _) = exchange(&mut u, &mut r, resend, t0 + Duration::from_secs(300));
        assert_eq!(ue.len(), 1);
        assert!(u.is_up());
    }

    #[test]
    fn rejection_timeout_foreign_responses_and_stop() {
        let t0 = Instant::now();
        let mut u = client("pw");
        let reg = parse_datagram(u.start(t0).send[0].to_bytes()).unwrap();
        let forbidden = ResponseBuilder::new(&reg, 403).to_tag("1").build().unwrap();
        let out = u.on_response(&forbidden, t0).unwrap();
        assert!(out.events.is_empty() && out.send.is_empty());
        assert_eq!(u.next_deadline(), Some(t0 + Duration::from_secs(60)));
        let again = u.handle_timeout(t0 + Duration::from_secs(60));
        let reg = parse_datagram(again.send[0].to_bytes()).unwrap();
        let ok = ResponseBuilder::new(&reg, 200)
            .to_tag("1")
            .header(HeaderName::Expires, "600")
            .build()
            .unwrap();
        let out = u.on_response(&ok, t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(
            out.events,
            vec![UplinkEvent::Up {
                expires: Duration::from_secs(600)
            }]
        );
        // A response for someone else's request is not ours.
        let other =
            parse_datagram(crate::testdata::vector("06_server_keepalive_200ok.sip")).unwrap();
        assert!(u.on_response(&other, t0).is_none());
        // Refresh times out: down with Timeout.
        let call_id = u.call_id().to_string();
        let out = u.on_timeout(&call_id, t0 + Duration::from_secs(600));
        assert_eq!(
            out.events,
            vec![UplinkEvent::Down {
                reason: DownReason::Timeout
            }]
        );
        let out = u.stop(t0 + Duration::from_secs(601));
        assert_eq!(out.send[0].expires().unwrap(), Some(0));
        assert_eq!(u.next_deadline(), None);
    }
}
