//! The client side of an INVITE dialog (our live/playback/download sessions): the ACK for the
//! 2xx, in-dialog INFO (MANSRTSP playback control) and BYE, plus the GB `Subject` header.

use std::net::SocketAddr;

use bytes::Bytes;

use super::error::SipError;
use super::header::{Header, HeaderName};
use super::message::{Message, StartLine};
use super::method::Method;
use super::{Peer, Transport};
use crate::token::TokenGen;

/// The GB/T 28181 `Subject` of an INVITE: `sender:sender-stream,receiver:receiver-stream`.
/// The sender is the channel, its stream number is the SSRC (first digit 0 live, 1 history);
/// the receiver is us (vectors 19, 38, 49, 61).
pub fn subject(channel_id: &str, ssrc: &str, receiver_id: &str, receiver_stream: &str) -> String {
    format!("{channel_id}:{ssrc},{receiver_id}:{receiver_stream}")
}

/// An established dialog created by our INVITE and the device's 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our From header value (with our tag), verbatim.
    pub local: Bytes,
    /// The remote To header value (with the device's tag, if it sent one), verbatim.
    pub remote: Bytes,
    /// Where in-dialog requests go: the 2xx Contact URI (else the INVITE's Request-URI).
    pub remote_target: String,
    /// Record-Route values, reversed into a route set.
    pub route_set: Vec<Bytes>,
    /// CSeq of the INVITE (the ACK reuses it).
    pub invite_cseq: u32,
    /// Last CSeq we used.
    pub local_cseq: u32,
    /// Our Contact value.
    pub contact: Option<Bytes>,
    /// Where the device is (requests are sent to the observed address).
    pub peer: Peer,
}

impl Dialog {
    /// The dialog of `invite` (as we sent it) and its 2xx `response`.
    pub fn from_2xx(invite: &Message, response: &Message, peer: Peer) -> Result<Dialog, SipError> {
        let remote_target = match response.contact()? {
            Some(c) => c.uri.to_string(),
            None => match &invite.start {
                StartLine::Request(r) => r.uri.clone(),
                StartLine::Response(_) => return Err(SipError::MissingHeader(HeaderName::Contact)),
            },
        };
        let get = |m: &Message, n: HeaderName| {
            m.header(&n)
                .map(|h| h.value.clone())
                .ok_or(SipError::MissingHeader(n))
        };
        let mut route_set: Vec<Bytes> = response
            .headers_named(&HeaderName::RecordRoute)
            .map(|h| h.value.clone())
            .collect();
        route_set.reverse();
        let cseq = invite.cseq()?.seq;
        Ok(Dialog {
            call_id: invite.call_id()?.into_owned(),
            local: get(invite, HeaderName::From)?,
            // A device that omits the To tag (vector 63) still gets its To echoed.
            remote: get(response, HeaderName::To)?,
            remote_target,
            route_set,
            invite_cseq: cseq,
            local_cseq: cseq,
            contact: invite.header(&HeaderName::Contact).map(|h| h.value.clone()),
            peer,
        })
    }

    fn request(
        &self,
        method: Method,
        cseq: u32,
        local: SocketAddr,
        tokens: &mut TokenGen,
        user_agent: &str,
    ) -> Message {
        let t = match self.peer.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        };
        let mut m = Message::request(method.clone(), &self.remote_target);
        m.push_header(
            HeaderName::Via,
            format!("SIP/2.0/{t} {local};rport;branch={}", tokens.branch()),
        );
        for r in &self.route_set {
            m.headers.push(Header {
                name: HeaderName::Route,
                value: r.clone(),
            });
        }
        m.headers.push(Header {
            name: HeaderName::From,
            value: self.local.clone(),
        });
        m.headers.push(Header {
            name: HeaderName::To,
            value: self.remote.clone(),
        });
        m.push_header(HeaderName::CallId, self.call_id.clone());
        m.push_header(HeaderName::CSeq, format!("{cseq} {method}"));
        if let Some(c) = &self.contact {
            m.headers.push(Header {
                name: HeaderName::Contact,
                value: c.clone(),
            });
        }
        m.push_header(HeaderName::MaxForwards, "70");
        m.push_header(HeaderName::UserAgent, user_agent);
        m
    }

    /// The ACK for the 2xx (its own transaction: send it directly, and hand it to
    /// [`super::transaction::TransactionLayer::ack_2xx`] so retransmitted 2xx are re-ACKed).
    pub fn ack(&self, local: SocketAddr, tokens: &mut TokenGen, user_agent: &str) -> Message {
        self.request(Method::Ack, self.invite_cseq, local, tokens, user_agent)
    }

    /// An in-dialog INFO, e.g. a MANSRTSP `PAUSE`/`PLAY`/`Scale` for playback (vectors 41-46).
    pub fn info(
        &mut self,
        content_type: &str,
        body: Bytes,
        local: SocketAddr,
        tokens: &mut TokenGen,
        user_agent: &str,
    ) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.request(Method::Info, self.local_cseq, local, tokens, user_agent)
            .with_body(content_type, body)
    }

    /// BYE, ending the session.
    pub fn bye(&mut self, local: SocketAddr, tokens: &mut TokenGen, user_agent: &str) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.request(Method::Bye, self.local_cseq, local, tokens, user_agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;
    use crate::testdata::vector;

    fn strip_branch(m: &Message) -> Vec<Header> {
        m.headers
            .iter()
            .filter(|h| h.name != HeaderName::Via && h.name != HeaderName::ContentLength)
            .cloned()
            .collect()
    }

    #[test]
    fn ack_info_bye_match_the_real_exosip_requests() {
        // Vectors 19 (INVITE) + 22 (Dahua 200 OK) → 23 (ACK) and 24 (BYE), byte for byte
        // except the Via branch.
        let invite = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let ok = parse_datagram(vector("22_dahua_invite_200ok_sdp.sip")).unwrap();
        let peer = Peer::udp("192.168.6.71:5060".parse().unwrap());
        let mut d = Dialog::from_2xx(&invite, &ok, peer).unwrap();
        let mut tokens = TokenGen::new([0; 32]);
        let local = "192.168.6.106:5062".parse().unwrap();
        let ack = parse_datagram(d.ack(local, &mut tokens, "eXosip/4.1.0").to_bytes()).unwrap();
        let real_ack = parse_datagram(vector("23_server_ack_play.sip")).unwrap();
        assert_eq!(ack.start, real_ack.start);
        assert_eq!(strip_branch(&ack), strip_branch(&real_ack));
        assert_eq!(
            ack.top_via().unwrap().sent_by(),
            real_ack.top_via().unwrap().sent_by()
        );
        let bye = parse_datagram(d.bye(local, &mut tokens, "eXosip/4.1.0").to_bytes()).unwrap();
        let real_bye = parse_datagram(vector("24_server_bye_play.sip")).unwrap();
        assert_eq!(bye.start, real_bye.start);
        assert_eq!(strip_branch(&bye), strip_branch(&real_bye));
        assert_ne!(
            bye.top_via().unwrap().branch(),
            ack.top_via().unwrap().branch()
        );
    }

    #[test]
    fn playback_info_and_subject() {
        // Vectors 38/39 (playback INVITE + Hikvision NVR 200 OK) → 41 (INFO PAUSE, CSeq 21).
        let invite = parse_datagram(vector("38_server_invite_playback.sip")).unwrap();
        let ok = parse_datagram(vector("39_hik_nvr_invite_playback_200ok_sdp.sip")).unwrap();
        let mut d = Dialog::from_2xx(
            &invite,
            &ok,
            Peer::udp("192.168.6.60:5060".parse().unwrap()),
        )
        .unwrap();
        let mut tokens = TokenGen::new([0; 32]);
        let real = parse_datagram(vector("41_server_info_pause.sip")).unwrap();
        let info = d.info(
            "application/RTSP",
            real.body.clone(),
            "192.168.6.106:5062".parse().unwrap(),
            &mut tokens,
            "eXosip/4.1.0",
        );
        let info = parse_datagram(info.to_bytes()).unwrap();
        assert_eq!(info.start, real.start);
        assert_eq!(info.cseq().unwrap().to_string(), "21 INFO");
        assert_eq!(info.to().unwrap().tag(), Some("2049052006"));
        assert_eq!(info.body, real.body);
        assert_eq!(
            subject(
                "34020000001110000001",
                "10000000000000000041",
                "34020000002000000010",
                "2000"
            ),
            invite.subject().unwrap()
        );
    }

    #[test]
    fn quirk_final_response_without_to_tag_dialog_still_forms() {
        // Vector 63: the Hikvision IPC's 200 OK has no To tag; the dialog echoes its To as is.
        let invite = parse_datagram(vector("61_srs_utest_srs_invite_to_hik_ipc.sip")).unwrap();
        let ok = parse_datagram(vector("63_srs_utest_hik_ipc_invite_200ok_sdp.sip")).unwrap();
        let d = Dialog::from_2xx(
            &invite,
            &ok,
            Peer::tcp("192.168.3.99:5060".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            d.remote_target,
            "sip:34020000001320000001@192.168.3.99:5060"
        );
        let ack = d.ack(
            "192.168.3.82:5060".parse().unwrap(),
            &mut TokenGen::new([1; 32]),
            "vigil",
        );
        let ack = parse_datagram(ack.to_bytes()).unwrap();
        assert_eq!(ack.to().unwrap().tag(), None);
        assert_eq!(ack.top_via().unwrap().transport, "TCP");
        assert_eq!(ack.cseq().unwrap().to_string(), "854 ACK");
    }
}
