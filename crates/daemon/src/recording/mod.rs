//! The recording subsystem: the segment store (`vigil-store`), and for every in-service RTSP
//! camera of the register one RTSP puller (`vigil-rtsp`) feeding one recorder, plus the
//! camera's `online` history ([`online`]).
//!
//! # Life
//! 1. [`open_store`] opens the store and runs its crash recovery (blocking) **before** the
//!    service closes the status intervals a crash left open: recovery closes a camera's
//!    `recording` interval at the end of its last good fragment, which is exact, where the
//!    service can only use the last heartbeat.
//! 2. [`RecordingService`] runs as a supervised subsystem: retention (the store's maintenance
//!    task, started once), and a loop that keeps the pullers equal to the register: at start,
//!    whenever a camera record or credentials change (`Index::camera_generation`, checked
//!    every second, so a camera filed through the API is pulled within a second) and every
//!    `recording.reconcile_secs` (records that take effect later, decommissioning dates). A
//!    camera is pulled with `registry.start(id, source, store.recorder_channel(id, n).0)`; a
//!    changed URL or password restarts its puller with the new source (same recorder); a
//!    camera removed, decommissioned or no longer RTSP is stopped. A URL that cannot be
//!    pulled (e.g. `rtsps://`) is reported in the camera's state instead. A recorder that
//!    ended on its own (it should not) is restarted with its puller.
//! 3. At the stop: live streams and exports end, every puller stops (sending `Interrupted`),
//!    every recorder writes what it buffered, closes its segment and its intervals; then the
//!    service closes what is still open and flushes the index.
//!
//! Per-camera work (puller, recorder, online feed) runs in its own tracing span naming the
//! camera. Credentials go from the index to the puller and nowhere else.

mod config;
mod online;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_api::recording::Recording;
use vigil_core::camera::CameraSource as RecordSource;
use vigil_core::id::GbId;
use vigil_index::{CameraFilter, Index};
use vigil_rtsp::{CameraSource, PullerRegistry};
use vigil_store::{RecorderHandle, RecoveryReport, Store};

pub use config::RecordingConfig;

use crate::service::now;
use crate::supervisor::{Run, Subsystem};

/// Which RTSP cameras of the register are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullScope {
    /// Every in-service RTSP camera (`vigil run`).
    Register,
    /// Only cameras at loopback addresses (`vigil demo`: its simulated cameras, and any a
    /// newcomer registers on this machine; the generated town's cameras are records only).
    Loopback,
}

impl PullScope {
    fn allows(self, source: &CameraSource) -> bool {
        match self {
            PullScope::Register => true,
            PullScope::Loopback => is_loopback(&source.url.authority()),
        }
    }
}

/// Whether `host:port` (IPv6 in brackets) names this machine.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Opens the segment store of `config` under `data_dir` and runs its crash recovery
/// (blocking; see the module docs for when).
pub fn open_store(
    config: &RecordingConfig,
    data_dir: &Path,
    index: Arc<Index>,
) -> anyhow::Result<Store> {
    let store_config = config.store_config(data_dir);
    let root = store_config.root.clone();
    let (store, report) = Store::open(store_config, index)
        .with_context(|| format!("opening the recording store at {}", root.display()))?;
    log_recovery(&root, &report);
    Ok(store)
}

fn log_recovery(root: &Path, r: &RecoveryReport) {
    let dir = root.display();
    if let Some(rebuilt) = r.rebuilt.as_ref().filter(|r| r.segments > 0) {
        tracing::warn!(
            %dir, cameras = rebuilt.cameras, segments = rebuilt.segments, bytes = rebuilt.bytes,
            "recording store: the index did not know this store; catalogue rebuilt from the files"
        );
    }
    for (path, reason) in &r.files_skipped {
        tracing::error!(file = %path.display(), %reason, "recording store: file left alone");
    }
    let changed = r.deletions_finished
        + r.segments_closed
        + r.orphans_indexed
        + r.files_removed
        + r.files_missing;
    if changed > 0 || r.bytes_truncated > 0 {
        tracing::warn!(
            %dir,
            segments_closed = r.segments_closed,
            orphans_indexed = r.orphans_indexed,
            bytes_truncated = r.bytes_truncated,
            deletions_finished = r.deletions_finished,
            files_removed = r.files_removed,
            files_missing = r.files_missing,
            "recording store recovered after an unclean stop"
        );
    } else {
        tracing::info!(%dir, "recording store opened");
    }
}

/// One pulled camera.
struct Pipeline {
    source: CameraSource,
    recorder: RecorderHandle,
    online: JoinHandle<()>,
}

/// What the register asks for one camera: a source to pull, or why it cannot be pulled.
type Wanted = HashMap<GbId, Result<CameraSource, String>>;

/// The recording subsystem (see the module docs).
pub struct RecordingService {
    handle: Arc<Recording>,
    index: Arc<Index>,
    queue_frames: usize,
    reconcile: Duration,
    scope: PullScope,
}

impl RecordingService {
    /// The subsystem over an opened store.
    pub fn new(
        store: Store,
        index: Arc<Index>,
        config: &RecordingConfig,
        scope: PullScope,
    ) -> RecordingService {
        let pullers = Arc::new(PullerRegistry::new(config.puller_options()));
        let handle = Arc::new(Recording::new(
            store,
            pullers,
            config.settings(),
            CancellationToken::new(),
        ));
        RecordingService {
            handle,
            index,
            queue_frames: config.queue_frames,
            reconcile: Duration::from_secs(config.reconcile_secs),
            scope,
        }
    }

    /// The handle the API reads.
    pub fn handle(&self) -> Arc<Recording> {
        self.handle.clone()
    }

    async fn run_until(self, stop: CancellationToken) -> anyhow::Result<()> {
        let maintenance = self.handle.store().spawn_maintenance();
        let mut cameras: HashMap<GbId, Pipeline> = HashMap::new();
        let mut seen: Option<u64> = None;
        let mut next_full = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.restart_ended(&mut cameras).await;
            let generation = self.index.camera_generation();
            if seen == Some(generation) && Instant::now() < next_full {
                continue;
            }
            seen = Some(generation);
            next_full = Instant::now() + self.reconcile;
            match self.wanted().await {
                Ok(wanted) => self.apply(&mut cameras, wanted).await,
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "cannot read the register to decide which cameras to pull; keeping the \
                     current ones"
                ),
            }
        }
        let n = cameras.len();
        self.handle.shutdown().cancel();
        self.handle.pullers().shutdown().await;
        let stops = cameras.into_values().map(|p| async move {
            p.recorder.stop().await;
            let _ = p.online.await;
        });
        futures::future::join_all(stops).await;
        maintenance.abort();
        tracing::info!(cameras = n, "recording stopped: every segment closed");
        Ok(())
    }

    /// The RTSP cameras the register asks to pull now.
    async fn wanted(&self) -> anyhow::Result<Wanted> {
        let index = self.index.clone();
        let handle = self.handle.clone();
        let scope = self.scope;
        tokio::task::spawn_blocking(move || -> anyhow::Result<Wanted> {
            let at = now();
            let mut wanted = Wanted::new();
            let mut after = None;
            loop {
                let page =
                    index.list_cameras(&CameraFilter::default(), at, after.as_ref(), 10_000)?;
                for view in &page.items {
                    let camera = &view.camera;
                    let RecordSource::Rtsp { url } = &camera.source else {
                        continue;
                    };
                    if !camera.in_service_at(at) {
                        continue;
                    }
                    let credentials = index.rtsp_credentials(&camera.id)?;
                    match handle.source(url, credentials.as_ref()) {
                        Ok(source) if scope.allows(&source) => {
                            wanted.insert(camera.id, Ok(source));
                        }
                        Ok(_) => {}
                        Err(e) if scope == PullScope::Register => {
                            wanted.insert(camera.id, Err(format!("cannot pull {url}: {e}")));
                        }
                        Err(_) => {}
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            Ok(wanted)
        })
        .await?
    }

    /// Starts, changes and stops pullers so that they match `wanted`.
    async fn apply(&self, cameras: &mut HashMap<GbId, Pipeline>, wanted: Wanted) {
        let gone: Vec<GbId> = cameras
            .keys()
            .filter(|id| !matches!(wanted.get(id), Some(Ok(_))))
            .copied()
            .collect();
        for id in gone {
            if let Some(p) = cameras.remove(&id) {
                tracing::info!(camera = %id, "no longer pulling camera (removed, decommissioned or changed)");
                self.stop(id, p).await;
            }
        }
        for (id, want) in wanted {
            match want {
                Err(reason) => {
                    tracing::warn!(camera = %id, %reason, "camera cannot be pulled");
                    self.handle.set_unpullable(id, reason);
                }
                Ok(source) => match cameras.get_mut(&id) {
                    Some(p) if p.source == source => {}
                    Some(p) => {
                        tracing::info!(camera = %id, url = %source.url, "camera source changed; reconnecting");
                        match self.handle.pullers().update(&id, source.clone()).await {
                            Ok(states) => {
                                p.online.abort();
                                p.online = online::follow(self.index.clone(), id, states);
                                self.handle.set_pulled(id, &source);
                                p.source = source;
                            }
                            Err(e) => {
                                tracing::error!(camera = %id, error = %e, "cannot restart the puller")
                            }
                        }
                    }
                    None => match self.start(id, source) {
                        Ok(p) => {
                            cameras.insert(id, p);
                        }
                        Err(e) => {
                            let reason = format!("{e:#}");
                            tracing::error!(camera = %id, error = %reason, "cannot start recording");
                            self.handle.set_unpullable(id, reason);
                        }
                    },
                },
            }
        }
    }

    fn start(&self, id: GbId, source: CameraSource) -> anyhow::Result<Pipeline> {
        let (events, recorder) = self
            .handle
            .store()
            .recorder_channel(id, self.queue_frames)?;
        let states = self.handle.pullers().start(id, source.clone(), events)?;
        self.handle.set_pulled(id, &source);
        tracing::info!(camera = %id, url = %source.url, transport = ?source.transport, "pulling camera");
        Ok(Pipeline {
            source,
            recorder,
            online: online::follow(self.index.clone(), id, states),
        })
    }

    async fn stop(&self, id: GbId, p: Pipeline) {
        if let Err(e) = self.handle.pullers().stop(&id).await {
            tracing::debug!(camera = %id, error = %e, "puller already gone");
        }
        p.recorder.stop().await;
        let _ = p.online.await;
        self.handle.forget(&id);
    }

    /// Restarts cameras whose recorder ended on its own (its task failed): their puller has
    /// stopped too (its consumer is gone).
    async fn restart_ended(&self, cameras: &mut HashMap<GbId, Pipeline>) {
        let ended: Vec<GbId> = cameras
            .iter()
            .filter(|(_, p)| p.recorder.is_finished())
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let Some(p) = cameras.remove(&id) else {
                continue;
            };
            tracing::error!(camera = %id, "the camera's recorder ended unexpectedly; restarting it");
            let source = p.source.clone();
            self.stop(id, p).await;
            match self.start(id, source) {
                Ok(p) => {
                    cameras.insert(id, p);
                }
                Err(e) => self.handle.set_unpullable(id, format!("{e:#}")),
            }
        }
    }
}

impl Subsystem for RecordingService {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Run {
        Box::pin(self.run_until(stop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for a in [
            "127.0.0.1:8554",
            "localhost:554",
            "[::1]:554",
            "127.9.9.9:1",
        ] {
            assert!(is_loopback(a), "{a}");
        }
        for a in [
            "10.0.0.1:554",
            "[fe80::1]:554",
            "camera.local:554",
            "0.0.0.0:554",
        ] {
            assert!(!is_loopback(a), "{a}");
        }
    }
}
