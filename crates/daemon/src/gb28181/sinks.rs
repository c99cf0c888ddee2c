//! Where a GB/T 28181 channel's frames go: the same segment store as the RTSP cameras, one
//! recorder per camera ([`Store::recorder_channel`]). The server asks for a sink on every
//! (re-)INVITE; the same sender is returned for as long as its recorder runs, so a camera's
//! sessions follow each other in one recorder. Only channels the daemon filed as cameras (the
//! camera ID is the channel ID) get a sink: the recorder writes the camera's `recording` and
//! `upload` histories, which need the camera in the register.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use vigil_api::gb28181::{Filing, Gb28181};
use vigil_core::id::GbId;
use vigil_gb28181::server::{ChannelKey, SinkProvider};
use vigil_store::{RecorderHandle, SourceEvent, Store};

struct Recorder {
    tx: mpsc::Sender<SourceEvent>,
    handle: RecorderHandle,
}

/// The store's recorders for GB/T 28181 cameras.
pub struct StoreSinks {
    store: Store,
    gb: Arc<Gb28181>,
    queue: usize,
    recorders: Mutex<HashMap<GbId, Recorder>>,
}

impl StoreSinks {
    /// Sinks into `store`, `queue` frames deep per camera; `gb`'s directory says which
    /// channels are filed.
    pub fn new(store: Store, gb: Arc<Gb28181>, queue: usize) -> StoreSinks {
        StoreSinks {
            store,
            gb,
            queue: queue.max(1),
            recorders: Mutex::new(HashMap::new()),
        }
    }

    fn recorders(&self) -> std::sync::MutexGuard<'_, HashMap<GbId, Recorder>> {
        self.recorders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops every recorder: each writes what it buffered, closes its segment and its
    /// intervals. Call after the server has stopped (its sessions hold senders too).
    pub async fn stop_all(&self) {
        let all: Vec<Recorder> = self.recorders().drain().map(|(_, r)| r).collect();
        for r in all {
            drop(r.tx);
            r.handle.stop().await;
        }
    }

    fn filed(&self, key: &ChannelKey) -> bool {
        let dir = self.gb.directory();
        dir.devices
            .get(&key.device)
            .and_then(|d| d.items.get(key.channel.as_str()))
            .is_some_and(
                |r| matches!(r.filing, Filing::Filed { camera, .. } if camera == key.channel),
            )
    }
}

impl SinkProvider for StoreSinks {
    fn sink(&self, key: &ChannelKey) -> Option<mpsc::Sender<SourceEvent>> {
        if !self.filed(key) {
            tracing::debug!(channel = %key, "not filed as a camera; not recorded");
            return None;
        }
        let camera = key.channel;
        let mut recorders = self.recorders();
        if let Some(r) = recorders.get(&camera) {
            if !r.handle.is_finished() && !r.tx.is_closed() {
                return Some(r.tx.clone());
            }
        }
        // A recorder that ended (it should not while we hold its sender) is replaced.
        if let Some(old) = recorders.remove(&camera) {
            tracing::warn!(%camera, "the camera's recorder had ended; starting a new one");
            drop(old);
        }
        match self.store.recorder_channel(camera, self.queue) {
            Ok((tx, handle)) => {
                recorders.insert(
                    camera,
                    Recorder {
                        tx: tx.clone(),
                        handle,
                    },
                );
                Some(tx)
            }
            Err(e) => {
                tracing::error!(%camera, error = %e, "cannot start the camera's recorder");
                None
            }
        }
    }
}
