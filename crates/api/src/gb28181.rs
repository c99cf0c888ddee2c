//! The GB/T 28181 subsystem as the handlers see it: the SIP server's live views (devices,
//! registration and keepalive, channels, media sessions, counters) through its [`GbHandle`],
//! and what the daemon did with each device and catalog item — kept here in a [`Directory`]
//! the daemon's `gb28181` module fills: each item's latest catalog entry (names, parents,
//! business groups, virtual organisations), whether it was filed as a camera and in which grid
//! or why not ([`Filing`]), and each device's recent registration/liveness transitions.
//!
//! The daemon builds one [`Gb28181`] and hands it to the API through
//! [`crate::state::Subsystems::gb28181`]; without it the GB/T 28181 routes answer 503.
//! Passwords never reach this module: the server configuration is summarised in
//! [`GbServerInfo`], which has none.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::civil::CivilCodeMap;
use vigil_core::grid::GridCode;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_gb28181::catalog::ItemKind;
use vigil_gb28181::server::{
    CatalogEntry, ChannelKey, ChannelView, DeviceView, GbHandle, HandleError, SessionView,
    UplinkView,
};

use crate::state::{SubsystemHandle, SubsystemHealth};

/// Transitions kept per device (older ones are in the cameras' status history).
pub const TRANSITIONS_KEPT: usize = 32;

/// What the daemon did with a catalog item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    /// Filed in the register as camera `camera` (the channel ID) in `grid`.
    Filed {
        /// The camera.
        camera: GbId,
        /// Its grid now.
        grid: GridCode,
        /// How the grid was chosen (`CivilCode 370112 → grid X`, `kept`, `unmapped_grid`).
        via: String,
    },
    /// A video channel whose CivilCode has no grid (none sent, or no table entry on its path).
    Unmapped {
        /// The CivilCode as sent (absent or unparsable: `None`).
        civil_code: Option<String>,
    },
    /// A video channel that cannot be filed (its ID belongs to another camera, the index
    /// refused the record, …); the reason names it.
    NotFiled {
        /// Why.
        reason: String,
    },
    /// Not a video channel (business group, virtual organisation, region, NVR, alarm input):
    /// part of the tree only.
    NotVideo,
    /// The item left the device's catalog (a complete catalog without it, or a DEL
    /// notification). Its camera, if any, stays in the register, offline.
    Removed {
        /// The camera it was filed as, if any.
        camera: Option<GbId>,
    },
}

impl Filing {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Filing::Filed { .. } => "filed",
            Filing::Unmapped { .. } => "unmapped",
            Filing::NotFiled { .. } => "not_filed",
            Filing::NotVideo => "not_video",
            Filing::Removed { .. } => "removed",
        }
    }

    /// The camera the item is (or was) filed as.
    pub fn camera(&self) -> Option<GbId> {
        match self {
            Filing::Filed { camera, .. } => Some(*camera),
            Filing::Removed { camera } => *camera,
            _ => None,
        }
    }
}

/// One catalog item as the daemon last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    /// The item with every field the device sent.
    pub entry: CatalogEntry,
    /// What the daemon did with it.
    pub filing: Filing,
    /// When it was last in a catalog or notification.
    pub seen_at: Timestamp,
}

/// A registration or liveness transition of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GbTransition {
    /// When.
    pub at: Timestamp,
    /// `registered`, `online`, `offline`, `auth_failed`.
    pub event: String,
    /// Details (offline reason, source address, …).
    pub detail: Option<String>,
}

/// What the daemon knows about one device beyond the server's live view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRecord {
    /// Latest transitions, oldest first (at most [`TRANSITIONS_KEPT`]).
    pub transitions: VecDeque<GbTransition>,
    /// Catalog items by ID as sent.
    pub items: BTreeMap<String, ItemRecord>,
    /// When the latest catalog was assembled.
    pub catalog_at: Option<Timestamp>,
    /// How it ended (`complete`, `quiet_timeout`, `no_response`, `overflow`).
    pub catalog_completion: Option<String>,
    /// What did not add up in it (wrong SumNum, duplicates, …).
    pub catalog_problems: Vec<String>,
}

impl DeviceRecord {
    /// Appends a transition, dropping the oldest beyond [`TRANSITIONS_KEPT`].
    pub fn push_transition(&mut self, t: GbTransition) {
        if self.transitions.len() == TRANSITIONS_KEPT {
            self.transitions.pop_front();
        }
        self.transitions.push_back(t);
    }
}

/// Everything the daemon keeps about GB/T 28181 devices (in memory; the register and the
/// status histories are in the index).
#[derive(Debug, Default)]
pub struct Directory {
    /// By device.
    pub devices: HashMap<GbId, DeviceRecord>,
}

/// Counters of the daemon's side (the server's own are in its metrics).
#[derive(Debug, Default)]
pub struct DaemonCounters {
    /// Server events handled.
    pub events: AtomicU64,
    /// Cameras filed from catalogs.
    pub cameras_filed: AtomicU64,
    /// New record versions of filed cameras (name, address, location or grid changed).
    pub cameras_updated: AtomicU64,
    /// Video channels that could not be filed (conflict, refused by the index).
    pub filing_refused: AtomicU64,
    /// Online transitions written to cameras' status histories.
    pub status_transitions: AtomicU64,
    /// Quality diagnoses written from VLOST/DEFECT notifications.
    pub diagnoses: AtomicU64,
    /// Uplink transitions written.
    pub uplink_transitions: AtomicU64,
    /// Index writes that failed (logged with the camera or device).
    pub index_errors: AtomicU64,
}

impl DaemonCounters {
    fn snapshot(&self) -> BTreeMap<String, u64> {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("daemon_events", c(&self.events)),
            ("daemon_cameras_filed", c(&self.cameras_filed)),
            ("daemon_cameras_updated", c(&self.cameras_updated)),
            ("daemon_filing_refused", c(&self.filing_refused)),
            ("daemon_status_transitions", c(&self.status_transitions)),
            ("daemon_diagnoses", c(&self.diagnoses)),
            ("daemon_uplink_transitions", c(&self.uplink_transitions)),
            ("daemon_index_errors", c(&self.index_errors)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Adds 1 to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The server's identity and settings as the API may show them (no passwords).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GbServerInfo {
    /// Our SIP server ID.
    pub sip_id: String,
    /// Our SIP domain (devices are configured with it; also the digest realm).
    pub domain: String,
    /// The recording policy: `all`, `none` or `list`.
    pub recording_mode: String,
    /// Channels recorded in `list` mode.
    pub recording_channels: Vec<String>,
    /// Whether devices without their own password can register (a default password is set).
    pub default_password_set: bool,
    /// Devices with their own password.
    pub device_passwords: usize,
}

/// The GB/T 28181 subsystem's handle (see the module docs). Cheap to share in an `Arc`.
pub struct Gb28181 {
    handle: GbHandle,
    info: GbServerInfo,
    civil: CivilCodeMap,
    unmapped_grid: Option<GridCode>,
    directory: Mutex<Directory>,
    counters: DaemonCounters,
}

impl std::fmt::Debug for Gb28181 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gb28181")
            .field("handle", &self.handle)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A page of devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct GbDevicePage {
    /// The devices, by ID.
    pub items: Vec<GbDeviceView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
    /// Devices matching the filter in all.
    pub total: usize,
}

/// A device (IPC, NVR, lower platform) as the server sees it now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbDeviceView {
    /// Device ID.
    pub id: String,
    /// Last known address (`ip:port`).
    pub addr: String,
    /// SIP transport: `udp` or `tcp`.
    pub transport: String,
    /// GB/T 28181 edition: `2011`, `2016` or `2022` (2016 when the device sends no `X-GB-Ver`).
    pub version: String,
    /// `X-GB-Ver` as sent.
    pub x_gb_ver: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Holds a registration now.
    pub registered: bool,
    /// Online now (registered and keeping alive).
    pub online: bool,
    /// Start of the current (or last) registration.
    pub registered_at: Option<Timestamp>,
    /// Last REGISTER or keepalive.
    pub last_keepalive: Option<Timestamp>,
    /// The latest problem with this device (authentication failure, bad body, unanswered
    /// query, …).
    pub last_error: Option<String>,
    /// Named deviations from the standard this device needed.
    pub quirks: Vec<String>,
    /// From its DeviceInfo answer.
    pub manufacturer: Option<String>,
    /// From its DeviceInfo answer.
    pub model: Option<String>,
    /// From its DeviceInfo answer.
    pub firmware: Option<String>,
    /// Items in its latest catalog.
    pub channels: usize,
    /// When its latest catalog was assembled.
    pub catalog_at: Option<Timestamp>,
    /// How that catalog ended: `complete`, `quiet_timeout` (fewer items than announced),
    /// `no_response`, `overflow`.
    pub catalog_completion: Option<String>,
    /// What did not add up in it (wrong SumNum, duplicate items, …).
    pub catalog_problems: Vec<String>,
    /// Catalog subscription state, in words.
    pub subscription: Option<String>,
    /// Its latest registration and liveness transitions, oldest first.
    pub transitions: Vec<GbTransition>,
}

/// Whether and why a channel is recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbRecordingView {
    /// The channel is pulled now (policy or override).
    pub wanted: bool,
    /// `on` or `off` when an operator overrode the policy; absent when the policy decides.
    #[serde(rename = "override")]
    pub overridden: Option<String>,
}

/// What vigil did with a catalog item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbFilingView {
    /// `filed`, `unmapped` (no grid for its CivilCode), `not_filed` (see `detail`),
    /// `not_video` (part of the tree only) or `removed` (left the device's catalog).
    pub state: String,
    /// The camera in the register, if filed (or filed before it was removed).
    pub camera: Option<String>,
    /// Its grid, if filed.
    pub grid: Option<String>,
    /// How the grid was chosen, or why the item is not filed.
    pub detail: Option<String>,
}

/// A catalog item of a device: a video channel, or a node of its tree (business group 215,
/// virtual organisation 216, region, NVR…), with the recording state of video channels.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbChannelView {
    /// The device.
    pub device: String,
    /// Item ID as sent.
    pub id: String,
    /// `video_channel`, `business_group`, `virtual_organisation`, `region`, `device_<type>`
    /// or `invalid_id`.
    pub kind: String,
    /// Name.
    pub name: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// CivilCode as sent.
    pub civil_code: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// `ParentID` (GB/T 28181-2022 allows several).
    pub parents: Vec<String>,
    /// `BusinessGroupID` (virtual organisations).
    pub business_group: Option<String>,
    /// IDs of the items of this catalog whose parent (or business group) this item is.
    pub children: Vec<String>,
    /// `ON`, `OFF`, or as sent.
    pub status: Option<String>,
    /// Filing in the register.
    pub filing: GbFilingView,
    /// Recording decision (video channels).
    pub recording: Option<GbRecordingView>,
    /// Media session: `idle`, `inviting`, `accepted`, `streaming`, `backoff`.
    pub session: Option<String>,
    /// The latest media error (refused or unanswered INVITE, no RTP, wrong SSRC, …).
    pub last_media_error: Option<String>,
    /// Time of the latest frame handed to the store.
    pub last_frame_at: Option<Timestamp>,
    /// Media counters (RTP packets, losses, SSRC mismatches, PS errors, frames, …).
    pub counters: BTreeMap<String, u64>,
}

/// An uplink to an upper platform (cascade), live.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbUplinkView {
    /// Name from the configuration.
    pub name: String,
    /// Upper platform ID.
    pub upper_id: String,
    /// Its address.
    pub addr: String,
    /// Registered now.
    pub up: bool,
    /// Last change.
    pub since: Option<Timestamp>,
    /// Why it went down last.
    pub last_error: Option<String>,
    /// Items in the catalog we share.
    pub shared_items: usize,
}

/// The server: identity, addresses, device and channel counts, uplinks and every counter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbServerView {
    /// Identity and settings (no passwords).
    pub server: GbServerInfo,
    /// The bound SIP UDP address.
    pub sip_udp: String,
    /// The bound SIP TCP address, if TCP is on.
    pub sip_tcp: Option<String>,
    /// Devices seen since start.
    pub devices: usize,
    /// Devices online now.
    pub devices_online: usize,
    /// Video channels in the devices' catalogs.
    pub video_channels: usize,
    /// Video channels filed as cameras.
    pub channels_filed: usize,
    /// Video channels whose CivilCode maps to no grid.
    pub channels_unmapped: usize,
    /// Uplinks.
    pub uplinks: Vec<GbUplinkView>,
    /// Counters: the server's (garbage datagrams, SIP parse errors, bad bodies, catalog
    /// inconsistencies, INVITEs unanswered, RTP SSRC mismatches, PS errors, frames, …) and the
    /// daemon's (`daemon_*`).
    pub metrics: BTreeMap<String, u64>,
}

/// One entry of the CivilCode table and the channels it maps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbCivilMapping {
    /// The CivilCode.
    pub civil_code: String,
    /// Its grid.
    pub grid: String,
    /// Whether that grid exists (a mapping to a missing grid files nothing).
    pub grid_exists: bool,
    /// Video channels whose CivilCode matched this entry (longest prefix).
    pub channels: usize,
}

/// A CivilCode (or its absence) that maps to no grid, with the channels that carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbUnmappedCode {
    /// The CivilCode as sent; absent when the channels carry none (or an unparsable one).
    pub civil_code: Option<String>,
    /// Video channels carrying it.
    pub channels: usize,
    /// Up to ten of them, as `device/channel`.
    pub examples: Vec<String>,
}

/// The CivilCode → grid table and the unmapped codes seen in catalogs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GbCivilCodeReport {
    /// The table (`[gb28181.civil_codes]`).
    pub mappings: Vec<GbCivilMapping>,
    /// Codes no entry matches, most channels first.
    pub unmapped: Vec<GbUnmappedCode>,
    /// Where unmapped video channels are filed instead (`[gb28181.filing] unmapped_grid`);
    /// absent: they are not filed.
    pub unmapped_grid: Option<String>,
}

fn kind_code(kind: ItemKind) -> String {
    match kind {
        ItemKind::Region => "region".to_owned(),
        ItemKind::BusinessGroup => "business_group".to_owned(),
        ItemKind::VirtualOrganisation => "virtual_organisation".to_owned(),
        ItemKind::VideoChannel => "video_channel".to_owned(),
        ItemKind::Device(t) => format!("device_{}", t.code()),
        ItemKind::InvalidId => "invalid_id".to_owned(),
    }
}

fn session_code(s: &SessionView) -> &'static str {
    match s {
        SessionView::Idle => "idle",
        SessionView::Inviting => "inviting",
        SessionView::Accepted => "accepted",
        SessionView::Streaming => "streaming",
        SessionView::Backoff => "backoff",
    }
}

fn version_code(v: vigil_gb28181::sip::GbVersion) -> &'static str {
    use vigil_gb28181::sip::GbVersion;
    match v {
        GbVersion::V2011 => "2011",
        GbVersion::V2016 => "2016",
        GbVersion::V2022 => "2022",
    }
}

fn counters_map<T: Serialize>(snapshot: &T) -> BTreeMap<String, u64> {
    match serde_json::to_value(snapshot) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_u64().map(|n| (k, n)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn filing_view(f: &Filing) -> GbFilingView {
    let (camera, grid, detail) = match f {
        Filing::Filed { camera, grid, via } => (
            Some(camera.to_string()),
            Some(grid.to_string()),
            Some(via.clone()),
        ),
        Filing::Unmapped { civil_code } => (
            None,
            None,
            Some(match civil_code {
                Some(c) => format!("CivilCode {c} maps to no grid"),
                None => "no CivilCode (or an unusable one)".to_owned(),
            }),
        ),
        Filing::NotFiled { reason } => (None, None, Some(reason.clone())),
        Filing::NotVideo => (None, None, None),
        Filing::Removed { camera } => (
            camera.map(|c| c.to_string()),
            None,
            Some("left the device's catalog".to_owned()),
        ),
    };
    GbFilingView {
        state: f.code().to_owned(),
        camera,
        grid,
        detail,
    }
}

fn device_view(d: DeviceView, rec: Option<&DeviceRecord>) -> GbDeviceView {
    let info = d.info.as_ref();
    GbDeviceView {
        id: d.id.to_string(),
        addr: d.addr.to_string(),
        transport: match d.transport {
            vigil_gb28181::sip::Transport::Udp => "udp",
            vigil_gb28181::sip::Transport::Tcp => "tcp",
        }
        .to_owned(),
        version: version_code(d.version).to_owned(),
        x_gb_ver: d.x_gb_ver,
        user_agent: d.user_agent,
        registered: d.registered,
        online: d.online,
        registered_at: d.registered_at,
        last_keepalive: d.last_keepalive,
        last_error: d.last_error,
        quirks: d.quirks.iter().map(|q| (*q).to_owned()).collect(),
        manufacturer: info.and_then(|i| i.manufacturer.clone()),
        model: info.and_then(|i| i.model.clone()),
        firmware: info.and_then(|i| i.firmware.clone()),
        channels: d.channels,
        catalog_at: rec.and_then(|r| r.catalog_at).or(d.catalog_at),
        catalog_completion: rec.and_then(|r| r.catalog_completion.clone()),
        catalog_problems: rec.map(|r| r.catalog_problems.clone()).unwrap_or_default(),
        subscription: d.subscription,
        transitions: rec
            .map(|r| r.transitions.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn item_view(
    device: &GbId,
    record: Option<&ItemRecord>,
    live: Option<&ChannelView>,
    children: Vec<String>,
) -> Option<GbChannelView> {
    let (id, kind) = match (record, live) {
        (Some(r), _) => (r.entry.item.device_id.clone(), r.entry.kind),
        (None, Some(l)) => (l.id.clone(), l.kind),
        (None, None) => return None,
    };
    let it = record.map(|r| &r.entry.item);
    let status = live
        .and_then(|l| l.status.as_ref())
        .or_else(|| it.and_then(|i| i.status.as_ref()))
        .map(|s| s.as_str().to_owned());
    let video = kind == ItemKind::VideoChannel;
    let live_video = live.filter(|_| video);
    Some(GbChannelView {
        device: device.to_string(),
        id,
        kind: kind_code(kind),
        name: it
            .and_then(|i| i.name.clone())
            .or_else(|| live.and_then(|l| l.name.clone())),
        manufacturer: it.and_then(|i| i.manufacturer.clone()),
        model: it.and_then(|i| i.model.clone()),
        owner: it.and_then(|i| i.owner.clone()),
        civil_code: it
            .and_then(|i| i.civil_code.map(|c| c.as_str().to_owned()))
            .or_else(|| live.and_then(|l| l.civil_code.clone())),
        address: it.and_then(|i| i.address.clone()),
        lat: it.and_then(|i| i.latitude),
        lon: it.and_then(|i| i.longitude),
        parents: it
            .map(|i| i.parent_ids().iter().map(|p| (*p).to_owned()).collect())
            .unwrap_or_default(),
        business_group: it.and_then(|i| i.business_group_id.clone()),
        children,
        status,
        filing: filing_view(record.map_or(&Filing::NotVideo, |r| &r.filing)),
        recording: live_video.map(|l| GbRecordingView {
            wanted: l.recording.wanted,
            overridden: l
                .recording
                .overridden
                .map(|on| if on { "on" } else { "off" }.to_owned()),
        }),
        session: live_video.map(|l| session_code(&l.session).to_owned()),
        last_media_error: live.and_then(|l| l.last_media_error.clone()),
        last_frame_at: live.and_then(|l| l.last_frame_at),
        counters: live_video
            .map(|l| counters_map(&l.counters))
            .unwrap_or_default(),
    })
}

/// Why a GB/T 28181 call could not be served (the handlers turn these into problems).
#[derive(Debug, thiserror::Error)]
pub enum GbError {
    /// The server stopped.
    #[error("the GB/T 28181 server is not running")]
    Stopped,
    /// No such device.
    #[error("device {0} has not registered since vigil started")]
    UnknownDevice(GbId),
    /// No such channel on the device.
    #[error("device {device} has no channel {channel} in its catalog")]
    UnknownChannel {
        /// Device.
        device: GbId,
        /// Channel.
        channel: GbId,
    },
    /// The channel is not filed as a camera, so it cannot be recorded.
    #[error("channel {channel} of device {device} is not filed as a camera ({why}), so it cannot be recorded")]
    NotFiled {
        /// Device.
        device: GbId,
        /// Channel.
        channel: GbId,
        /// Why.
        why: String,
    },
    /// The device is offline.
    #[error("device {0} is offline")]
    Offline(GbId),
    /// Anything else the server reported.
    #[error("{0}")]
    Other(String),
}

impl From<HandleError> for GbError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Stopped => GbError::Stopped,
            HandleError::UnknownDevice(d) => GbError::UnknownDevice(d),
            HandleError::DeviceOffline(d) => GbError::Offline(d),
            other => GbError::Other(other.to_string()),
        }
    }
}

/// An operator's recording decision for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingOverride {
    /// Record continuously, whatever the policy says.
    On,
    /// Do not record, whatever the policy says.
    Off,
    /// Let the policy (`[gb28181.recording]`) decide again.
    Policy,
}

impl Gb28181 {
    /// A handle over a running server. `civil` and `unmapped_grid` are the daemon's filing
    /// settings, shown by the CivilCode report.
    pub fn new(
        handle: GbHandle,
        info: GbServerInfo,
        civil: CivilCodeMap,
        unmapped_grid: Option<GridCode>,
    ) -> Gb28181 {
        Gb28181 {
            handle,
            info,
            civil,
            unmapped_grid,
            directory: Mutex::new(Directory::default()),
            counters: DaemonCounters::default(),
        }
    }

    /// The server handle.
    pub fn handle(&self) -> &GbHandle {
        &self.handle
    }

    /// The CivilCode table.
    pub fn civil_codes(&self) -> &CivilCodeMap {
        &self.civil
    }

    /// Where unmapped video channels are filed, if anywhere.
    pub fn unmapped_grid(&self) -> Option<&GridCode> {
        self.unmapped_grid.as_ref()
    }

    /// The daemon's counters.
    pub fn counters(&self) -> &DaemonCounters {
        &self.counters
    }

    /// The directory (the daemon writes it; views read it). Held briefly: never across an
    /// await or index work.
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SIP UDP address the server is bound to.
    pub fn sip_udp_addr(&self) -> SocketAddr {
        self.handle.sip_udp_addr()
    }

    /// The server summary with every counter.
    pub async fn server_view(&self) -> Result<GbServerView, GbError> {
        let devices = self.handle.devices().await?;
        let uplinks = self.handle.uplinks().await?;
        let (video, filed, unmapped) = {
            let dir = self.directory();
            let mut t = (0, 0, 0);
            for d in dir.devices.values() {
                for r in d.items.values() {
                    if r.entry.kind != ItemKind::VideoChannel {
                        continue;
                    }
                    match r.filing {
                        Filing::Removed { .. } => continue,
                        Filing::Filed { .. } => t.1 += 1,
                        Filing::Unmapped { .. } => t.2 += 1,
                        _ => {}
                    }
                    t.0 += 1;
                }
            }
            t
        };
        let mut metrics = counters_map(&self.handle.metrics());
        metrics.extend(self.counters.snapshot());
        Ok(GbServerView {
            server: self.info.clone(),
            sip_udp: self.handle.sip_udp_addr().to_string(),
            sip_tcp: self.handle.sip_tcp_addr().map(|a| a.to_string()),
            devices: devices.len(),
            devices_online: devices.iter().filter(|d| d.online).count(),
            video_channels: video,
            channels_filed: filed,
            channels_unmapped: unmapped,
            uplinks: uplinks.into_iter().map(uplink_view).collect(),
            metrics,
        })
    }

    /// Devices by ID after `after`, at most `limit`, optionally only those (not) online.
    pub async fn devices(
        &self,
        online: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<GbDevicePage, GbError> {
        let mut all = self.handle.devices().await?;
        all.retain(|d| online.is_none_or(|o| d.online == o));
        let total = all.len();
        let start = after.map_or(0, |a| all.partition_point(|d| d.id.as_str() <= a));
        let page: Vec<DeviceView> = all.into_iter().skip(start).take(limit + 1).collect();
        let more = page.len() > limit;
        let dir = self.directory();
        let items: Vec<GbDeviceView> = page
            .into_iter()
            .take(limit)
            .map(|d| {
                let rec = dir.devices.get(&d.id);
                device_view(d, rec)
            })
            .collect();
        let next = more.then(|| items.last().map(|d| d.id.clone())).flatten();
        Ok(GbDevicePage { items, next, total })
    }

    /// One device.
    pub async fn device(&self, id: GbId) -> Result<GbDeviceView, GbError> {
        let d = self
            .handle
            .device(id)
            .await?
            .ok_or(GbError::UnknownDevice(id))?;
        let dir = self.directory();
        Ok(device_view(d, dir.devices.get(&id)))
    }

    /// Every catalog item of a device (the live channels and what the daemon keeps, also
    /// items that left the catalog), in ID order, with parent → children links.
    pub async fn channels(&self, device: GbId) -> Result<Vec<GbChannelView>, GbError> {
        if self.handle.device(device).await?.is_none() {
            return Err(GbError::UnknownDevice(device));
        }
        let live = self.handle.channels(Some(device)).await?;
        let live: HashMap<&str, &ChannelView> = live.iter().map(|c| (c.id.as_str(), c)).collect();
        let dir = self.directory();
        let empty = DeviceRecord::default();
        let rec = dir.devices.get(&device).unwrap_or(&empty);
        let mut ids: Vec<&str> = rec.items.keys().map(String::as_str).collect();
        ids.extend(live.keys().copied());
        ids.sort_unstable();
        ids.dedup();
        let mut children: HashMap<&str, Vec<String>> = HashMap::new();
        for r in rec.items.values() {
            if matches!(r.filing, Filing::Removed { .. }) {
                continue;
            }
            let item = &r.entry.item;
            let mut parents = item.parent_ids();
            if let Some(bg) = item.business_group_id.as_deref() {
                if !parents.contains(&bg) {
                    parents.push(bg);
                }
            }
            for p in parents {
                if p != item.device_id {
                    children.entry(p).or_default().push(item.device_id.clone());
                }
            }
        }
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let kids = children.remove(id).unwrap_or_default();
                item_view(&device, rec.items.get(id), live.get(id).copied(), kids)
            })
            .collect())
    }

    /// Queries a device's catalog now; returns the query SN.
    pub async fn refresh_catalog(&self, device: GbId) -> Result<u64, GbError> {
        Ok(self.handle.refresh_catalog(device).await?)
    }

    /// Overrides (or gives back to the policy) the recording of one channel. Only channels
    /// filed as cameras can be recorded. Returns the channel afterwards.
    pub async fn set_recording(
        &self,
        device: GbId,
        channel: GbId,
        decision: RecordingOverride,
    ) -> Result<GbChannelView, GbError> {
        let filing = {
            let dir = self.directory();
            dir.devices
                .get(&device)
                .and_then(|d| d.items.get(channel.as_str()))
                .map(|r| r.filing.clone())
        };
        let Some(filing) = filing else {
            if self.handle.device(device).await?.is_none() {
                return Err(GbError::UnknownDevice(device));
            }
            return Err(GbError::UnknownChannel { device, channel });
        };
        let key = ChannelKey { device, channel };
        match decision {
            RecordingOverride::On => {
                if !matches!(filing, Filing::Filed { .. }) {
                    let why = filing_view(&filing)
                        .detail
                        .unwrap_or_else(|| filing.code().to_owned());
                    return Err(GbError::NotFiled {
                        device,
                        channel,
                        why,
                    });
                }
                match self.handle.start_recording(key, None).await {
                    // The override holds; the channel is pulled when the device is back.
                    Ok(()) | Err(HandleError::DeviceOffline(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            RecordingOverride::Off => self.handle.stop_recording(key).await?,
            RecordingOverride::Policy => self.handle.reset_recording(key).await?,
        }
        self.channels(device)
            .await?
            .into_iter()
            .find(|c| c.id == channel.as_str())
            .ok_or(GbError::UnknownChannel { device, channel })
    }

    /// The CivilCode table with the channels each entry maps, and the unmapped codes with
    /// their channels. `grid_exists` answers from the register.
    pub fn civil_code_report(
        &self,
        mut grid_exists: impl FnMut(&GridCode) -> bool,
    ) -> GbCivilCodeReport {
        let mut per_entry: BTreeMap<String, usize> = BTreeMap::new();
        let mut unmapped: BTreeMap<Option<String>, (usize, Vec<String>)> = BTreeMap::new();
        {
            let dir = self.directory();
            let mut devices: Vec<(&GbId, &DeviceRecord)> = dir.devices.iter().collect();
            devices.sort_by_key(|(id, _)| **id);
            for (device, rec) in devices {
                for r in rec.items.values() {
                    if r.entry.kind != ItemKind::VideoChannel
                        || matches!(r.filing, Filing::Removed { .. })
                    {
                        continue;
                    }
                    let code = r.entry.item.civil_code;
                    match code.as_ref().and_then(|c| self.civil.lookup(c)) {
                        Some(m) => {
                            *per_entry.entry(m.matched.as_str().to_owned()).or_default() += 1
                        }
                        None => {
                            let e = unmapped
                                .entry(code.map(|c| c.as_str().to_owned()))
                                .or_default();
                            e.0 += 1;
                            if e.1.len() < 10 {
                                e.1.push(format!("{device}/{}", r.entry.item.device_id));
                            }
                        }
                    }
                }
            }
        }
        let mappings = self
            .civil
            .entries()
            .map(|(code, grid)| GbCivilMapping {
                civil_code: code.to_string(),
                grid: grid.to_string(),
                grid_exists: grid_exists(grid),
                channels: per_entry.get(code.as_str()).copied().unwrap_or(0),
            })
            .collect();
        let mut unmapped: Vec<GbUnmappedCode> = unmapped
            .into_iter()
            .map(|(civil_code, (channels, examples))| GbUnmappedCode {
                civil_code,
                channels,
                examples,
            })
            .collect();
        unmapped.sort_by(|a, b| {
            b.channels
                .cmp(&a.channels)
                .then_with(|| a.civil_code.cmp(&b.civil_code))
        });
        GbCivilCodeReport {
            mappings,
            unmapped,
            unmapped_grid: self.unmapped_grid.as_ref().map(|g| g.to_string()),
        }
    }
}

fn uplink_view(u: UplinkView) -> GbUplinkView {
    GbUplinkView {
        name: u.name,
        upper_id: u.upper_id,
        addr: u.addr.to_string(),
        up: u.up,
        since: u.since,
        last_error: u.last_error,
        shared_items: u.shared_items,
    }
}

impl SubsystemHandle for Gb28181 {
    fn health(&self) -> SubsystemHealth {
        let m = self.handle.metrics();
        let (video, filed, unmapped) = {
            let dir = self.directory();
            let mut t = (0usize, 0usize, 0usize);
            for r in dir.devices.values().flat_map(|d| d.items.values()) {
                if r.entry.kind == ItemKind::VideoChannel {
                    match r.filing {
                        Filing::Filed { .. } => {
                            t.0 += 1;
                            t.1 += 1;
                        }
                        Filing::Unmapped { .. } => {
                            t.0 += 1;
                            t.2 += 1;
                        }
                        Filing::Removed { .. } => {}
                        _ => t.0 += 1,
                    }
                }
            }
            t
        };
        SubsystemHealth {
            name: "gb28181".to_owned(),
            healthy: !self.handle.is_stopped(),
            detail: format!(
                "{} devices online, {} registered; {video} video channels, {filed} filed, \
                 {unmapped} unmapped; SIP on {}",
                m.online_devices_now,
                m.registered_devices_now,
                self.handle.sip_udp_addr()
            ),
        }
    }
}
