//! Uplinks (cascade): registering upward with [`UplinkClient`], keepalives, Up/Down events, and
//! answering the upper platform's queries (Catalog with our shared channels, DeviceInfo,
//! DeviceStatus).

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info, warn};
use vigil_core::time::Timestamp;

use super::config::{secs, UplinkSettings};
use super::core::{now_ts, Core, Pending};
use super::events::{GbEvent, UplinkState};
use super::handle::UplinkView;
use super::metrics::inc;
use crate::gbid::{DomainCode, GbId};
use crate::manscdp::build::{
    catalog_response, device_info_response, device_status_response, BodyEncoding, PacketLimits,
};
use crate::manscdp::{parse_body, CmdType, DeviceInfo, DeviceStatus, Payload};
use crate::registry::KeepalivePolicy;
use crate::sip::transaction::ServerKey;
use crate::sip::{Message, Method, OutgoingRequest, Peer};
use crate::time::Now;
use crate::uplink::{UplinkClient, UplinkConfig, UplinkEvent, UplinkOutput};

/// One configured upper platform.
#[derive(Debug)]
pub(crate) struct Uplink {
    pub name: String,
    pub upper_id: GbId,
    pub peer: Peer,
    pub settings: UplinkSettings,
    pub client: UplinkClient,
    pub up: bool,
    pub since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub cseq: u32,
}

/// Why an uplink cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("uplink {name:?}: {reason}")]
pub struct UplinkConfigError {
    /// Uplink name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

impl Uplink {
    pub(crate) fn new(
        s: &UplinkSettings,
        our_id: GbId,
        our_domain: DomainCode,
        local: std::net::SocketAddr,
        user_agent: &str,
        seed: [u8; 32],
    ) -> Result<Uplink, UplinkConfigError> {
        let err = |reason: String| UplinkConfigError {
            name: s.name.clone(),
            reason,
        };
        let upper_id =
            GbId::parse(&s.upper_id).map_err(|e| err(format!("upper_id {:?}: {e}", s.upper_id)))?;
        let upper_domain = DomainCode::parse(&s.upper_domain)
            .map_err(|e| err(format!("upper_domain {:?}: {e}", s.upper_domain)))?;
        let peer = Peer::udp(s.addr);
        let mut cfg = UplinkConfig::new(
            our_id,
            our_domain,
            upper_id,
            upper_domain,
            peer,
            local,
            s.password.expose().to_owned(),
        );
        cfg.username = s.username.clone();
        cfg.expires = s.expires_secs.max(1);
        cfg.keepalive = KeepalivePolicy {
            interval: secs(s.keepalive_interval_secs.max(1)),
            max_missed: s.keepalive_max_missed.max(1),
        };
        cfg.retry_interval = secs(s.retry_interval_secs.max(1));
        cfg.user_agent = user_agent.to_owned();
        Ok(Uplink {
            name: s.name.clone(),
            upper_id,
            peer,
            settings: s.clone(),
            client: UplinkClient::new(cfg, seed),
            up: false,
            since: None,
            last_error: None,
            cseq: 0,
        })
    }
}

impl Core {
    pub(crate) fn start_uplinks(&mut self) {
        let now = Instant::now();
        for idx in 0..self.uplinks.len() {
            info!(uplink = %self.uplinks[idx].name, upper = %self.uplinks[idx].peer, "registering upward");
            let out = self.uplinks[idx].client.start(now);
            self.uplink_output(idx, out, now);
        }
    }

    pub(crate) fn stop_uplinks(&mut self, now: Instant) {
        for idx in 0..self.uplinks.len() {
            let out = self.uplinks[idx].client.stop(now);
            self.uplink_output(idx, out, now);
        }
    }

    fn uplink_output(&mut self, idx: usize, out: UplinkOutput, now: Instant) {
        let Some(peer) = self.uplinks.get(idx).map(|u| u.peer) else {
            return;
        };
        for msg in out.send {
            let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
            let _ = self.send_request(msg, peer, Pending::Uplink { idx, call_id }, now);
        }
        let at = now_ts();
        for ev in out.events {
            let u = &mut self.uplinks[idx];
            let state = match ev {
                UplinkEvent::Up { expires } => {
                    inc(&self.metrics.uplink_up);
                    info!(uplink = %u.name, ?expires, "uplink up");
                    u.up = true;
                    u.last_error = None;
                    UplinkState::Up { expires }
                }
                UplinkEvent::Down { reason } => {
                    inc(&self.metrics.uplink_down);
                    warn!(uplink = %u.name, ?reason, "uplink down");
                    u.up = false;
                    u.last_error = Some(format!("{reason:?}"));
                    UplinkState::Down { reason }
                }
            };
            u.since = Some(at);
            let uplink = u.name.clone();
            self.emit(GbEvent::Uplink { uplink, state, at });
        }
    }

    pub(crate) fn uplink_response(&mut self, idx: usize, resp: &Message, now: Instant) {
        let Some(u) = self.uplinks.get_mut(idx) else {
            return;
        };
        if let Some(out) = u.client.on_response(resp, now) {
            self.uplink_output(idx, out, now);
        }
    }

    pub(crate) fn uplink_timeout(&mut self, idx: usize, call_id: &str, now: Instant) {
        let Some(u) = self.uplinks.get_mut(idx) else {
            return;
        };
        let out = u.client.on_timeout(call_id, now);
        self.uplink_output(idx, out, now);
    }

    pub(crate) fn uplink_timers(&mut self, now: Instant) {
        for idx in 0..self.uplinks.len() {
            if self.uplinks[idx]
                .client
                .next_deadline()
                .is_some_and(|d| d <= now)
            {
                let out = self.uplinks[idx].client.handle_timeout(now);
                self.uplink_output(idx, out, now);
            }
        }
    }

    /// The uplink whose upper platform sent `req` (From user and source IP must match).
    pub(crate) fn uplink_for(&self, req: &Message, peer: Peer) -> Option<usize> {
        if self.uplinks.is_empty() {
            return None;
        }
        let from = req.from().ok()?;
        let user = from.uri.user?;
        self.uplinks
            .iter()
            .position(|u| u.upper_id.as_str() == user && u.peer.addr.ip() == peer.addr.ip())
    }

    /// A MESSAGE from us to an upper platform.
    fn upper_message(&mut self, idx: usize, body: Bytes, now: Instant) {
        let Some(u) = self.uplinks.get_mut(idx) else {
            return;
        };
        u.cseq = u.cseq.wrapping_add(1).max(1);
        let (peer, upper_id, cseq) = (u.peer, u.upper_id, u.cseq);
        let local = self.local_for(peer);
        let our_id = self.our_id.to_string();
        let domain = self.domain.to_string();
        let msg = OutgoingRequest {
            method: Method::Message,
            from_user: &our_id,
            domain: &domain,
            to_user: upper_id.as_str(),
            target: peer,
            local,
            cseq,
            call_id: None,
            body: Some(("Application/MANSCDP+xml", body)),
            user_agent: &self.cfg.user_agent,
            extra_headers: Vec::new(),
        }
        .build(&mut self.tokens);
        let _ = self.send_request(msg, peer, Pending::UplinkMessage { idx }, now);
    }

    pub(crate) fn upper_request(
        &mut self,
        idx: usize,
        key: ServerKey,
        req: Message,
        peer: Peer,
        _cancels: Option<ServerKey>,
        now: Now,
    ) {
        let name = self.uplinks[idx].name.clone();
        match req.method() {
            Some(Method::Message) => {
                let doc = match parse_body(&req.body, Some(self.uplinks[idx].upper_id.as_str())) {
                    Ok(d) => d,
                    Err(e) => {
                        inc(&self.metrics.bad_bodies);
                        warn!(uplink = %name, error = %e, "MESSAGE from the upper platform refused");
                        self.reply(&key, &req, peer, 400, now.instant);
                        return;
                    }
                };
                self.reply(&key, &req, peer, 200, now.instant);
                let sn = doc.sn.unwrap_or(0);
                match (&doc.payload, &doc.cmd_type) {
                    (Payload::Query(_), CmdType::Catalog) => {
                        inc(&self.metrics.uplink_catalog_queries);
                        let limits = PacketLimits {
                            max_items: self.uplinks[idx].settings.catalog_items_per_packet.max(1),
                            ..PacketLimits::default()
                        };
                        let packets = catalog_response(
                            self.our_id.as_str(),
                            sn,
                            &self.shared,
                            limits,
                            BodyEncoding::Gb2312,
                        );
                        info!(uplink = %name, sn, items = self.shared.len(), packets = packets.len(), "catalog query from the upper platform");
                        for p in packets {
                            self.upper_message(idx, p, now.instant);
                        }
                        let items = self.shared.len();
                        self.emit(GbEvent::UplinkCatalogServed {
                            uplink: name,
                            items,
                            at: now_ts(),
                        });
                    }
                    (Payload::Query(_), CmdType::DeviceInfo) => {
                        let info = DeviceInfo {
                            device_name: Some(self.cfg.user_agent.clone()),
                            result: Some("OK".into()),
                            device_type: Some("Platform".into()),
                            manufacturer: Some("vigil".into()),
                            model: Some("vigil".into()),
                            firmware: Some(env!("CARGO_PKG_VERSION").into()),
                            max_camera: u32::try_from(self.shared.len()).ok(),
                            max_alarm: Some(0),
                            channel: u32::try_from(self.shared.len()).ok(),
                        };
                        let body = device_info_response(
                            sn,
                            self.our_id.as_str(),
                            &info,
                            BodyEncoding::Gb2312,
                        );
                        self.upper_message(idx, body, now.instant);
                    }
                    (Payload::Query(_), CmdType::DeviceStatus) => {
                        let status = DeviceStatus {
                            result: Some("OK".into()),
                            online: Some(true),
                            status: Some("OK".into()),
                            encode: Some("ON".into()),
                            record: Some("ON".into()),
                            device_time: Some(crate::time::format_gb_date(now.unix_ms, 480)),
                            ..DeviceStatus::default()
                        };
                        let body = device_status_response(
                            sn,
                            self.our_id.as_str(),
                            &status,
                            BodyEncoding::Gb2312,
                        );
                        self.upper_message(idx, body, now.instant);
                    }
                    _ => {
                        debug!(uplink = %name, cmd = %doc.cmd_type, "MESSAGE from the upper platform not used");
                    }
                }
            }
            Some(Method::Options) => self.reply(&key, &req, peer, 200, now.instant),
            Some(Method::Subscribe) => self.reply(&key, &req, peer, 489, now.instant),
            Some(Method::Invite) => self.upper_invite(idx, key, req, peer, now),
            Some(Method::Bye) => {
                let code = if self.upper_bye(&req, now.instant) {
                    200
                } else {
                    481
                };
                self.reply(&key, &req, peer, code, now.instant);
            }
            Some(Method::Cancel) => self.upper_cancel(key, &req, peer, _cancels, now.instant),
            _ => self.reply(&key, &req, peer, 405, now.instant),
        }
    }

    pub(crate) fn uplink_views(&self) -> Vec<UplinkView> {
        self.uplinks
            .iter()
            .map(|u| UplinkView {
                name: u.name.clone(),
                upper_id: u.upper_id.to_string(),
                addr: u.peer.addr,
                up: u.up,
                since: u.since,
                last_error: u.last_error.clone(),
                shared_items: self.shared.len(),
            })
            .collect()
    }
}
