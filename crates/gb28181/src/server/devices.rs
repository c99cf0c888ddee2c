//! Devices: REGISTER/MESSAGE through the registry, liveness events, queries (DeviceInfo,
//! DeviceStatus, Catalog), catalog assembly and changes, NOTIFY, catalog subscriptions.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::core::{now_ts, ChannelState, Core, DeviceState, Pending};
use super::events::{
    CatalogChange, CatalogEntry, CatalogSnapshot, GbEvent, NotifyVia, SubscriptionChange,
};
use super::handle::HandleError;
use super::metrics::inc;
use crate::catalog::{AssemblerEvent, CatalogResult, Completion};
use crate::gbid::GbId;
use crate::manscdp::{
    parse_body, CatalogEvent, CatalogItem, ChannelStatus, CmdType, Manscdp, Payload,
};
use crate::registry::{OfflineReason, RegistryEvent, Rejection};
use crate::sip::transaction::ServerKey;
use crate::sip::{Message, Method, Peer};
use crate::subscription::{SubscriptionEvent, SubscriptionOutput, SubscriptionStatus};
use crate::time::Now;

fn wall(at: Instant) -> vigil_core::time::Timestamp {
    let now = Instant::now();
    let ts = now_ts();
    if at <= now {
        ts.sub_ms(i64::try_from(now.duration_since(at).as_millis()).unwrap_or(i64::MAX))
    } else {
        ts.add_ms(i64::try_from(at.duration_since(now).as_millis()).unwrap_or(i64::MAX))
    }
}

pub(crate) fn instant_to_wall(at: Instant) -> vigil_core::time::Timestamp {
    wall(at)
}

impl Core {
    /// REGISTER and MESSAGE from devices.
    pub(crate) fn device_request(&mut self, key: ServerKey, req: Message, peer: Peer, now: Now) {
        let is_message = req.method() == Some(&Method::Message);
        let out = self.registry.handle_request(&req, peer, now);
        let span = out
            .device
            .and_then(|d| self.devices.get(&d))
            .map(|d| d.span.clone())
            .unwrap_or_else(tracing::Span::none);
        let _entered = span.enter();
        if out.not_handled {
            // A MESSAGE whose body is not MANSCDP XML (text/plain chat, vendor extensions).
            self.reply(&key, &req, peer, 415, now.instant);
            return;
        }
        match &out.rejection {
            Some(Rejection::Banned { .. }) => inc(&self.metrics.banned_requests),
            Some(Rejection::BadBody(e)) => {
                inc(&self.metrics.bad_bodies);
                warn!(from = %peer, error = %e, "MESSAGE body refused");
                if let Some(d) = out.device {
                    self.device_error(&d, e.to_string());
                }
            }
            Some(Rejection::BadRequest(why)) => {
                inc(&self.metrics.requests_refused);
                warn!(from = %peer, device = ?out.device.map(|d| d.to_string()), reason = %why, "request refused (400)");
                if let Some(d) = out.device {
                    self.device_error(&d, format!("bad request: {why}"));
                }
            }
            Some(
                r @ (Rejection::NotRegistered | Rejection::SourceMismatch { .. } | Rejection::Full),
            ) => {
                inc(&self.metrics.requests_refused);
                debug!(from = %peer, device = ?out.device.map(|d| d.to_string()), rejection = ?r, "request refused");
            }
            None => {
                if is_message && out.manscdp.is_none() && out.response.is_some() {
                    inc(&self.metrics.keepalives);
                }
            }
        }
        if let Some(resp) = out.response {
            self.respond(&key, resp, now.instant);
        }
        if !out.events.is_empty() {
            self.registry_events(out.events, now);
        }
        if let (Some(dev), Some(m)) = (out.device, out.manscdp) {
            self.manscdp(dev, m, NotifyVia::Message, now.instant);
        }
    }

    pub(crate) fn registry_events(&mut self, events: Vec<RegistryEvent>, now: Now) {
        let at = now_ts();
        for ev in events {
            match ev {
                RegistryEvent::DeviceRegistered {
                    id,
                    addr,
                    transport,
                    version,
                    x_gb_ver,
                    user_agent,
                    expires,
                    ..
                } => {
                    inc(&self.metrics.registrations);
                    let d = self
                        .devices
                        .entry(id)
                        .or_insert_with(|| DeviceState::new(id, addr, transport));
                    d.addr = addr;
                    d.transport = transport;
                    d.version = version;
                    d.x_gb_ver = x_gb_ver;
                    d.user_agent = user_agent.clone();
                    d.registered_at = Some(at);
                    let _g = d.span.enter();
                    info!(%addr, %transport, ?version, ?expires, "device registered");
                    drop(_g);
                    let peer = Peer { transport, addr };
                    self.subs.update_peer(&id, peer);
                    self.play.update_peer(&id, peer);
                    self.emit(GbEvent::DeviceRegistered {
                        device: id,
                        addr,
                        transport,
                        version,
                        user_agent,
                        expires,
                        at,
                    });
                }
                RegistryEvent::DeviceOnline { id } => {
                    inc(&self.metrics.devices_online);
                    if let Some(d) = self.devices.get_mut(&id) {
                        d.online = true;
                        let _g = d.span.enter();
                        info!("device online");
                    }
                    self.emit(GbEvent::DeviceOnline { device: id, at });
                    self.reconcile_device(&id, now.instant);
                }
                RegistryEvent::DeviceOffline { id, reason } => {
                    inc(&self.metrics.devices_offline);
                    if reason == OfflineReason::Unregistered {
                        inc(&self.metrics.unregistrations);
                    }
                    if let Some(d) = self.devices.get_mut(&id) {
                        d.online = false;
                        d.next_catalog = None;
                        let _g = d.span.enter();
                        info!(?reason, "device offline");
                    }
                    self.subs.forget(&id);
                    self.device_gone(&id, reason, now.instant);
                    self.emit(GbEvent::DeviceOffline {
                        device: id,
                        reason,
                        at,
                    });
                }
                RegistryEvent::AuthFailed {
                    source,
                    device,
                    reason,
                    failures,
                } => {
                    inc(&self.metrics.auth_failures);
                    warn!(%source, device = ?device.map(|d| d.to_string()), %reason, failures, "REGISTER authentication failed");
                    if let Some(d) = device {
                        self.device_error(
                            &d,
                            format!("authentication failed from {source}: {reason}"),
                        );
                    }
                    self.emit(GbEvent::AuthFailed {
                        source,
                        device,
                        reason: reason.to_string(),
                        failures,
                        at,
                    });
                }
                RegistryEvent::SourceBanned {
                    source,
                    until,
                    failures,
                } => {
                    inc(&self.metrics.bans);
                    warn!(%source, failures, "source banned after repeated authentication failures");
                    self.emit(GbEvent::SourceBanned {
                        source,
                        failures,
                        until: wall(until),
                        at,
                    });
                }
                RegistryEvent::QueryDeviceInfo { id, .. } => {
                    if let Err(e) = self.query(id, CmdType::DeviceInfo, now.instant) {
                        debug!(error = %e, "DeviceInfo query not sent");
                    }
                    if self.cfg.catalog.query_status_on_online {
                        if let Err(e) = self.query(id, CmdType::DeviceStatus, now.instant) {
                            debug!(error = %e, "DeviceStatus query not sent");
                        }
                    }
                }
                RegistryEvent::QueryCatalog { id, peer } => {
                    if let Err(e) = self.query(id, CmdType::Catalog, now.instant) {
                        debug!(error = %e, "catalog query not sent");
                    }
                    if self.cfg.catalog.subscribe {
                        self.subscribe(id, peer, now.instant);
                    }
                }
                RegistryEvent::QuirksSeen { id, quirks } => {
                    let names: Vec<&'static str> = quirks.iter().map(|q| q.name()).collect();
                    if let Some(d) = self.devices.get_mut(&id) {
                        d.quirks.extend(quirks);
                        let _g = d.span.enter();
                        info!(quirks = ?names, "device needed quirks");
                    }
                    self.emit(GbEvent::QuirksSeen {
                        device: id,
                        quirks: names,
                        at,
                    });
                }
            }
        }
    }

    /// Sends a MANSCDP query to an online device. Catalog queries also arm the assembler and
    /// the next periodic refresh.
    pub(crate) fn query(
        &mut self,
        id: GbId,
        cmd: CmdType,
        now: Instant,
    ) -> Result<u64, HandleError> {
        let peer = match self.registry.device(&id) {
            Some(d) if d.online => d.peer,
            Some(_) => return Err(HandleError::DeviceOffline(id)),
            None if self.devices.contains_key(&id) => return Err(HandleError::DeviceOffline(id)),
            None => return Err(HandleError::UnknownDevice(id)),
        };
        let sn = self.next_sn();
        let local = self.local_for(peer);
        let (msg, peer) = self
            .registry
            .build_query(&id, &cmd, sn, local)
            .ok_or(HandleError::UnknownDevice(id))?;
        self.send_request(
            msg,
            peer,
            Pending::Query {
                device: id,
                cmd: cmd.clone(),
            },
            now,
        )
        .map_err(|reason| HandleError::SendFailed { device: id, reason })?;
        if cmd == CmdType::Catalog {
            inc(&self.metrics.catalog_queries);
            self.assembler.expect(id.as_str(), sn, now);
            self.note_catalog_owner(id.as_str(), id);
            self.schedule_catalog(&id, now);
        } else {
            inc(&self.metrics.info_queries);
        }
        Ok(sn)
    }

    fn note_catalog_owner(&mut self, doc_id: &str, device: GbId) {
        if self.catalog_owner.get(doc_id) != Some(&device) {
            if self.catalog_owner.len() > 2 * self.cfg.max_devices.max(1024) {
                self.catalog_owner.clear();
            }
            self.catalog_owner.insert(doc_id.to_owned(), device);
        }
    }

    fn schedule_catalog(&mut self, id: &GbId, now: Instant) {
        let every = self.cfg.catalog.refresh_interval_secs;
        if every == 0 {
            return;
        }
        if let Some(d) = self.devices.get_mut(id) {
            let at = now + Duration::from_secs(every);
            d.next_catalog = Some(at);
            self.catalog_heap.push(Reverse((at, *id)));
        }
    }

    pub(crate) fn catalog_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.catalog_heap.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, id))) = self.catalog_heap.pop() else {
                break;
            };
            let due = self
                .devices
                .get(&id)
                .is_some_and(|d| d.online && d.next_catalog == Some(t));
            if due {
                if let Err(e) = self.query(id, CmdType::Catalog, now) {
                    debug!(device = %id, error = %e, "periodic catalog query not sent");
                }
            }
        }
    }

    fn subscribe(&mut self, id: GbId, peer: Peer, now: Instant) {
        let local = self.local_for(peer);
        let sn = self.next_sn();
        let msg = self.subs.subscribe(id, peer, local, sn, now);
        let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
        let _ = self.send_request(msg, peer, Pending::Subscribe { call_id }, now);
    }

    pub(crate) fn subscription_output(&mut self, out: SubscriptionOutput, now: Instant) {
        for (msg, peer) in out.send {
            let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
            let _ = self.send_request(msg, peer, Pending::Subscribe { call_id }, now);
        }
        let at = now_ts();
        for ev in out.events {
            let (device, change, text) = match ev {
                SubscriptionEvent::Active { device, expires } => {
                    inc(&self.metrics.subscriptions_active);
                    (
                        device,
                        SubscriptionChange::Active { expires },
                        "active".to_owned(),
                    )
                }
                SubscriptionEvent::Unsupported { device, code } => {
                    inc(&self.metrics.subscriptions_unsupported);
                    (
                        device,
                        SubscriptionChange::Unsupported { code },
                        format!("not supported ({code})"),
                    )
                }
                SubscriptionEvent::Failed {
                    device,
                    failure,
                    retry_in,
                } => (
                    device,
                    SubscriptionChange::Failed {
                        reason: failure.to_string(),
                        retry_in,
                    },
                    format!("{failure}; retry in {retry_in:?}"),
                ),
            };
            if let Some(d) = self.devices.get(&device) {
                let _g = d.span.enter();
                info!(subscription = %text, "catalog subscription");
            }
            self.emit(GbEvent::Subscription { device, change, at });
        }
    }

    /// A parsed MANSCDP body from a registered device (MESSAGE or NOTIFY).
    pub(crate) fn manscdp(&mut self, device: GbId, m: Manscdp, via: NotifyVia, now: Instant) {
        let at = now_ts();
        match m.payload {
            Payload::CatalogResponse(_) => {
                self.note_catalog_owner(&m.device_id.clone(), device);
                if let Some(ev) = self.assembler.push_message(m, now) {
                    self.assembler_event(ev);
                }
            }
            Payload::CatalogNotify(list) => self.catalog_changes(device, list.items, via, now),
            Payload::DeviceInfo(info) => {
                if let Some(d) = self.devices.get_mut(&device) {
                    d.info = Some(info.clone());
                }
                self.emit(GbEvent::DeviceInfo { device, info, at });
            }
            Payload::DeviceStatus(status) => {
                self.emit(GbEvent::DeviceStatus { device, status, at });
            }
            Payload::Alarm(alarm) => {
                self.emit(GbEvent::Alarm {
                    device,
                    source: m.device_id,
                    alarm,
                    at,
                });
            }
            other => {
                debug!(%device, cmd = %m.cmd_type, payload = ?std::mem::discriminant(&other), "MANSCDP message not used");
            }
        }
    }

    pub(crate) fn assembler_event(&mut self, ev: AssemblerEvent) {
        match ev {
            AssemblerEvent::Completed(r) => self.catalog_completed(r),
            AssemblerEvent::LateItems { device, sn, items } => {
                let Some(owner) = self.owner_of(&device) else {
                    return;
                };
                let now = Instant::now();
                if let Some(d) = self.devices.get_mut(&owner) {
                    for item in &items {
                        d.channels
                            .insert(item.device_id.clone(), channel_state(item.clone()));
                    }
                }
                self.emit(GbEvent::CatalogLateItems {
                    device: owner,
                    sn,
                    entries: items.into_iter().map(CatalogEntry::new).collect(),
                    at: now_ts(),
                });
                self.reconcile_device(&owner, now);
            }
            AssemblerEvent::Dropped { device, sn } => {
                inc(&self.metrics.catalog_packets_dropped);
                warn!(%device, sn, "catalog packet dropped: too many catalogs in progress");
            }
        }
    }

    fn owner_of(&self, doc_id: &str) -> Option<GbId> {
        self.catalog_owner.get(doc_id).copied().or_else(|| {
            GbId::parse(doc_id)
                .ok()
                .filter(|g| self.devices.contains_key(g))
        })
    }

    fn catalog_completed(&mut self, r: CatalogResult) {
        let Some(device) = self.owner_of(&r.device) else {
            warn!(document_device = %r.device, "catalog from an unknown device dropped");
            return;
        };
        let now = Instant::now();
        let at = now_ts();
        match r.completion {
            Completion::Complete => inc(&self.metrics.catalogs_complete),
            Completion::NoResponse => inc(&self.metrics.catalogs_unanswered),
            Completion::QuietTimeout | Completion::Overflow => {
                inc(&self.metrics.catalogs_incomplete)
            }
        }
        let Some(d) = self.devices.get_mut(&device) else {
            return;
        };
        let span = d.span.clone();
        let _g = span.enter();
        if !r.inconsistencies.is_empty() {
            inc(&self.metrics.catalog_inconsistencies);
            warn!(sn = r.sn, inconsistencies = ?r.inconsistencies, "catalog does not add up");
        }
        if r.completion == Completion::NoResponse {
            d.last_error = Some(format!(
                "catalog query SN {} not answered within {} s",
                r.sn, self.cfg.catalog.no_response_timeout_secs
            ));
            warn!(sn = r.sn, "catalog query not answered");
        } else {
            info!(sn = r.sn, items = r.items.len(), completion = ?r.completion, "catalog");
        }
        // Only a complete catalog may remove channels; a partial one is merged.
        let replace = r.completion == Completion::Complete;
        let mut status_changes = Vec::new();
        let mut next: BTreeMap<String, ChannelState> = if replace {
            BTreeMap::new()
        } else {
            std::mem::take(&mut d.channels)
        };
        for item in &r.items {
            let old = if replace {
                d.channels.get(&item.device_id)
            } else {
                next.get(&item.device_id)
            };
            if let Some(o) = old {
                if o.item.status != item.status {
                    status_changes.push((item.device_id.clone(), item.status.clone()));
                }
            }
            next.insert(item.device_id.clone(), channel_state(item.clone()));
        }
        let removed: Vec<String> = if replace {
            d.channels
                .keys()
                .filter(|k| !next.contains_key(*k))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        d.channels = next;
        if r.completion != Completion::NoResponse {
            d.catalog_at = Some(at);
        }
        drop(_g);
        for (channel, status) in status_changes {
            self.emit(GbEvent::ChannelStatus {
                device,
                channel,
                status,
                event: None,
                at,
            });
        }
        self.emit(GbEvent::Catalog {
            device,
            catalog: CatalogSnapshot {
                sn: r.sn,
                completion: r.completion,
                announced: r.announced,
                packets: r.packets,
                entries: r.items.into_iter().map(CatalogEntry::new).collect(),
                inconsistencies: r.inconsistencies,
            },
            at,
        });
        for ch in removed {
            if let Ok(channel) = GbId::parse(&ch) {
                self.channel_removed(crate::play::ChannelKey { device, channel }, now);
            }
        }
        self.reconcile_device(&device, now);
    }

    /// Catalog changes pushed by a device (NOTIFY or MESSAGE `<Notify>`).
    pub(crate) fn catalog_changes(
        &mut self,
        device: GbId,
        items: Vec<CatalogItem>,
        via: NotifyVia,
        now: Instant,
    ) {
        inc(&self.metrics.catalog_notifies);
        let at = now_ts();
        let mut changes = Vec::with_capacity(items.len());
        let mut statuses = Vec::new();
        let mut removed = Vec::new();
        let mut touched = Vec::new();
        if let Some(d) = self.devices.get_mut(&device) {
            for item in items {
                let event = item.event.clone().unwrap_or(CatalogEvent::Update);
                let id = item.device_id.clone();
                match &event {
                    CatalogEvent::Del => {
                        d.channels.remove(&id);
                        removed.push(id.clone());
                    }
                    CatalogEvent::On
                    | CatalogEvent::Off
                    | CatalogEvent::VideoLost
                    | CatalogEvent::Defect => {
                        let status = match &event {
                            CatalogEvent::On => ChannelStatus::On,
                            CatalogEvent::Off => ChannelStatus::Off,
                            other => ChannelStatus::Other(other.as_str().to_owned()),
                        };
                        match d.channels.get_mut(&id) {
                            Some(c) => c.item.status = Some(status.clone()),
                            None => {
                                let mut it = item.clone();
                                it.status = Some(status.clone());
                                it.event = None;
                                d.channels.insert(id.clone(), channel_state(it));
                            }
                        }
                        statuses.push((id.clone(), Some(status), event.clone()));
                    }
                    CatalogEvent::Add | CatalogEvent::Update | CatalogEvent::Other(_) => {
                        let mut it = item.clone();
                        it.event = None;
                        d.channels.insert(id.clone(), channel_state(it));
                    }
                }
                touched.push(id);
                changes.push(CatalogChange {
                    event,
                    entry: CatalogEntry::new(item),
                });
            }
        } else {
            return;
        }
        for (channel, status, event) in statuses {
            self.emit(GbEvent::ChannelStatus {
                device,
                channel,
                status,
                event: Some(event),
                at,
            });
        }
        self.emit(GbEvent::CatalogChanged {
            device,
            changes,
            via,
            at,
        });
        for ch in removed {
            if let Ok(channel) = GbId::parse(&ch) {
                self.channel_removed(crate::play::ChannelKey { device, channel }, now);
            }
        }
        for ch in touched {
            if let Ok(channel) = GbId::parse(&ch) {
                self.reconcile(crate::play::ChannelKey { device, channel }, now);
            }
        }
    }

    /// A SIP NOTIFY from a device (catalog subscription, or a device pushing changes).
    pub(crate) fn notify(&mut self, key: ServerKey, req: Message, peer: Peer, now: Now) {
        let device = req
            .from()
            .ok()
            .and_then(|f| f.uri.user)
            .and_then(|u| GbId::parse(&u).ok());
        let Some(device) = device else {
            inc(&self.metrics.requests_refused);
            self.reply(&key, &req, peer, 400, now.instant);
            return;
        };
        let registered = self
            .registry
            .device(&device)
            .is_some_and(|d| d.peer.addr.ip() == peer.addr.ip());
        if !registered {
            inc(&self.metrics.requests_refused);
            debug!(%device, from = %peer, "NOTIFY from an unregistered device refused");
            self.reply(&key, &req, peer, 403, now.instant);
            return;
        }
        let span = self
            .devices
            .get(&device)
            .map(|d| d.span.clone())
            .unwrap_or_else(tracing::Span::none);
        let _g = span.enter();
        let matched = self.subs.on_notify(&req, now.instant);
        if let Some(e) = &matched.state_error {
            debug!(error = %e, "NOTIFY with an unusable Subscription-State");
        }
        self.subscription_output(matched.output, now.instant);
        if req.body.is_empty() {
            self.reply(&key, &req, peer, 200, now.instant);
            return;
        }
        match parse_body(&req.body, Some(device.as_str())) {
            Ok(doc) => {
                self.reply(&key, &req, peer, 200, now.instant);
                match doc.payload {
                    Payload::CatalogNotify(list) | Payload::CatalogResponse(list) => {
                        self.catalog_changes(device, list.items, NotifyVia::Notify, now.instant)
                    }
                    payload => self.manscdp(
                        device,
                        Manscdp { payload, ..doc },
                        NotifyVia::Notify,
                        now.instant,
                    ),
                }
            }
            Err(e) => {
                inc(&self.metrics.bad_bodies);
                warn!(error = %e, "NOTIFY body refused");
                self.device_error(&device, e.to_string());
                self.reply(&key, &req, peer, 400, now.instant);
            }
        }
    }

    /// Whether a subscription status reads as active (for views).
    pub(crate) fn subscription_text(&self, device: &GbId) -> Option<String> {
        match self.subs.status(device)? {
            SubscriptionStatus::Active { .. } => Some("active".into()),
            SubscriptionStatus::Subscribing => Some("subscribing".into()),
            SubscriptionStatus::Unsubscribing => Some("unsubscribing".into()),
            SubscriptionStatus::Retrying { failures, .. } => {
                Some(format!("retrying after {failures} failure(s)"))
            }
            SubscriptionStatus::Unsupported { code, .. } => Some(format!("not supported ({code})")),
        }
    }
}

pub(crate) fn channel_state(item: CatalogItem) -> ChannelState {
    ChannelState {
        kind: crate::catalog::item_kind(&item),
        id: GbId::parse(&item.device_id).ok(),
        item,
    }
}
