//! Building our out-of-dialog requests (MESSAGE queries to devices, REGISTER/MESSAGE upward).

use std::net::SocketAddr;

use bytes::Bytes;

use super::header::{Header, HeaderName};
use super::message::Message;
use super::method::Method;
use super::{Peer, Transport};
use crate::token::TokenGen;

/// An out-of-dialog request from us to a peer.
#[derive(Debug, Clone)]
pub struct OutgoingRequest<'a> {
    /// Method.
    pub method: Method,
    /// Our ID (From user).
    pub from_user: &'a str,
    /// Our SIP domain (From/To host, as GB peers expect).
    pub domain: &'a str,
    /// The target's ID (Request-URI and To user).
    pub to_user: &'a str,
    /// Where it goes.
    pub target: Peer,
    /// Our address as the peer should see it (Via sent-by, Contact).
    pub local: SocketAddr,
    /// CSeq number.
    pub cseq: u32,
    /// Call-ID; a fresh one is generated when `None`.
    pub call_id: Option<String>,
    /// Body and its Content-Type.
    pub body: Option<(&'a str, Bytes)>,
    /// User-Agent value.
    pub user_agent: &'a str,
    /// More headers, appended before the body (e.g. `Subject` of an INVITE).
    pub extra_headers: Vec<Header>,
}

impl OutgoingRequest<'_> {
    /// Builds the message: Request-URI `sip:to@addr`, Via with rport and a fresh branch, From
    /// with a fresh tag, To without tag, Call-ID, CSeq, Contact, Max-Forwards 70.
    pub fn build(&self, tokens: &mut TokenGen) -> Message {
        let t = self.target.transport;
        let uri = format!("sip:{}@{}", self.to_user, self.target.addr);
        let mut m = Message::request(self.method.clone(), uri);
        m.push_header(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};rport;branch={}",
                t.as_str(),
                self.local,
                tokens.branch()
            ),
        );
        m.push_header(
            HeaderName::From,
            format!(
                "<sip:{}@{}>;tag={}",
                self.from_user,
                self.domain,
                tokens.tag()
            ),
        );
        m.push_header(
            HeaderName::To,
            format!("<sip:{}@{}>", self.to_user, self.domain),
        );
        let call_id = self
            .call_id
            .clone()
            .unwrap_or_else(|| tokens.call_id(Some(&self.local.ip().to_string())));
        m.push_header(HeaderName::CallId, call_id);
        m.push_header(HeaderName::CSeq, format!("{} {}", self.cseq, self.method));
        let contact_transport = match t {
            Transport::Udp => String::new(),
            Transport::Tcp => ";transport=tcp".to_owned(),
        };
        m.push_header(
            HeaderName::Contact,
            format!(
                "<sip:{}@{}{}>",
                self.from_user, self.local, contact_transport
            ),
        );
        m.push_header(HeaderName::MaxForwards, "70");
        m.push_header(HeaderName::UserAgent, self.user_agent);
        m.headers.extend(self.extra_headers.iter().cloned());
        if let Some((ct, body)) = &self.body {
            m = m.with_body(ct, body.clone());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    #[test]
    fn builds_a_catalog_query_like_vector_07() {
        let mut tokens = TokenGen::new([3; 32]);
        let req = OutgoingRequest {
            method: Method::Message,
            from_user: "34020000002000000010",
            domain: "3402000000",
            to_user: "34020000001320000002",
            target: Peer::udp("192.168.6.71:5060".parse().unwrap()),
            local: "192.168.6.106:5062".parse().unwrap(),
            cseq: 20,
            call_id: None,
            body: Some(("Application/MANSCDP+xml", Bytes::from_static(b"<Query/>"))),
            user_agent: "vigil",
            extra_headers: Vec::new(),
        }
        .build(&mut tokens);
        let m = parse_datagram(req.to_bytes()).unwrap();
        assert_eq!(
            m.request_uri().unwrap().unwrap().to_string(),
            "sip:34020000001320000002@192.168.6.71:5060"
        );
        let via = m.top_via().unwrap();
        assert_eq!(via.sent_by(), "192.168.6.106:5062");
        assert!(via.branch().unwrap().starts_with("z9hG4bK"));
        assert_eq!(via.rport(), Some(None));
        assert!(m.from().unwrap().tag().is_some());
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.cseq().unwrap().to_string(), "20 MESSAGE");
        assert!(m.content_type().unwrap().unwrap().is_manscdp());
        assert_eq!(&m.body[..], b"<Query/>");
    }

    #[test]
    fn builds_a_play_invite_like_vector_19() {
        use crate::sdp::{MediaTransport, Offer, OfferKind};
        use crate::ssrc::Ssrc;
        let real = parse_datagram(crate::testdata::vector("19_server_invite_play.sip")).unwrap();
        let ssrc = Ssrc::parse("0000001002").unwrap();
        let offer = Offer {
            kind: OfferKind::Play,
            our_id: "34020000002000000010".into(),
            channel_id: "34020000001310000001".into(),
            ip: "192.168.6.106".parse().unwrap(),
            port: 45056,
            transport: MediaTransport::Udp,
            ssrc,
        };
        let subject = crate::sip::subject(
            "34020000001320000002",
            "04020000001320000002",
            "34020000002000000010",
            "1002",
        );
        let invite = OutgoingRequest {
            method: Method::Invite,
            from_user: "34020000002000000010",
            domain: "3402000000",
            to_user: "34020000001310000001",
            target: Peer::udp("192.168.6.71:5060".parse().unwrap()),
            local: "192.168.6.106:5062".parse().unwrap(),
            cseq: 20,
            call_id: None,
            body: Some(("application/sdp", Bytes::from(offer.to_sdp().to_text()))),
            user_agent: "eXosip/4.1.0",
            extra_headers: vec![Header::new(HeaderName::Subject, subject)],
        }
        .build(&mut TokenGen::new([1; 32]));
        let m = parse_datagram(invite.to_bytes()).unwrap();
        assert_eq!(m.start, real.start);
        assert_eq!(m.subject(), real.subject());
        assert_eq!(m.body, real.body, "the offer is byte-identical to eXosip's");
        assert_eq!(m.cseq().unwrap(), real.cseq().unwrap());
        assert_eq!(
            m.header(&HeaderName::Contact),
            real.header(&HeaderName::Contact)
        );
    }
}
