//! The GB/T 28181 subsystem: the SIP server of `vigil-gb28181` (devices, NVRs and lower
//! platforms register to it; it registers upward to upper platforms), wired to the register,
//! the status histories and the segment store.
//!
//! - [`config`]: `[gb28181]`, the server's options plus `enabled`, the CivilCode table and
//!   the filing settings.
//! - [`filing`]: server events → cameras in the register (one per video channel, in the grid
//!   its CivilCode maps to), `online` histories, quality diagnoses, uplink histories.
//! - [`sinks`]: frames of filed channels → the same segment store as RTSP cameras, one
//!   recorder per camera; the server's recording policy (`[gb28181.recording]`) and the API's
//!   start/stop decide which channels are pulled.
//!
//! # Life
//! [`start`] binds the SIP sockets before the daemon reports itself ready (a port in use is a
//! start-up error). [`Gb28181Service`] then runs as a supervised subsystem: it drains the
//! server's events in batches onto the blocking pool (a lagging daemon makes the server drop
//! and count events, never stall), retries channels that could not be filed, and rebuilds the
//! catalog shared with upper platforms. At the stop the server unregisters from upper
//! platforms and ends every media session (each recorder gets `Interrupted`), the last events
//! are applied, and every recorder closes its segment; the service then closes the intervals
//! still open.
//!
//! Every problem with one device is logged in the server's per-device span and counted in
//! its metrics (`GET /api/v1/gb28181`); none stops the subsystem. Passwords stay in the
//! server's configuration: they are never logged, put in an event or answered by the API.

pub mod config;
pub mod demo;
pub mod filing;
pub mod sinks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigil_api::gb28181::{Gb28181, GbServerInfo};
use vigil_core::id::GbId;
use vigil_gb28181::manscdp::{CatalogItem, ChannelStatus};
use vigil_gb28181::server::{GbServer, NoSinks, RecordingMode, SinkProvider};
use vigil_index::{CameraFilter, Index};
use vigil_store::Store;

pub use config::Gb28181Config;
use filing::{Filer, FilingSettings};
use sinks::StoreSinks;

use crate::service::now;
use crate::supervisor::{Run, Subsystem};

/// Events taken from the server per batch.
const BATCH: usize = 1024;

/// Channels that could not be filed are tried again this often.
const RETRY_EVERY: Duration = Duration::from_secs(30);

/// The running subsystem (see the module docs).
pub struct Gb28181Service {
    server: GbServer,
    api: Arc<Gb28181>,
    filer: Filer,
    sinks: Option<Arc<StoreSinks>>,
    index: Arc<Index>,
    shared_every: Duration,
    share: bool,
    sip_id: String,
}

/// Late binding of the store sinks to the API handle (the handle exists only once the server
/// is started, and the server needs its sink provider to start).
struct LateSinks(std::sync::OnceLock<Arc<StoreSinks>>);

impl SinkProvider for LateSinks {
    fn sink(
        &self,
        channel: &vigil_gb28181::server::ChannelKey,
    ) -> Option<tokio::sync::mpsc::Sender<vigil_store::SourceEvent>> {
        self.0.get()?.sink(channel)
    }
}

/// Starts the server (binds its sockets). `store`: where frames go; without it (recording
/// disabled) channels are filed and followed but not recorded.
pub async fn start(
    config: &Gb28181Config,
    index: Arc<Index>,
    store: Option<Store>,
) -> anyhow::Result<Gb28181Service> {
    let civil = config.civil_map()?;
    let unmapped_grid = config.unmapped_grid()?;
    for (code, grid) in civil.entries() {
        if index.grid(grid)?.is_none() {
            tracing::warn!(civil_code = %code, %grid, "gb28181.civil_codes maps to a grid that does not exist (yet): its channels cannot be filed until it does");
        }
    }
    let server_cfg = config.server.clone();
    let late = Arc::new(LateSinks(std::sync::OnceLock::new()));
    let provider: Arc<dyn SinkProvider> = match &store {
        Some(_) => late.clone(),
        None => Arc::new(NoSinks),
    };
    let server = GbServer::start(server_cfg.clone(), provider)
        .await
        .context("starting the GB/T 28181 server")?;
    let info = GbServerInfo {
        sip_id: server_cfg.sip_id.clone(),
        domain: server_cfg.domain.clone(),
        recording_mode: match server_cfg.recording.mode {
            RecordingMode::All => "all",
            RecordingMode::None => "none",
            RecordingMode::List => "list",
        }
        .to_owned(),
        recording_channels: server_cfg.recording.channels.clone(),
        default_password_set: server_cfg.default_password.is_some(),
        device_passwords: server_cfg.device_passwords.len(),
    };
    let api = Arc::new(Gb28181::new(
        server.handle.clone(),
        info,
        civil,
        unmapped_grid.clone(),
    ));
    let sinks = store.map(|s| {
        let sinks = Arc::new(StoreSinks::new(s, api.clone(), server_cfg.media.sink_queue));
        let _ = late.0.set(sinks.clone());
        sinks
    });
    let mut uplinks = HashMap::new();
    for u in &server_cfg.uplinks {
        let id = GbId::parse(&u.upper_id)
            .with_context(|| format!("gb28181.uplinks {:?}: upper_id", u.name))?;
        uplinks.insert(u.name.clone(), id);
    }
    let filer = Filer::new(
        index.clone(),
        api.clone(),
        FilingSettings {
            unmapped_grid,
            shared_upward: config.filing.shared_upward,
            uplinks,
        },
    );
    tracing::info!(
        sip_udp = %server.handle.sip_udp_addr(),
        sip_tcp = ?server.handle.sip_tcp_addr(),
        sip_id = %server_cfg.sip_id,
        domain = %server_cfg.domain,
        recording = api_mode(&server_cfg.recording.mode),
        records = sinks.is_some(),
        "GB/T 28181 server listening"
    );
    Ok(Gb28181Service {
        server,
        api,
        filer,
        sinks,
        index,
        shared_every: Duration::from_secs(config.shared_catalog_refresh_secs.max(1)),
        share: !server_cfg.uplinks.is_empty(),
        sip_id: server_cfg.sip_id,
    })
}

fn api_mode(m: &RecordingMode) -> &'static str {
    match m {
        RecordingMode::All => "all",
        RecordingMode::None => "none",
        RecordingMode::List => "list",
    }
}

impl Gb28181Service {
    /// The API's handle.
    pub fn handle(&self) -> Arc<Gb28181> {
        self.api.clone()
    }

    /// The bound SIP UDP address.
    pub fn sip_udp_addr(&self) -> SocketAddr {
        self.server.handle.sip_udp_addr()
    }
}

/// Applies a batch on the blocking pool, giving the filer back with the devices whose
/// recording must be decided again.
async fn apply(
    mut filer: Filer,
    batch: Vec<vigil_gb28181::server::GbEvent>,
) -> anyhow::Result<(Filer, Vec<GbId>)> {
    Ok(tokio::task::spawn_blocking(move || {
        let filed = filer.apply(batch);
        (filer, filed)
    })
    .await?)
}

/// Asks the server to decide again whether the channels of `devices` are pulled (their sinks
/// exist now that they are filed).
async fn reconcile(handle: &vigil_gb28181::server::GbHandle, devices: Vec<GbId>) {
    for d in devices {
        if let Err(e) = handle.reconcile_recording(d).await {
            tracing::debug!(device = %d, error = %e, "cannot reconcile the recording");
        }
    }
}

impl Subsystem for Gb28181Service {
    fn name(&self) -> &'static str {
        "gb28181"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Run {
        Box::pin(async move {
            let Gb28181Service {
                server,
                api,
                mut filer,
                sinks,
                index,
                shared_every,
                share,
                sip_id,
            } = *self;
            let GbServer {
                handle,
                mut events,
                mut task,
            } = server;
            let mut batch = Vec::with_capacity(BATCH);
            let mut retry = tokio::time::interval(RETRY_EVERY);
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut share_tick = tokio::time::interval(shared_every);
            share_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut shared: Option<Vec<CatalogItem>> = None;
            let mut ended_on_its_own = false;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    n = events.recv_many(&mut batch, BATCH) => {
                        if n == 0 {
                            ended_on_its_own = true;
                            break;
                        }
                        let (f, filed) = apply(filer, std::mem::take(&mut batch)).await?;
                        filer = f;
                        reconcile(&handle, filed).await;
                    }
                    _ = retry.tick() => {
                        let (f, filed) = tokio::task::spawn_blocking(move || {
                            let filed = filer.retry_refused();
                            (filer, filed)
                        })
                        .await?;
                        filer = f;
                        reconcile(&handle, filed).await;
                    }
                    _ = share_tick.tick(), if share => {
                        let (index, api, id) = (index.clone(), api.clone(), sip_id.clone());
                        let items = tokio::task::spawn_blocking(move || shared_catalog(&index, &api, &id)).await?;
                        match items {
                            Ok(items) if shared.as_ref() != Some(&items) => {
                                tracing::info!(items = items.len(), "catalog shared with upper platforms updated");
                                handle.set_shared_catalog(items.clone()).await?;
                                shared = Some(items);
                            }
                            Ok(_) => {}
                            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot build the shared catalog"),
                        }
                    }
                }
            }
            // Stop: uplinks unregister, media sessions end (recorders get `Interrupted`).
            handle.shutdown();
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                tracing::warn!("the GB/T 28181 server did not stop within 5 s; aborting it");
                task.abort();
            }
            while let Ok(ev) = events.try_recv() {
                batch.push(ev);
            }
            if !batch.is_empty() {
                let _ = apply(filer, std::mem::take(&mut batch)).await?;
            }
            if let Some(sinks) = sinks {
                sinks.stop_all().await;
            }
            if ended_on_its_own && !stop.is_cancelled() {
                anyhow::bail!("the GB/T 28181 server stopped on its own");
            }
            Ok(())
        })
    }
}

/// The catalog offered to upper platforms: every in-service camera of the register shared
/// upward, under our SIP ID, with its CivilCode (the channel's own for GB/T 28181 cameras,
/// else one the CivilCode table gives its grid), address, coordinates and online status.
fn shared_catalog(index: &Index, gb: &Gb28181, sip_id: &str) -> anyhow::Result<Vec<CatalogItem>> {
    let at = now();
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = index.list_cameras(&CameraFilter::default(), at, after.as_ref(), 10_000)?;
        for v in &page.items {
            let cam = &v.camera;
            if !cam.shared_upward {
                continue;
            }
            let own = match &cam.source {
                vigil_core::camera::CameraSource::Gb {
                    device_id,
                    channel_id,
                } => gb
                    .directory()
                    .devices
                    .get(device_id)
                    .and_then(|d| d.items.get(channel_id.as_str()))
                    .map(|r| r.entry.item.clone()),
                vigil_core::camera::CameraSource::Rtsp { .. } => None,
            };
            let civil_code = own
                .as_ref()
                .and_then(|i| i.civil_code)
                .or_else(|| gb.civil_codes().codes_of(&cam.grid).into_iter().next());
            items.push(CatalogItem {
                device_id: cam.id.to_string(),
                name: Some(cam.name.clone()),
                manufacturer: own.as_ref().and_then(|i| i.manufacturer.clone()),
                model: own.as_ref().and_then(|i| i.model.clone()),
                owner: own.as_ref().and_then(|i| i.owner.clone()),
                civil_code,
                address: cam.address.clone(),
                parental: Some(false),
                parent_id: Some(sip_id.to_owned()),
                register_way: Some(1),
                secrecy: Some(0),
                status: Some(if v.online_now {
                    ChannelStatus::On
                } else {
                    ChannelStatus::Off
                }),
                longitude: cam.location.map(|p| p.lon()),
                latitude: cam.location.map(|p| p.lat()),
                ..CatalogItem::default()
            });
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(items)
}
