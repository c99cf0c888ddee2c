//! SIP transactions (RFC 3261 17, with the RFC 6026 "Accepted" state), sans-IO.
//!
//! Server side: a request is keyed by (branch, sent-by, method) — ACK maps to its INVITE — so a
//! UDP retransmission is answered with the cached response instead of reaching the application
//! twice. Client side: our requests are retransmitted over UDP on timers A (INVITE) and E
//! (non-INVITE), never over TCP, and time out after B/F = 64·T1 with an event.
//!
//! Driving it:
//! 1. For every received request call [`TransactionLayer::on_request`]; answer
//!    [`Incoming::Request`]s with [`TransactionLayer::respond`] and send the returned
//!    [`Transmit`]; send [`Incoming::Retransmission`]'s bytes as they are.
//! 2. For our requests call [`TransactionLayer::send_request`] and send the bytes; feed every
//!    received response to [`TransactionLayer::on_response`].
//! 3. Sleep until [`TransactionLayer::next_deadline`] and call
//!    [`TransactionLayer::handle_timeout`]; send its transmits, act on its timeouts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use super::error::SipError;
use super::header::HeaderName;
use super::message::Message;
use super::method::Method;
use super::{Peer, Transmit};

/// RFC 3261 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network, default 5 s.
    pub t4: Duration,
    /// How long an INVITE server transaction waits for the application's final answer
    /// before it is dropped, default 3 min.
    pub invite_answer_timeout: Duration,
    /// Maximum number of live transactions (each side); beyond it new ones are refused so that
    /// a flood cannot exhaust memory.
    pub max_transactions: usize,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            invite_answer_timeout: Duration::from_secs(180),
            max_transactions: 200_000,
        }
    }
}

impl TimerConfig {
    fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    /// Top Via branch (or an RFC 2543 composite when the branch lacks the magic cookie).
    pub branch: String,
    /// Top Via sent-by.
    pub sent_by: String,
    /// Method; ACK is mapped to INVITE.
    pub method: Method,
}

/// Identifies a client transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// Our top Via branch.
    pub branch: String,
    /// Method of the request (CSeq method of its responses).
    pub method: Method,
}

/// Transaction errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransactionError {
    /// The message lacks or has a broken header needed for matching.
    #[error("cannot match transaction: {0}")]
    Sip(#[from] SipError),
    /// A request we send must carry a Via branch.
    #[error("request has no Via branch")]
    MissingBranch,
    /// `respond` for a transaction that does not exist (anymore).
    #[error("no server transaction {0:?}")]
    UnknownServerTransaction(ServerKey),
    /// `respond` after a final response.
    #[error("server transaction {0:?} already sent a final response")]
    AlreadyFinal(ServerKey),
    /// `send_request` with a branch already in use.
    #[error("client transaction {0:?} already exists")]
    DuplicateClientTransaction(ClientKey),
    /// Too many live transactions.
    #[error("transaction table full ({limit} transactions)")]
    Overloaded {
        /// The limit.
        limit: usize,
    },
    /// A response passed where a request is needed, or vice versa.
    #[error("expected a {expected}")]
    WrongKind {
        /// "request" or "response".
        expected: &'static str,
    },
}

/// What to do with a received request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request for the application; answer with [`TransactionLayer::respond`].
    Request {
        /// Transaction to respond on.
        key: ServerKey,
        /// The request.
        request: Message,
        /// For CANCEL: the pending INVITE transaction it cancels, if any.
        cancels: Option<ServerKey>,
    },
    /// An ACK that is not absorbed by a transaction (ACK for a 2xx): for the dialog layer.
    Ack {
        /// The ACK.
        request: Message,
    },
    /// A retransmitted request: send `resend` (the cached response) if present.
    Retransmission {
        /// Cached response to send again, if one was sent already.
        resend: Option<Transmit>,
    },
    /// An ACK for a non-2xx final response, absorbed.
    Absorbed,
}

/// What to do with a received response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// The first copy of a response: for the application. `send` holds an ACK the layer
    /// generated (non-2xx final response to INVITE).
    Deliver {
        /// The transaction.
        key: ClientKey,
        /// The response.
        response: Message,
        /// Bytes to send as a consequence.
        send: Option<Transmit>,
    },
    /// A retransmitted final response: send `resend` (our ACK) if present.
    Retransmission {
        /// The transaction.
        key: ClientKey,
        /// Bytes to send again.
        resend: Option<Transmit>,
    },
    /// A response that matches no transaction.
    Stray {
        /// The response.
        response: Message,
    },
}

/// Timer-driven output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerEvent {
    /// Retransmit these bytes.
    Transmit(Transmit),
    /// Our request got no final response within 64·T1 (timer B or F): treat as 408.
    ClientTimeout {
        /// The transaction.
        key: ClientKey,
        /// The destination that did not answer.
        peer: Peer,
    },
    /// Our final response was never acknowledged (timer H, or the 2xx ACK wait).
    ServerTimeout {
        /// The transaction.
        key: ServerKey,
        /// The peer that did not acknowledge.
        peer: Peer,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Received, no response yet (non-INVITE "Trying"; INVITE before any response).
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug)]
struct ServerTxn {
    key: Arc<ServerKey>,
    peer: Peer,
    state: ServerState,
    last_response: Option<Bytes>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    deadline: Option<Instant>,
    dialog: Option<(String, u32)>,
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
}

#[derive(Debug)]
struct ClientTxn {
    key: Arc<ClientKey>,
    peer: Peer,
    state: ClientState,
    request: Bytes,
    /// For INVITE: the request, to build the ACK for a non-2xx final response.
    invite: Option<Message>,
    ack: Option<Bytes>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    deadline: Option<Instant>,
    generation: u64,
}

/// What a timer entry wakes: a transaction at a generation (re-arming bumps the generation,
/// so stale entries are recognised without searching the heap). Keys are shared, so arming
/// costs no allocation.
#[derive(Debug, Clone)]
enum TimerRef {
    Server(u64, Arc<ServerKey>),
    Client(u64, Arc<ClientKey>),
}

/// A heap entry, ordered by due time, then by arming order.
#[derive(Debug, Clone)]
struct Timer {
    at: Instant,
    seq: u64,
    target: TimerRef,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The transaction layer for one SIP endpoint.
#[derive(Debug, Default)]
pub struct TransactionLayer {
    config: TimerConfig,
    servers: HashMap<Arc<ServerKey>, ServerTxn>,
    clients: HashMap<Arc<ClientKey>, ClientTxn>,
    accepted: HashMap<(String, u32), ServerKey>,
    heap: BinaryHeap<Reverse<Timer>>,
    generation: u64,
}

fn server_key(req: &Message) -> Result<ServerKey, SipError> {
    let via = req.top_via()?;
    let method = match req.method() {
        Some(Method::Ack) => Method::Invite,
        Some(m) => m.clone(),
        None => return Err(SipError::MissingHeader(HeaderName::CSeq)),
    };
    let branch = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => b.to_owned(),
        // RFC 2543 peers: match on Call-ID, CSeq number, From tag and the Via itself.
        other => {
            let from_tag = req.from()?.tag().unwrap_or_default().to_owned();
            format!(
                "rfc2543|{}|{}|{}|{}",
                req.call_id()?,
                req.cseq()?.seq,
                from_tag,
                other.unwrap_or_default()
            )
        }
    };
    Ok(ServerKey {
        branch,
        sent_by: via.sent_by(),
        method,
    })
}

/// Builds the ACK for a non-2xx final response to `invite` (RFC 3261 17.1.1.3): same
/// Request-URI, top Via, From, Call-ID and CSeq number; To from the response; Route copied.
pub fn ack_for_non_2xx(invite: &Message, response: &Message) -> Result<Message, SipError> {
    let uri = match &invite.start {
        super::message::StartLine::Request(r) => r.uri.clone(),
        super::message::StartLine::Response(_) => {
            return Err(SipError::MissingHeader(HeaderName::Via))
        }
    };
    let mut ack = Message::request(Method::Ack, uri);
    let via = invite
        .header(&HeaderName::Via)
        .ok_or(SipError::MissingHeader(HeaderName::Via))?;
    ack.headers.push(via.clone());
    for name in [HeaderName::Route, HeaderName::MaxForwards] {
        for h in invite.headers_named(&name) {
            ack.headers.push(h.clone());
        }
    }
    for (name, src) in [
        (HeaderName::From, invite),
        (HeaderName::To, response),
        (HeaderName::CallId, invite),
    ] {
        let h = src.header(&name).ok_or(SipError::MissingHeader(name))?;
        ack.headers.push(h.clone());
    }
    let seq = invite.cseq()?.seq;
    ack.push_header(HeaderName::CSeq, format!("{seq} ACK"));
    Ok(ack)
}

impl TransactionLayer {
    /// A layer with the given timers.
    pub fn new(config: TimerConfig) -> Self {
        TransactionLayer {
            config,
            ..Default::default()
        }
    }

    /// Live server and client transactions.
    pub fn len(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.clients.is_empty()
    }

    fn next_gen(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn arm_server(&mut self, key: &ServerKey) {
        let generation = self.next_gen();
        if let Some(t) = self.servers.get_mut(key) {
            t.generation = generation;
            let wake = match (t.retransmit_at, t.deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(w) = wake {
                self.heap.push(Reverse(Timer {
                    at: w,
                    seq: generation,
                    target: TimerRef::Server(generation, t.key.clone()),
                }));
            }
        }
    }

    fn arm_client(&mut self, key: &ClientKey) {
        let generation = self.next_gen();
        if let Some(t) = self.clients.get_mut(key) {
            t.generation = generation;
            let wake = match (t.retransmit_at, t.deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(w) = wake {
                self.heap.push(Reverse(Timer {
                    at: w,
                    seq: generation,
                    target: TimerRef::Client(generation, t.key.clone()),
                }));
            }
        }
    }

    /// Drops heap entries of transactions that were re-armed or removed, so that
    /// [`next_deadline`](Self::next_deadline) is exact.
    fn prune(&mut self) {
        while let Some(Reverse(t)) = self.heap.peek() {
            if self.timer_is_live(&t.target) {
                break;
            }
            self.heap.pop();
        }
    }

    fn timer_is_live(&self, r: &TimerRef) -> bool {
        match r {
            TimerRef::Server(generation, key) => self
                .servers
                .get(&**key)
                .is_some_and(|t| t.generation == *generation),
            TimerRef::Client(generation, key) => self
                .clients
                .get(&**key)
                .is_some_and(|t| t.generation == *generation),
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// Classifies a received request.
    pub fn on_request(
        &mut self,
        request: Message,
        peer: Peer,
        now: Instant,
    ) -> Result<Incoming, TransactionError> {
        if !request.is_request() {
            return Err(TransactionError::WrongKind {
                expected: "request",
            });
        }
        let key = server_key(&request)?;
        let is_ack = request.method() == Some(&Method::Ack);

        if is_ack {
            if let Some(t) = self.servers.get_mut(&key) {
                if t.state == ServerState::Completed {
                    // ACK for our non-2xx final: stop retransmitting, absorb (timer I).
                    t.state = ServerState::Confirmed;
                    t.retransmit_at = None;
                    t.deadline = Some(
                        now + if peer.transport.is_reliable() {
                            Duration::ZERO
                        } else {
                            self.config.t4
                        },
                    );
                    self.arm_server(&key);
                    self.prune();
                    return Ok(Incoming::Absorbed);
                }
                if t.state == ServerState::Confirmed {
                    return Ok(Incoming::Absorbed);
                }
            }
            // ACK for a 2xx travels in its own transaction (new branch): match the dialog.
            if let (Ok(call_id), Ok(cseq)) = (request.call_id(), request.cseq()) {
                if let Some(inv) = self.accepted.remove(&(call_id.into_owned(), cseq.seq)) {
                    if let Some(t) = self.servers.get_mut(&inv) {
                        // Stop 2xx retransmissions; linger to absorb INVITE retransmissions.
                        t.retransmit_at = None;
                        self.arm_server(&inv);
                        self.prune();
                    }
                }
            }
            return Ok(Incoming::Ack { request });
        }

        if let Some(t) = self.servers.get(&key) {
            let resend = t.last_response.clone().map(|bytes| Transmit {
                peer: t.peer,
                bytes,
            });
            return Ok(Incoming::Retransmission { resend });
        }
        if self.servers.len() >= self.config.max_transactions {
            return Err(TransactionError::Overloaded {
                limit: self.config.max_transactions,
            });
        }
        let cancels = if request.method() == Some(&Method::Cancel) {
            let inv = ServerKey {
                method: Method::Invite,
                ..key.clone()
            };
            self.servers.contains_key(&inv).then_some(inv)
        } else {
            None
        };
        // If the application never answers, forget the request after a while so the table
        // cannot fill up: 64·T1 for non-INVITE (the client has given up by then), longer for
        // INVITE whose answer may wait for a media server.
        let unanswered = if key.method == Method::Invite {
            self.config.invite_answer_timeout
        } else {
            self.config.t64()
        };
        let shared = Arc::new(key.clone());
        self.servers.insert(
            shared.clone(),
            ServerTxn {
                key: shared,
                peer,
                state: ServerState::Trying,
                last_response: None,
                retransmit_at: None,
                retransmit_interval: self.config.t1,
                deadline: Some(now + unanswered),
                dialog: None,
                generation: 0,
            },
        );
        self.arm_server(&key);
        self.prune();
        Ok(Incoming::Request {
            key,
            request,
            cancels,
        })
    }

    /// Sends a response on a server transaction and caches it for retransmissions.
    pub fn respond(
        &mut self,
        key: &ServerKey,
        response: Message,
        now: Instant,
    ) -> Result<Transmit, TransactionError> {
        let code = response.status().ok_or(TransactionError::WrongKind {
            expected: "response",
        })?;
        let cfg = self.config;
        let dialog = if key.method == Method::Invite && (200..300).contains(&code) {
            Some((response.call_id()?.into_owned(), response.cseq()?.seq))
        } else {
            None
        };
        let t = self
            .servers
            .get_mut(key)
            .ok_or_else(|| TransactionError::UnknownServerTransaction(key.clone()))?;
        if matches!(
            t.state,
            ServerState::Completed | ServerState::Confirmed | ServerState::Accepted
        ) {
            return Err(TransactionError::AlreadyFinal(key.clone()));
        }
        let bytes = response.to_bytes();
        t.last_response = Some(bytes.clone());
        let reliable = t.peer.transport.is_reliable();
        let transmit = Transmit {
            peer: t.peer,
            bytes,
        };
        if code < 200 {
            t.state = ServerState::Proceeding;
            return Ok(transmit);
        }
        if key.method != Method::Invite {
            // Timer J: linger to answer retransmissions (UDP only).
            if reliable {
                self.servers.remove(key);
            } else {
                t.state = ServerState::Completed;
                t.deadline = Some(now + cfg.t64());
                self.arm_server(key);
            }
        } else if (200..300).contains(&code) {
            // RFC 6026 Accepted: retransmit the 2xx until the ACK (UDP), linger 64·T1 (timer L).
            t.state = ServerState::Accepted;
            t.retransmit_at = (!reliable).then(|| now + cfg.t1);
            t.retransmit_interval = cfg.t1;
            t.deadline = Some(now + cfg.t64());
            t.dialog = dialog.clone();
            if let Some(d) = dialog {
                self.accepted.insert(d, key.clone());
            }
            self.arm_server(key);
        } else {
            // Completed: timer G retransmits (UDP), timer H waits for the ACK.
            t.state = ServerState::Completed;
            t.retransmit_at = (!reliable).then(|| now + cfg.t1);
            t.retransmit_interval = cfg.t1;
            t.deadline = Some(now + cfg.t64());
            self.arm_server(key);
        }
        self.prune();
        Ok(transmit)
    }

    /// Starts a client transaction for `request` (which must carry a Via branch) and returns
    /// the bytes to send.
    pub fn send_request(
        &mut self,
        request: Message,
        peer: Peer,
        now: Instant,
    ) -> Result<(ClientKey, Transmit), TransactionError> {
        let method = request
            .method()
            .cloned()
            .ok_or(TransactionError::WrongKind {
                expected: "request",
            })?;
        let branch = request
            .top_via()?
            .branch()
            .map(str::to_owned)
            .ok_or(TransactionError::MissingBranch)?;
        let key = ClientKey { branch, method };
        if self.clients.contains_key(&key) {
            return Err(TransactionError::DuplicateClientTransaction(key));
        }
        if self.clients.len() >= self.config.max_transactions {
            return Err(TransactionError::Overloaded {
                limit: self.config.max_transactions,
            });
        }
        let bytes = request.to_bytes();
        let reliable = peer.transport.is_reliable();
        let is_invite = key.method == Method::Invite;
        let shared = Arc::new(key.clone());
        self.clients.insert(
            shared.clone(),
            ClientTxn {
                key: shared,
                peer,
                state: ClientState::Calling,
                request: bytes.clone(),
                invite: is_invite.then_some(request),
                ack: None,
                retransmit_at: (!reliable).then(|| now + self.config.t1),
                retransmit_interval: self.config.t1,
                deadline: Some(now + self.config.t64()),
                generation: 0,
            },
        );
        self.arm_client(&key);
        self.prune();
        Ok((key, Transmit { peer, bytes }))
    }

    /// Records the ACK the dialog layer sent for a 2xx to our INVITE, so that a retransmitted
    /// 2xx is re-acknowledged automatically. Returns the bytes to send.
    pub fn ack_2xx(&mut self, key: &ClientKey, ack: &Message) -> Option<Transmit> {
        let t = self.clients.get_mut(key)?;
        let bytes = ack.to_bytes();
        t.ack = Some(bytes.clone());
        Some(Transmit {
            peer: t.peer,
            bytes,
        })
    }

    /// Classifies a received response.
    pub fn on_response(
        &mut self,
        mut response: Message,
        now: Instant,
    ) -> Result<ResponseOutcome, TransactionError> {
        let code = response.status().ok_or(TransactionError::WrongKind {
            expected: "response",
        })?;
        // RFC 3261 8.2.6.2 requires a To tag on final responses; the Hikvision IPC of vector 63
        // omits it. Flag it so the dialog layer matches on Call-ID and From tag alone.
        if code >= 200 && response.to().is_ok_and(|t| t.tag().is_none()) {
            response
                .quirks
                .insert(crate::quirks::Quirk::FinalResponseWithoutToTag);
        }
        let via = response.top_via()?;
        let Some(branch) = via.branch() else {
            return Ok(ResponseOutcome::Stray { response });
        };
        let key = ClientKey {
            branch: branch.to_owned(),
            method: response.cseq()?.method,
        };
        let cfg = self.config;
        let Some(t) = self.clients.get_mut(&key) else {
            return Ok(ResponseOutcome::Stray { response });
        };
        let reliable = t.peer.transport.is_reliable();
        let is_invite = key.method == Method::Invite;
        match t.state {
            ClientState::Completed => {
                let resend = t.ack.clone().map(|bytes| Transmit {
                    peer: t.peer,
                    bytes,
                });
                return Ok(ResponseOutcome::Retransmission { key, resend });
            }
            ClientState::Accepted => {
                if (200..300).contains(&code) {
                    let resend = t.ack.clone().map(|bytes| Transmit {
                        peer: t.peer,
                        bytes,
                    });
                    return Ok(ResponseOutcome::Retransmission { key, resend });
                }
                return Ok(ResponseOutcome::Stray { response });
            }
            ClientState::Calling | ClientState::Proceeding => {}
        }
        if code < 200 {
            if t.state == ClientState::Calling {
                t.state = ClientState::Proceeding;
                if is_invite {
                    // Timer A stops on any provisional response (RFC 3261 17.1.1.2). Timer B
                    // deliberately keeps running (RFC 3261 stops it in Proceeding): a camera
                    // that answers 100 Trying and then nothing must not hold a stream slot
                    // forever, so the INVITE times out 64·T1 after it was sent.
                    t.retransmit_at = None;
                } else {
                    // Timer E continues at T2 in Proceeding.
                    t.retransmit_interval = cfg.t2;
                    t.retransmit_at = t.retransmit_at.map(|_| now + cfg.t2);
                }
                self.arm_client(&key);
                self.prune();
            }
            return Ok(ResponseOutcome::Deliver {
                key,
                response,
                send: None,
            });
        }
        let mut send = None;
        t.retransmit_at = None;
        if is_invite && (200..300).contains(&code) {
            // RFC 6026 Accepted: keep absorbing 2xx retransmissions for timer M.
            t.state = ClientState::Accepted;
            t.deadline = Some(now + cfg.t64());
        } else if is_invite {
            if let Some(inv) = &t.invite {
                let ack = ack_for_non_2xx(inv, &response)?.to_bytes();
                t.ack = Some(ack.clone());
                send = Some(Transmit {
                    peer: t.peer,
                    bytes: ack,
                });
            }
            t.state = ClientState::Completed;
            // Timer D: 32 s on UDP (at least 64·T1 would also do), zero on TCP.
            t.deadline = Some(
                now + if reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(cfg.t64())
                },
            );
        } else {
            // Timer K.
            t.state = ClientState::Completed;
            t.deadline = Some(now + if reliable { Duration::ZERO } else { cfg.t4 });
        }
        // Zero-length wait timers (reliable transport) end the transaction right away.
        if t.deadline == Some(now) {
            self.clients.remove(&key);
        } else {
            self.arm_client(&key);
        }
        self.prune();
        Ok(ResponseOutcome::Deliver {
            key,
            response,
            send,
        })
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<TimerEvent> {
        let mut out = Vec::new();
        while let Some(Reverse(t)) = self.heap.peek() {
            if t.at > now {
                break;
            }
            let Some(Reverse(t)) = self.heap.pop() else {
                break;
            };
            if !self.timer_is_live(&t.target) {
                continue;
            }
            match t.target {
                TimerRef::Server(_, key) => self.fire_server((*key).clone(), now, &mut out),
                TimerRef::Client(_, key) => self.fire_client((*key).clone(), now, &mut out),
            }
        }
        self.prune();
        out
    }

    fn fire_server(&mut self, key: ServerKey, now: Instant, out: &mut Vec<TimerEvent>) {
        let cfg = self.config;
        let Some(t) = self.servers.get_mut(&key) else {
            return;
        };
        if t.deadline.is_some_and(|d| d <= now) {
            let t = self.servers.remove(&key);
            if let Some(t) = t {
                if let Some(d) = &t.dialog {
                    // The ACK removes the dialog entry; if it is still here the 2xx was never
                    // acknowledged.
                    if self.accepted.get(d) == Some(&key) {
                        self.accepted.remove(d);
                        out.push(TimerEvent::ServerTimeout { key, peer: t.peer });
                        return;
                    }
                }
                if t.state == ServerState::Completed && key.method == Method::Invite {
                    out.push(TimerEvent::ServerTimeout { key, peer: t.peer });
                }
            }
            return;
        }
        if let Some(at) = t.retransmit_at {
            if at <= now {
                if let Some(bytes) = t.last_response.clone() {
                    out.push(TimerEvent::Transmit(Transmit {
                        peer: t.peer,
                        bytes,
                    }));
                }
                t.retransmit_interval = (t.retransmit_interval * 2).min(cfg.t2);
                t.retransmit_at = Some(now + t.retransmit_interval);
            }
        }
        self.arm_server(&key);
    }

    fn fire_client(&mut self, key: ClientKey, now: Instant, out: &mut Vec<TimerEvent>) {
        let cfg = self.config;
        let Some(t) = self.clients.get_mut(&key) else {
            return;
        };
        if t.deadline.is_some_and(|d| d <= now) {
            let timed_out = matches!(t.state, ClientState::Calling | ClientState::Proceeding);
            let peer = t.peer;
            self.clients.remove(&key);
            if timed_out {
                out.push(TimerEvent::ClientTimeout { key, peer });
            }
            return;
        }
        if let Some(at) = t.retransmit_at {
            if at <= now {
                out.push(TimerEvent::Transmit(Transmit {
                    peer: t.peer,
                    bytes: t.request.clone(),
                }));
                t.retransmit_interval = if key.method == Method::Invite {
                    t.retransmit_interval * 2
                } else {
                    (t.retransmit_interval * 2).min(cfg.t2)
                };
                t.retransmit_at = Some(now + t.retransmit_interval);
            }
        }
        self.arm_client(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse_datagram, ResponseBuilder};
    use crate::testdata::vector;

    fn udp(a: &str) -> Peer {
        Peer::udp(a.parse().unwrap())
    }

    fn tcp(a: &str) -> Peer {
        Peer::tcp(a.parse().unwrap())
    }

    /// Runs timers until `until`, collecting events with the instant they fired.
    fn run(layer: &mut TransactionLayer, until: Instant) -> Vec<(Instant, TimerEvent)> {
        let mut out = Vec::new();
        while let Some(d) = layer.next_deadline() {
            if d > until {
                break;
            }
            for e in layer.handle_timeout(d) {
                out.push((d, e));
            }
        }
        out
    }

    #[test]
    fn retransmitted_keepalive_is_answered_from_cache_not_redelivered() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let peer = udp("192.168.6.71:5060");
        let req = parse_datagram(vector("05_dahua_keepalive.sip")).unwrap();
        let Incoming::Request { key, request, .. } = l.on_request(req.clone(), peer, t0).unwrap()
        else {
            panic!("expected a new request")
        };
        // A retransmission before we answered: absorbed, nothing to resend.
        assert_eq!(
            l.on_request(req.clone(), peer, t0).unwrap(),
            Incoming::Retransmission { resend: None }
        );
        let resp = ResponseBuilder::new(&request, 200)
            .source(peer.addr)
            .to_tag("1")
            .build()
            .unwrap();
        let sent = l.respond(&key, resp, t0).unwrap();
        match l
            .on_request(req.clone(), peer, t0 + Duration::from_secs(1))
            .unwrap()
        {
            Incoming::Retransmission { resend: Some(t) } => assert_eq!(t, sent),
            other => panic!("{other:?}"),
        }
        // Timer J (64·T1 = 32 s) ends the transaction; then the same branch is new again.
        assert!(run(&mut l, t0 + Duration::from_secs(33)).is_empty());
        assert!(l.is_empty());
        assert!(matches!(
            l.on_request(req, peer, t0).unwrap(),
            Incoming::Request { .. }
        ));
    }

    #[test]
    fn tcp_non_invite_server_transaction_ends_at_final_response() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let req = parse_datagram(vector("05_dahua_keepalive.sip")).unwrap();
        let Incoming::Request { key, request, .. } =
            l.on_request(req, tcp("192.168.6.71:5060"), t0).unwrap()
        else {
            panic!()
        };
        l.respond(
            &key,
            ResponseBuilder::new(&request, 200).build().unwrap(),
            t0,
        )
        .unwrap();
        assert!(l.is_empty());
        assert_eq!(l.next_deadline(), None);
    }

    #[test]
    fn client_non_invite_timers_e_and_f_over_udp() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let req = parse_datagram(vector("07_server_catalog_query.sip")).unwrap();
        let peer = udp("192.168.6.71:5060");
        let (key, _) = l.send_request(req, peer, t0).unwrap();
        let events = run(&mut l, t0 + Duration::from_secs(40));
        let sends: Vec<u128> = events
            .iter()
            .filter(|(_, e)| matches!(e, TimerEvent::Transmit(_)))
            .map(|(at, _)| at.duration_since(t0).as_millis())
            .collect();
        // E: 0.5, 1.5, 3.5, 7.5, then every T2=4 s up to F at 32 s.
        assert_eq!(
            sends,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        let (at, last) = events.last().unwrap();
        assert_eq!(*last, TimerEvent::ClientTimeout { key, peer });
        assert_eq!(at.duration_since(t0), Duration::from_secs(32));
        assert!(l.is_empty());
    }

    #[test]
    fn client_request_over_tcp_is_never_retransmitted() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let req = parse_datagram(vector("61_srs_utest_srs_invite_to_hik_ipc.sip")).unwrap();
        let (key, _) = l.send_request(req, tcp("192.168.3.99:5060"), t0).unwrap();
        let events = run(&mut l, t0 + Duration::from_secs(40));
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(&events[0].1, TimerEvent::ClientTimeout { key: k, .. } if *k == key));
    }

    #[test]
    fn invite_timer_a_doubles_and_stops_on_provisional() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let (key, _) = l
            .send_request(invite, udp("192.168.6.71:5060"), t0)
            .unwrap();
        let ev = run(&mut l, t0 + Duration::from_millis(3600));
        let at: Vec<u128> = ev
            .iter()
            .map(|(t, _)| t.duration_since(t0).as_millis())
            .collect();
        assert_eq!(at, vec![500, 1500, 3500]);
        // Vector 20: 100 Trying stops timer A; vector 21: Dahua's 101 is delivered too.
        let trying = parse_datagram(vector("20_dahua_invite_100trying.sip")).unwrap();
        assert!(matches!(
            l.on_response(trying, t0).unwrap(),
            ResponseOutcome::Deliver { .. }
        ));
        let r101 = parse_datagram(vector("21_dahua_invite_101_dialog_establishement.sip")).unwrap();
        assert!(matches!(
            l.on_response(r101, t0).unwrap(),
            ResponseOutcome::Deliver { .. }
        ));
        assert_eq!(l.next_deadline(), Some(t0 + Duration::from_secs(32)));
        // Vector 22: the 200 OK with SDP; a retransmission of it is re-ACKed from the cache.
        let ok = parse_datagram(vector("22_dahua_invite_200ok_sdp.sip")).unwrap();
        assert!(matches!(
            l.on_response(ok.clone(), t0).unwrap(),
            ResponseOutcome::Deliver { send: None, .. }
        ));
        let ack = parse_datagram(vector("23_server_ack_play.sip")).unwrap();
        let sent = l.ack_2xx(&key, &ack).unwrap();
        match l.on_response(ok, t0).unwrap() {
            ResponseOutcome::Retransmission {
                resend: Some(t), ..
            } => assert_eq!(t, sent),
            other => panic!("{other:?}"),
        }
        // Timer M ends it silently.
        assert!(run(&mut l, t0 + Duration::from_secs(100)).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn invite_non_2xx_is_acked_by_the_layer() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        l.send_request(invite.clone(), udp("192.168.6.71:5060"), t0)
            .unwrap();
        let busy = ResponseBuilder::new(&invite, 486)
            .to_tag("77")
            .build()
            .unwrap();
        let busy = parse_datagram(busy.to_bytes()).unwrap();
        let ResponseOutcome::Deliver {
            send: Some(ack), ..
        } = l.on_response(busy.clone(), t0).unwrap()
        else {
            panic!()
        };
        let ack = parse_datagram(ack.bytes).unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.cseq().unwrap().to_string(), "20 ACK");
        assert_eq!(ack.to().unwrap().tag(), Some("77"));
        assert_eq!(
            ack.top_via().unwrap().branch(),
            invite.top_via().unwrap().branch()
        );
        assert!(matches!(
            l.on_response(busy, t0).unwrap(),
            ResponseOutcome::Retransmission {
                resend: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn server_invite_non_2xx_retransmits_until_ack() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let peer = udp("192.168.6.106:5062");
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let Incoming::Request { key, request, .. } = l.on_request(invite, peer, t0).unwrap() else {
            panic!()
        };
        let resp = ResponseBuilder::new(&request, 488)
            .to_tag("5")
            .build()
            .unwrap();
        l.respond(&key, resp.clone(), t0).unwrap();
        let ev = run(&mut l, t0 + Duration::from_millis(1600));
        assert_eq!(ev.len(), 2); // timer G at 0.5 s and 1.5 s
        let ack = ack_for_non_2xx(&request, &parse_datagram(resp.to_bytes()).unwrap()).unwrap();
        let ack = parse_datagram(ack.to_bytes()).unwrap();
        assert_eq!(
            l.on_request(ack, peer, t0 + Duration::from_secs(2))
                .unwrap(),
            Incoming::Absorbed
        );
        assert!(run(&mut l, t0 + Duration::from_secs(60)).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn server_invite_2xx_retransmitted_until_ack_then_ack_delivered() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let peer = udp("192.168.6.106:5062");
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let Incoming::Request { key, request, .. } = l.on_request(invite, peer, t0).unwrap() else {
            panic!()
        };
        l.respond(
            &key,
            ResponseBuilder::new(&request, 100).build().unwrap(),
            t0,
        )
        .unwrap();
        let ok = ResponseBuilder::new(&request, 200)
            .to_tag("1504032660")
            .build()
            .unwrap();
        l.respond(&key, ok, t0).unwrap();
        assert_eq!(run(&mut l, t0 + Duration::from_millis(600)).len(), 1);
        // Vector 23 is the ACK for exactly this 2xx (same Call-ID and CSeq 20).
        let ack = parse_datagram(vector("23_server_ack_play.sip")).unwrap();
        assert!(matches!(
            l.on_request(ack, peer, t0 + Duration::from_secs(1))
                .unwrap(),
            Incoming::Ack { .. }
        ));
        assert!(run(&mut l, t0 + Duration::from_secs(60)).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn server_2xx_without_ack_times_out() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let peer = udp("192.168.6.106:5062");
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let Incoming::Request { key, request, .. } = l.on_request(invite, peer, t0).unwrap() else {
            panic!()
        };
        l.respond(
            &key,
            ResponseBuilder::new(&request, 200)
                .to_tag("1")
                .build()
                .unwrap(),
            t0,
        )
        .unwrap();
        let ev = run(&mut l, t0 + Duration::from_secs(40));
        assert_eq!(
            ev.last().map(|e| &e.1),
            Some(&TimerEvent::ServerTimeout { key, peer })
        );
    }

    #[test]
    fn cancel_names_the_invite_it_cancels() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let peer = udp("192.168.6.106:5062");
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let Incoming::Request { key: inv_key, .. } =
            l.on_request(invite.clone(), peer, t0).unwrap()
        else {
            panic!()
        };
        let mut cancel = invite;
        if let crate::sip::StartLine::Request(r) = &mut cancel.start {
            r.method = Method::Cancel;
        }
        cancel.set_header(HeaderName::CSeq, "20 CANCEL");
        cancel.body = Bytes::new();
        match l.on_request(cancel, peer, t0).unwrap() {
            Incoming::Request { cancels, key, .. } => {
                assert_eq!(cancels, Some(inv_key));
                assert_eq!(key.method, Method::Cancel);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quirk_final_response_without_to_tag_hikvision_ipc() {
        // Vectors 61 (SRS INVITE over TCP), 62 (100 Trying), 63 (200 OK without To tag).
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let invite = parse_datagram(vector("61_srs_utest_srs_invite_to_hik_ipc.sip")).unwrap();
        let (key, _) = l
            .send_request(invite, tcp("192.168.3.99:5060"), t0)
            .unwrap();
        let trying = parse_datagram(vector("62_srs_utest_hik_ipc_100trying.sip")).unwrap();
        match l.on_response(trying, t0).unwrap() {
            ResponseOutcome::Deliver { response, .. } => assert!(response.quirks.is_empty()),
            other => panic!("{other:?}"),
        }
        let ok = parse_datagram(vector("63_srs_utest_hik_ipc_invite_200ok_sdp.sip")).unwrap();
        match l.on_response(ok, t0).unwrap() {
            ResponseOutcome::Deliver {
                key: k, response, ..
            } => {
                assert_eq!(k, key);
                assert!(response
                    .quirks
                    .contains(crate::quirks::Quirk::FinalResponseWithoutToTag));
            }
            other => panic!("{other:?}"),
        }
        // A tagged 200 OK (vector 22) is not flagged.
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        l.send_request(invite, udp("192.168.6.71:5060"), t0)
            .unwrap();
        let ok = parse_datagram(vector("22_dahua_invite_200ok_sdp.sip")).unwrap();
        match l.on_response(ok, t0).unwrap() {
            ResponseOutcome::Deliver { response, .. } => assert!(response.quirks.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stray_and_wrong_kind() {
        let mut l = TransactionLayer::new(TimerConfig::default());
        let t0 = Instant::now();
        let resp = parse_datagram(vector("06_server_keepalive_200ok.sip")).unwrap();
        assert!(matches!(
            l.on_response(resp.clone(), t0).unwrap(),
            ResponseOutcome::Stray { .. }
        ));
        assert!(matches!(
            l.on_request(resp, udp("1.2.3.4:5"), t0),
            Err(TransactionError::WrongKind { .. })
        ));
        let mut no_branch = parse_datagram(vector("07_server_catalog_query.sip")).unwrap();
        no_branch.set_header(HeaderName::Via, "SIP/2.0/UDP 1.2.3.4:5060");
        assert_eq!(
            l.send_request(no_branch, udp("1.2.3.4:5"), t0).unwrap_err(),
            TransactionError::MissingBranch
        );
    }

    #[test]
    fn overload_is_refused() {
        let cfg = TimerConfig {
            max_transactions: 1,
            ..TimerConfig::default()
        };
        let mut l = TransactionLayer::new(cfg);
        let t0 = Instant::now();
        let a = parse_datagram(vector("05_dahua_keepalive.sip")).unwrap();
        let b = parse_datagram(vector("09_dahua_catalog_response.sip")).unwrap();
        l.on_request(a, udp("1.2.3.4:5"), t0).unwrap();
        assert_eq!(
            l.on_request(b, udp("1.2.3.4:5"), t0).unwrap_err(),
            TransactionError::Overloaded { limit: 1 }
        );
    }
}
