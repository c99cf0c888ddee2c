//! Building a response to a received request (RFC 3261 8.2.6).

use std::net::SocketAddr;

use bytes::Bytes;

use super::error::SipError;
use super::header::{Header, HeaderName};
use super::message::{reason_phrase, Message};
use super::values::{split_outside_quotes, NameAddr};

/// Builds a response that copies Via (all of them, in order), From, To, Call-ID and CSeq from
/// the request, stamps `received`/`rport` on the top Via (RFC 3261 18.2.1, RFC 3581) and adds a
/// To tag when the request had none.
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    request: &'a Message,
    code: u16,
    reason: Option<String>,
    source: Option<SocketAddr>,
    to_tag: Option<String>,
    headers: Vec<Header>,
    body: Option<(String, Bytes)>,
}

impl<'a> ResponseBuilder<'a> {
    /// Starts a response with `code` to `request`.
    pub fn new(request: &'a Message, code: u16) -> Self {
        ResponseBuilder {
            request,
            code,
            reason: None,
            source: None,
            to_tag: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Overrides the reason phrase.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// The address the request came from: sets `received` and fills `rport` on the top Via so
    /// the response goes back through the device's NAT binding.
    pub fn source(mut self, addr: SocketAddr) -> Self {
        self.source = Some(addr);
        self
    }

    /// The To tag to add when the request's To has none (ignored for 100 Trying, and when the
    /// request already carries one, i.e. in-dialog).
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }

    /// Adds a header after the copied ones.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Sets a body with its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// Builds the response. Fails if the request lacks Via, From, To, Call-ID or CSeq, or if
    /// its top Via or To does not parse.
    pub fn build(self) -> Result<Message, SipError> {
        let req = self.request;
        let reason = self
            .reason
            .unwrap_or_else(|| reason_phrase(self.code).to_owned());
        let mut resp = Message::response_with_reason(self.code, &reason);

        let mut first_via = true;
        for h in req.headers_named(&HeaderName::Via) {
            if first_via {
                first_via = false;
                let text = h.value_str();
                let parts = split_outside_quotes(&text, ',');
                let mut top = super::values::Via::parse(parts[0])?;
                if let Some(src) = self.source {
                    let ip = src.ip().to_string();
                    let rport_requested = top.rport().is_some();
                    if rport_requested {
                        top.set_param("rport", Some(&src.port().to_string()));
                    }
                    if rport_requested || top.host.trim_matches(|c| c == '[' || c == ']') != ip {
                        top.set_param("received", Some(&ip));
                    }
                }
                let mut value = top.to_string();
                for p in &parts[1..] {
                    value.push_str(", ");
                    value.push_str(p.trim());
                }
                resp.headers.push(Header::new(HeaderName::Via, value));
            } else {
                resp.headers.push(h.clone());
            }
        }
        if first_via {
            return Err(SipError::MissingHeader(HeaderName::Via));
        }

        let from = req
            .header(&HeaderName::From)
            .ok_or(SipError::MissingHeader(HeaderName::From))?;
        resp.headers.push(from.clone());

        let to = req
            .header(&HeaderName::To)
            .ok_or(SipError::MissingHeader(HeaderName::To))?;
        let parsed_to = NameAddr::parse(HeaderName::To, &to.value_gbk())?;
        match (&self.to_tag, parsed_to.tag()) {
            (Some(tag), None) if self.code > 100 => {
                // Append rather than re-serialize so that display-name bytes survive as sent.
                let mut v = to.value.to_vec();
                v.extend_from_slice(b";tag=");
                v.extend_from_slice(tag.as_bytes());
                resp.headers.push(Header {
                    name: HeaderName::To,
                    value: Bytes::from(v),
                });
            }
            _ => resp.headers.push(to.clone()),
        }

        for name in [HeaderName::CallId, HeaderName::CSeq] {
            let h = req.header(&name).ok_or(SipError::MissingHeader(name))?;
            resp.headers.push(h.clone());
        }
        for h in req.headers_named(&HeaderName::RecordRoute) {
            resp.headers.push(h.clone());
        }
        resp.headers.extend(self.headers);
        if let Some((ct, body)) = self.body {
            resp.headers.push(Header::new(HeaderName::ContentType, ct));
            resp.body = body;
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;
    use crate::testdata::vector;

    #[test]
    fn keepalive_200_matches_the_real_server_answer() {
        // Vector 05 (Dahua keepalive) answered as vector 06 (eXosip): same Via with rport
        // filled, same From/Call-ID/CSeq, To with a tag.
        let req = parse_datagram(vector("05_dahua_keepalive.sip")).unwrap();
        let expected = parse_datagram(vector("06_server_keepalive_200ok.sip")).unwrap();
        let resp = ResponseBuilder::new(&req, 200)
            .source("192.168.6.71:5060".parse().unwrap())
            .to_tag("2798064128")
            .build()
            .unwrap();
        let resp = parse_datagram(resp.to_bytes()).unwrap();
        assert_eq!(resp.status(), Some(200));
        let via = resp.top_via().unwrap();
        assert_eq!(via.rport(), Some(Some(5060)));
        assert_eq!(via.branch(), expected.top_via().unwrap().branch());
        // RFC 3581: received is added whenever rport was requested.
        assert_eq!(via.received(), Some("192.168.6.71".parse().unwrap()));
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            assert_eq!(resp.header(&name), expected.header(&name), "{name}");
        }
    }

    #[test]
    fn received_added_when_source_differs_and_tags_kept_in_dialog() {
        // Vector 24 (in-dialog BYE) from behind a NAT: keep the existing To tag.
        let req = parse_datagram(vector("24_server_bye_play.sip")).unwrap();
        let resp = ResponseBuilder::new(&req, 200)
            .source("10.9.8.7:40000".parse().unwrap())
            .to_tag("new")
            .build()
            .unwrap();
        let via = resp.top_via().unwrap();
        assert_eq!(via.received(), Some("10.9.8.7".parse().unwrap()));
        assert_eq!(via.rport(), Some(Some(40000)));
        assert_eq!(resp.to().unwrap().tag(), Some("1504032660"));
    }

    #[test]
    fn trying_gets_no_tag_and_missing_headers_fail() {
        let req = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let resp = ResponseBuilder::new(&req, 100).to_tag("x").build().unwrap();
        assert_eq!(resp.to().unwrap().tag(), None);
        let mut bad = req.clone();
        bad.remove_header(&HeaderName::CSeq);
        assert_eq!(
            ResponseBuilder::new(&bad, 200).build(),
            Err(SipError::MissingHeader(HeaderName::CSeq))
        );
    }
}
