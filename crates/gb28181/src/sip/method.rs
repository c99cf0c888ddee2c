//! SIP request methods.

use std::fmt;

/// A SIP request method. Method names are case-sensitive (RFC 3261 7.1); unknown methods are
/// kept verbatim so that the server can answer `405`/`501` instead of dropping them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// REGISTER (RFC 3261).
    Register,
    /// MESSAGE (RFC 3428): every MANSCDP exchange.
    Message,
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// SUBSCRIBE (RFC 6665): catalog / alarm / position subscriptions.
    Subscribe,
    /// NOTIFY.
    Notify,
    /// INFO (RFC 6086): MANSRTSP playback control.
    Info,
    /// OPTIONS.
    Options,
    /// Any other token.
    Other(Box<str>),
}

impl Method {
    /// Maps a method token.
    pub fn from_token(token: &str) -> Method {
        match token {
            "REGISTER" => Method::Register,
            "MESSAGE" => Method::Message,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "INFO" => Method::Info,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.into()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Message => "MESSAGE",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Info => "INFO",
            Method::Options => "OPTIONS",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `b` may appear in a SIP token (RFC 3261 25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}
