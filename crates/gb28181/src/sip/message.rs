//! The SIP message model, typed accessors and serialization.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::SipError;
use super::header::{Header, HeaderName};
use super::method::Method;
use super::uri::SipUri;
use super::values::{split_outside_quotes, CSeq, GbVersion, MediaType, NameAddr, Via};
use crate::quirks::QuirkSet;

/// `METHOD uri SIP/2.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    /// Method.
    pub method: Method,
    /// Request-URI as received (parse with [`Message::request_uri`]).
    pub uri: String,
}

/// `SIP/2.0 code reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// Status code 100-699.
    pub code: u16,
    /// Reason phrase as received (may be empty; Dahua sends `Dialog Establishement`).
    pub reason: String,
}

/// Request or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// A request.
    Request(RequestLine),
    /// A response.
    Response(StatusLine),
}

/// A SIP request or response.
///
/// Headers keep their raw value bytes and wire order; typed accessors parse on demand and
/// report errors naming the header. The body is raw bytes (MANSCDP bodies are often GB2312).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Start line.
    pub start: StartLine,
    /// Headers in wire order (Content-Length included as received).
    pub headers: Vec<Header>,
    /// Body bytes.
    pub body: Bytes,
    /// Quirks the parser had to apply (empty for messages we build).
    pub quirks: QuirkSet,
}

impl Message {
    /// A request with no headers.
    pub fn request(method: Method, uri: impl fmt::Display) -> Message {
        Message {
            start: StartLine::Request(RequestLine {
                method,
                uri: uri.to_string(),
            }),
            headers: Vec::new(),
            body: Bytes::new(),
            quirks: QuirkSet::new(),
        }
    }

    /// A response with no headers and the standard reason phrase.
    pub fn response(code: u16) -> Message {
        Message::response_with_reason(code, reason_phrase(code))
    }

    /// A response with a given reason phrase.
    pub fn response_with_reason(code: u16, reason: &str) -> Message {
        Message {
            start: StartLine::Response(StatusLine {
                code,
                reason: reason.to_owned(),
            }),
            headers: Vec::new(),
            body: Bytes::new(),
            quirks: QuirkSet::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Message {
        self.push_header(name, value);
        self
    }

    /// Sets the body and its Content-Type (builder style).
    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Message {
        self.set_header(HeaderName::ContentType, content_type);
        self.body = body.into();
        self
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request method, for requests.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request(r) => Some(&r.method),
            StartLine::Response(_) => None,
        }
    }

    /// The status code, for responses.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response(s) => Some(s.code),
            StartLine::Request(_) => None,
        }
    }

    /// The parsed Request-URI, for requests.
    pub fn request_uri(&self) -> Option<Result<SipUri, SipError>> {
        match &self.start {
            StartLine::Request(r) => Some(SipUri::parse(&r.uri)),
            StartLine::Response(_) => None,
        }
    }

    /// First header with this name.
    pub fn header(&self, name: &HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name.matches(name))
    }

    /// All headers with this name, in order.
    pub fn headers_named<'a>(
        &'a self,
        name: &'a HeaderName,
    ) -> impl Iterator<Item = &'a Header> + 'a {
        self.headers.iter().filter(move |h| h.name.matches(name))
    }

    /// First header value as text (lossy).
    pub fn header_str(&self, name: &HeaderName) -> Option<Cow<'_, str>> {
        self.header(name).map(Header::value_str)
    }

    /// Appends a header.
    pub fn push_header(&mut self, name: HeaderName, value: impl Into<String>) {
        self.headers.push(Header::new(name, value));
    }

    /// Replaces every header of this name by one with `value`, at the first one's position.
    pub fn set_header(&mut self, name: HeaderName, value: impl Into<String>) {
        let new = Header::new(name.clone(), value);
        match self.headers.iter().position(|h| h.name.matches(&name)) {
            Some(i) => {
                self.headers[i] = new;
                let mut j = i + 1;
                while j < self.headers.len() {
                    if self.headers[j].name.matches(&name) {
                        self.headers.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.headers.push(new),
        }
    }

    /// Removes every header of this name.
    pub fn remove_header(&mut self, name: &HeaderName) {
        self.headers.retain(|h| !h.name.matches(name));
    }

    fn required(&self, name: HeaderName) -> Result<Cow<'_, str>, SipError> {
        self.header_str(&name).ok_or(SipError::MissingHeader(name))
    }

    /// Every element of a list header (comma-separated across all its header lines).
    pub fn list_elements(&self, name: &HeaderName) -> Vec<String> {
        let mut out = Vec::new();
        for h in self.headers_named(name) {
            let v = h.value_gbk();
            for part in split_outside_quotes(&v, ',') {
                let p = part.trim();
                if !p.is_empty() {
                    out.push(p.to_owned());
                }
            }
        }
        out
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, SipError> {
        let h = self
            .header(&HeaderName::Via)
            .ok_or(SipError::MissingHeader(HeaderName::Via))?;
        let v = h.value_str();
        let first = split_outside_quotes(&v, ',')
            .into_iter()
            .next()
            .unwrap_or_default();
        Via::parse(first)
    }

    /// Every Via, top first.
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        self.list_elements(&HeaderName::Via)
            .iter()
            .map(|s| Via::parse(s))
            .collect()
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr, SipError> {
        let h = self
            .header(&HeaderName::From)
            .ok_or(SipError::MissingHeader(HeaderName::From))?;
        NameAddr::parse(HeaderName::From, &h.value_gbk())
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr, SipError> {
        let h = self
            .header(&HeaderName::To)
            .ok_or(SipError::MissingHeader(HeaderName::To))?;
        NameAddr::parse(HeaderName::To, &h.value_gbk())
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<Cow<'_, str>, SipError> {
        let v = self.required(HeaderName::CallId)?;
        if v.is_empty() {
            return Err(SipError::InvalidHeader {
                name: HeaderName::CallId,
                value: String::new(),
                reason: "empty",
            });
        }
        Ok(v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, SipError> {
        CSeq::parse(&self.required(HeaderName::CSeq)?)
    }

    /// The first Contact, if any (`*` yields an error naming the header).
    pub fn contact(&self) -> Result<Option<NameAddr>, SipError> {
        match self.list_elements(&HeaderName::Contact).first() {
            None => Ok(None),
            Some(c) => NameAddr::parse(HeaderName::Contact, c).map(Some),
        }
    }

    fn parse_u32_header(&self, name: HeaderName) -> Result<Option<u32>, SipError> {
        match self.header_str(&name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| SipError::InvalidHeader {
                    name,
                    value: v.chars().take(64).collect(),
                    reason: "not a 32-bit unsigned integer",
                }),
        }
    }

    /// Expires, seconds.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.parse_u32_header(HeaderName::Expires)
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        self.parse_u32_header(HeaderName::MaxForwards)
    }

    /// Content-Length as received (`None` if absent).
    pub fn content_length(&self) -> Result<Option<u32>, SipError> {
        self.parse_u32_header(HeaderName::ContentLength)
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType>, SipError> {
        match self.header_str(&HeaderName::ContentType) {
            None => Ok(None),
            Some(v) => MediaType::parse(&v)
                .map(Some)
                .ok_or_else(|| SipError::InvalidHeader {
                    name: HeaderName::ContentType,
                    value: v.chars().take(64).collect(),
                    reason: "no type/subtype",
                }),
        }
    }

    /// Subject (GB: `sender:stream,receiver:stream`), decoded leniently.
    pub fn subject(&self) -> Option<Cow<'_, str>> {
        self.header(&HeaderName::Subject).map(Header::value_gbk)
    }

    /// User-Agent, decoded leniently.
    pub fn user_agent(&self) -> Option<Cow<'_, str>> {
        self.header(&HeaderName::UserAgent).map(Header::value_gbk)
    }

    /// Raw `X-GB-Ver` value.
    pub fn x_gb_ver(&self) -> Option<Cow<'_, str>> {
        self.header_str(&HeaderName::XGbVer)
    }

    /// The GB edition from `X-GB-Ver` (`None` if absent or unknown).
    pub fn gb_version(&self) -> Option<GbVersion> {
        self.x_gb_ver().and_then(|v| GbVersion::from_header(&v))
    }

    /// Authorization header values (parse with [`crate::digest::Credentials::parse`]).
    pub fn authorization(&self) -> Option<Cow<'_, str>> {
        self.header_str(&HeaderName::Authorization)
    }

    /// Every WWW-Authenticate value (parse with [`crate::digest::Challenge::parse`]).
    pub fn www_authenticate(&self) -> Vec<Cow<'_, str>> {
        self.headers_named(&HeaderName::WwwAuthenticate)
            .map(Header::value_str)
            .collect()
    }

    /// Serializes: start line, headers in order with long names, then a `Content-Length`
    /// computed from the body (any received Content-Length is replaced).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        match &self.start {
            StartLine::Request(r) => {
                out.put_slice(r.method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(r.uri.as_bytes());
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response(s) => {
                out.put_slice(b"SIP/2.0 ");
                out.put_slice(s.code.to_string().as_bytes());
                out.put_u8(b' ');
                out.put_slice(s.reason.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            if h.name == HeaderName::ContentLength {
                continue;
            }
            out.put_slice(h.name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(&h.value);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Length: ");
        out.put_slice(self.body.len().to_string().as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("start", &self.start)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len());
        if !self.quirks.is_empty() {
            d.field("quirks", &self.quirks);
        }
        d.finish()
    }
}

/// The RFC 3261 reason phrase for the codes this crate sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        423 => "Interval Too Brief",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => match code / 100 {
            1 => "Provisional",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}
