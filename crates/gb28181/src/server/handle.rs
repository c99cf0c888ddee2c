//! The handle the daemon and the HTTP API use: status views, catalog re-queries, recording
//! control, the shared catalog for uplinks, metrics and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vigil_core::time::Timestamp;
use vigil_store::SourceEvent;

use super::metrics::{ChannelCountersSnapshot, Metrics, MetricsSnapshot};
use crate::catalog::ItemKind;
use crate::gbid::GbId;
use crate::manscdp::{CatalogItem, ChannelStatus, DeviceInfo};
use crate::play::ChannelKey;
use crate::sip::{GbVersion, Transport};

/// Why a handle call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandleError {
    /// The server task is gone (shut down).
    #[error("the GB/T 28181 server is not running")]
    Stopped,
    /// No such device (never registered since the server started).
    #[error("device {0} is unknown")]
    UnknownDevice(GbId),
    /// The device is not online.
    #[error("device {0} is offline")]
    DeviceOffline(GbId),
    /// No sink for a channel's recording: none given and the sink provider has none.
    #[error("no recording sink for channel {0}")]
    NoSink(ChannelKey),
    /// The query could not be sent.
    #[error("device {device}: {reason}")]
    SendFailed {
        /// Device.
        device: GbId,
        /// Why.
        reason: String,
    },
}

/// A device as the server sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceView {
    /// Device ID.
    pub id: GbId,
    /// Last known address.
    pub addr: SocketAddr,
    /// SIP transport.
    pub transport: Transport,
    /// GB edition.
    pub version: GbVersion,
    /// Raw `X-GB-Ver`.
    pub x_gb_ver: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Holds a registration now.
    pub registered: bool,
    /// Online now.
    pub online: bool,
    /// Start of the current (or last) registration.
    pub registered_at: Option<Timestamp>,
    /// Last REGISTER or keepalive.
    pub last_keepalive: Option<Timestamp>,
    /// The latest problem with this device (auth failure, bad body, query timeout, ...).
    pub last_error: Option<String>,
    /// Quirks this device needed.
    pub quirks: Vec<&'static str>,
    /// Latest DeviceInfo answer.
    pub info: Option<DeviceInfo>,
    /// Channels in the latest catalog.
    pub channels: usize,
    /// When the latest catalog completed.
    pub catalog_at: Option<Timestamp>,
    /// Catalog subscription state, in words.
    pub subscription: Option<String>,
}

/// Whether and why a channel is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingView {
    /// The channel should be pulled now (policy or override).
    pub wanted: bool,
    /// A handle call overrides the policy (`Some(true)` start, `Some(false)` stop).
    pub overridden: Option<bool>,
}

/// A channel's media session, in words for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionView {
    /// No session.
    Idle,
    /// INVITE sent.
    Inviting,
    /// Accepted, waiting for media.
    Accepted,
    /// Frames flowing.
    Streaming,
    /// Waiting before the next INVITE.
    Backoff,
}

/// A channel (catalog item) of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelView {
    /// Device.
    pub device: GbId,
    /// Channel ID as sent.
    pub id: String,
    /// Kind by ID.
    pub kind: ItemKind,
    /// Name.
    pub name: Option<String>,
    /// CivilCode as sent.
    pub civil_code: Option<String>,
    /// Status from the catalog or the latest notification.
    pub status: Option<ChannelStatus>,
    /// Recording decision.
    pub recording: RecordingView,
    /// Media session.
    pub session: SessionView,
    /// The latest media error.
    pub last_media_error: Option<String>,
    /// Time of the latest frame.
    pub last_frame_at: Option<Timestamp>,
    /// Media counters.
    pub counters: ChannelCountersSnapshot,
}

/// An uplink as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkView {
    /// Name.
    pub name: String,
    /// Upper platform ID.
    pub upper_id: String,
    /// Upper platform address.
    pub addr: SocketAddr,
    /// Registered now.
    pub up: bool,
    /// Last change of `up`.
    pub since: Option<Timestamp>,
    /// Why it went down last.
    pub last_error: Option<String>,
    /// Items in the shared catalog.
    pub shared_items: usize,
}

type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Command {
    Devices(Reply<Vec<DeviceView>>),
    Device(GbId, Reply<Option<DeviceView>>),
    Channels(Option<GbId>, Reply<Vec<ChannelView>>),
    RefreshCatalog(GbId, Reply<Result<u64, HandleError>>),
    QueryDeviceInfo(GbId, Reply<Result<u64, HandleError>>),
    QueryDeviceStatus(GbId, Reply<Result<u64, HandleError>>),
    StartRecording {
        key: ChannelKey,
        sink: Option<mpsc::Sender<SourceEvent>>,
        reply: Reply<Result<(), HandleError>>,
    },
    StopRecording(ChannelKey, Reply<Result<(), HandleError>>),
    ResetRecording(ChannelKey, Reply<Result<(), HandleError>>),
    Reconcile(GbId, Reply<()>),
    SetSharedCatalog(Vec<CatalogItem>, Reply<()>),
    Uplinks(Reply<Vec<UplinkView>>),
}

/// A cheap, cloneable handle to a running server. The server stops when
/// [`GbHandle::shutdown`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct GbHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) sip_udp: SocketAddr,
    pub(crate) sip_tcp: Option<SocketAddr>,
}

impl std::fmt::Debug for GbHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbHandle")
            .field("sip_udp", &self.sip_udp)
            .field("sip_tcp", &self.sip_tcp)
            .finish_non_exhaustive()
    }
}

impl GbHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, HandleError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| HandleError::Stopped)?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// The bound SIP UDP address (useful with port 0).
    pub fn sip_udp_addr(&self) -> SocketAddr {
        self.sip_udp
    }

    /// The bound SIP TCP address, if TCP is enabled.
    pub fn sip_tcp_addr(&self) -> Option<SocketAddr> {
        self.sip_tcp
    }

    /// Server-wide counters (read directly, no round trip).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Every device seen since start (registered or not any more).
    pub async fn devices(&self) -> Result<Vec<DeviceView>, HandleError> {
        self.ask(Command::Devices).await
    }

    /// One device.
    pub async fn device(&self, id: GbId) -> Result<Option<DeviceView>, HandleError> {
        self.ask(|r| Command::Device(id, r)).await
    }

    /// Channels of one device, or of every device.
    pub async fn channels(&self, device: Option<GbId>) -> Result<Vec<ChannelView>, HandleError> {
        self.ask(|r| Command::Channels(device, r)).await
    }

    /// Queries a device's catalog now; returns the query SN (the result arrives as a
    /// [`super::GbEvent::Catalog`]).
    pub async fn refresh_catalog(&self, device: GbId) -> Result<u64, HandleError> {
        self.ask(|r| Command::RefreshCatalog(device, r)).await?
    }

    /// Queries a device's DeviceInfo now; returns the query SN.
    pub async fn query_device_info(&self, device: GbId) -> Result<u64, HandleError> {
        self.ask(|r| Command::QueryDeviceInfo(device, r)).await?
    }

    /// Queries a device's DeviceStatus now; returns the query SN.
    pub async fn query_device_status(&self, device: GbId) -> Result<u64, HandleError> {
        self.ask(|r| Command::QueryDeviceStatus(device, r)).await?
    }

    /// Records a channel continuously from now on (overrides the policy). Frames go to `sink`,
    /// or to the sink provider's sender when `None`. `Err(DeviceOffline)` still records the
    /// override: the channel is pulled as soon as the device is back online.
    pub async fn start_recording(
        &self,
        key: ChannelKey,
        sink: Option<mpsc::Sender<SourceEvent>>,
    ) -> Result<(), HandleError> {
        self.ask(|reply| Command::StartRecording { key, sink, reply })
            .await?
    }

    /// Stops recording a channel (overrides the policy).
    pub async fn stop_recording(&self, key: ChannelKey) -> Result<(), HandleError> {
        self.ask(|r| Command::StopRecording(key, r)).await?
    }

    /// Removes a start/stop override: the policy decides again.
    pub async fn reset_recording(&self, key: ChannelKey) -> Result<(), HandleError> {
        self.ask(|r| Command::ResetRecording(key, r)).await?
    }

    /// Decides again, for every channel of `device`, whether it is pulled: for when the sink
    /// provider's answer may have changed (the daemon filed a channel after the server first
    /// asked for its sink). Channels already pulled are left alone.
    pub async fn reconcile_recording(&self, device: GbId) -> Result<(), HandleError> {
        self.ask(|r| Command::Reconcile(device, r)).await
    }

    /// The channels we share with upper platforms (answered to their Catalog queries).
    /// Items are sent as given: the daemon decides IDs, names, CivilCodes and parents.
    pub async fn set_shared_catalog(&self, items: Vec<CatalogItem>) -> Result<(), HandleError> {
        self.ask(|r| Command::SetSharedCatalog(items, r)).await
    }

    /// The uplinks and their state.
    pub async fn uplinks(&self) -> Result<Vec<UplinkView>, HandleError> {
        self.ask(Command::Uplinks).await
    }

    /// Whether the server was told to stop or its core task is gone.
    pub fn is_stopped(&self) -> bool {
        self.shutdown.is_cancelled() || self.tx.is_closed()
    }

    /// Stops the server: uplinks unregister (best effort), media sessions end with BYE and
    /// `Interrupted`, sockets close.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}
