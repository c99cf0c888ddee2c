//! MESSAGE (keepalive and everything else from devices), timers and transport loss.

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Instant;

use super::{OfflineReason, Registry, RegistryEvent, Rejection, RequestOutcome};
use crate::gbid::GbId;
use crate::manscdp::parse_body;
use crate::quirks::Quirk;
use crate::sip::{Message, Peer, Transport};
use crate::time::Now;

impl Registry {
    pub(super) fn handle_message(&mut self, req: &Message, peer: Peer, now: Now) -> RequestOutcome {
        if let Some(until) = self.failures.banned_until(peer.addr.ip(), now.instant) {
            return RequestOutcome {
                rejection: Some(Rejection::Banned { until }),
                ..RequestOutcome::default()
            };
        }
        // Bodies other than MANSCDP (text/plain chat, vendor extensions) are not ours.
        match req.content_type() {
            Ok(Some(ct)) if !ct.is_xml() => {
                return RequestOutcome {
                    not_handled: true,
                    ..RequestOutcome::default()
                }
            }
            Err(e) => return self.bad_request(req, peer, e.to_string()),
            _ => {}
        }
        let id = match Self::sender(req) {
            Ok(id) => id,
            Err(why) => return self.bad_request(req, peer, why),
        };
        let mut out = RequestOutcome {
            device: Some(id),
            ..RequestOutcome::default()
        };
        let Some(d) = self.devices.get(&id) else {
            let b = self.respond(req, peer, 403);
            self.finish(&mut out, b);
            out.rejection = Some(Rejection::NotRegistered);
            return out;
        };
        if d.peer.addr.ip() != peer.addr.ip() {
            let registered = d.peer.addr;
            let b = self.respond(req, peer, 403);
            self.finish(&mut out, b);
            out.rejection = Some(Rejection::SourceMismatch { registered });
            return out;
        }
        let m = match parse_body(&req.body, Some(id.as_str())) {
            Ok(m) => m,
            Err(e) => {
                let b = self.respond(req, peer, 400);
                self.finish(&mut out, b);
                out.rejection = Some(Rejection::BadBody(e));
                return out;
            }
        };
        let mut quirks = req.quirks;
        quirks.extend(m.quirks);
        if req
            .to()
            .is_ok_and(|to| to.uri.user.as_deref() == Some(id.as_str()))
        {
            quirks.insert(Quirk::ToIsSender);
        }
        if let Some(d) = self.devices.get_mut(&id) {
            // Same IP, new port: a NAT rebinding or a TCP reconnect; reach it where it is now.
            d.peer = peer;
            if m.is_keepalive() {
                d.last_seen = now.instant;
                if m.device_id != id.as_str() {
                    quirks.insert(Quirk::BodyDeviceIdMismatch);
                }
            }
        }
        if m.is_keepalive() {
            let was_online = self.devices.get(&id).is_some_and(|d| d.online);
            if !was_online {
                self.set_online(&id, true, &mut out.events, None);
                out.events.push(RegistryEvent::QueryDeviceInfo { id, peer });
                out.events.push(RegistryEvent::QueryCatalog { id, peer });
                self.rearm(&id);
            }
        } else {
            out.manscdp = Some(m);
        }
        self.note_quirks(&id, quirks, &mut out.events);
        let b = self.respond(req, peer, 200);
        self.finish(&mut out, b);
        out
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) may have work.
    /// Entries are re-armed lazily, so the registry may wake up and find nothing due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Expires registrations and detects keepalive timeouts due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<RegistryEvent> {
        let mut events = Vec::new();
        while let Some(Reverse((t, _))) = self.heap.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, id))) = self.heap.pop() else {
                break;
            };
            let Some(d) = self.devices.get_mut(&id) else {
                continue;
            };
            if d.heap_at != Some(t) {
                continue; // superseded by an earlier entry
            }
            d.heap_at = None;
            let expiry = d.expires_at + self.config.expiry_grace;
            let online = d.online;
            let last_seen = d.last_seen;
            if now >= expiry {
                self.set_online(&id, false, &mut events, Some(OfflineReason::Expired));
                self.devices.remove(&id);
                continue;
            }
            let ka = self.keepalive_of(&id);
            if online
                && last_seen
                    .checked_add(ka.timeout())
                    .is_some_and(|due| now >= due)
            {
                self.set_online(
                    &id,
                    false,
                    &mut events,
                    Some(OfflineReason::KeepaliveTimeout),
                );
            }
            self.rearm(&id);
        }
        events
    }

    /// The device's TCP connection dropped: it is offline and must register again.
    pub fn transport_lost(&mut self, id: &GbId, _now: Instant) -> Vec<RegistryEvent> {
        let mut events = Vec::new();
        if self.devices.contains_key(id) {
            self.set_online(id, false, &mut events, Some(OfflineReason::TransportLost));
            self.devices.remove(id);
        }
        events
    }

    /// A TCP connection from `addr` closed: every device registered over it is lost.
    pub fn connection_closed(&mut self, addr: SocketAddr, now: Instant) -> Vec<RegistryEvent> {
        let lost: Vec<GbId> = self
            .devices
            .values()
            .filter(|d| d.peer.transport == Transport::Tcp && d.peer.addr == addr)
            .map(|d| d.id)
            .collect();
        lost.iter()
            .flat_map(|id| self.transport_lost(id, now))
            .collect()
    }
}
