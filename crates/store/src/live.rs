//! Live view: each camera's fragments as they are cut, for chunked HTTP or WebSocket clients,
//! and the latest key frame for snapshots.
//!
//! A subscriber receives an init segment, then fragments that start at a key frame and follow
//! each other on one continuous timeline (the `tfdt` of live fragments counts from the
//! recorder's start, unlike the segment files whose timeline restarts in every file). When
//! the camera's codec parameters change, the subscriber receives a new init segment before
//! the first fragment with the new parameters (an MSE client must re-initialise its source
//! buffer). A subscriber that falls behind by more than [`LIVE_BACKLOG`] fragments skips to
//! the next key-frame fragment. While a camera has subscribers, its current GOP is kept so
//! that a new subscriber starts at once; the first subscriber of an unwatched camera waits for
//! the next key-frame fragment.
//!
//! Live fragments are published when they are cut, *before* they are written to disk, so live
//! view keeps working while the disk is full or failing. Latency is one fragment (one GOP, at
//! most the configured fragment duration).

use std::sync::{Arc, Mutex, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use tokio::sync::{broadcast, watch};
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_media::{VideoFrame, VideoParameters};

use crate::error::StoreError;
use crate::state::RecorderState;

/// Fragments a subscriber may lag behind before it skips ahead.
pub const LIVE_BACKLOG: usize = 32;

/// One fragment on the live timeline.
#[derive(Debug)]
pub struct LiveFragment {
    pub(crate) params: Arc<VideoParameters>,
    pub(crate) init: Bytes,
    pub(crate) header: Bytes,
    pub(crate) samples: Vec<Bytes>,
    pub(crate) start: Timestamp,
    pub(crate) duration_90k: u64,
    pub(crate) key: bool,
    pub(crate) joined: OnceLock<Bytes>,
}

impl LiveFragment {
    /// Wall-clock time of the first frame.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Duration, 90 kHz ticks.
    pub fn duration_90k(&self) -> u64 {
        self.duration_90k
    }

    /// Whether the fragment starts with a key frame.
    pub fn starts_with_key_frame(&self) -> bool {
        self.key
    }

    /// The codec parameters of the fragment.
    pub fn params(&self) -> &Arc<VideoParameters> {
        &self.params
    }

    /// The fragment's bytes as separate chunks (`moof` + `mdat` header, then each frame), for
    /// vectored writes without copying.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.header).chain(self.samples.iter())
    }

    /// The fragment as one buffer (built once, then shared by every subscriber).
    pub fn bytes(&self) -> Bytes {
        self.joined
            .get_or_init(|| {
                let len = self.chunks().map(Bytes::len).sum();
                let mut b = BytesMut::with_capacity(len);
                for c in self.chunks() {
                    b.put_slice(c);
                }
                b.freeze()
            })
            .clone()
    }
}

/// What a live subscription yields.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// An init segment (`ftyp` + `moov`): first, and again whenever parameters change.
    Init {
        /// The parameters it describes.
        params: Arc<VideoParameters>,
        /// The init segment.
        init: Bytes,
    },
    /// A fragment (`moof` + `mdat`).
    Fragment(Arc<LiveFragment>),
}

impl LiveEvent {
    /// The event's bytes (an init segment or a whole fragment).
    pub fn bytes(&self) -> Bytes {
        match self {
            LiveEvent::Init { init, .. } => init.clone(),
            LiveEvent::Fragment(f) => f.bytes(),
        }
    }
}

/// The latest key frame a camera sent.
#[derive(Debug, Clone)]
pub struct KeyFrame {
    /// When it was received.
    pub received_at: Timestamp,
    /// Its codec parameters.
    pub params: Arc<VideoParameters>,
    /// The frame (length-prefixed NAL units).
    pub frame: VideoFrame,
}

impl KeyFrame {
    /// The frame as an Annex B elementary stream with the parameter sets in front, ready for
    /// a decoder (e.g. `ffmpeg -f h264 -i - -frames:v 1 snapshot.jpg`).
    pub fn annexb(&self, camera: &GbId) -> Result<Bytes, StoreError> {
        let frame = self.frame.to_annexb().map_err(|e| StoreError::Media {
            camera: *camera,
            reason: format!("latest key frame is malformed: {e}"),
        })?;
        let sets = self.params.parameter_sets();
        let mut b =
            BytesMut::with_capacity(frame.len() + sets.iter().map(|s| s.len() + 4).sum::<usize>());
        for s in &sets {
            b.put_slice(&[0, 0, 0, 1]);
            b.put_slice(s);
        }
        b.put_slice(&frame);
        Ok(b.freeze())
    }
}

/// Per-camera shared state between the recorder task and readers.
#[derive(Debug)]
pub(crate) struct CameraHub {
    live: broadcast::Sender<Arc<LiveFragment>>,
    /// Fragments since the last key-frame fragment, replayed to new subscribers so that they
    /// start at once. Publishing and subscribing both hold this lock, so a subscriber sees
    /// every fragment exactly once.
    gop: Mutex<Vec<Arc<LiveFragment>>>,
    key_frame: Mutex<Option<KeyFrame>>,
    pub(crate) state: watch::Sender<RecorderState>,
}

impl CameraHub {
    pub(crate) fn new(now: Timestamp) -> Self {
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        let (state, _) = watch::channel(RecorderState::idle(now));
        CameraHub {
            live,
            gop: Mutex::new(Vec::new()),
            key_frame: Mutex::new(None),
            state,
        }
    }

    pub(crate) fn publish(&self, fragment: LiveFragment) {
        let f = Arc::new(fragment);
        let mut gop = self.gop.lock().unwrap_or_else(|p| p.into_inner());
        if f.key || self.live.receiver_count() == 0 {
            gop.clear();
        }
        // The replay buffer holds a GOP of frames (about 1 MB at 4 Mbit/s); it is kept only
        // while someone watches, so hundreds of unwatched cameras cost no memory for it.
        if self.live.receiver_count() > 0 && (f.key || !gop.is_empty()) {
            gop.push(f.clone());
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.live.send(f);
    }

    /// Drops the replay buffer (the stream broke; the next subscriber waits for a key frame).
    pub(crate) fn break_gop(&self) {
        self.gop.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(crate) fn subscribe(&self) -> LiveSubscription {
        let gop = self.gop.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.live.subscribe();
        LiveSubscription {
            rx,
            replay: gop.iter().cloned().collect(),
            current: None,
            need_key: true,
            pending: None,
        }
    }

    pub(crate) fn set_key_frame(&self, k: KeyFrame) {
        *self.key_frame.lock().unwrap_or_else(|p| p.into_inner()) = Some(k);
    }

    pub(crate) fn key_frame(&self) -> Option<KeyFrame> {
        self.key_frame
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A live subscription to one camera (see the module docs).
#[derive(Debug)]
pub struct LiveSubscription {
    rx: broadcast::Receiver<Arc<LiveFragment>>,
    replay: std::collections::VecDeque<Arc<LiveFragment>>,
    current: Option<Arc<VideoParameters>>,
    need_key: bool,
    pending: Option<Arc<LiveFragment>>,
}

impl LiveSubscription {
    /// The next init segment or fragment; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        loop {
            if let Some(f) = self.pending.take() {
                return Some(LiveEvent::Fragment(f));
            }
            let f = match self.replay.pop_front() {
                Some(f) => f,
                None => match self.rx.recv().await {
                    Ok(f) => f,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(
                            skipped = n,
                            "live subscriber lagged; waiting for a key frame"
                        );
                        self.need_key = true;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if self.need_key && !f.key {
                continue;
            }
            self.need_key = false;
            let same = self
                .current
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &f.params) || **p == *f.params);
            if !same {
                self.current = Some(f.params.clone());
                let ev = LiveEvent::Init {
                    params: f.params.clone(),
                    init: f.init.clone(),
                };
                self.pending = Some(f);
                return Some(ev);
            }
            return Some(LiveEvent::Fragment(f));
        }
    }

    /// The subscription as a byte stream: init segment, then one buffer per fragment (for a
    /// chunked HTTP body or WebSocket binary messages).
    pub fn into_byte_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        futures::stream::unfold(self, |mut sub| async move {
            let ev = sub.next().await?;
            Some((ev.bytes(), sub))
        })
    }
}
