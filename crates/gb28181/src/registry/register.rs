//! REGISTER: challenge, verification, binding, refresh and unregister.

use std::time::Duration;

use super::{DeviceRecord, Registry, RegistryEvent, Rejection, RequestOutcome};
use crate::digest::{AuthContext, AuthFailure, Credentials, Verification};
use crate::gbid::GbId;
use crate::quirks::QuirkSet;
use crate::sip::{GbVersion, HeaderName, Message, NameAddr, Peer, ResponseBuilder, StartLine};
use crate::time::{format_gb_date, Now};

impl Registry {
    /// A response to `req` with our To tag and User-Agent.
    pub(super) fn respond<'r>(
        &mut self,
        req: &'r Message,
        peer: Peer,
        code: u16,
    ) -> ResponseBuilder<'r> {
        let tag = self.tokens.tag();
        ResponseBuilder::new(req, code)
            .source(peer.addr)
            .to_tag(&tag)
    }

    pub(super) fn finish(&mut self, out: &mut RequestOutcome, b: ResponseBuilder<'_>) {
        let b = b.header(HeaderName::UserAgent, self.config.user_agent.clone());
        match b.build() {
            Ok(m) => out.response = Some(m),
            // The request lacks a header a response must copy: nothing sensible to send.
            Err(e) => out.rejection = Some(Rejection::BadRequest(e.to_string())),
        }
    }

    pub(super) fn bad_request(&mut self, req: &Message, peer: Peer, why: String) -> RequestOutcome {
        let mut out = RequestOutcome::default();
        let b = self.respond(req, peer, 400);
        self.finish(&mut out, b);
        out.rejection = Some(Rejection::BadRequest(why));
        out
    }

    /// The sender's device ID: the From user (never To: Hikvision NVRs address MESSAGEs to
    /// themselves, vector 70).
    pub(super) fn sender(req: &Message) -> Result<GbId, String> {
        let from = req.from().map_err(|e| e.to_string())?;
        let user = from.uri.user.unwrap_or_default();
        GbId::parse(&user).map_err(|e| format!("From user: {e}"))
    }

    fn challenge(
        &mut self,
        req: &Message,
        peer: Peer,
        now: Now,
        stale: bool,
        out: &mut RequestOutcome,
    ) {
        let prefers_sha = req.gb_version() == Some(GbVersion::V2022);
        let challenges = self
            .digest
            .challenges(now.instant, peer.addr.ip(), prefers_sha, stale);
        let mut b = self.respond(req, peer, 401);
        for c in challenges {
            b = b.header(HeaderName::WwwAuthenticate, c.to_header_value());
        }
        self.finish(out, b);
    }

    fn auth_failed(
        &mut self,
        id: GbId,
        peer: Peer,
        now: Now,
        reason: AuthFailure,
        out: &mut RequestOutcome,
    ) {
        let (failures, banned) = self.failures.record_failure(peer.addr.ip(), now.instant);
        out.events.push(RegistryEvent::AuthFailed {
            source: peer.addr,
            device: Some(id),
            reason,
            failures,
        });
        if let Some(until) = banned {
            out.events.push(RegistryEvent::SourceBanned {
                source: peer.addr.ip(),
                until,
                failures,
            });
        }
    }

    pub(super) fn handle_register(
        &mut self,
        req: &Message,
        peer: Peer,
        now: Now,
    ) -> RequestOutcome {
        if let Some(until) = self.failures.banned_until(peer.addr.ip(), now.instant) {
            return RequestOutcome {
                rejection: Some(Rejection::Banned { until }),
                ..RequestOutcome::default()
            };
        }
        let id = match Self::sender(req) {
            Ok(id) => id,
            Err(why) => return self.bad_request(req, peer, why),
        };
        let contact = match req.contact() {
            Ok(c) => c,
            Err(e) => return self.bad_request(req, peer, e.to_string()),
        };
        let requested = match contact
            .as_ref()
            .and_then(|c| c.param("expires"))
            .and_then(|p| p.value.as_deref())
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            Some(v) => v,
            None => match req.expires() {
                Ok(v) => v.unwrap_or(self.config.default_expires),
                Err(e) => return self.bad_request(req, peer, e.to_string()),
            },
        };
        let call_id = match req.call_id() {
            Ok(c) => c.into_owned(),
            Err(e) => return self.bad_request(req, peer, e.to_string()),
        };
        let mut out = RequestOutcome {
            device: Some(id),
            ..RequestOutcome::default()
        };
        let mut quirks = req.quirks;

        let mut algorithm = None;
        if self.config.require_auth {
            let Some(value) = req.authorization() else {
                self.challenge(req, peer, now, false, &mut out);
                return out;
            };
            let creds = match Credentials::parse(&value) {
                Ok(c) => c,
                Err(e) => {
                    self.auth_failed(id, peer, now, AuthFailure::BadHeader(e.clone()), &mut out);
                    let b = self.respond(req, peer, 400);
                    self.finish(&mut out, b);
                    out.rejection = Some(Rejection::BadRequest(e.to_string()));
                    return out;
                }
            };
            let request_uri = match &req.start {
                StartLine::Request(r) => r.uri.clone(),
                StartLine::Response(_) => String::new(),
            };
            let ctx = AuthContext {
                method: "REGISTER",
                request_uri: &request_uri,
                device: &id,
                now: now.instant,
                source: peer.addr.ip(),
            };
            match self.digest.verify(&creds, &ctx, self.passwords.lookup(&id)) {
                Verification::Ok(v) => {
                    algorithm = Some(v.algorithm);
                    quirks.extend(v.quirks);
                    self.failures.record_success(peer.addr.ip());
                }
                Verification::Stale => {
                    self.challenge(req, peer, now, true, &mut out);
                    return out;
                }
                Verification::Failed(reason) => {
                    let unknown = matches!(reason, AuthFailure::UnknownDevice { .. });
                    self.auth_failed(id, peer, now, reason, &mut out);
                    if unknown {
                        let b = self.respond(req, peer, 403);
                        self.finish(&mut out, b);
                    } else {
                        self.challenge(req, peer, now, false, &mut out);
                    }
                    return out;
                }
            }
        }

        if requested == 0 {
            self.unregister(req, peer, now, id, &mut out);
        } else {
            self.bind(
                req, peer, now, id, contact, call_id, requested, algorithm, quirks, &mut out,
            );
        }
        out
    }

    fn date_header(&self, now: Now) -> String {
        format_gb_date(now.unix_ms, self.config.date_utc_offset_minutes)
    }

    fn unregister(
        &mut self,
        req: &Message,
        peer: Peer,
        now: Now,
        id: GbId,
        out: &mut RequestOutcome,
    ) {
        if self.devices.contains_key(&id) {
            self.set_online(
                &id,
                false,
                &mut out.events,
                Some(super::OfflineReason::Unregistered),
            );
            self.devices.remove(&id);
        }
        let date = self.date_header(now);
        let b = self
            .respond(req, peer, 200)
            .header(HeaderName::Expires, "0")
            .header(HeaderName::Date, date);
        self.finish(out, b);
    }

    #[allow(clippy::too_many_arguments)]
    fn bind(
        &mut self,
        req: &Message,
        peer: Peer,
        now: Now,
        id: GbId,
        contact: Option<NameAddr>,
        call_id: String,
        requested: u32,
        algorithm: Option<crate::digest::Algorithm>,
        quirks: QuirkSet,
        out: &mut RequestOutcome,
    ) {
        let existing = self.devices.get(&id);
        if existing.is_none() && self.devices.len() >= self.config.max_devices {
            let b = self.respond(req, peer, 503);
            self.finish(out, b);
            out.rejection = Some(Rejection::Full);
            return;
        }
        let granted = requested.clamp(
            self.config.min_expires,
            self.config.max_expires.max(self.config.min_expires),
        );
        let x_gb_ver = req.x_gb_ver().map(|v| v.trim().to_owned());
        let version = req.gb_version().unwrap_or(GbVersion::V2016);
        let user_agent = req.user_agent().map(|u| u.into_owned());
        let new_binding = existing.is_none_or(|d| d.peer != peer || d.call_id != call_id);
        let expires_at = now.instant + Duration::from_secs(u64::from(granted));
        match self.devices.get_mut(&id) {
            Some(d) => {
                if new_binding {
                    d.registered_at = now.instant;
                }
                d.peer = peer;
                d.contact = contact.as_ref().map(|c| c.to_string());
                d.version = version;
                d.x_gb_ver = x_gb_ver.clone();
                d.user_agent = user_agent.clone();
                d.call_id = call_id;
                d.expires_at = expires_at;
                d.last_seen = now.instant;
                d.algorithm = algorithm;
            }
            None => {
                self.devices.insert(
                    id,
                    DeviceRecord {
                        id,
                        peer,
                        contact: contact.as_ref().map(|c| c.to_string()),
                        version,
                        x_gb_ver: x_gb_ver.clone(),
                        user_agent: user_agent.clone(),
                        call_id,
                        registered_at: now.instant,
                        expires_at,
                        last_seen: now.instant,
                        online: false,
                        algorithm,
                        quirks: QuirkSet::new(),
                        heap_at: None,
                    },
                );
            }
        }
        if new_binding {
            out.events.push(RegistryEvent::DeviceRegistered {
                id,
                addr: peer.addr,
                transport: peer.transport,
                version,
                x_gb_ver: x_gb_ver.clone(),
                user_agent,
                expires: Duration::from_secs(u64::from(granted)),
                algorithm,
            });
        }
        let was_online = self.devices.get(&id).is_some_and(|d| d.online);
        self.set_online(&id, true, &mut out.events, None);
        if new_binding || !was_online {
            out.events.push(RegistryEvent::QueryDeviceInfo { id, peer });
            out.events.push(RegistryEvent::QueryCatalog { id, peer });
        }
        self.note_quirks(&id, quirks, &mut out.events);
        self.rearm(&id);

        let date = self.date_header(now);
        let mut b = self.respond(req, peer, 200);
        if let Some(mut c) = contact {
            c.params.retain(|p| !p.name.eq_ignore_ascii_case("expires"));
            c.params.push(crate::sip::Param::new(
                "expires",
                Some(&granted.to_string()),
            ));
            b = b.header(HeaderName::Contact, c.to_string());
        }
        b = b
            .header(HeaderName::Expires, granted.to_string())
            .header(HeaderName::Date, date);
        if x_gb_ver.is_some() {
            let v = version.min(self.config.our_version);
            b = b.header(HeaderName::XGbVer, v.header_value());
        }
        self.finish(out, b);
    }
}
