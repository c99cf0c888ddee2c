//! Header names (long and compact forms) and raw header fields.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

/// A header name, canonicalised: compact forms (RFC 3261 7.3.3) and any casing map to the same
/// variant, and serialization always uses the long form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    /// `Via` / `v`.
    Via,
    /// `From` / `f`.
    From,
    /// `To` / `t`.
    To,
    /// `Call-ID` / `i`.
    CallId,
    /// `CSeq`.
    CSeq,
    /// `Contact` / `m`.
    Contact,
    /// `Expires`.
    Expires,
    /// `Min-Expires`.
    MinExpires,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Content-Type` / `c`.
    ContentType,
    /// `Content-Length` / `l`.
    ContentLength,
    /// `Content-Encoding` / `e`.
    ContentEncoding,
    /// `Subject` / `s`.
    Subject,
    /// `Supported` / `k`.
    Supported,
    /// `Event` / `o`.
    Event,
    /// `Allow-Events` / `u`.
    AllowEvents,
    /// `Subscription-State`.
    SubscriptionState,
    /// `Authorization`.
    Authorization,
    /// `WWW-Authenticate`.
    WwwAuthenticate,
    /// `Proxy-Authorization`.
    ProxyAuthorization,
    /// `Proxy-Authenticate`.
    ProxyAuthenticate,
    /// `User-Agent`.
    UserAgent,
    /// `Server`.
    Server,
    /// `Date`.
    Date,
    /// `Route`.
    Route,
    /// `Record-Route`.
    RecordRoute,
    /// `Allow`.
    Allow,
    /// `X-GB-Ver` (GB/T 28181-2022 annex I; devices spell it `X-GB-ver` too).
    XGbVer,
    /// Any other header, with the name as received.
    Other(Box<str>),
}

impl HeaderName {
    /// Canonicalises a header name as received (case-insensitive, compact forms).
    pub fn from_wire(name: &str) -> HeaderName {
        if name.len() == 1 {
            match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => return HeaderName::Via,
                b'f' => return HeaderName::From,
                b't' => return HeaderName::To,
                b'i' => return HeaderName::CallId,
                b'm' => return HeaderName::Contact,
                b'l' => return HeaderName::ContentLength,
                b'c' => return HeaderName::ContentType,
                b'k' => return HeaderName::Supported,
                b's' => return HeaderName::Subject,
                b'e' => return HeaderName::ContentEncoding,
                b'o' => return HeaderName::Event,
                b'u' => return HeaderName::AllowEvents,
                _ => {}
            }
        }
        const KNOWN: &[(&str, HeaderName)] = &[
            ("via", HeaderName::Via),
            ("from", HeaderName::From),
            ("to", HeaderName::To),
            ("call-id", HeaderName::CallId),
            ("cseq", HeaderName::CSeq),
            ("contact", HeaderName::Contact),
            ("expires", HeaderName::Expires),
            ("min-expires", HeaderName::MinExpires),
            ("max-forwards", HeaderName::MaxForwards),
            ("content-type", HeaderName::ContentType),
            ("content-length", HeaderName::ContentLength),
            ("content-encoding", HeaderName::ContentEncoding),
            ("subject", HeaderName::Subject),
            ("supported", HeaderName::Supported),
            ("event", HeaderName::Event),
            ("allow-events", HeaderName::AllowEvents),
            ("subscription-state", HeaderName::SubscriptionState),
            ("authorization", HeaderName::Authorization),
            ("www-authenticate", HeaderName::WwwAuthenticate),
            ("proxy-authorization", HeaderName::ProxyAuthorization),
            ("proxy-authenticate", HeaderName::ProxyAuthenticate),
            ("user-agent", HeaderName::UserAgent),
            ("server", HeaderName::Server),
            ("date", HeaderName::Date),
            ("route", HeaderName::Route),
            ("record-route", HeaderName::RecordRoute),
            ("allow", HeaderName::Allow),
            ("x-gb-ver", HeaderName::XGbVer),
        ];
        for (k, v) in KNOWN {
            if name.eq_ignore_ascii_case(k) {
                return v.clone();
            }
        }
        HeaderName::Other(name.into())
    }

    /// The long form used when serializing.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Subject => "Subject",
            HeaderName::Supported => "Supported",
            HeaderName::Event => "Event",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::Authorization => "Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Date => "Date",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Allow => "Allow",
            HeaderName::XGbVer => "X-GB-Ver",
            HeaderName::Other(s) => s,
        }
    }

    /// Whether two names denote the same header (unknown names compare case-insensitively).
    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// Headers whose value may be a comma-separated list of elements (RFC 3261 7.3.1).
    /// Authorization and WWW-Authenticate are excluded: their commas separate parameters.
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Supported
                | HeaderName::Allow
                | HeaderName::AllowEvents
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field: canonical name and the raw value bytes (folding already unfolded, leading
/// and trailing whitespace trimmed). Values may hold non-UTF-8 bytes (GBK display names,
/// subjects); they are decoded only when asked.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name.
    pub name: HeaderName,
    /// Raw value.
    pub value: Bytes,
}

impl Header {
    /// A header from a name and a text value.
    pub fn new(name: HeaderName, value: impl Into<String>) -> Header {
        Header {
            name,
            value: Bytes::from(value.into()),
        }
    }

    /// The value as text; invalid UTF-8 is replaced (use [`Header::value_gbk`] for display
    /// names from Chinese devices).
    pub fn value_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }

    /// The value decoded as UTF-8 when valid, otherwise as GB18030 (which covers GB2312/GBK).
    pub fn value_gbk(&self) -> Cow<'_, str> {
        match std::str::from_utf8(&self.value) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                encoding_rs::GB18030
                    .decode_without_bom_handling(&self.value)
                    .0
            }
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_and_casing() {
        for (wire, canon) in [
            ("v", HeaderName::Via),
            ("F", HeaderName::From),
            ("t", HeaderName::To),
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("CALL-ID", HeaderName::CallId),
            ("cseq", HeaderName::CSeq),
            ("X-GB-ver", HeaderName::XGbVer),
            ("www-authenticate", HeaderName::WwwAuthenticate),
        ] {
            assert_eq!(HeaderName::from_wire(wire), canon, "{wire}");
        }
        assert_eq!(
            HeaderName::from_wire("X-Custom"),
            HeaderName::Other("X-Custom".into())
        );
        assert!(HeaderName::from_wire("x-custom").matches(&HeaderName::from_wire("X-CUSTOM")));
    }

    #[test]
    fn gbk_value_decoding() {
        // "大华" in GB2312, as Dahua devices put Chinese names into display names.
        let h = Header {
            name: HeaderName::From,
            value: Bytes::from_static(b"\xb4\xf3\xbb\xaa <sip:1@2>"),
        };
        assert_eq!(h.value_gbk(), "大华 <sip:1@2>");
        assert!(h.value_str().contains('\u{fffd}'));
    }
}
