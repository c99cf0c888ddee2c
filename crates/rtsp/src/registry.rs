//! The supervisor of every camera's puller: start, stop and restart by camera ID, and read
//! all states (the API lists them).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use vigil_core::id::GbId;
use vigil_store::SourceEvent;

use crate::puller::{spawn, PullerHandle, PullerOptions};
use crate::source::CameraSource;
use crate::state::PullerState;

/// Why a registry operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("camera {0} already has a running RTSP puller")]
    AlreadyRunning(GbId),
    #[error("camera {0} has no RTSP puller")]
    NotFound(GbId),
}

struct Entry {
    source: CameraSource,
    events: mpsc::Sender<SourceEvent>,
    handle: PullerHandle,
}

/// All pullers of a process. Every puller's cancellation token is a child of the registry's,
/// so [`PullerRegistry::shutdown`] (or cancelling the token given to
/// [`PullerRegistry::with_cancel`]) stops them all.
pub struct PullerRegistry {
    options: Arc<PullerOptions>,
    cancel: CancellationToken,
    entries: Mutex<HashMap<GbId, Entry>>,
}

impl PullerRegistry {
    pub fn new(options: PullerOptions) -> Self {
        Self::with_cancel(options, CancellationToken::new())
    }

    /// A registry whose pullers all stop when `cancel` is cancelled (daemon shutdown).
    pub fn with_cancel(options: PullerOptions, cancel: CancellationToken) -> Self {
        Self {
            options: Arc::new(options),
            cancel,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &PullerOptions {
        &self.options
    }

    /// Starts a puller for `id`. A puller that already ended (its consumer went away) is
    /// replaced; a running one is not. Must be called within a tokio runtime.
    pub fn start(
        &self,
        id: GbId,
        source: CameraSource,
        events: mpsc::Sender<SourceEvent>,
    ) -> Result<watch::Receiver<PullerState>, RegistryError> {
        let mut entries = self.entries.lock();
        if entries.get(&id).is_some_and(|e| !e.handle.is_finished()) {
            return Err(RegistryError::AlreadyRunning(id));
        }
        let handle = spawn(
            id,
            source.clone(),
            self.options.clone(),
            events.clone(),
            self.cancel.child_token(),
        );
        let state = handle.subscribe();
        entries.insert(
            id,
            Entry {
                source,
                events,
                handle,
            },
        );
        Ok(state)
    }

    /// Stops `id`'s puller and waits for it to end.
    pub async fn stop(&self, id: &GbId) -> Result<(), RegistryError> {
        let entry = self
            .entries
            .lock()
            .remove(id)
            .ok_or(RegistryError::NotFound(*id))?;
        entry.handle.stop().await;
        Ok(())
    }

    /// Stops and starts `id`'s puller again with the same source and consumer (e.g. after
    /// the camera was fixed: the backoff starts over).
    pub async fn restart(&self, id: &GbId) -> Result<watch::Receiver<PullerState>, RegistryError> {
        self.replace(id, None).await
    }

    /// Restarts `id`'s puller with a new source (new URL, password or transport), keeping
    /// its consumer.
    pub async fn update(
        &self,
        id: &GbId,
        source: CameraSource,
    ) -> Result<watch::Receiver<PullerState>, RegistryError> {
        self.replace(id, Some(source)).await
    }

    async fn replace(
        &self,
        id: &GbId,
        source: Option<CameraSource>,
    ) -> Result<watch::Receiver<PullerState>, RegistryError> {
        let entry = self
            .entries
            .lock()
            .remove(id)
            .ok_or(RegistryError::NotFound(*id))?;
        let Entry {
            source: old,
            events,
            handle,
        } = entry;
        handle.stop().await;
        self.start(*id, source.unwrap_or(old), events)
    }

    /// The current state of `id`'s puller.
    pub fn state(&self, id: &GbId) -> Option<PullerState> {
        self.entries.lock().get(id).map(|e| e.handle.state())
    }

    /// A receiver of `id`'s state changes.
    pub fn subscribe(&self, id: &GbId) -> Option<watch::Receiver<PullerState>> {
        self.entries.lock().get(id).map(|e| e.handle.subscribe())
    }

    /// Every puller's state, ordered by camera ID.
    pub fn states(&self) -> Vec<(GbId, PullerState)> {
        let mut states: Vec<_> = self
            .entries
            .lock()
            .iter()
            .map(|(id, e)| (*id, e.handle.state()))
            .collect();
        states.sort_by_key(|a| a.0);
        states
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    /// Stops every puller and waits for them all.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let entries: Vec<Entry> = self.entries.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.handle.stop().await;
        }
    }
}

impl std::fmt::Debug for PullerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullerRegistry")
            .field("pullers", &self.len())
            .field("options", &self.options)
            .finish()
    }
}
