//! Handing events to the consumer (the store) without ever stalling the RTSP read.
//!
//! Policy `DropToNextKeyFrame`: frames are offered with `try_send`. When the bounded channel
//! is full, this frame and every following one are dropped (and counted) until a key frame
//! arrives *and* there is room for two events; then an `Interrupted` ("consumer too slow")
//! is sent, dated at the first dropped frame, followed by the key frame. The store thus sees
//! an honest gap that starts at a decodable frame, the camera's TCP window never fills
//! (which would make the camera drop or disconnect us), and memory stays bounded by the
//! channel's capacity.

use tokio::sync::mpsc::{self, error::TrySendError};
use vigil_core::time::Timestamp;
use vigil_store::SourceEvent;

use crate::error::PullError;

/// A run of dropped frames in progress.
#[derive(Debug, Clone, Copy)]
struct DropRun {
    since: Timestamp,
    frames: u64,
}

/// The sending half, with the overflow policy.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<SourceEvent>,
    dropping: Option<DropRun>,
    /// Whether a recording interval is open at the consumer: a frame went out since the last
    /// `Interrupted`.
    open: bool,
    /// When the last frame that went out was received.
    last_sent: Option<Timestamp>,
}

impl Outbox {
    pub(crate) fn new(tx: mpsc::Sender<SourceEvent>) -> Self {
        Self {
            tx,
            dropping: None,
            open: false,
            last_sent: None,
        }
    }

    /// Offers one frame event. Returns how many frames were dropped by this call (0 or 1),
    /// or `ConsumerGone` when the receiver was dropped.
    pub(crate) fn offer(&mut self, event: SourceEvent) -> Result<u64, PullError> {
        let (is_key, received_at) = match &event {
            SourceEvent::Frame {
                frame, received_at, ..
            } => (frame.is_key, *received_at),
            SourceEvent::Interrupted { at, .. } => (false, *at),
        };
        if let Some(run) = &mut self.dropping {
            if !is_key {
                run.frames += 1;
                return Ok(1);
            }
            let run = *run;
            return match self.tx.try_reserve_many(2) {
                Ok(mut permits) => {
                    let reason = format!(
                        "recording consumer too slow: {} frames dropped up to the next key frame",
                        run.frames
                    );
                    if let Some(p) = permits.next() {
                        p.send(SourceEvent::Interrupted {
                            at: run.since,
                            reason,
                        });
                    }
                    if let Some(p) = permits.next() {
                        p.send(event);
                    }
                    tracing::info!(dropped = run.frames, "consumer caught up at a key frame");
                    self.dropping = None;
                    self.open = true;
                    self.last_sent = Some(received_at);
                    Ok(0)
                }
                Err(TrySendError::Full(())) => {
                    if let Some(run) = &mut self.dropping {
                        run.frames += 1;
                    }
                    Ok(1)
                }
                Err(TrySendError::Closed(())) => Err(PullError::ConsumerGone),
            };
        }
        match self.tx.try_send(event) {
            Ok(()) => {
                self.open = true;
                self.last_sent = Some(received_at);
                Ok(0)
            }
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    capacity = self.tx.max_capacity(),
                    "recording consumer too slow: dropping frames until the next key frame"
                );
                self.dropping = Some(DropRun {
                    since: received_at,
                    frames: 1,
                });
                Ok(1)
            }
            Err(TrySendError::Closed(_)) => Err(PullError::ConsumerGone),
        }
    }

    /// Whether frames went out since the last interruption.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// When the consumer's recording interval ends: at the first dropped frame if frames
    /// were being dropped, else at the last frame that went out. A stall is noticed seconds
    /// after the last frame; dating the interruption at the detection would record video
    /// that never arrived.
    fn end_of_interval(&mut self, fallback: Timestamp) -> Timestamp {
        let end = self
            .dropping
            .take()
            .map(|run| run.since)
            .or(self.last_sent)
            .unwrap_or(fallback);
        end.min(fallback)
    }

    /// Tells the consumer the stream broke. Waits for room (the RTSP connection is already
    /// closed, so waiting stalls no camera), unless cancelled. Does nothing when no interval
    /// is open. `now` bounds the date of the interruption (see `end_of_interval`).
    pub(crate) async fn interrupt(
        &mut self,
        now: Timestamp,
        reason: String,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), PullError> {
        if !self.open {
            self.dropping = None;
            return Ok(());
        }
        let at = self.end_of_interval(now);
        self.open = false;
        tokio::select! {
            _ = cancel.cancelled() => Ok(()),
            sent = self.tx.send(SourceEvent::Interrupted { at, reason }) => {
                sent.map_err(|_| PullError::ConsumerGone)
            }
        }
    }

    /// Best-effort interruption on shutdown: never waits.
    pub(crate) fn interrupt_now(&mut self, now: Timestamp, reason: String) {
        if self.open {
            self.open = false;
            let at = self.end_of_interval(now);
            let _ = self.tx.try_send(SourceEvent::Interrupted { at, reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use vigil_media::{VideoFrame, VideoParameters};

    use super::*;

    fn frame(params: &Arc<VideoParameters>, n: i64, key: bool) -> SourceEvent {
        SourceEvent::Frame {
            params: params.clone(),
            frame: VideoFrame::new(n * 3600, key, Bytes::from_static(&[0, 0, 0, 1, 0x65])),
            received_at: Timestamp::from_millis(n * 40),
        }
    }

    fn params() -> Arc<VideoParameters> {
        let entry = crate::ingest::tests::sample_entry();
        Arc::new(VideoParameters::from_sample_entry(entry).unwrap())
    }

    fn pts(e: &SourceEvent) -> Option<i64> {
        match e {
            SourceEvent::Frame { frame, .. } => Some(frame.pts),
            SourceEvent::Interrupted { .. } => None,
        }
    }

    #[tokio::test]
    async fn overflow_drops_to_the_next_key_frame_behind_an_interruption() {
        let p = params();
        let (tx, mut rx) = mpsc::channel(3);
        let mut out = Outbox::new(tx);
        // Frames 0..3 fit; 3..6 overflow (even the key frame 5 finds no room for two).
        let mut dropped = 0;
        for n in 0..6 {
            dropped += out.offer(frame(&p, n, n == 0 || n == 5)).unwrap();
        }
        assert_eq!(dropped, 3);
        // The consumer catches up.
        let got: Vec<_> = (0..3).map(|_| rx.try_recv().unwrap()).collect();
        assert_eq!(
            got.iter().map(pts).collect::<Vec<_>>(),
            [Some(0), Some(3600), Some(7200)]
        );
        // A non-key frame is still dropped although there is room now…
        assert_eq!(out.offer(frame(&p, 6, false)).unwrap(), 1);
        // …and the next key frame goes out behind the interruption.
        assert_eq!(out.offer(frame(&p, 7, true)).unwrap(), 0);
        let SourceEvent::Interrupted { at, reason } = rx.try_recv().unwrap() else {
            panic!("interruption first");
        };
        assert_eq!(
            at,
            Timestamp::from_millis(3 * 40),
            "dated at the first dropped frame"
        );
        assert!(reason.contains("4 frames dropped"), "{reason}");
        assert_eq!(pts(&rx.try_recv().unwrap()), Some(7 * 3600));
        assert_eq!(out.offer(frame(&p, 8, false)).unwrap(), 0);
        assert_eq!(pts(&rx.try_recv().unwrap()), Some(8 * 3600));
    }

    #[tokio::test]
    async fn a_closed_consumer_is_reported() {
        let p = params();
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut out = Outbox::new(tx);
        assert_eq!(
            out.offer(frame(&p, 0, true)).unwrap_err(),
            PullError::ConsumerGone
        );
    }

    #[tokio::test]
    async fn interruptions_are_sent_only_when_an_interval_is_open() {
        let p = params();
        let (tx, mut rx) = mpsc::channel(4);
        let mut out = Outbox::new(tx);
        let cancel = tokio_util::sync::CancellationToken::new();
        out.interrupt(Timestamp::from_millis(1), "refused".into(), &cancel)
            .await
            .unwrap();
        assert!(rx.try_recv().is_err(), "nothing was open");
        out.offer(frame(&p, 0, true)).unwrap();
        out.offer(frame(&p, 1, false)).unwrap();
        assert!(out.is_open());
        // A stall noticed seconds later ends the interval at the last frame (40 ms).
        out.interrupt(Timestamp::from_millis(10_040), "stall".into(), &cancel)
            .await
            .unwrap();
        let _ = rx.try_recv().unwrap();
        let _ = rx.try_recv().unwrap();
        let SourceEvent::Interrupted { at, reason } = rx.try_recv().unwrap() else {
            panic!()
        };
        assert_eq!((at, reason.as_str()), (Timestamp::from_millis(40), "stall"));
        assert!(!out.is_open());
        out.interrupt_now(Timestamp::from_millis(100), "stopped".into());
        assert!(rx.try_recv().is_err());
    }
}
