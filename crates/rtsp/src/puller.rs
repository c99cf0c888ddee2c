//! One camera's puller: a tokio task that keeps a session open, reconnecting with backoff,
//! feeding [`SourceEvent`]s to its consumer and publishing its [`PullerState`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_store::SourceEvent;

use crate::backoff::{jitter_random, Backoff, BackoffPolicy};
use crate::clock;
use crate::error::PullError;
use crate::ingest::Ingest;
use crate::session::{self, Flow, SourceFacts, StreamEnd, Watchdogs};
use crate::sink::Outbox;
use crate::source::CameraSource;
use crate::state::{PullerState, StopReason, Streaming};

/// Options shared by every puller of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct PullerOptions {
    /// No frame for this long ends the session (`Interrupted`, then reconnect).
    pub stall_timeout: Duration,
    /// No key frame this long after `PLAY` ends the session.
    pub key_frame_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// A session that streamed this long resets the backoff to its minimum.
    pub healthy_after: Duration,
    /// See policy `ClockJumpDetection` in `ingest`.
    pub clock_jump_threshold: Duration,
    /// How often a streaming puller refreshes its published counters and rates.
    pub state_interval: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for PullerOptions {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(10),
            key_frame_timeout: Duration::from_secs(10),
            backoff: BackoffPolicy::default(),
            healthy_after: Duration::from_secs(30),
            clock_jump_threshold: Duration::from_secs(2),
            state_interval: Duration::from_secs(1),
            user_agent: concat!("vigil/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl PullerOptions {
    pub(crate) fn watchdogs(&self) -> Watchdogs {
        Watchdogs {
            stall: self.stall_timeout,
            key_frame: self.key_frame_timeout,
        }
    }
}

/// A running puller.
#[derive(Debug)]
pub struct PullerHandle {
    id: GbId,
    state: watch::Receiver<PullerState>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl PullerHandle {
    pub fn id(&self) -> GbId {
        self.id
    }

    /// The current state.
    pub fn state(&self) -> PullerState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn subscribe(&self) -> watch::Receiver<PullerState> {
        self.state.clone()
    }

    /// Whether the task has ended (stopped, or its consumer went away).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the puller and waits for its task to end. An open recording interval gets a
    /// best-effort `Interrupted` ("recording stopped") first.
    pub async fn stop(self) {
        self.cancel.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(camera = %self.id, %error, "RTSP puller task failed");
        }
    }
}

/// Starts pulling `source` for camera `id`, sending its events to `events` (one channel
/// per camera: events do not name their camera). Must be called within a tokio runtime.
/// The puller runs until `cancel` is cancelled (or [`PullerHandle::stop`]) or `events`'
/// receiver is dropped.
pub fn spawn(
    id: GbId,
    source: CameraSource,
    options: Arc<PullerOptions>,
    events: mpsc::Sender<SourceEvent>,
    cancel: CancellationToken,
) -> PullerHandle {
    let (state_tx, state) = watch::channel(PullerState::Connecting {
        attempt: 1,
        since: clock::now(),
        last_error: None,
    });
    let span = tracing::info_span!("rtsp", camera = %id, url = %source.url);
    let worker = Worker {
        facts: SourceFacts::new(&source),
        source,
        options,
        outbox: Outbox::new(events),
        state: state_tx,
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(worker.run().instrument(span));
    PullerHandle {
        id,
        state,
        cancel,
        task,
    }
}

struct Worker {
    source: CameraSource,
    facts: SourceFacts,
    options: Arc<PullerOptions>,
    outbox: Outbox,
    state: watch::Sender<PullerState>,
    cancel: CancellationToken,
}

/// The end of one session.
struct SessionOutcome {
    result: Result<StreamEnd, PullError>,
    /// How long frames were delivered (zero when none were).
    streamed_for: Duration,
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.options.backoff);
        let mut last_error: Option<PullError> = None;
        let reason = loop {
            self.state.send_replace(PullerState::Connecting {
                attempt: backoff.failures() + 1,
                since: clock::now(),
                last_error: last_error.clone(),
            });
            let outcome = self.session(last_error.take()).await;
            let error = match outcome.result {
                Ok(_) => {
                    self.outbox
                        .interrupt_now(clock::now(), "recording stopped".into());
                    break StopReason::Cancelled;
                }
                Err(PullError::ConsumerGone) => break StopReason::ConsumerGone,
                Err(error) => error,
            };
            let reason = error.to_string();
            if let Err(PullError::ConsumerGone) = self
                .outbox
                .interrupt(clock::now(), reason, &self.cancel)
                .await
            {
                break StopReason::ConsumerGone;
            }
            if self.cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if outcome.streamed_for >= self.options.healthy_after {
                backoff.reset();
            }
            let delay = backoff.next_delay(&error, jitter_random());
            tracing::warn!(
                kind = ?error.kind(),
                error = %error,
                attempt = backoff.failures(),
                retry_in_ms = delay.as_millis() as u64,
                "camera stream failed"
            );
            let failed_at = clock::now();
            self.state.send_replace(PullerState::Retrying {
                attempt: backoff.failures(),
                failed_at,
                next_attempt_at: clock::after(failed_at, delay),
                last_error: error.clone(),
            });
            last_error = Some(error);
            tokio::select! {
                _ = self.cancel.cancelled() => break StopReason::Cancelled,
                _ = tokio::time::sleep(delay) => {}
            }
        };
        tracing::info!(?reason, "RTSP puller stopped");
        self.state.send_replace(PullerState::Stopped {
            at: clock::now(),
            reason,
        });
    }

    /// One attempt: connect, then stream until an error. `previous_error` (what ended the
    /// attempt before) is published with the streaming state, so that a camera that fails
    /// the same way after every reconnect does not look healthy between its failures.
    async fn session(&mut self, previous_error: Option<PullError>) -> SessionOutcome {
        let failed = |error| SessionOutcome {
            result: Err(error),
            streamed_for: Duration::ZERO,
        };
        let opened = tokio::select! {
            _ = self.cancel.cancelled() => {
                return SessionOutcome { result: Ok(StreamEnd::Cancelled), streamed_for: Duration::ZERO };
            }
            opened = session::open(&self.source, &self.facts, &self.options.user_agent) => opened,
        };
        let mut opened = match opened {
            Ok(o) => o,
            Err(e) => return failed(e),
        };
        tracing::debug!(codec = %opened.codec, "RTSP session playing");
        let mut ingest = Ingest::new(
            self.options.clock_jump_threshold,
            self.options.state_interval,
        );
        let since = clock::now();
        let mut first_frame: Option<Instant> = None;
        let mut last_publish: Option<Instant> = None;
        let mut dropped_slow = 0u64;
        let outbox = &mut self.outbox;
        let state = &self.state;
        let interval = self.options.state_interval;
        let result = session::stream(
            &mut opened,
            &mut ingest,
            &self.facts,
            self.options.watchdogs(),
            &self.cancel,
            |event, ingest| {
                let Some(event) = event else {
                    return Ok(Flow::Continue);
                };
                dropped_slow += outbox.offer(event)?;
                let now = Instant::now();
                if first_frame.is_none() {
                    first_frame = Some(now);
                    if let Some(p) = ingest.params() {
                        tracing::info!(
                            codec = %p.codec(),
                            width = p.width(),
                            height = p.height(),
                            "camera streaming"
                        );
                    }
                }
                if last_publish.is_none_or(|t| now.duration_since(t) >= interval) {
                    last_publish = Some(now);
                    if let Some(mut s) = streaming_state(since, ingest, dropped_slow) {
                        s.previous_error.clone_from(&previous_error);
                        state.send_replace(PullerState::Streaming(Box::new(s)));
                    }
                }
                Ok(Flow::Continue)
            },
        )
        .await;
        SessionOutcome {
            result,
            streamed_for: first_frame.map_or(Duration::ZERO, |t| t.elapsed()),
        }
    }
}

/// The published state of a streaming session.
fn streaming_state(since: Timestamp, ingest: &Ingest, dropped_slow: u64) -> Option<Streaming> {
    let params = ingest.params()?;
    let (bitrate_bps, fps) = ingest.rates();
    let mut counters = ingest.counters.clone();
    counters.dropped_slow_consumer = dropped_slow;
    Some(Streaming {
        since,
        codec: params.codec(),
        rfc6381_codec: params.rfc6381_codec().to_owned(),
        width: params.width(),
        height: params.height(),
        fps,
        declared_fps: params
            .frame_rate()
            .filter(|&(_, d)| d != 0)
            .map(|(n, d)| f64::from(n) / f64::from(d)),
        bitrate_bps,
        counters,
        previous_error: None,
    })
}
