//! The store handle: opening (identity check, recovery), recorders, readers, retention.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tracing::Instrument;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::Index;

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::fsutil;
use crate::identity;
use crate::ingest::SourceEvent;
use crate::layout::Layout;
use crate::live::{CameraHub, KeyFrame, LiveSubscription};
use crate::recorder::Recorder;
use crate::recovery::{self, RecoveryReport};
use crate::state::RecorderState;

/// State shared by the handle, the recorder tasks and the maintenance task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: StoreConfig,
    pub(crate) layout: Layout,
    pub(crate) index: Arc<Index>,
    hubs: Mutex<HashMap<GbId, Arc<CameraHub>>>,
    running: Mutex<HashSet<GbId>>,
    /// Woken when a write fails with ENOSPC, so retention runs at once.
    pub(crate) space_pressure: Notify,
}

impl Shared {
    pub(crate) fn hub(&self, camera: &GbId) -> Arc<CameraHub> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.entry(*camera)
            .or_insert_with(|| Arc::new(CameraHub::new(now())))
            .clone()
    }

    fn existing_hub(&self, camera: &GbId) -> Option<Arc<CameraHub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(camera)
            .cloned()
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// The segment store. Cheap to clone; all clones share recorders and live hubs.
#[derive(Debug, Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// A running recorder.
#[derive(Debug)]
pub struct RecorderHandle {
    camera: GbId,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RecorderHandle {
    /// The camera.
    pub fn camera(&self) -> GbId {
        self.camera
    }

    /// Whether the task has ended (its source closed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops recording: writes what is buffered, closes the segment and the intervals, and
    /// waits for the task to end. (Dropping the handle instead leaves the task running until
    /// its source closes the channel.)
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(camera = %self.camera, error = %e, "recorder task failed");
        }
    }

    /// Kills the task at its next await point without any cleanup: what a crash leaves
    /// behind (tests).
    #[cfg(test)]
    pub(crate) async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits for the task to end on its own (after the source closed its channel).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(camera = %self.camera, error = %e, "recorder task failed");
        }
    }
}

/// Removes the camera from the running set when the task ends, however it ends.
struct RunningGuard {
    shared: Arc<Shared>,
    camera: GbId,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.shared
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.camera);
    }
}

impl Store {
    /// Opens the store at `config.root` with its index: checks that the directory and the
    /// index belong together, then runs crash recovery (see [`crate::recovery`]). Blocking:
    /// call it before starting recorders, from a blocking context.
    pub fn open(
        config: StoreConfig,
        index: Arc<Index>,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        let layout = Layout::new(config.root.clone());
        fsutil::create_dir_durable(layout.root())
            .map_err(|e| StoreError::io("creating store root", layout.root(), e))?;
        let adopted = identity::check(&layout, &index)?;
        let shared = Arc::new(Shared {
            config,
            layout,
            index,
            hubs: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            space_pressure: Notify::new(),
        });
        let report = if adopted {
            // The index did not know this store (a new or a lost index): catalogue the files
            // instead of recovering from the index's markers.
            let rebuilt = crate::rebuild::rebuild_catalogue(&shared.layout, &shared.index)?;
            if rebuilt.segments > 0 {
                tracing::warn!(
                    segments = rebuilt.segments,
                    "the index did not know this store; rebuilt its catalogue from the files"
                );
            }
            RecoveryReport {
                rebuilt: Some(rebuilt),
                ..RecoveryReport::default()
            }
        } else {
            recovery::recover(&shared.layout, &shared.index)?
        };
        Ok((Store { shared }, report))
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// The index.
    pub fn index(&self) -> &Arc<Index> {
        &self.shared.index
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts recording `camera` from `events` (a source's channel). One recorder per camera.
    /// Must be called within a tokio runtime.
    pub fn spawn_recorder(
        &self,
        camera: GbId,
        events: mpsc::Receiver<SourceEvent>,
    ) -> Result<RecorderHandle, StoreError> {
        {
            let mut running = self
                .shared
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !running.insert(camera) {
                return Err(StoreError::AlreadyRecording { camera });
            }
        }
        let guard = RunningGuard {
            shared: self.shared.clone(),
            camera,
        };
        let last_end = match self.shared.index.last_segment(&camera) {
            Ok(last) => last.map_or(i64::MIN, |s| s.end_90k),
            Err(e) => return Err(StoreError::index(camera, e)),
        };
        let hub = self.shared.hub(&camera);
        let recorder = Recorder::new(self.shared.clone(), camera, hub, last_end);
        let (stop, stop_rx) = watch::channel(false);
        let span = tracing::info_span!("recorder", camera = %camera);
        let task = tokio::spawn(
            async move {
                let _guard = guard;
                recorder.run(events, stop_rx).await;
            }
            .instrument(span),
        );
        Ok(RecorderHandle { camera, stop, task })
    }

    /// A channel of `capacity` events and a recorder reading it: give the sender to the
    /// source (RTSP puller, GB/T 28181 media session).
    pub fn recorder_channel(
        &self,
        camera: GbId,
        capacity: usize,
    ) -> Result<(mpsc::Sender<SourceEvent>, RecorderHandle), StoreError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle = self.spawn_recorder(camera, rx)?;
        Ok((tx, handle))
    }

    /// The recorder state of `camera` (idle if it never recorded since start).
    pub fn recorder_state(&self, camera: &GbId) -> RecorderState {
        match self.shared.existing_hub(camera) {
            Some(h) => h.state.borrow().clone(),
            None => RecorderState::idle(now()),
        }
    }

    /// A receiver that sees every change of `camera`'s recorder state.
    pub fn watch_recorder(&self, camera: &GbId) -> watch::Receiver<RecorderState> {
        self.shared.hub(camera).state.subscribe()
    }

    /// Every camera that has recorded or been watched since start, with its state.
    pub fn recorder_states(&self) -> Vec<(GbId, RecorderState)> {
        let hubs = self.shared.hubs.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = hubs
            .iter()
            .map(|(id, h)| (*id, h.state.borrow().clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// A live subscription to `camera` (it waits for the camera's next key-frame fragment if
    /// nothing is being recorded yet).
    pub fn live(&self, camera: &GbId) -> LiveSubscription {
        self.shared.hub(camera).subscribe()
    }

    /// The latest key frame `camera` sent since the store started, if any.
    pub fn latest_key_frame(&self, camera: &GbId) -> Option<KeyFrame> {
        self.shared.existing_hub(camera)?.key_frame()
    }

    /// Waits until a write hits ENOSPC (used by the maintenance task).
    pub(crate) async fn space_pressure(&self) {
        self.shared.space_pressure.notified().await;
    }
}
