//! From the server's events to the register and the status histories. Runs on the blocking
//! pool, one batch of events at a time, in order.
//!
//! # Catalog → register
//! Every video channel (type 131/132) of a catalog (complete or not), of late items and of
//! ADD/UPDATE notifications is a camera whose ID is the channel ID and whose source is
//! `gb {device, channel}`:
//! - **new**: filed with the channel's name (its ID when it has none), address and
//!   coordinates (`0,0` means "unknown"), in the grid its CivilCode maps to
//!   ([`vigil_core::civil`], longest prefix), else in `filing.unmapped_grid`, else not filed
//!   and listed as unmapped. Registration `not_filed`, acceptance `pending`, sharing
//!   `filing.shared_upward`: the integrator completes the record (builder, point class, sites,
//!   备案) through the API as for any camera.
//! - **known**: a new record version (effective now) when the name, address or coordinates
//!   changed; the other fields are the integrator's and are copied. The grid changes only
//!   when vigil sees the channel's CivilCode change (a camera moved by hand stays where it
//!   was put).
//! - an ID filed by someone else as another camera (RTSP, or another device's channel) is not
//!   touched: the channel is listed as `not_filed` with the reason; so is a decommissioned
//!   camera (vigil never brings one back into service).
//!
//! Records of one batch are written with one import (one fsync) and one audit entry (actor
//! `gb28181`).
//!
//! # Liveness → status history
//! A filed camera is **online** while its device is online (registered and keeping alive) and
//! its channel's status is not `OFF`. Every device transition (register, online, offline with
//! its reason: unregistered, expired, keepalive timeout, TCP lost) and every channel status
//! change writes the cameras' `online` history; a channel that leaves the catalog (complete
//! catalog without it, DEL) goes offline and stays in the register. VLOST and DEFECT
//! notifications are recorded as failed `signal_loss` / `overall` quality diagnoses, and the
//! next ON as passed. An instant earlier than the latest one of a history (after a restart,
//! or a stepped clock) is moved to now.
//!
//! # Uplinks
//! An uplink going up or down writes the upper platform's uplink history (the networking
//! rate's "connected").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use vigil_api::gb28181::{inc, DeviceRecord, Filing, Gb28181, GbTransition, ItemRecord};
use vigil_core::camera::{AcceptanceState, Camera, CameraSource, RegistrationState};
use vigil_core::geo::GeoPoint;
use vigil_core::grid::GridCode;
use vigil_core::id::{CivilCode, GbId};
use vigil_core::import::CameraImport;
use vigil_core::model::CameraVersionInput;
use vigil_core::status::{Diagnosis, QualityCheck, StatusKind};
use vigil_core::time::{Timestamp, Transition};
use vigil_gb28181::catalog::{Completion, ItemKind};
use vigil_gb28181::manscdp::{CatalogEvent, CatalogItem, ChannelStatus};
use vigil_gb28181::server::{CatalogEntry, GbEvent, UplinkState};
use vigil_index::{AuditDraft, ImportMode, Index};

use crate::service::now;

/// Audit actor of the daemon's filing.
pub const ACTOR: &str = "gb28181";

/// Longest camera name the register accepts.
const MAX_NAME: usize = 200;

/// Filing settings.
#[derive(Debug, Clone)]
pub struct FilingSettings {
    /// Grid of channels whose CivilCode maps to none.
    pub unmapped_grid: Option<GridCode>,
    /// New cameras are shared upward.
    pub shared_upward: bool,
    /// Uplink name → upper platform ID.
    pub uplinks: HashMap<String, GbId>,
}

/// A camera record waiting for the batch's import.
struct Pending {
    device: GbId,
    item: String,
    version: CameraVersionInput,
    new: bool,
}

/// Applies events to the index (see the module docs).
pub struct Filer {
    index: Arc<Index>,
    gb: Arc<Gb28181>,
    settings: FilingSettings,
    online: HashMap<GbId, bool>,
    pending: Vec<Pending>,
    pending_devices: HashSet<GbId>,
    /// Devices with channels filed or changed since the last batch (their recording is
    /// decided again: the server asked for their sinks before they were filed).
    filed_devices: HashSet<GbId>,
}

fn device_of(ev: &GbEvent) -> Option<GbId> {
    match ev {
        GbEvent::DeviceRegistered { device, .. }
        | GbEvent::DeviceOnline { device, .. }
        | GbEvent::DeviceOffline { device, .. }
        | GbEvent::QuirksSeen { device, .. }
        | GbEvent::DeviceInfo { device, .. }
        | GbEvent::DeviceStatus { device, .. }
        | GbEvent::Catalog { device, .. }
        | GbEvent::CatalogLateItems { device, .. }
        | GbEvent::CatalogChanged { device, .. }
        | GbEvent::ChannelStatus { device, .. }
        | GbEvent::Subscription { device, .. }
        | GbEvent::Media { device, .. }
        | GbEvent::Alarm { device, .. }
        | GbEvent::UplinkRelay { device, .. } => Some(*device),
        GbEvent::AuthFailed { device, .. } => *device,
        GbEvent::SourceBanned { .. }
        | GbEvent::Uplink { .. }
        | GbEvent::UplinkCatalogServed { .. } => None,
    }
}

fn completion_code(c: Completion) -> &'static str {
    match c {
        Completion::Complete => "complete",
        Completion::QuietTimeout => "quiet_timeout",
        Completion::NoResponse => "no_response",
        Completion::Overflow => "overflow",
    }
}

/// The camera name for an item: its name (at most 200 characters), else its ID.
fn name_of(item: &CatalogItem) -> String {
    let name = item.name.as_deref().map(str::trim).unwrap_or("");
    if name.is_empty() {
        return item.device_id.clone();
    }
    name.chars().take(MAX_NAME).collect()
}

/// Coordinates of an item; `0,0` (what devices send for "unknown") and invalid ones are none.
fn location_of(item: &CatalogItem) -> Option<GeoPoint> {
    match (item.latitude, item.longitude) {
        (Some(lat), Some(lon)) if !(lat == 0.0 && lon == 0.0) => GeoPoint::new(lat, lon).ok(),
        _ => None,
    }
}

/// Whether a filed channel counts as online, given its device's state.
fn channel_up(device_online: bool, item: &CatalogItem) -> bool {
    device_online && item.status != Some(ChannelStatus::Off)
}

impl Filer {
    /// A filer writing to `index`, keeping `gb`'s directory.
    pub fn new(index: Arc<Index>, gb: Arc<Gb28181>, settings: FilingSettings) -> Filer {
        Filer {
            index,
            gb,
            settings,
            online: HashMap::new(),
            pending: Vec::new(),
            pending_devices: HashSet::new(),
            filed_devices: HashSet::new(),
        }
    }

    /// Applies a batch of events in order (blocking: index work). Returns the devices with
    /// channels filed or changed, whose recording the server must decide again.
    pub fn apply(&mut self, events: Vec<GbEvent>) -> Vec<GbId> {
        for ev in events {
            inc(&self.gb.counters().events);
            if device_of(&ev).is_some_and(|d| self.pending_devices.contains(&d)) {
                self.flush();
            }
            self.event(ev);
        }
        self.flush();
        self.filed_devices.drain().collect()
    }

    fn event(&mut self, ev: GbEvent) {
        match ev {
            GbEvent::DeviceRegistered {
                device,
                addr,
                transport,
                version,
                expires,
                at,
                ..
            } => self.transition(
                device,
                at,
                "registered",
                Some(format!(
                    "from {addr} over {transport:?}, GB/T 28181-{version:?}, for {} s",
                    expires.as_secs()
                )),
            ),
            GbEvent::DeviceOnline { device, at } => {
                self.transition(device, at, "online", None);
                self.online.insert(device, true);
                self.sync_device(device, at);
            }
            GbEvent::DeviceOffline { device, reason, at } => {
                self.transition(device, at, "offline", Some(format!("{reason:?}")));
                self.online.insert(device, false);
                self.sync_device(device, at);
            }
            GbEvent::AuthFailed {
                source,
                device: Some(device),
                reason,
                failures,
                at,
            } => self.transition(
                device,
                at,
                "auth_failed",
                Some(format!(
                    "{reason} (from {source}, {failures} failure(s) in the window)"
                )),
            ),
            GbEvent::Catalog {
                device,
                catalog,
                at,
            } => {
                {
                    let mut dir = self.gb.directory();
                    let rec = dir.devices.entry(device).or_default();
                    rec.catalog_at = Some(at);
                    rec.catalog_completion = Some(completion_code(catalog.completion).to_owned());
                    rec.catalog_problems = catalog
                        .inconsistencies
                        .iter()
                        .map(|i| format!("{i:?}"))
                        .collect();
                }
                let complete = catalog.completion == Completion::Complete;
                let present: HashSet<String> = catalog
                    .entries
                    .iter()
                    .map(|e| e.item.device_id.clone())
                    .collect();
                self.file_entries(device, catalog.entries, at);
                if complete {
                    let gone: Vec<String> = {
                        let dir = self.gb.directory();
                        dir.devices
                            .get(&device)
                            .map(|r| {
                                r.items
                                    .iter()
                                    .filter(|(id, rec)| {
                                        !present.contains(*id)
                                            && !matches!(rec.filing, Filing::Removed { .. })
                                    })
                                    .map(|(id, _)| id.clone())
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    self.remove_items(device, &gone, at);
                }
            }
            GbEvent::CatalogLateItems {
                device,
                entries,
                at,
                ..
            } => self.file_entries(device, entries, at),
            GbEvent::CatalogChanged {
                device,
                changes,
                at,
                ..
            } => {
                let mut file = Vec::new();
                let mut gone = Vec::new();
                for c in changes {
                    match c.event {
                        CatalogEvent::Del => gone.push(c.entry.item.device_id.clone()),
                        CatalogEvent::Add | CatalogEvent::Update | CatalogEvent::Other(_) => {
                            file.push(c.entry)
                        }
                        // Status changes arrive as ChannelStatus events.
                        CatalogEvent::On
                        | CatalogEvent::Off
                        | CatalogEvent::VideoLost
                        | CatalogEvent::Defect => {}
                    }
                }
                self.file_entries(device, file, at);
                self.remove_items(device, &gone, at);
            }
            GbEvent::ChannelStatus {
                device,
                channel,
                status,
                event,
                at,
            } => self.channel_status(device, &channel, status, event, at),
            GbEvent::Uplink { uplink, state, at } => {
                let Some(platform) = self.settings.uplinks.get(&uplink).copied() else {
                    tracing::warn!(%uplink, "event of an uplink that is not configured");
                    return;
                };
                let up = matches!(state, UplinkState::Up { .. });
                match self.clamped(|index, at| index.set_uplink(&platform, at, up), at) {
                    Ok(t) if t != Transition::Unchanged => {
                        inc(&self.gb.counters().uplink_transitions)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        inc(&self.gb.counters().index_errors);
                        tracing::warn!(%uplink, %platform, error = %e, up, "cannot record the uplink status");
                    }
                }
            }
            GbEvent::Alarm {
                device,
                source,
                alarm,
                ..
            } => tracing::info!(%device, %source, ?alarm, "alarm"),
            other => tracing::trace!(kind = other.kind(), "event not filed"),
        }
    }

    fn transition(&self, device: GbId, at: Timestamp, event: &str, detail: Option<String>) {
        tracing::debug!(%device, event, detail = detail.as_deref().unwrap_or(""), "device transition");
        self.gb
            .directory()
            .devices
            .entry(device)
            .or_default()
            .push_transition(GbTransition {
                at,
                event: event.to_owned(),
                detail,
            });
    }

    fn device_online(&self, device: &GbId) -> bool {
        self.online.get(device).copied().unwrap_or(false)
    }

    /// Writes the online state of every filed camera of `device`.
    fn sync_device(&mut self, device: GbId, at: Timestamp) {
        let up = self.device_online(&device);
        let cameras: Vec<(GbId, bool)> = {
            let dir = self.gb.directory();
            dir.devices
                .get(&device)
                .map(|r| {
                    r.items
                        .values()
                        .filter_map(|i| match i.filing {
                            Filing::Filed { camera, .. } => {
                                Some((camera, channel_up(up, &i.entry.item)))
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for (camera, up) in cameras {
            self.set_online(camera, at, up);
        }
    }

    /// Runs an index write at `at`; if the history already holds a later instant, once more
    /// at now (see the module docs).
    fn clamped<T>(
        &self,
        write: impl Fn(&Index, Timestamp) -> Result<T, vigil_index::IndexError>,
        at: Timestamp,
    ) -> Result<T, vigil_index::IndexError> {
        match write(&self.index, at) {
            Ok(t) => Ok(t),
            Err(e) => {
                let later = now();
                if later > at {
                    write(&self.index, later)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn set_online(&self, camera: GbId, at: Timestamp, up: bool) {
        match self.clamped(
            |index, at| index.set_status(&camera, StatusKind::Online, at, up),
            at,
        ) {
            Ok(Transition::Unchanged) => {}
            Ok(_) => inc(&self.gb.counters().status_transitions),
            Err(e) => {
                inc(&self.gb.counters().index_errors);
                tracing::warn!(%camera, error = %e, up, "cannot record the online status");
            }
        }
    }

    fn diagnose(&self, camera: GbId, at: Timestamp, check: QualityCheck, passed: bool) {
        match self
            .index
            .record_diagnosis(&camera, Diagnosis { at, check, passed })
        {
            Ok(()) => inc(&self.gb.counters().diagnoses),
            Err(e) => {
                inc(&self.gb.counters().index_errors);
                tracing::warn!(%camera, error = %e, "cannot record the diagnosis");
            }
        }
    }

    fn channel_status(
        &mut self,
        device: GbId,
        channel: &str,
        status: Option<ChannelStatus>,
        event: Option<CatalogEvent>,
        at: Timestamp,
    ) {
        let (camera, before, item) = {
            let mut dir = self.gb.directory();
            let Some(rec) = dir
                .devices
                .get_mut(&device)
                .and_then(|d| d.items.get_mut(channel))
            else {
                return;
            };
            let before = rec.entry.item.status.clone();
            rec.entry.item.status = status.clone();
            rec.seen_at = at;
            let camera = match rec.filing {
                Filing::Filed { camera, .. } => Some(camera),
                _ => None,
            };
            (camera, before, rec.entry.item.clone())
        };
        let Some(camera) = camera else { return };
        self.set_online(camera, at, channel_up(self.device_online(&device), &item));
        let was =
            |s: &str| matches!(&before, Some(ChannelStatus::Other(o)) if o.eq_ignore_ascii_case(s));
        match event {
            Some(CatalogEvent::VideoLost) => {
                self.diagnose(camera, at, QualityCheck::SignalLoss, false)
            }
            Some(CatalogEvent::Defect) => self.diagnose(camera, at, QualityCheck::Overall, false),
            Some(CatalogEvent::On) if was("VLOST") => {
                self.diagnose(camera, at, QualityCheck::SignalLoss, true)
            }
            Some(CatalogEvent::On) if was("DEFECT") => {
                self.diagnose(camera, at, QualityCheck::Overall, true)
            }
            _ => {}
        }
    }

    /// Items that left the catalog: their cameras go offline and they are listed as removed.
    fn remove_items(&mut self, device: GbId, ids: &[String], at: Timestamp) {
        for id in ids {
            let camera = {
                let mut dir = self.gb.directory();
                let Some(rec) = dir
                    .devices
                    .get_mut(&device)
                    .and_then(|d| d.items.get_mut(id))
                else {
                    continue;
                };
                let camera = rec.filing.camera();
                rec.filing = Filing::Removed { camera };
                rec.seen_at = at;
                camera
            };
            tracing::info!(%device, item = %id, "item left the device's catalog");
            if let Some(camera) = camera {
                self.set_online(camera, at, false);
            }
        }
    }

    /// Files (or updates) the video channels among `entries` and records every entry.
    fn file_entries(&mut self, device: GbId, entries: Vec<CatalogEntry>, at: Timestamp) {
        for entry in entries {
            let id = entry.item.device_id.clone();
            let prev: Option<Option<CivilCode>> = {
                let dir = self.gb.directory();
                dir.devices
                    .get(&device)
                    .and_then(|d| d.items.get(&id))
                    .map(|r| r.entry.item.civil_code)
            };
            let filing = if entry.kind == ItemKind::VideoChannel {
                self.plan(device, &entry.item, prev, at)
            } else {
                Filing::NotVideo
            };
            let camera_up = match &filing {
                Filing::Filed { camera, .. }
                    if !self.pending.iter().any(|p| p.version.camera.id == *camera) =>
                {
                    Some((
                        *camera,
                        channel_up(self.device_online(&device), &entry.item),
                    ))
                }
                _ => None,
            };
            self.gb
                .directory()
                .devices
                .entry(device)
                .or_default()
                .items
                .insert(
                    id,
                    ItemRecord {
                        entry,
                        filing,
                        seen_at: at,
                    },
                );
            if let Some((camera, up)) = camera_up {
                self.set_online(camera, at, up);
            }
        }
    }

    /// The grid a CivilCode maps to, with how.
    fn grid_for(&self, code: Option<&CivilCode>) -> Option<(GridCode, String)> {
        let m = self.gb.civil_codes().lookup(code?)?;
        let via = match code {
            Some(c) if *c != m.matched => format!("CivilCode {c} → {m}"),
            _ => format!("CivilCode {m}"),
        };
        Some((m.grid.clone(), via))
    }

    /// Decides what to do with one video channel; queues its record if it changes.
    fn plan(
        &mut self,
        device: GbId,
        item: &CatalogItem,
        prev_civil: Option<Option<CivilCode>>,
        at: Timestamp,
    ) -> Filing {
        let Ok(channel) = GbId::parse(&item.device_id) else {
            return Filing::NotFiled {
                reason: format!("{:?} is not a 20-digit ID", item.device_id),
            };
        };
        let refused = |reason: String| {
            inc(&self.gb.counters().filing_refused);
            tracing::warn!(%device, %channel, %reason, "channel not filed");
            Filing::NotFiled { reason }
        };
        let source = CameraSource::Gb {
            device_id: device,
            channel_id: channel,
        };
        let existing = match self.index.camera(&channel, at) {
            Ok(v) => v,
            Err(e) => {
                inc(&self.gb.counters().index_errors);
                return refused(format!("the register could not be read: {e}"));
            }
        };
        let mapped = self.grid_for(item.civil_code.as_ref());
        let (camera, new, grid, via) = match existing {
            Some(v) => {
                let cam = v.camera;
                if cam.source != source {
                    return refused(format!(
                        "ID {channel} is already filed as another camera (source {}); it is \
                         left as it is",
                        match &cam.source {
                            CameraSource::Rtsp { url } => format!("rtsp {url}"),
                            CameraSource::Gb {
                                device_id,
                                channel_id,
                            } => format!("gb {device_id}/{channel_id}"),
                        }
                    ));
                }
                if let Some(d) = cam.decommissioned_at.filter(|d| *d <= at) {
                    return refused(format!(
                        "camera {channel} was decommissioned at {d}; vigil does not bring it \
                         back into service"
                    ));
                }
                let civil_changed = prev_civil.is_some_and(|p| p != item.civil_code);
                let (grid, via) = match &mapped {
                    Some((g, via)) if civil_changed => (g.clone(), format!("{via} (changed)")),
                    Some((g, via)) if *g == cam.grid => (g.clone(), via.clone()),
                    _ => (
                        cam.grid.clone(),
                        "kept (placed by hand or by an earlier CivilCode)".to_owned(),
                    ),
                };
                let updated = Camera {
                    name: name_of(item),
                    address: item.address.clone().or(cam.address.clone()),
                    location: location_of(item).or(cam.location),
                    grid: grid.clone(),
                    ..cam.clone()
                };
                if updated == cam {
                    return Filing::Filed {
                        camera: channel,
                        grid,
                        via,
                    };
                }
                (updated, false, grid, via)
            }
            None => {
                let (grid, via) = match mapped {
                    Some(m) => m,
                    None => match &self.settings.unmapped_grid {
                        Some(g) => (
                            g.clone(),
                            "filing.unmapped_grid (its CivilCode maps to no grid)".to_owned(),
                        ),
                        None => {
                            return Filing::Unmapped {
                                civil_code: item.civil_code.map(|c| c.as_str().to_owned()),
                            }
                        }
                    },
                };
                let camera = Camera {
                    id: channel,
                    name: name_of(item),
                    source,
                    location: location_of(item),
                    address: item.address.clone(),
                    grid: grid.clone(),
                    sites: Vec::new(),
                    builder: None,
                    point_class: None,
                    install_date: None,
                    registration: RegistrationState::NotFiled,
                    acceptance: AcceptanceState::Pending,
                    hd: None,
                    shared_upward: self.settings.shared_upward,
                    decommissioned_at: None,
                };
                (camera, true, grid, via)
            }
        };
        self.pending.retain(|p| p.version.camera.id != channel);
        self.pending.push(Pending {
            device,
            item: item.device_id.clone(),
            version: CameraVersionInput { from: at, camera },
            new,
        });
        self.pending_devices.insert(device);
        Filing::Filed {
            camera: channel,
            grid,
            via,
        }
    }

    /// Writes the queued records (one import, one audit entry), then their online state.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_devices.clear();
        let imports: Vec<CameraImport> = pending
            .iter()
            .map(|p| CameraImport {
                version: p.version.clone(),
                credentials: None,
            })
            .collect();
        let mut refused: HashMap<usize, String> = HashMap::new();
        match self.index.import_cameras(imports, ImportMode::ApplyValid) {
            Ok(report) => {
                for e in report.rejected {
                    let reason =
                        format!("the register refused the record: {}: {}", e.field, e.reason);
                    refused
                        .entry(e.row)
                        .and_modify(|r| {
                            r.push_str("; ");
                            r.push_str(&reason);
                        })
                        .or_insert(reason);
                }
            }
            Err(e) => {
                inc(&self.gb.counters().index_errors);
                for i in 0..pending.len() {
                    refused.insert(i, format!("the register could not be written: {e}"));
                }
            }
        }
        let mut filed = Vec::new();
        let mut updated = Vec::new();
        let mut devices: Vec<String> = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            if let Some(reason) = refused.get(&i) {
                inc(&self.gb.counters().filing_refused);
                tracing::warn!(device = %p.device, channel = %p.item, %reason, "channel not filed");
                if let Some(rec) = self
                    .gb
                    .directory()
                    .devices
                    .get_mut(&p.device)
                    .and_then(|d| d.items.get_mut(&p.item))
                {
                    rec.filing = Filing::NotFiled {
                        reason: reason.clone(),
                    };
                }
                continue;
            }
            let id = p.version.camera.id.to_string();
            if p.new {
                inc(&self.gb.counters().cameras_filed);
                tracing::info!(device = %p.device, camera = %id, grid = %p.version.camera.grid, "camera filed from the catalog");
                filed.push(id);
            } else {
                inc(&self.gb.counters().cameras_updated);
                updated.push(id);
            }
            self.filed_devices.insert(p.device);
            let d = p.device.to_string();
            if !devices.contains(&d) {
                devices.push(d);
            }
        }
        if !filed.is_empty() || !updated.is_empty() {
            let at = now();
            let cap = |v: &[String]| v.iter().take(100).cloned().collect::<Vec<_>>();
            let draft = AuditDraft {
                actor: ACTOR.to_owned(),
                action: "camera.gb_catalog".to_owned(),
                target: devices.join(","),
                before: None,
                after: Some(serde_json::json!({
                    "filed": filed.len(),
                    "updated": updated.len(),
                    "filed_ids": cap(&filed),
                    "updated_ids": cap(&updated),
                })),
            };
            if let Err(e) = self.index.append_audit(at, draft) {
                inc(&self.gb.counters().index_errors);
                tracing::error!(error = %e, "cameras were filed but the audit entry could not be written");
            }
        }
        for (i, p) in pending.iter().enumerate() {
            if refused.contains_key(&i) {
                continue;
            }
            let item = {
                let dir = self.gb.directory();
                dir.devices
                    .get(&p.device)
                    .and_then(|d| d.items.get(&p.item))
                    .map(|r| r.entry.item.clone())
            };
            if let Some(item) = item {
                let up = channel_up(self.device_online(&p.device), &item);
                self.set_online(p.version.camera.id, p.version.from, up);
            }
        }
    }

    /// Tries again the video channels that could not be filed (a grid created since, a
    /// conflicting camera deleted, …). Returns the devices with channels filed.
    pub fn retry_refused(&mut self) -> Vec<GbId> {
        let at = now();
        let retry: Vec<(GbId, CatalogEntry)> = {
            let dir = self.gb.directory();
            dir.devices
                .iter()
                .flat_map(|(d, r): (&GbId, &DeviceRecord)| {
                    r.items
                        .values()
                        .filter(|i| matches!(i.filing, Filing::NotFiled { .. }))
                        .map(move |i| (*d, i.entry.clone()))
                })
                .collect()
        };
        let mut by_device: HashMap<GbId, Vec<CatalogEntry>> = HashMap::new();
        for (d, e) in retry {
            by_device.entry(d).or_default().push(e);
        }
        for (device, entries) in by_device {
            self.file_entries(device, entries, at);
        }
        self.flush();
        self.filed_devices.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_api::gb28181::GbServerInfo;
    use vigil_core::camera::RtspUrl;
    use vigil_core::civil::CivilCodeMap;
    use vigil_core::grid::Grid;
    use vigil_core::time::{Interval, MINUTE_MS};
    use vigil_gb28181::registry::OfflineReason;
    use vigil_gb28181::server::{CatalogSnapshot, GbConfig, GbServer, NoSinks};

    fn item(id: &str) -> CatalogItem {
        CatalogItem {
            device_id: id.to_owned(),
            ..CatalogItem::default()
        }
    }

    const DEVICE: &str = "34020000001180000001";
    const T0: i64 = 1_800_000_000_000;

    fn t(minutes: i64) -> Timestamp {
        Timestamp::from_millis(T0 + minutes * MINUTE_MS)
    }

    fn channel(id: &str, name: &str, civil: Option<&str>) -> CatalogEntry {
        CatalogEntry::new(CatalogItem {
            name: Some(name.to_owned()),
            civil_code: civil.and_then(|c| CivilCode::parse(c).ok()),
            parent_id: Some(DEVICE.to_owned()),
            status: Some(ChannelStatus::On),
            latitude: Some(36.6),
            longitude: Some(117.0),
            ..item(id)
        })
    }

    fn catalog(entries: Vec<CatalogEntry>, at: Timestamp) -> GbEvent {
        GbEvent::Catalog {
            device: GbId::parse(DEVICE).unwrap(),
            catalog: CatalogSnapshot {
                sn: 1,
                completion: Completion::Complete,
                announced: Some(entries.len() as u32),
                packets: 1,
                entries,
                inconsistencies: Vec::new(),
            },
            at,
        }
    }

    fn grid(code: &str) -> Grid {
        Grid {
            code: GridCode::parse(code).unwrap(),
            name: code.to_owned(),
            level_label: String::new(),
            parent: None,
            polygon: None,
        }
    }

    struct Setup {
        index: Arc<Index>,
        gb: Arc<Gb28181>,
        filer: Filer,
        _server: GbServer,
    }

    /// A filer over a temporary index with grids `city` and `town`, CivilCodes 3402 → city and
    /// 34020101 → town, an RTSP camera already filed as 34020000001310000009, and a server
    /// (loopback, no devices) for the API handle.
    async fn setup() -> Setup {
        let index = Arc::new(Index::temporary().unwrap());
        index.put_grid(grid("city")).unwrap();
        index.put_grid(grid("town")).unwrap();
        let rtsp = Camera {
            id: GbId::parse("34020000001310000009").unwrap(),
            name: "rtsp".into(),
            source: CameraSource::Rtsp {
                url: RtspUrl::parse("rtsp://10.0.0.9/live").unwrap().0,
            },
            location: None,
            address: None,
            grid: GridCode::parse("city").unwrap(),
            sites: Vec::new(),
            builder: None,
            point_class: None,
            install_date: None,
            registration: RegistrationState::Filed,
            acceptance: AcceptanceState::Accepted,
            hd: None,
            shared_upward: false,
            decommissioned_at: None,
        };
        index
            .put_camera(CameraImport {
                version: CameraVersionInput {
                    from: t(-10),
                    camera: rtsp,
                },
                credentials: None,
            })
            .unwrap();
        let server = GbServer::start(
            GbConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tcp: false,
                ..GbConfig::default()
            },
            Arc::new(NoSinks),
        )
        .await
        .unwrap();
        let civil = CivilCodeMap::parse(
            &[("3402", "city"), ("34020101", "town")]
                .into_iter()
                .map(|(c, g)| (c.to_owned(), g.to_owned()))
                .collect(),
        )
        .unwrap();
        let info = GbServerInfo {
            sip_id: String::new(),
            domain: String::new(),
            recording_mode: "none".into(),
            recording_channels: Vec::new(),
            default_password_set: false,
            device_passwords: 0,
        };
        let gb = Arc::new(Gb28181::new(server.handle.clone(), info, civil, None));
        let filer = Filer::new(
            index.clone(),
            gb.clone(),
            FilingSettings {
                unmapped_grid: None,
                shared_upward: false,
                uplinks: HashMap::new(),
            },
        );
        Setup {
            index,
            gb,
            filer,
            _server: server,
        }
    }

    fn filing(gb: &Gb28181, id: &str) -> Filing {
        gb.directory().devices[&GbId::parse(DEVICE).unwrap()].items[id]
            .filing
            .clone()
    }

    fn grid_of(index: &Index, id: &str) -> String {
        let v = index
            .camera(&GbId::parse(id).unwrap(), t(100))
            .unwrap()
            .unwrap();
        v.camera.grid.to_string()
    }

    fn online(index: &Index, id: &str) -> Vec<Interval> {
        index
            .status_history(
                &GbId::parse(id).unwrap(),
                StatusKind::Online,
                &Interval::open(Timestamp::MIN),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn catalogs_file_cameras_by_civil_code_and_follow_liveness() {
        let Setup {
            index,
            gb,
            mut filer,
            ..
        } = setup().await;
        let device = GbId::parse(DEVICE).unwrap();
        let (a, b, c, rtsp) = (
            "34020000001310000001",
            "34020000001310000002",
            "34020000001310000003",
            "34020000001310000009",
        );
        let group = CatalogEntry::new(item("34020000002150000001"));
        let org = CatalogEntry::new(CatalogItem {
            business_group_id: Some("34020000002150000001".into()),
            ..item("34020000002160000001")
        });
        filer.apply(vec![
            GbEvent::DeviceOnline { device, at: t(0) },
            catalog(
                vec![
                    channel(a, "东门", Some("340201")),
                    channel(b, "南门", Some("34020101")),
                    channel(c, "外地", Some("4401")),
                    channel(rtsp, "冲突", Some("3402")),
                    group,
                    org,
                ],
                t(1),
            ),
        ]);
        assert_eq!(grid_of(&index, a), "city");
        assert_eq!(grid_of(&index, b), "town");
        let v = index
            .camera(&GbId::parse(a).unwrap(), t(2))
            .unwrap()
            .unwrap();
        assert_eq!(v.camera.name, "东门");
        assert_eq!(
            v.camera.source,
            CameraSource::Gb {
                device_id: device,
                channel_id: GbId::parse(a).unwrap()
            }
        );
        assert!(v.camera.location.is_some());
        assert_eq!(v.camera.registration, RegistrationState::NotFiled);
        assert!(
            matches!(filing(&gb, a), Filing::Filed { ref via, .. } if via == "CivilCode 340201 → 3402 → grid city")
        );
        assert_eq!(
            filing(&gb, c),
            Filing::Unmapped {
                civil_code: Some("4401".into())
            }
        );
        assert!(
            matches!(filing(&gb, rtsp), Filing::NotFiled { ref reason } if reason.contains("already filed as another camera"))
        );
        assert_eq!(
            grid_of(&index, rtsp),
            "city",
            "the other camera is untouched"
        );
        assert_eq!(filing(&gb, "34020000002150000001"), Filing::NotVideo);
        assert_eq!(filing(&gb, "34020000002160000001"), Filing::NotVideo);
        assert!(index
            .camera(&GbId::parse(c).unwrap(), t(2))
            .unwrap()
            .is_none());
        // Online from the catalog on: the device was online, the channels ON.
        assert_eq!(online(&index, a)[0].start(), t(1));
        assert!(online(&index, a)[0].is_open());
        let audit = index
            .audit_range(&Interval::open(Timestamp::MIN), None, 100)
            .unwrap();
        let e = audit
            .entries
            .iter()
            .find(|e| e.actor == ACTOR)
            .expect("an audit entry");
        assert_eq!(e.action, "camera.gb_catalog");
        assert_eq!(e.after.as_ref().unwrap()["filed"], 2);

        // A camera moved by hand stays; a changed CivilCode moves a camera.
        let mut moved = index
            .camera(&GbId::parse(a).unwrap(), t(2))
            .unwrap()
            .unwrap()
            .camera;
        moved.grid = GridCode::parse("town").unwrap();
        index
            .put_camera(CameraImport {
                version: CameraVersionInput {
                    from: t(3),
                    camera: moved,
                },
                credentials: None,
            })
            .unwrap();
        filer.apply(vec![catalog(
            vec![
                channel(a, "东门", Some("340201")),
                channel(b, "南门", Some("340202")),
            ],
            t(4),
        )]);
        assert_eq!(grid_of(&index, a), "town", "kept where it was put");
        assert_eq!(grid_of(&index, b), "city", "its CivilCode changed");
        assert_eq!(
            index
                .camera_versions(&GbId::parse(a).unwrap())
                .unwrap()
                .len(),
            2,
            "an unchanged channel adds no version"
        );
        // The complete catalog without c and rtsp: c was never filed, nothing to close.
        assert!(matches!(filing(&gb, c), Filing::Removed { camera: None }));

        // Channel OFF: offline; device offline: the rest go offline.
        filer.apply(vec![GbEvent::ChannelStatus {
            device,
            channel: a.to_owned(),
            status: Some(ChannelStatus::Off),
            event: Some(CatalogEvent::Off),
            at: t(5),
        }]);
        assert_eq!(online(&index, a)[0].end_if_closed(), Some(t(5)));
        filer.apply(vec![GbEvent::DeviceOffline {
            device,
            reason: OfflineReason::KeepaliveTimeout,
            at: t(6),
        }]);
        assert_eq!(online(&index, b)[0].end_if_closed(), Some(t(6)));
        // Back online: b again, a stays off.
        filer.apply(vec![GbEvent::DeviceOnline { device, at: t(7) }]);
        assert_eq!(online(&index, b).len(), 2);
        assert_eq!(online(&index, a).len(), 1);
        let transitions: Vec<String> = gb.directory().devices[&device]
            .transitions
            .iter()
            .map(|t| t.event.clone())
            .collect();
        assert_eq!(transitions, ["online", "offline", "online"]);

        // A complete catalog without b: removed, offline, still in the register.
        filer.apply(vec![catalog(
            vec![channel(a, "东门", Some("340201"))],
            t(8),
        )]);
        assert!(matches!(
            filing(&gb, b),
            Filing::Removed { camera: Some(_) }
        ));
        assert_eq!(online(&index, b)[1].end_if_closed(), Some(t(8)));
        assert!(index
            .camera(&GbId::parse(b).unwrap(), t(9))
            .unwrap()
            .is_some());
        assert_eq!(
            gb.counters()
                .index_errors
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn names_and_locations_follow_the_register_rules() {
        let mut i = item("34020000001310000001");
        assert_eq!(name_of(&i), "34020000001310000001");
        i.name = Some("  ".into());
        assert_eq!(name_of(&i), "34020000001310000001");
        i.name = Some("东门".repeat(150));
        assert_eq!(name_of(&i).chars().count(), MAX_NAME);
        i.latitude = Some(0.0);
        i.longitude = Some(0.0);
        assert_eq!(location_of(&i), None, "0,0 means unknown");
        i.latitude = Some(36.6);
        i.longitude = Some(117.0);
        assert_eq!(location_of(&i), GeoPoint::new(36.6, 117.0).ok());
        i.latitude = Some(117.0);
        assert_eq!(location_of(&i), None, "out of range");
        i.status = Some(ChannelStatus::Off);
        assert!(!channel_up(true, &i));
        i.status = Some(ChannelStatus::Other("VLOST".into()));
        assert!(
            channel_up(true, &i),
            "video lost is a diagnosis, not offline"
        );
        assert!(!channel_up(false, &i));
    }
}
