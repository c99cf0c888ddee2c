//! What the server reports to the rest of the system (the daemon writes it into the index):
//! device liveness, device information, catalogs and their changes, channel status, media
//! session state and uplink state. Every event carries the wall-clock time it happened.
//!
//! The server does not map CivilCodes to grids (`vigil_core::civil` does, for the daemon);
//! catalog items carry their CivilCode as sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vigil_core::time::Timestamp;

use crate::catalog::{Completion, Inconsistency, ItemKind};
use crate::gbid::GbId;
use crate::manscdp::{Alarm, CatalogEvent, CatalogItem, ChannelStatus, DeviceInfo, DeviceStatus};
use crate::registry::OfflineReason;
use crate::sdp::MediaTransport;
use crate::sip::{GbVersion, Transport};
use crate::uplink::DownReason;

/// One catalog item with its classification.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// What the item is (video channel, business group, virtual organisation, region, other
    /// device, or an item whose ID is not a GB ID).
    pub kind: ItemKind,
    /// Every field the device sent: ID, name, manufacturer, model, owner, CivilCode, address,
    /// `Parental`/`ParentID` (see [`CatalogItem::parent_ids`]), `BusinessGroupID`,
    /// coordinates, status, and the rest.
    pub item: CatalogItem,
}

impl CatalogEntry {
    /// Classifies an item.
    pub fn new(item: CatalogItem) -> Self {
        CatalogEntry {
            kind: crate::catalog::item_kind(&item),
            item,
        }
    }
}

/// A device's catalog, as assembled from one query.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSnapshot {
    /// The query SN.
    pub sn: u64,
    /// Why assembly ended. Only [`Completion::Complete`] means every announced item arrived;
    /// a partial catalog must not be used to delete channels.
    pub completion: Completion,
    /// `SumNum` as announced (largest value seen).
    pub announced: Option<u32>,
    /// MESSAGEs received.
    pub packets: u32,
    /// Distinct items in arrival order.
    pub entries: Vec<CatalogEntry>,
    /// What did not add up (wrong SumNum, duplicates, ...).
    pub inconsistencies: Vec<Inconsistency>,
}

/// One change from a catalog notification.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogChange {
    /// ADD, DEL, ON, OFF, VLOST, DEFECT, UPDATE (an item without `<Event>` counts as UPDATE).
    pub event: CatalogEvent,
    /// The item as sent.
    pub entry: CatalogEntry,
}

/// How a catalog change reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyVia {
    /// A SIP NOTIFY (catalog subscription).
    Notify,
    /// A MESSAGE with a `<Notify>` body (devices that push changes without a subscription).
    Message,
}

/// The state of a channel's live session (what the recording depends on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaState {
    /// INVITE sent.
    Inviting {
        /// Our transport role.
        transport: MediaTransport,
    },
    /// The device accepted; waiting for RTP.
    Accepted {
        /// Our transport role.
        transport: MediaTransport,
        /// The SSRC accepted.
        ssrc: u32,
    },
    /// Frames are flowing.
    Streaming,
    /// The attempt failed (refused, unanswered, bad answer, device hung up, no RTP, garbage);
    /// retried after `retry_in`.
    Failed {
        /// What happened, naming the channel.
        error: String,
        /// Backoff before the next INVITE.
        retry_in: Duration,
    },
    /// Not pulled any more (recording stopped, channel deleted, device offline).
    Stopped {
        /// Why.
        reason: String,
    },
}

/// A change of a catalog subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// Active; the device will NOTIFY changes.
    Active {
        /// Granted lifetime.
        expires: Duration,
    },
    /// The device does not support catalog subscriptions (refusal code; 0 when it terminated
    /// the subscription with `rejected`/`noresource`).
    Unsupported {
        /// The refusal.
        code: u16,
    },
    /// Failed or ended; retried.
    Failed {
        /// Why.
        reason: String,
        /// When it is retried.
        retry_in: Duration,
    },
}

/// The state of an uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkState {
    /// Registered with the upper platform.
    Up {
        /// Granted registration lifetime.
        expires: Duration,
    },
    /// Not registered.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// Everything the server reports.
#[derive(Debug, Clone, PartialEq)]
pub enum GbEvent {
    /// A device registered (first time, new address, or a reboot with a new Call-ID).
    DeviceRegistered {
        /// Device.
        device: GbId,
        /// Source address.
        addr: SocketAddr,
        /// SIP transport.
        transport: Transport,
        /// GB edition (`X-GB-Ver`, 2016 when absent).
        version: GbVersion,
        /// `User-Agent`.
        user_agent: Option<String>,
        /// Granted registration lifetime.
        expires: Duration,
        /// When.
        at: Timestamp,
    },
    /// A device is online.
    DeviceOnline {
        /// Device.
        device: GbId,
        /// When.
        at: Timestamp,
    },
    /// A device is offline.
    DeviceOffline {
        /// Device.
        device: GbId,
        /// Why (unregistered, expired, keepalive timeout, TCP connection lost).
        reason: OfflineReason,
        /// When.
        at: Timestamp,
    },
    /// A REGISTER failed authentication.
    AuthFailed {
        /// Source.
        source: SocketAddr,
        /// The device it claimed to be.
        device: Option<GbId>,
        /// Why (never contains the password).
        reason: String,
        /// Failures from this source in the current window.
        failures: u32,
        /// When.
        at: Timestamp,
    },
    /// A source IP is ignored for a while after repeated failures.
    SourceBanned {
        /// The IP.
        source: IpAddr,
        /// Failures that triggered the ban.
        failures: u32,
        /// End of the ban.
        until: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// A device needed quirks it had not needed before.
    QuirksSeen {
        /// Device.
        device: GbId,
        /// Quirk names.
        quirks: Vec<&'static str>,
        /// When.
        at: Timestamp,
    },
    /// A DeviceInfo answer.
    DeviceInfo {
        /// Device.
        device: GbId,
        /// The answer.
        info: DeviceInfo,
        /// When.
        at: Timestamp,
    },
    /// A DeviceStatus answer.
    DeviceStatus {
        /// Device.
        device: GbId,
        /// The answer.
        status: DeviceStatus,
        /// When.
        at: Timestamp,
    },
    /// A catalog query was answered (or timed out: see [`CatalogSnapshot::completion`]).
    Catalog {
        /// Device.
        device: GbId,
        /// The catalog.
        catalog: CatalogSnapshot,
        /// When.
        at: Timestamp,
    },
    /// Items arrived after a catalog completed (a device whose `SumNum` was too small, or a
    /// late retransmission): merge them into the last catalog.
    CatalogLateItems {
        /// Device.
        device: GbId,
        /// Query SN.
        sn: u64,
        /// The items.
        entries: Vec<CatalogEntry>,
        /// When.
        at: Timestamp,
    },
    /// Catalog changes pushed by the device.
    CatalogChanged {
        /// Device.
        device: GbId,
        /// The changes in order.
        changes: Vec<CatalogChange>,
        /// NOTIFY or MESSAGE.
        via: NotifyVia,
        /// When.
        at: Timestamp,
    },
    /// A channel's status changed (from a catalog notification or between two catalogs).
    ChannelStatus {
        /// Device.
        device: GbId,
        /// Channel ID as sent.
        channel: String,
        /// New status; `None` when the device stopped reporting one.
        status: Option<ChannelStatus>,
        /// The event that carried it (ON, OFF, VLOST, DEFECT), when it came from a
        /// notification.
        event: Option<CatalogEvent>,
        /// When.
        at: Timestamp,
    },
    /// A catalog subscription changed state.
    Subscription {
        /// Device.
        device: GbId,
        /// The change.
        change: SubscriptionChange,
        /// When.
        at: Timestamp,
    },
    /// A channel's media session changed state.
    Media {
        /// Device.
        device: GbId,
        /// Channel.
        channel: GbId,
        /// The new state.
        state: MediaState,
        /// When.
        at: Timestamp,
    },
    /// An alarm notification.
    Alarm {
        /// Device.
        device: GbId,
        /// The alarm source (channel or alarm input) from the body.
        source: String,
        /// The alarm.
        alarm: Alarm,
        /// When.
        at: Timestamp,
    },
    /// An uplink went up or down (the networking-rate history).
    Uplink {
        /// Uplink name from the configuration.
        uplink: String,
        /// The new state.
        state: UplinkState,
        /// When.
        at: Timestamp,
    },
    /// An upper platform started (INVITE) or stopped (BYE) watching one of our channels.
    UplinkRelay {
        /// Uplink name.
        uplink: String,
        /// Device.
        device: GbId,
        /// Channel.
        channel: GbId,
        /// Relaying now.
        active: bool,
        /// When.
        at: Timestamp,
    },
    /// An upper platform queried our catalog and was sent the shared channels.
    UplinkCatalogServed {
        /// Uplink name.
        uplink: String,
        /// Items sent.
        items: usize,
        /// When.
        at: Timestamp,
    },
}

impl GbEvent {
    /// A short name of the event's kind, for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            GbEvent::DeviceRegistered { .. } => "device_registered",
            GbEvent::DeviceOnline { .. } => "device_online",
            GbEvent::DeviceOffline { .. } => "device_offline",
            GbEvent::AuthFailed { .. } => "auth_failed",
            GbEvent::SourceBanned { .. } => "source_banned",
            GbEvent::QuirksSeen { .. } => "quirks_seen",
            GbEvent::DeviceInfo { .. } => "device_info",
            GbEvent::DeviceStatus { .. } => "device_status",
            GbEvent::Catalog { .. } => "catalog",
            GbEvent::CatalogLateItems { .. } => "catalog_late_items",
            GbEvent::CatalogChanged { .. } => "catalog_changed",
            GbEvent::ChannelStatus { .. } => "channel_status",
            GbEvent::Subscription { .. } => "subscription",
            GbEvent::Media { .. } => "media",
            GbEvent::Alarm { .. } => "alarm",
            GbEvent::Uplink { .. } => "uplink",
            GbEvent::UplinkRelay { .. } => "uplink_relay",
            GbEvent::UplinkCatalogServed { .. } => "uplink_catalog_served",
        }
    }
}
