//! GB/T 28181: sans-IO SIP, digest auth, MANSCDP XML and SDP; the SIP server, device registry and
//! PS-over-RTP media sessions.
//!
//! Everything in this crate except the [`server`] module is sans-IO: functions take bytes, a
//! source address and the current time, and return parsed values, events and bytes to send with
//! their destination. No module reads a clock, opens a socket or spawns a task. Timers are exposed
//! as a "next deadline" plus a `handle_timeout(now)` entry point on each state machine.
//!
//! Module map:
//! - [`sip`]: SIP message parser/serializer, TCP stream framer, response builder, transactions.
//! - [`digest`]: server-side digest challenge/verification with failure bans; client-side
//!   authorization for the cascade uplink.
//! - [`manscdp`]: MANSCDP XML bodies (Query/Response/Notify/Control) in UTF-8 or GB encodings.
//! - [`catalog`]: multi-packet Catalog response assembler.
//! - [`sdp`]: the GB flavour of SDP (`y=`, `f=`, `s=Play|Playback|Download|Talk`).
//! - [`ssrc`]: the GB SSRC allocator.
//! - [`registry`]: device registration and liveness state machine.
//! - [`uplink`]: registering upward to an upper platform (cascade) with keepalives.
//! - [`quirks`]: every device quirk this crate tolerates, by name.
//! - [`gbid`]: the GB ID types, re-exported from `vigil_core::id` (the only ID parser).
//! - [`subscription`]: catalog SUBSCRIBE/NOTIFY, subscriber side.
//! - [`play`]: live-video INVITE sessions on device channels, with retry backoff.
//! - [`uas`]: answering INVITEs we receive (100 Trying, CANCEL → 487).
//! - [`server`]: the tokio SIP server, media sessions and uplinks around all of the above
//!   (the only module that does I/O).
//!
//! How [`server`] drives them (one task owning the state machines):
//! 1. Receive: UDP datagram → [`sip::parse_datagram`]; TCP bytes → the connection's
//!    [`sip::StreamFramer`] (answer [`sip::Frame::Ping`] with a CRLF).
//! 2. Requests → [`sip::transaction::TransactionLayer::on_request`]; a new request from a
//!    device → [`registry::Registry::handle_request`]; send its response with
//!    `TransactionLayer::respond`; write its events to the status history; act on
//!    `QueryCatalog`/`QueryDeviceInfo` with [`registry::Registry::build_query`] and
//!    [`catalog::CatalogAssembler::expect`]; route `RequestOutcome::manscdp` catalog responses to
//!    [`catalog::CatalogAssembler::push_message`]. Requests with `not_handled` (INVITE, BYE,
//!    NOTIFY, INFO) and requests from the upper platform belong to the server.
//! 3. Responses → `TransactionLayer::on_response`; uplink responses →
//!    [`uplink::UplinkClient::on_response`].
//! 4. Timers: sleep until the minimum of every `next_deadline()` and call each
//!    `handle_timeout(now)`; send what they return, feed `ClientTimeout`s of uplink requests to
//!    [`uplink::UplinkClient::on_timeout`].
//! 5. A TCP connection closes → [`registry::Registry::connection_closed`].
//! 6. Catalog subscriptions: [`subscription::CatalogSubscriptions`] after a device comes online;
//!    NOTIFYs and MESSAGE `<Notify>` bodies become catalog changes.
//! 7. Media: [`play::PlayManager`] builds the INVITE ([`sdp::Offer`], SSRC from
//!    [`ssrc::SsrcAllocator`]), checks the answer ([`sdp::check_answer`]), ACKs, hangs up and
//!    retries with backoff; the server receives the RTP with `vigil_media`'s RFC 4571 decoder
//!    (which also detects the interleaved `$` framing some devices use), RTP receiver and PS
//!    demuxer (which also reads the gb28181-rs PES header layout).

pub mod catalog;
pub mod digest;
pub mod gbid;
pub mod manscdp;
pub mod play;
pub mod quirks;
pub mod registry;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod ssrc;
pub mod subscription;
pub mod time;
pub mod token;
pub mod uas;
pub mod uplink;

#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod vector_tests;
