//! Live-video sessions we open on device channels (INVITE `s=Play`), sans-IO.
//!
//! One session per channel: INVITE with our SDP offer (PS/90000, `y=` SSRC from the
//! [`SsrcAllocator`]) → provisional answers → 2xx with the device's answer → ACK, media flows →
//! BYE when we stop. Every failure (refusal, no answer within `invite_timeout`, a bad answer,
//! the device hanging up, the caller reporting that media stopped) ends the attempt with a
//! [`PlayEvent::Failed`] and schedules a [`PlayEvent::RetryDue`] with exponential backoff, reset
//! once a stream has stayed up for `healthy_after`.
//!
//! The caller owns the media sockets: it binds a port (UDP, or a TCP listener for
//! [`MediaTransport::TcpPassive`]) *before* calling [`PlayManager::invite`], starts receiving on
//! [`PlayEvent::Started`] (connecting to [`MediaPlan::remote`] for
//! [`MediaTransport::TcpActive`]), and closes them on [`PlayEvent::Failed`] /
//! [`PlayEvent::Stopped`] (matched by Call-ID, since a retry of the same channel is a new
//! call).
//!
//! Drive it like the other state machines: requests go through the transaction layer, every
//! response whose Call-ID is a session's to [`PlayManager::on_response`] (hand the returned ACK
//! to `TransactionLayer::ack_2xx`), transaction timeouts to
//! [`PlayManager::on_transaction_timeout`], a BYE from the device to [`PlayManager::on_bye`],
//! and [`PlayManager::handle_timeout`] at [`PlayManager::next_deadline`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::gbid::{DomainCode, GbId};
use crate::quirks::QuirkSet;
use crate::sdp::{check_answer, MediaTransport, Offer, OfferKind, Sdp};
use crate::sip::{
    subject, Dialog, Header, HeaderName, Message, Method, OutgoingRequest, Peer, SipError,
    StartLine,
};
use crate::ssrc::{Ssrc, SsrcAllocator, SsrcError, StreamKind};
use crate::token::TokenGen;

/// A channel of a device: what a live session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    /// The registered device (IPC, NVR, lower platform).
    pub device: GbId,
    /// The channel (catalog item) ID.
    pub channel: GbId,
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.device, self.channel)
    }
}

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayConfig {
    /// Give up on an INVITE without a final response after this long (a device that never
    /// answers must not hold the channel). Default 15 s.
    pub invite_timeout: Duration,
    /// First retry delay after a failure; doubles per consecutive failure. Default 2 s.
    pub retry_initial: Duration,
    /// Longest retry delay. Default 120 s.
    pub retry_max: Duration,
    /// A stream that stayed up this long resets the backoff. Default 60 s.
    pub healthy_after: Duration,
    /// How long a 2xx to an INVITE we gave up on is still acknowledged and hung up. Default
    /// 64 s.
    pub abandoned_linger: Duration,
    /// Our User-Agent.
    pub user_agent: String,
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            invite_timeout: Duration::from_secs(15),
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(120),
            healthy_after: Duration::from_secs(60),
            abandoned_linger: Duration::from_secs(64),
            user_agent: "vigil".into(),
        }
    }
}

/// Why a session attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlayError {
    /// The device refused the INVITE.
    #[error("channel {key}: INVITE refused with {code} {reason}")]
    Rejected {
        /// Channel.
        key: ChannelKey,
        /// Status code.
        code: u16,
        /// Reason phrase as sent.
        reason: String,
    },
    /// No final response within `invite_timeout` (or the transaction timed out).
    #[error("channel {key}: INVITE not answered within {after:?}")]
    NoAnswer {
        /// Channel.
        key: ChannelKey,
        /// How long we waited.
        after: Duration,
    },
    /// The 2xx carried an SDP answer we cannot use.
    #[error("channel {key}: unusable SDP answer: {reason}")]
    BadAnswer {
        /// Channel.
        key: ChannelKey,
        /// Why.
        reason: String,
    },
    /// The device sent BYE.
    #[error("channel {key}: the device ended the session (BYE)")]
    HungUp {
        /// Channel.
        key: ChannelKey,
    },
    /// The caller reported that media stopped or was unusable.
    #[error("channel {key}: media failed: {reason}")]
    Media {
        /// Channel.
        key: ChannelKey,
        /// Why.
        reason: String,
    },
    /// A session for this channel is already in progress.
    #[error("channel {key}: a session is already in progress")]
    Busy {
        /// Channel.
        key: ChannelKey,
    },
    /// No SSRC available.
    #[error("channel {key}: {source}")]
    Ssrc {
        /// Channel.
        key: ChannelKey,
        /// The allocator's error.
        source: SsrcError,
    },
}

/// What to start receiving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlan {
    /// Channel.
    pub key: ChannelKey,
    /// The call (session) this media belongs to.
    pub call_id: String,
    /// RTP SSRC to accept (the answer's `y=`, else ours).
    pub ssrc: Ssrc,
    /// Our transport role, as offered.
    pub transport: MediaTransport,
    /// The device's media address from the answer (where to connect for TCP active; the
    /// expected source otherwise).
    pub remote: Option<SocketAddr>,
    /// Quirks seen in the answer.
    pub quirks: QuirkSet,
}

/// Session events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayEvent {
    /// The device accepted: start receiving.
    Started(MediaPlan),
    /// The attempt `call_id` failed: release its media resources; it is retried (a
    /// [`PlayEvent::RetryDue`] follows after `retry_in`).
    Failed {
        /// Channel.
        key: ChannelKey,
        /// The failed call.
        call_id: String,
        /// Why.
        error: PlayError,
        /// Backoff before the retry.
        retry_in: Duration,
    },
    /// The backoff is over: call [`PlayManager::invite`] again if the channel is still wanted
    /// (or [`PlayManager::stop`] if not).
    RetryDue {
        /// Channel.
        key: ChannelKey,
    },
    /// The session was stopped by the caller (or the device went away): release media.
    Stopped {
        /// Channel.
        key: ChannelKey,
        /// The call, if one was in progress.
        call_id: Option<String>,
    },
}

/// Requests to send and events.
#[derive(Debug, Clone, Default)]
pub struct PlayOutput {
    /// Requests for the transaction layer (`send_request`), with their destination.
    pub send: Vec<(Message, Peer)>,
    /// An ACK for a 2xx: send it and record it with `TransactionLayer::ack_2xx` so that a
    /// retransmitted 2xx is acknowledged again.
    pub ack: Option<(Message, Peer)>,
    /// Events.
    pub events: Vec<PlayEvent>,
}

/// What a caller supplies to open a session.
#[derive(Debug, Clone)]
pub struct InviteParams {
    /// Channel.
    pub key: ChannelKey,
    /// Where the device is (its registration).
    pub device_peer: Peer,
    /// Our SIP address as the device reaches us (Via, Contact).
    pub local_sip: SocketAddr,
    /// Our media address in the SDP (the advertised / external IP).
    pub media_ip: IpAddr,
    /// Our media port (UDP socket or TCP listener; for TCP active, 9).
    pub media_port: u16,
    /// Our transport role.
    pub transport: MediaTransport,
}

/// A session's phase, for status views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayPhase {
    /// INVITE sent.
    Inviting {
        /// When it was sent.
        since: Instant,
        /// A provisional response arrived.
        provisional: bool,
    },
    /// Media is flowing (as far as signalling knows).
    Established {
        /// Since when.
        since: Instant,
    },
    /// Waiting before the next attempt.
    Backoff {
        /// When the retry is due.
        until: Instant,
        /// Consecutive failures.
        failures: u32,
    },
    /// The retry is due; waiting for the caller to invite again.
    RetryPending,
}

#[derive(Debug)]
struct Session {
    key: ChannelKey,
    peer: Peer,
    local: SocketAddr,
    phase: PlayPhase,
    call_id: Option<String>,
    invite: Option<Message>,
    offer: Option<Sdp>,
    ssrc: Option<Ssrc>,
    transport: MediaTransport,
    dialog: Option<Dialog>,
    failures: u32,
    deadline: Option<Instant>,
}

#[derive(Debug)]
struct Abandoned {
    invite: Message,
    peer: Peer,
    local: SocketAddr,
    until: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Session(ChannelKey),
    Abandoned(String),
}

/// Every live session we hold. See the module documentation.
#[derive(Debug)]
pub struct PlayManager {
    config: PlayConfig,
    our_id: GbId,
    domain: DomainCode,
    tokens: TokenGen,
    ssrc: SsrcAllocator,
    sessions: HashMap<ChannelKey, Session>,
    by_call_id: HashMap<String, ChannelKey>,
    abandoned: HashMap<String, Abandoned>,
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    cseq: u32,
}

/// Builds the CANCEL for an INVITE we sent (RFC 3261 9.1): same Request-URI, top Via, From,
/// To, Call-ID and CSeq number; Route copied.
pub fn cancel_for(invite: &Message) -> Result<Message, SipError> {
    let uri = match &invite.start {
        StartLine::Request(r) => r.uri.clone(),
        StartLine::Response(_) => return Err(SipError::MissingHeader(HeaderName::CSeq)),
    };
    let mut m = Message::request(Method::Cancel, uri);
    let via = invite
        .header(&HeaderName::Via)
        .ok_or(SipError::MissingHeader(HeaderName::Via))?;
    m.headers.push(via.clone());
    for h in invite.headers_named(&HeaderName::Route) {
        m.headers.push(h.clone());
    }
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        let h = invite.header(&name).ok_or(SipError::MissingHeader(name))?;
        m.headers.push(h.clone());
    }
    let seq = invite.cseq()?.seq;
    m.push_header(HeaderName::CSeq, format!("{seq} CANCEL"));
    m.push_header(HeaderName::MaxForwards, "70");
    Ok(m)
}

impl PlayManager {
    /// A manager for our identity; `seed` keys tags, branches and Call-IDs.
    pub fn new(config: PlayConfig, our_id: GbId, domain: DomainCode, seed: [u8; 32]) -> Self {
        PlayManager {
            config,
            our_id,
            ssrc: SsrcAllocator::new(&domain),
            domain,
            tokens: TokenGen::new(seed),
            sessions: HashMap::new(),
            by_call_id: HashMap::new(),
            abandoned: HashMap::new(),
            heap: BinaryHeap::new(),
            cseq: 0,
        }
    }

    /// The phase of a channel's session.
    pub fn phase(&self, key: &ChannelKey) -> Option<PlayPhase> {
        self.sessions.get(key).map(|s| s.phase)
    }

    /// The channel a Call-ID belongs to (sessions in progress only).
    pub fn channel_of(&self, call_id: &str) -> Option<ChannelKey> {
        self.by_call_id.get(call_id).copied()
    }

    /// Whether a Call-ID is one of ours (a session, or an INVITE we gave up on).
    pub fn owns_call_id(&self, call_id: &str) -> bool {
        self.by_call_id.contains_key(call_id) || self.abandoned.contains_key(call_id)
    }

    /// Sessions held (any phase).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every channel with a session.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelKey> {
        self.sessions.keys()
    }

    fn arm(&mut self, key: &ChannelKey, at: Option<Instant>) {
        if let Some(s) = self.sessions.get_mut(key) {
            s.deadline = at;
            if let Some(at) = at {
                self.heap.push(Reverse((at, Timer::Session(*key))));
            }
        }
    }

    /// Opens (or retries) the session of a channel. Returns the INVITE for the transaction
    /// layer and its destination.
    pub fn invite(&mut self, p: InviteParams, now: Instant) -> Result<(Message, Peer), PlayError> {
        let key = p.key;
        let failures = match self.sessions.get(&key) {
            Some(s)
                if matches!(
                    s.phase,
                    PlayPhase::Inviting { .. } | PlayPhase::Established { .. }
                ) =>
            {
                return Err(PlayError::Busy { key })
            }
            Some(s) => s.failures,
            None => 0,
        };
        let ssrc = self
            .ssrc
            .allocate(StreamKind::Live)
            .map_err(|source| PlayError::Ssrc { key, source })?;
        let offer = Offer {
            kind: OfferKind::Play,
            our_id: self.our_id.to_string(),
            channel_id: key.channel.to_string(),
            ip: p.media_ip,
            port: p.media_port,
            transport: p.transport,
            ssrc,
        }
        .to_sdp();
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let subject = subject(
            key.channel.as_str(),
            &ssrc.to_string(),
            self.our_id.as_str(),
            "0",
        );
        let our_id = self.our_id.to_string();
        let domain = self.domain.to_string();
        let invite = OutgoingRequest {
            method: Method::Invite,
            from_user: &our_id,
            domain: &domain,
            to_user: key.channel.as_str(),
            target: p.device_peer,
            local: p.local_sip,
            cseq: self.cseq,
            call_id: None,
            body: Some(("application/sdp", Bytes::from(offer.to_text()))),
            user_agent: &self.config.user_agent,
            extra_headers: vec![Header::new(HeaderName::Subject, subject)],
        }
        .build(&mut self.tokens);
        let call_id = invite.call_id().map(|c| c.into_owned()).unwrap_or_default();
        if let Some(old) = self.sessions.get(&key).and_then(|s| s.call_id.clone()) {
            self.by_call_id.remove(&old);
        }
        self.by_call_id.insert(call_id.clone(), key);
        self.sessions.insert(
            key,
            Session {
                key,
                peer: p.device_peer,
                local: p.local_sip,
                phase: PlayPhase::Inviting {
                    since: now,
                    provisional: false,
                },
                call_id: Some(call_id),
                invite: Some(invite.clone()),
                offer: Some(offer),
                ssrc: Some(ssrc),
                transport: p.transport,
                dialog: None,
                failures,
                deadline: None,
            },
        );
        self.arm(&key, Some(now + self.config.invite_timeout));
        Ok((invite, p.device_peer))
    }

    fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.config
            .retry_initial
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }

    /// Ends the current attempt of `key` with `error`: releases the SSRC, schedules the retry.
    fn fail(&mut self, key: ChannelKey, error: PlayError, now: Instant, out: &mut PlayOutput) {
        let healthy = self.config.healthy_after;
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if let PlayPhase::Established { since } = s.phase {
            if now.saturating_duration_since(since) >= healthy {
                s.failures = 0;
            }
        }
        s.failures = s.failures.saturating_add(1);
        let failures = s.failures;
        let call_id = s.call_id.take().unwrap_or_default();
        s.invite = None;
        s.offer = None;
        s.dialog = None;
        if let Some(ssrc) = s.ssrc.take() {
            self.ssrc.release(ssrc);
        }
        self.by_call_id.remove(&call_id);
        let delay = self.retry_delay(failures);
        let until = now + delay;
        if let Some(s) = self.sessions.get_mut(&key) {
            s.phase = PlayPhase::Backoff { until, failures };
        }
        self.arm(&key, Some(until));
        out.events.push(PlayEvent::Failed {
            key,
            call_id,
            error,
            retry_in: delay,
        });
    }

    /// Remembers an INVITE we no longer want, so that a late 2xx is acknowledged and hung up.
    fn abandon(&mut self, invite: Message, peer: Peer, local: SocketAddr, now: Instant) {
        if let Ok(call_id) = invite.call_id().map(|c| c.into_owned()) {
            let until = now + self.config.abandoned_linger;
            self.heap
                .push(Reverse((until, Timer::Abandoned(call_id.clone()))));
            self.abandoned.insert(
                call_id,
                Abandoned {
                    invite,
                    peer,
                    local,
                    until,
                },
            );
        }
    }

    fn bye(&mut self, dialog: &mut Dialog, local: SocketAddr) -> (Message, Peer) {
        let peer = dialog.peer;
        (
            dialog.bye(local, &mut self.tokens, &self.config.user_agent),
            peer,
        )
    }

    /// Handles a response to one of our INVITEs (any response with a session's Call-ID and
    /// CSeq method INVITE). `None` if it is not ours.
    pub fn on_response(&mut self, resp: &Message, now: Instant) -> Option<PlayOutput> {
        let code = resp.status()?;
        let cseq = resp.cseq().ok()?;
        if cseq.method != Method::Invite {
            // Answers to our BYE/CANCEL need no action.
            let call_id = resp.call_id().ok()?;
            return self.owns_call_id(&call_id).then(PlayOutput::default);
        }
        let call_id = resp.call_id().ok()?.into_owned();
        let mut out = PlayOutput::default();
        if let Some(a) = self.abandoned.get(&call_id) {
            if (200..300).contains(&code) {
                // A 2xx to an INVITE we gave up on: acknowledge and hang up (RFC 3261 15).
                if let Ok(mut d) = Dialog::from_2xx(&a.invite, resp, a.peer) {
                    let local = a.local;
                    let ack = d.ack(local, &mut self.tokens, &self.config.user_agent);
                    out.ack = Some((ack, a.peer));
                    let bye = self.bye(&mut d, local);
                    out.send.push(bye);
                }
            }
            return Some(out);
        }
        let key = *self.by_call_id.get(&call_id)?;
        let s = self.sessions.get_mut(&key)?;
        let PlayPhase::Inviting { since, .. } = s.phase else {
            // A retransmitted 2xx for an established session is re-ACKed by the transaction
            // layer; nothing to do here.
            return Some(out);
        };
        if code < 200 {
            s.phase = PlayPhase::Inviting {
                since,
                provisional: true,
            };
            return Some(out);
        }
        if !(200..300).contains(&code) {
            let reason = match &resp.start {
                StartLine::Response(r) => r.reason.clone(),
                StartLine::Request(_) => String::new(),
            };
            self.fail(
                key,
                PlayError::Rejected { key, code, reason },
                now,
                &mut out,
            );
            return Some(out);
        }
        let (Some(invite), Some(offer)) = (s.invite.clone(), s.offer.clone()) else {
            return Some(out);
        };
        let peer = s.peer;
        let local = s.local;
        let mut dialog = match Dialog::from_2xx(&invite, resp, peer) {
            Ok(d) => d,
            Err(e) => {
                self.fail(
                    key,
                    PlayError::BadAnswer {
                        key,
                        reason: format!("cannot form a dialog: {e}"),
                    },
                    now,
                    &mut out,
                );
                return Some(out);
            }
        };
        out.ack = Some((
            dialog.ack(local, &mut self.tokens, &self.config.user_agent),
            peer,
        ));
        let answer = Sdp::parse(&resp.body)
            .map_err(|e| e.to_string())
            .and_then(|a| match a.video() {
                Some(_) => Ok(a),
                None => Err("no video media section".to_owned()),
            });
        let answer = match answer {
            Ok(a) => a,
            Err(reason) => {
                let bye = self.bye(&mut dialog, local);
                out.send.push(bye);
                self.fail(key, PlayError::BadAnswer { key, reason }, now, &mut out);
                return Some(out);
            }
        };
        let offered = s.transport;
        let answered = answer.media_transport().map(MediaTransport::counterpart);
        let tcp = |t: MediaTransport| t != MediaTransport::Udp;
        // A TCP answer without a=setup reads as "active" (RFC 4145 default); accept any TCP
        // role answer to a TCP offer as long as the roles do not collide.
        let compatible = match answered {
            Some(a) => {
                a == offered
                    || (tcp(a) && tcp(offered) && answer.video().is_some_and(|v| v.setup.is_none()))
            }
            None => false,
        };
        if !compatible {
            let bye = self.bye(&mut dialog, local);
            out.send.push(bye);
            self.fail(
                key,
                PlayError::BadAnswer {
                    key,
                    reason: format!("answered {answered:?} to a {offered:?} offer"),
                },
                now,
                &mut out,
            );
            return Some(out);
        }
        let check = check_answer(&offer, &answer);
        let remote = match (answer.media_ip(), answer.video()) {
            (Some(ip), Some(v)) if v.port != 0 => Some(SocketAddr::new(ip, v.port)),
            _ => None,
        };
        if offered == MediaTransport::TcpActive && remote.is_none() {
            let bye = self.bye(&mut dialog, local);
            out.send.push(bye);
            self.fail(
                key,
                PlayError::BadAnswer {
                    key,
                    reason: "TCP active offer answered without an address to connect to".into(),
                },
                now,
                &mut out,
            );
            return Some(out);
        }
        let ssrc = match check.ssrc.or(s.ssrc) {
            Some(x) => x,
            None => {
                let bye = self.bye(&mut dialog, local);
                out.send.push(bye);
                self.fail(
                    key,
                    PlayError::BadAnswer {
                        key,
                        reason: "no SSRC".into(),
                    },
                    now,
                    &mut out,
                );
                return Some(out);
            }
        };
        let s = self.sessions.get_mut(&key)?;
        s.dialog = Some(dialog);
        s.phase = PlayPhase::Established { since: now };
        s.deadline = None;
        out.events.push(PlayEvent::Started(MediaPlan {
            key,
            call_id,
            ssrc,
            transport: offered,
            remote,
            quirks: check.quirks,
        }));
        Some(out)
    }

    /// A request of ours timed out in the transaction layer (timer B/F). `None` if the Call-ID
    /// is not a session's.
    pub fn on_transaction_timeout(&mut self, call_id: &str, now: Instant) -> Option<PlayOutput> {
        if self.abandoned.contains_key(call_id) {
            return Some(PlayOutput::default());
        }
        let key = *self.by_call_id.get(call_id)?;
        let mut out = PlayOutput::default();
        let s = self.sessions.get(&key)?;
        if let PlayPhase::Inviting { since, .. } = s.phase {
            let after = now.saturating_duration_since(since);
            self.fail(key, PlayError::NoAnswer { key, after }, now, &mut out);
        }
        Some(out)
    }

    /// A BYE from a device. Returns `None` if it matches no session (answer 481); otherwise
    /// answer 200 OK and act on the output (the media of the call stops; a retry follows).
    pub fn on_bye(&mut self, req: &Message, now: Instant) -> Option<PlayOutput> {
        let call_id = req.call_id().ok()?.into_owned();
        if self.abandoned.remove(&call_id).is_some() {
            return Some(PlayOutput::default());
        }
        let key = *self.by_call_id.get(&call_id)?;
        let mut out = PlayOutput::default();
        self.fail(key, PlayError::HungUp { key }, now, &mut out);
        Some(out)
    }

    /// The caller's media for `call_id` stopped or is unusable (no RTP for N seconds, SSRC or
    /// PS garbage): hang up and retry later. Ignored for a stale Call-ID.
    pub fn media_failed(
        &mut self,
        key: ChannelKey,
        call_id: &str,
        reason: String,
        now: Instant,
    ) -> PlayOutput {
        let mut out = PlayOutput::default();
        let Some(s) = self.sessions.get_mut(&key) else {
            return out;
        };
        if s.call_id.as_deref() != Some(call_id) {
            return out;
        }
        let local = s.local;
        if let Some(mut d) = s.dialog.take() {
            let bye = self.bye(&mut d, local);
            out.send.push(bye);
        } else if let (PlayPhase::Inviting { provisional, .. }, Some(inv)) =
            (s.phase, s.invite.clone())
        {
            let peer = s.peer;
            if provisional {
                if let Ok(c) = cancel_for(&inv) {
                    out.send.push((c, peer));
                }
            }
            self.abandon(inv, peer, local, now);
        }
        self.fail(key, PlayError::Media { key, reason }, now, &mut out);
        out
    }

    /// Stops a channel's session: BYE if established, CANCEL if an INVITE is pending with a
    /// provisional answer; the session is removed and [`PlayEvent::Stopped`] reported.
    pub fn stop(&mut self, key: &ChannelKey, now: Instant) -> PlayOutput {
        let mut out = PlayOutput::default();
        let Some(mut s) = self.sessions.remove(key) else {
            return out;
        };
        if let Some(c) = &s.call_id {
            self.by_call_id.remove(c);
        }
        if let Some(mut d) = s.dialog.take() {
            let bye = self.bye(&mut d, s.local);
            out.send.push(bye);
        } else if let (PlayPhase::Inviting { provisional, .. }, Some(inv)) =
            (s.phase, s.invite.take())
        {
            if provisional {
                if let Ok(c) = cancel_for(&inv) {
                    out.send.push((c, s.peer));
                }
            }
            self.abandon(inv, s.peer, s.local, now);
        }
        if let Some(ssrc) = s.ssrc.take() {
            self.ssrc.release(ssrc);
        }
        out.events.push(PlayEvent::Stopped {
            key: *key,
            call_id: s.call_id,
        });
        out
    }

    /// A device went offline: its sessions are dropped without signalling (there is nobody to
    /// talk to). Returns a [`PlayEvent::Stopped`] per session.
    pub fn forget_device(&mut self, device: &GbId) -> Vec<PlayEvent> {
        let keys: Vec<ChannelKey> = self
            .sessions
            .keys()
            .filter(|k| k.device == *device)
            .copied()
            .collect();
        let mut events = Vec::new();
        for key in keys {
            if let Some(mut s) = self.sessions.remove(&key) {
                if let Some(c) = &s.call_id {
                    self.by_call_id.remove(c);
                }
                if let Some(ssrc) = s.ssrc.take() {
                    self.ssrc.release(ssrc);
                }
                events.push(PlayEvent::Stopped {
                    key,
                    call_id: s.call_id,
                });
            }
        }
        events
    }

    /// A device moved (same registration, new address): in-dialog requests go there.
    pub fn update_peer(&mut self, device: &GbId, peer: Peer) {
        for s in self
            .sessions
            .values_mut()
            .filter(|s| s.key.device == *device)
        {
            s.peer = peer;
            if let Some(d) = s.dialog.as_mut() {
                d.peer = peer;
            }
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) may have work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// INVITE timeouts and backoff expiries due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> PlayOutput {
        let mut out = PlayOutput::default();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, timer))) = self.heap.pop() else {
                break;
            };
            match timer {
                Timer::Abandoned(call_id) => {
                    if self.abandoned.get(&call_id).is_some_and(|a| a.until == t) {
                        self.abandoned.remove(&call_id);
                    }
                }
                Timer::Session(key) => {
                    let Some(s) = self.sessions.get_mut(&key) else {
                        continue;
                    };
                    if s.deadline != Some(t) {
                        continue;
                    }
                    s.deadline = None;
                    match s.phase {
                        PlayPhase::Inviting { since, provisional } => {
                            let (peer, local) = (s.peer, s.local);
                            if let Some(inv) = s.invite.clone() {
                                if provisional {
                                    if let Ok(c) = cancel_for(&inv) {
                                        out.send.push((c, peer));
                                    }
                                }
                                self.abandon(inv, peer, local, now);
                            }
                            let after = now.saturating_duration_since(since);
                            self.fail(key, PlayError::NoAnswer { key, after }, now, &mut out);
                        }
                        PlayPhase::Backoff { .. } => {
                            s.phase = PlayPhase::RetryPending;
                            out.events.push(PlayEvent::RetryDue { key });
                        }
                        PlayPhase::Established { .. } | PlayPhase::RetryPending => {}
                    }
                }
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
    const CH: &str = "34020000001310000001";

    fn setup() -> (PlayManager, InviteParams, Instant) {
        let pm = PlayManager::new(
            PlayConfig::default(),
            GbId::parse("34020000002000000010").unwrap(),
            DomainCode::parse("3402000000").unwrap(),
            [5; 32],
        );
        let p = InviteParams {
            key: ChannelKey {
                device: GbId::parse(DEV).unwrap(),
                channel: GbId::parse(CH).unwrap(),
            },
            device_peer: Peer::udp("192.168.6.71:5060".parse().unwrap()),
            local_sip: "192.168.6.106:5062".parse().unwrap(),
            media_ip: "192.168.6.106".parse().unwrap(),
            media_port: 45056,
            transport: MediaTransport::Udp,
        };
        (pm, p, Instant::now())
    }

    /// The Dahua 200 OK of vector 22 re-addressed to our INVITE (its SDP is the real answer).
    fn dahua_ok(invite: &Message) -> Message {
        let real =
            parse_datagram(crate::testdata::vector("22_dahua_invite_200ok_sdp.sip")).unwrap();
        let resp = ResponseBuilder::new(invite, 200)
            .to_tag("1504032660")
            .header(HeaderName::Contact, format!("<sip:{CH}@192.168.6.71:5060>"))
            .body("application/sdp", real.body.clone())
            .build()
            .unwrap();
        parse_datagram(resp.to_bytes()).unwrap()
    }

    #[test]
    fn invite_is_a_gb_play_invite_and_2xx_starts_media() {
        let (mut pm, p, t0) = setup();
        let (inv, peer) = pm.invite(p.clone(), t0).unwrap();
        let wire = parse_datagram(inv.to_bytes()).unwrap();
        assert_eq!(peer, p.device_peer);
        assert_eq!(
            wire.request_uri().unwrap().unwrap().to_string(),
            format!("sip:{CH}@192.168.6.71:5060")
        );
        let sdp = Sdp::parse(&wire.body).unwrap();
        assert_eq!(sdp.session, crate::sdp::SessionKind::Play);
        let ssrc = sdp.gb_ssrc().unwrap();
        assert!(!ssrc.is_history());
        assert_eq!(
            wire.subject().unwrap(),
            format!("{CH}:{ssrc},34020000002000000010:0")
        );
        // Dahua's 101 then 200 (its SDP says y=0000001002, which wins over ours).
        let out = pm.on_response(&dahua_ok(&wire), t0).unwrap();
        let ack = parse_datagram(out.ack.unwrap().0.to_bytes()).unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.cseq().unwrap().seq, wire.cseq().unwrap().seq);
        let [PlayEvent::Started(plan)] = &out.events[..] else {
            panic!("{:?}", out.events)
        };
        assert_eq!(plan.ssrc.value(), 1002);
        assert_eq!(plan.remote, Some("192.168.6.71:9712".parse().unwrap()));
        assert_eq!(plan.transport, MediaTransport::Udp);
        assert!(matches!(
            pm.phase(&p.key),
            Some(PlayPhase::Established { .. })
        ));
        // Stop: BYE in the dialog, session gone.
        let out = pm.stop(&p.key, t0);
        assert_eq!(out.send[0].0.method(), Some(&Method::Bye));
        assert_eq!(
            out.events,
            vec![PlayEvent::Stopped {
                key: p.key,
                call_id: Some(plan.call_id.clone())
            }]
        );
        assert!(pm.is_empty());
    }

    #[test]
    fn an_invite_never_answered_fails_backs_off_and_retries() {
        let (mut pm, p, t0) = setup();
        let (inv, _) = pm.invite(p.clone(), t0).unwrap();
        let trying = ResponseBuilder::new(&inv, 100).build().unwrap();
        pm.on_response(&parse_datagram(trying.to_bytes()).unwrap(), t0)
            .unwrap();
        assert_eq!(pm.next_deadline(), Some(t0 + Duration::from_secs(15)));
        let out = pm.handle_timeout(t0 + Duration::from_secs(15));
        // A provisional answer came, so the INVITE is CANCELled.
        assert_eq!(out.send[0].0.method(), Some(&Method::Cancel));
        assert!(matches!(
            &out.events[..],
            [PlayEvent::Failed { error: PlayError::NoAnswer { .. }, retry_in, .. }]
                if *retry_in == Duration::from_secs(2)
        ));
        let out = pm.handle_timeout(t0 + Duration::from_secs(17));
        assert_eq!(out.events, vec![PlayEvent::RetryDue { key: p.key }]);
        // Second failure doubles the delay; a late 2xx to the abandoned INVITE is ACKed + BYE.
        let (inv2, _) = pm.invite(p.clone(), t0 + Duration::from_secs(17)).unwrap();
        let out = pm
            .on_response(&dahua_ok(&inv), t0 + Duration::from_secs(18))
            .unwrap();
        assert!(out.ack.is_some());
        assert_eq!(out.send[0].0.method(), Some(&Method::Bye));
        let busy = pm.invite(p.clone(), t0 + Duration::from_secs(18));
        assert!(matches!(busy, Err(PlayError::Busy { .. })));
        let reject = ResponseBuilder::new(&inv2, 486)
            .to_tag("1")
            .build()
            .unwrap();
        let out = pm
            .on_response(
                &parse_datagram(reject.to_bytes()).unwrap(),
                t0 + Duration::from_secs(19),
            )
            .unwrap();
        assert!(matches!(
            &out.events[..],
            [PlayEvent::Failed { error: PlayError::Rejected { code: 486, .. }, retry_in, .. }]
                if *retry_in == Duration::from_secs(4)
        ));
    }

    #[test]
    fn media_failure_hangs_up_and_a_healthy_stream_resets_the_backoff() {
        let (mut pm, p, t0) = setup();
        let (inv, _) = pm.invite(p.clone(), t0).unwrap();
        let out = pm.on_response(&dahua_ok(&inv), t0).unwrap();
        let PlayEvent::Started(plan) = &out.events[0] else {
            panic!()
        };
        let out = pm.media_failed(
            p.key,
            &plan.call_id,
            "no RTP for 10 s".into(),
            t0 + Duration::from_secs(5),
        );
        assert_eq!(out.send[0].0.method(), Some(&Method::Bye));
        assert!(
            matches!(&out.events[..], [PlayEvent::Failed { retry_in, .. }] if *retry_in == Duration::from_secs(2))
        );
        // Stale reports are ignored.
        assert!(pm
            .media_failed(p.key, &plan.call_id, "x".into(), t0)
            .events
            .is_empty());
        pm.handle_timeout(t0 + Duration::from_secs(7));
        let (inv, _) = pm.invite(p.clone(), t0 + Duration::from_secs(7)).unwrap();
        let out = pm
            .on_response(&dahua_ok(&inv), t0 + Duration::from_secs(7))
            .unwrap();
        let PlayEvent::Started(plan) = &out.events[0] else {
            panic!()
        };
        // Up for 2 minutes: the next failure starts the backoff from the beginning.
        let out = pm.media_failed(
            p.key,
            &plan.call_id,
            "stall".into(),
            t0 + Duration::from_secs(127),
        );
        assert!(
            matches!(&out.events[..], [PlayEvent::Failed { retry_in, .. }] if *retry_in == Duration::from_secs(2))
        );
    }

    #[test]
    fn device_bye_and_bad_answers() {
        let (mut pm, p, t0) = setup();
        let (inv, _) = pm.invite(p.clone(), t0).unwrap();
        let out = pm.on_response(&dahua_ok(&inv), t0).unwrap();
        let PlayEvent::Started(plan) = &out.events[0] else {
            panic!()
        };
        let text = format!(
            "BYE sip:34020000002000000010@192.168.6.106:5062 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.6.71:5060;branch=z9hG4bK9\r\n\
             From: <sip:{CH}@3402000000>;tag=1504032660\r\nTo: <sip:34020000002000000010@3402000000>;tag=x\r\n\
             Call-ID: {}\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
            plan.call_id
        );
        let bye = parse_datagram(text.into_bytes()).unwrap();
        let out = pm.on_bye(&bye, t0).unwrap();
        assert!(matches!(
            &out.events[..],
            [PlayEvent::Failed {
                error: PlayError::HungUp { .. },
                ..
            }]
        ));
        assert!(pm.on_bye(&bye, t0).is_none(), "unknown dialog now");

        // A 2xx without SDP: ACK, BYE, failure.
        pm.handle_timeout(t0 + Duration::from_secs(2));
        let (inv, _) = pm.invite(p.clone(), t0 + Duration::from_secs(2)).unwrap();
        let resp = ResponseBuilder::new(&inv, 200).to_tag("7").build().unwrap();
        let out = pm
            .on_response(
                &parse_datagram(resp.to_bytes()).unwrap(),
                t0 + Duration::from_secs(2),
            )
            .unwrap();
        assert!(out.ack.is_some());
        assert_eq!(out.send[0].0.method(), Some(&Method::Bye));
        assert!(matches!(
            &out.events[..],
            [PlayEvent::Failed {
                error: PlayError::BadAnswer { .. },
                ..
            }]
        ));
    }

    #[test]
    fn tcp_active_offer_needs_the_device_address() {
        let (mut pm, mut p, t0) = setup();
        p.transport = MediaTransport::TcpActive;
        p.media_port = 9;
        let (inv, _) = pm.invite(p.clone(), t0).unwrap();
        // Vector 78: Dahua IVSS answering TCP with a=setup:active (it connects) — the wrong role
        // for our active offer.
        let real = parse_datagram(crate::testdata::vector(
            "78_dahua_ivss_invite_200ok_sdp_tcp_active.sip",
        ))
        .unwrap();
        let resp = ResponseBuilder::new(&inv, 200)
            .to_tag("7")
            .body("application/sdp", real.body.clone())
            .build()
            .unwrap();
        let out = pm
            .on_response(&parse_datagram(resp.to_bytes()).unwrap(), t0)
            .unwrap();
        assert!(matches!(
            &out.events[..],
            [PlayEvent::Failed {
                error: PlayError::BadAnswer { .. },
                ..
            }]
        ));
        // The same answer to a TCP passive offer (we listen) is right.
        pm.handle_timeout(t0 + Duration::from_secs(2));
        p.transport = MediaTransport::TcpPassive;
        let (inv, _) = pm.invite(p.clone(), t0 + Duration::from_secs(2)).unwrap();
        let resp = ResponseBuilder::new(&inv, 200)
            .to_tag("7")
            .body("application/sdp", real.body.clone())
            .build()
            .unwrap();
        let out = pm
            .on_response(
                &parse_datagram(resp.to_bytes()).unwrap(),
                t0 + Duration::from_secs(2),
            )
            .unwrap();
        let [PlayEvent::Started(plan)] = &out.events[..] else {
            panic!("{:?}", out.events)
        };
        assert_eq!(plan.transport, MediaTransport::TcpPassive);
        assert_eq!(plan.ssrc.to_string(), "0200005549");
    }

    #[test]
    fn cancel_copies_the_invite_transaction_headers() {
        let (mut pm, p, t0) = setup();
        let (inv, _) = pm.invite(p, t0).unwrap();
        let c = cancel_for(&inv).unwrap();
        assert_eq!(
            c.top_via().unwrap().branch(),
            inv.top_via().unwrap().branch()
        );
        assert_eq!(
            c.cseq().unwrap().to_string(),
            format!("{} CANCEL", inv.cseq().unwrap().seq)
        );
        assert_eq!(c.call_id().unwrap(), inv.call_id().unwrap());
    }
}
