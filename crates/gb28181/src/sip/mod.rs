//! SIP: message model, lenient parser, serializer, TCP stream framer, response builder and
//! transactions.
//!
//! Driving it from a transport:
//! - UDP: [`parse_datagram`] each datagram; the message carries the [`crate::quirks::QuirkSet`]
//!   applied.
//! - TCP: feed received chunks to a [`StreamFramer`] per connection and pull frames.
//! - Pass requests and responses through a [`transaction::TransactionLayer`] before the
//!   application, so that retransmissions are absorbed and our own requests are retransmitted.
//! - Build our requests with [`OutgoingRequest`] (MESSAGE queries, INVITE with [`subject`]),
//!   answer received ones with [`ResponseBuilder`], and continue an INVITE session with
//!   [`Dialog`] (ACK for the 2xx, INFO for playback control, BYE).

pub mod dialog;
pub mod error;
pub mod framer;
pub mod header;
pub mod message;
pub mod method;
pub mod parse;
pub mod request;
pub mod response;
pub mod transaction;
pub mod uri;
pub mod values;

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

pub use dialog::{subject, Dialog};
pub use error::SipError;
pub use framer::{Frame, FrameError, StreamFramer};
pub use header::{Header, HeaderName};
pub use message::{Message, RequestLine, StartLine, StatusLine};
pub use method::Method;
pub use parse::{parse_datagram, parse_message, BodyFraming, ParseLimits};
pub use request::OutgoingRequest;
pub use response::ResponseBuilder;
pub use uri::SipUri;
pub use values::{CSeq, GbVersion, MediaType, NameAddr, Param, Via};

/// The transport a message came in on or must leave on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, our requests are retransmitted.
    Udp,
    /// TCP: reliable, no retransmission; a dropped connection means the peer is gone.
    Tcp,
}

impl Transport {
    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Whether the transport is reliable (no retransmissions, zero-length wait timers).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The remote end of a message: transport plus socket address. For TCP the server maps the
/// address to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: Transport,
    /// Remote socket address.
    pub addr: SocketAddr,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr,
        }
    }

    /// A TCP peer.
    pub fn tcp(addr: SocketAddr) -> Peer {
        Peer {
            transport: Transport::Tcp,
            addr,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// Bytes the caller must send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub peer: Peer,
    /// The serialized message.
    pub bytes: Bytes,
}
