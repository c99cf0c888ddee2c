//! Answering INVITEs we receive (UAS side), sans-IO: `100 Trying` at once, the final answer
//! later (with the SDP built by [`crate::sdp::Answer`]), and CANCEL → `200` for the CANCEL plus
//! `487 Request Terminated` for the INVITE (RFC 3261 9.2).
//!
//! Used by the device simulator and by the server when an upper platform INVITEs one of our
//! shared channels. The transaction layer still owns retransmissions: send every response
//! this module builds with `TransactionLayer::respond` on the INVITE's (or CANCEL's) key.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::transaction::ServerKey;
use crate::sip::{HeaderName, Message, ResponseBuilder, SipError};

#[derive(Debug, Clone)]
struct Pending {
    request: Message,
    source: SocketAddr,
    to_tag: String,
}

/// INVITEs received and not answered finally yet.
#[derive(Debug, Default)]
pub struct PendingInvites {
    pending: HashMap<ServerKey, Pending>,
}

/// The consequences of a CANCEL.
#[derive(Debug)]
pub struct CancelOutcome {
    /// The answer to the CANCEL itself: 200, or 481 when no INVITE is pending.
    pub cancel_response: Result<Message, SipError>,
    /// The `487 Request Terminated` for the cancelled INVITE, with its transaction key.
    pub invite_response: Option<(ServerKey, Result<Message, SipError>)>,
}

impl PendingInvites {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// INVITEs waiting for a final answer.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pending INVITE of a transaction.
    pub fn request(&self, key: &ServerKey) -> Option<&Message> {
        self.pending.get(key).map(|p| &p.request)
    }

    /// Records a new INVITE and returns its `100 Trying`. `to_tag` is the tag every later
    /// response of this INVITE carries (it identifies our side of the dialog).
    pub fn on_invite(
        &mut self,
        key: ServerKey,
        request: &Message,
        source: SocketAddr,
        to_tag: String,
    ) -> Result<Message, SipError> {
        let trying = ResponseBuilder::new(request, 100).source(source).build()?;
        self.pending.insert(
            key,
            Pending {
                request: request.clone(),
                source,
                to_tag,
            },
        );
        Ok(trying)
    }

    /// The final answer to a pending INVITE (`code` ≥ 200), with an optional body and Contact.
    /// `None` if the INVITE is not pending (answered or cancelled already).
    pub fn answer(
        &mut self,
        key: &ServerKey,
        code: u16,
        body: Option<(&str, Bytes)>,
        contact: Option<String>,
        user_agent: &str,
    ) -> Option<Result<Message, SipError>> {
        let p = self.pending.remove(key)?;
        let mut b = ResponseBuilder::new(&p.request, code.max(200))
            .source(p.source)
            .to_tag(&p.to_tag)
            .header(HeaderName::UserAgent, user_agent.to_owned());
        if let Some(c) = contact {
            b = b.header(HeaderName::Contact, c);
        }
        if let Some((ct, bytes)) = body {
            b = b.body(ct, bytes);
        }
        Some(b.build())
    }

    /// A CANCEL; `cancels` is the INVITE transaction the transaction layer matched it to.
    pub fn on_cancel(
        &mut self,
        cancel: &Message,
        cancels: Option<&ServerKey>,
        source: SocketAddr,
    ) -> CancelOutcome {
        let pending = cancels.and_then(|k| self.pending.remove(k).map(|p| (k.clone(), p)));
        match pending {
            Some((key, p)) => CancelOutcome {
                cancel_response: ResponseBuilder::new(cancel, 200).source(source).build(),
                invite_response: Some((
                    key,
                    ResponseBuilder::new(&p.request, 487)
                        .source(p.source)
                        .to_tag(&p.to_tag)
                        .build(),
                )),
            },
            None => CancelOutcome {
                cancel_response: ResponseBuilder::new(cancel, 481).source(source).build(),
                invite_response: None,
            },
        }
    }

    /// Forgets a pending INVITE (its transaction timed out).
    pub fn remove(&mut self, key: &ServerKey) {
        self.pending.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::{Incoming, TransactionLayer};
    use crate::sip::{parse_datagram, Method, Peer};
    use crate::testdata::vector;
    use std::time::Instant;

    #[test]
    fn trying_then_cancel_gives_200_and_487_with_our_tag() {
        // Vector 19: the eXosip play INVITE, received as a device would.
        let inv = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let src: SocketAddr = "192.168.6.106:5062".parse().unwrap();
        let mut txn = TransactionLayer::default();
        let t0 = Instant::now();
        let Incoming::Request { key, .. } =
            txn.on_request(inv.clone(), Peer::udp(src), t0).unwrap()
        else {
            panic!()
        };
        let mut p = PendingInvites::new();
        let trying = p.on_invite(key.clone(), &inv, src, "4242".into()).unwrap();
        assert_eq!(trying.status(), Some(100));
        assert_eq!(trying.to().unwrap().tag(), None);
        txn.respond(&key, trying, t0).unwrap();

        let cancel = crate::play::cancel_for(&inv).unwrap();
        let cancel = parse_datagram(cancel.to_bytes()).unwrap();
        let Incoming::Request {
            key: ckey, cancels, ..
        } = txn.on_request(cancel.clone(), Peer::udp(src), t0).unwrap()
        else {
            panic!()
        };
        assert_eq!(cancels.as_ref(), Some(&key));
        let out = p.on_cancel(&cancel, cancels.as_ref(), src);
        let ok = out.cancel_response.unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.cseq().unwrap().method, Method::Cancel);
        txn.respond(&ckey, ok, t0).unwrap();
        let (ikey, resp) = out.invite_response.unwrap();
        let resp = resp.unwrap();
        assert_eq!(ikey, key);
        assert_eq!(resp.status(), Some(487));
        assert_eq!(resp.to().unwrap().tag(), Some("4242"));
        assert!(p.is_empty());
        // A second CANCEL finds nothing: 481.
        let again = p.on_cancel(&cancel, Some(&key), src);
        assert_eq!(again.cancel_response.unwrap().status(), Some(481));
        assert!(again.invite_response.is_none());
    }

    #[test]
    fn final_answer_carries_body_contact_and_tag() {
        let inv = parse_datagram(vector("19_server_invite_play.sip")).unwrap();
        let src: SocketAddr = "192.168.6.106:5062".parse().unwrap();
        let mut txn = TransactionLayer::default();
        let Incoming::Request { key, .. } = txn
            .on_request(inv.clone(), Peer::udp(src), Instant::now())
            .unwrap()
        else {
            panic!()
        };
        let mut p = PendingInvites::new();
        p.on_invite(key.clone(), &inv, src, "77".into()).unwrap();
        let ok = p
            .answer(
                &key,
                200,
                Some(("application/sdp", Bytes::from_static(b"v=0\r\n"))),
                Some("<sip:34020000001310000001@192.168.6.71:5060>".into()),
                "sim",
            )
            .unwrap()
            .unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.to().unwrap().tag(), Some("77"));
        assert!(ok.content_type().unwrap().unwrap().is_sdp());
        assert!(ok.contact().unwrap().is_some());
        assert!(p.answer(&key, 200, None, None, "sim").is_none());
    }
}
