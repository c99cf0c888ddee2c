//! One task per camera: turns [`SourceEvent`]s into segment files, index records, status
//! history and live fragments.
//!
//! The task is sequential: one fragment write is in flight at a time, and frames arriving
//! meanwhile wait in the source's bounded channel (the sources drop to the next key frame
//! when it is full and say so with an `Interrupted`). File I/O and index updates run on the
//! blocking thread pool, one hop per fragment.

mod commit;
mod status;

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::{SegmentRecord, SegmentState};
use vigil_media::fmp4::{self, Fragment, FragmentBuilder};
use vigil_media::{VideoFrame, VideoParameters};

use crate::error::StoreError;
use crate::ingest::SourceEvent;
use crate::live::{CameraHub, KeyFrame, LiveFragment};
use crate::segment::SegmentFile;
use crate::state::RecorderStatus;
use crate::store::Shared;
use crate::time;
use crate::timeline::Timeline;
use crate::util::{same_params, stream_info};

/// Backoff after a failed write, doubled up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 60_000;

/// The segment being recorded.
struct OpenSegment {
    /// `None` until the first fragment is written (the file is created with it).
    file: Option<SegmentFile>,
    /// What the index knows (committed state).
    record: SegmentRecord,
    params: Arc<VideoParameters>,
    init: Bytes,
    rotate_at: i64,
    next_seq: u32,
}

impl OpenSegment {
    fn start(&self) -> i64 {
        self.record.start_90k
    }
}

pub(crate) struct Recorder {
    shared: Arc<Shared>,
    camera: GbId,
    hub: Arc<CameraHub>,
    timeline: Timeline,
    seg: Option<OpenSegment>,
    builder: FragmentBuilder,
    /// Store time of the first frame in `builder`.
    frag_first_t: i64,
    /// End of the last durably written fragment: the floor for the next run's store time.
    last_end: i64,
    status: status::StatusFeed,
    retry_at: Option<Timestamp>,
    backoff_ms: i64,
    live_epoch: Option<i64>,
    live_seq: u32,
    init_cache: Option<(Arc<VideoParameters>, Bytes)>,
    /// Frames received since the state was last published.
    unreported_frames: u64,
    /// The latest receive time seen (the recorder's notion of "now").
    last_received: Timestamp,
}

impl Recorder {
    pub(crate) fn new(
        shared: Arc<Shared>,
        camera: GbId,
        hub: Arc<CameraHub>,
        last_end: i64,
    ) -> Self {
        let tolerance = shared.config.jump_tolerance_ticks();
        Recorder {
            status: status::StatusFeed::new(shared.index.clone(), camera),
            shared,
            camera,
            hub,
            timeline: Timeline::new(tolerance),
            seg: None,
            builder: FragmentBuilder::default(),
            frag_first_t: 0,
            last_end,
            retry_at: None,
            backoff_ms: FIRST_BACKOFF_MS,
            live_epoch: None,
            live_seq: 1,
            init_cache: None,
            unreported_frames: 0,
            last_received: Timestamp::EPOCH,
        }
    }

    /// The task body: handles events until the source closes or `stop` fires.
    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<SourceEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut stop_alive = true;
        loop {
            tokio::select! {
                biased;
                changed = stop.changed(), if stop_alive => {
                    if changed.is_err() {
                        // The handle was dropped: keep recording until the source closes.
                        stop_alive = false;
                        continue;
                    }
                    if *stop.borrow() {
                        self.finish("recorder stopped").await;
                        return;
                    }
                }
                ev = events.recv() => match ev {
                    Some(SourceEvent::Frame { params, frame, received_at }) => {
                        self.on_frame(params, frame, received_at).await;
                    }
                    Some(SourceEvent::Interrupted { at, reason }) => {
                        self.on_interrupted(at, reason).await;
                    }
                    None => {
                        self.finish("source closed").await;
                        return;
                    }
                },
            }
        }
    }

    async fn finish(&mut self, reason: &str) {
        let now = Timestamp::from_system_time(std::time::SystemTime::now()).max(self.last_received);
        self.on_interrupted(now, reason.to_owned()).await;
    }

    async fn on_interrupted(&mut self, at: Timestamp, reason: String) {
        tracing::info!(%reason, "source interrupted");
        self.end_run().await;
        self.status.upload(at, false).await;
        self.set_status(
            RecorderStatus::Idle {
                reason: Some(reason),
            },
            at,
        );
    }

    async fn on_frame(
        &mut self,
        params: Arc<VideoParameters>,
        frame: VideoFrame,
        received: Timestamp,
    ) {
        self.unreported_frames += 1;
        self.last_received = self.last_received.max(received);
        self.status.upload(received, true).await;
        if frame.is_key {
            self.hub.set_key_frame(KeyFrame {
                received_at: received,
                params: params.clone(),
                frame: frame.clone(),
            });
        }
        let recv90 = time::ticks(received);
        let nominal = i64::from(
            params
                .nominal_frame_duration()
                .unwrap_or(fmp4::writer::DEFAULT_FRAME_DURATION),
        );

        if let Some(seg) = &self.seg {
            let seg_params = seg.params.clone();
            let m = self.timeline.map(frame.pts, recv90, nominal);
            if let Some(d) = m.discontinuity {
                tracing::warn!(?d, "clock discontinuity absorbed");
                self.hub.state.send_modify(|s| s.clock_discontinuities += 1);
            }
            if m.gap {
                tracing::warn!(at = %time::timestamp(m.t), "frames stopped or the host clock stepped forward: ending the recording interval");
                self.hub.state.send_modify(|s| s.clock_discontinuities += 1);
                self.end_run().await;
                if frame.is_key && self.may_start(received) {
                    // The timeline was re-anchored at m.t by the gap.
                    let t = self
                        .timeline
                        .start(frame.pts, recv90, self.last_end.max(m.t));
                    self.open_segment(params, t, received);
                    self.push(frame, t);
                } else {
                    self.wait_for_key(received);
                }
                return;
            }
            let t = m.t;
            if !same_params(&seg_params, &params) {
                tracing::info!(
                    codec = params.rfc6381_codec(),
                    width = params.width(),
                    height = params.height(),
                    "codec parameters changed: starting a new segment"
                );
                if !self.cut(Some(t)).await {
                    return;
                }
                self.close_segment().await;
                if frame.is_key {
                    self.open_segment(params, t, received);
                    self.push(frame, t);
                } else {
                    self.end_run().await;
                    self.wait_for_key(received);
                }
                return;
            }
            let max_frag = self.shared.config.max_fragment_ticks();
            if frame.is_key {
                if !self.builder.is_empty() && !self.cut(Some(t)).await {
                    return;
                }
                if self.seg.as_ref().is_some_and(|s| t >= s.rotate_at) {
                    self.close_segment().await;
                    self.open_segment(params, t, received);
                }
            } else if !self.builder.is_empty()
                && t - self.frag_first_t >= max_frag
                && !self.cut(Some(t)).await
            {
                return;
            }
            self.push(frame, t);
            return;
        }

        if !frame.is_key {
            self.wait_for_key(received);
            return;
        }
        if !self.may_start(received) {
            return;
        }
        let t = self.timeline.start(frame.pts, recv90, self.last_end);
        self.open_segment(params, t, received);
        self.push(frame, t);
    }

    fn may_start(&self, received: Timestamp) -> bool {
        self.retry_at.is_none_or(|at| received >= at)
    }

    fn wait_for_key(&mut self, received: Timestamp) {
        let state = self.hub.state.borrow();
        let waiting = matches!(
            state.status,
            RecorderStatus::Idle { .. } | RecorderStatus::Recording
        );
        drop(state);
        if waiting {
            self.set_status(RecorderStatus::WaitingForKeyFrame, received);
        }
    }

    fn set_status(&mut self, status: RecorderStatus, since: Timestamp) {
        let frames = std::mem::take(&mut self.unreported_frames);
        self.hub.state.send_modify(|s| {
            s.frames_received += frames;
            if s.status != status {
                s.status = status;
                s.since = since;
            }
        });
    }

    fn init_for(&mut self, params: &Arc<VideoParameters>) -> Bytes {
        if let Some((p, init)) = &self.init_cache {
            if same_params(p, params) {
                return init.clone();
            }
        }
        let init = fmp4::init_segment(params);
        self.init_cache = Some((params.clone(), init.clone()));
        init
    }

    fn open_segment(&mut self, params: Arc<VideoParameters>, t: i64, received: Timestamp) {
        let init = self.init_for(&params);
        let seg_len = self.shared.config.segment_ticks();
        let rotate_at = rotation_instant(&self.camera, t, seg_len);
        let info = stream_info(&params);
        self.builder = FragmentBuilder::for_params(&params);
        self.hub
            .state
            .send_modify(|s| s.stream = Some(info.clone()));
        self.seg = Some(OpenSegment {
            file: None,
            record: SegmentRecord {
                camera: self.camera,
                start_90k: t,
                end_90k: t,
                file: String::new(),
                len: 0,
                fragments: 0,
                frames: 0,
                stream: info,
                state: SegmentState::Writing,
            },
            params,
            init,
            rotate_at,
            next_seq: 1,
        });
        self.set_status(RecorderStatus::Recording, received);
    }

    fn push(&mut self, mut frame: VideoFrame, t: i64) {
        let Some(seg) = &self.seg else { return };
        if self.builder.is_empty() {
            self.frag_first_t = t;
        }
        frame.pts = t - seg.start();
        self.builder.push(frame);
    }

    /// Finishes the fragment in the builder and writes it. `next_t` is the store time of the
    /// frame that follows (it sets the last frame's duration). Returns false if the write
    /// failed (the segment is then abandoned and the run ended).
    async fn cut(&mut self, next_t: Option<i64>) -> bool {
        let Some(seg) = self.seg.as_mut() else {
            return true;
        };
        if self.builder.is_empty() {
            return true;
        }
        let start = seg.start();
        let bdt = (self.frag_first_t - start) as u64;
        let seq = seg.next_seq;
        seg.next_seq = seg.next_seq.wrapping_add(1);
        let frag = match self.builder.finish(seq, bdt, next_t.map(|t| t - start)) {
            Ok(f) => f,
            Err(e) => {
                // Only an oversized fragment (> 4 GiB) gets here.
                self.builder = FragmentBuilder::for_params(&seg.params);
                let err = StoreError::Media {
                    camera: self.camera,
                    reason: e.to_string(),
                };
                self.fail(err).await;
                return false;
            }
        };
        let wall = self.frag_first_t;
        self.publish_live(&frag, wall);
        match self.commit(frag, wall).await {
            Ok(()) => true,
            Err(e) => {
                self.fail(e).await;
                false
            }
        }
    }

    fn publish_live(&mut self, frag: &Fragment, wall: i64) {
        let Some(seg) = &self.seg else { return };
        let epoch = *self.live_epoch.get_or_insert(wall);
        let mut header = BytesMut::from(&frag.header()[..]);
        let bdt = u64::try_from(wall - epoch).unwrap_or(0);
        if let Err(e) = fmp4::retime(&mut header, self.live_seq, bdt) {
            tracing::warn!(error = %e, "could not retime a live fragment; live view skips it");
            return;
        }
        self.live_seq = self.live_seq.wrapping_add(1);
        self.hub.publish(LiveFragment {
            params: seg.params.clone(),
            init: seg.init.clone(),
            header: header.freeze(),
            samples: frag.samples().to_vec(),
            start: time::timestamp(wall),
            duration_90k: frag.duration(),
            key: frag.first_is_sync(),
            joined: OnceLock::new(),
        });
    }

    /// Closes the open segment in the index (rotation, parameter change, end of run).
    async fn close_segment(&mut self) {
        let Some(seg) = self.seg.take() else { return };
        self.builder = FragmentBuilder::for_params(&seg.params);
        let Some(file) = seg.file else {
            return;
        };
        let mut record = seg.record;
        record.state = SegmentState::Complete;
        let index = self.shared.index.clone();
        let res = tokio::task::spawn_blocking(move || {
            drop(file);
            index.put_segment(&record)
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.index_failed(e.to_string()),
            Err(e) => self.index_failed(format!("closing task failed: {e}")),
        }
        self.hub.state.send_modify(|s| {
            s.segment = None;
            s.committed_len = 0;
        });
    }

    /// Ends the run: writes what is buffered, closes the segment, closes the recording
    /// interval at the end of the last durable fragment.
    async fn end_run(&mut self) {
        if self.seg.is_some() && self.cut(None).await {
            self.close_segment().await;
        }
        self.seg = None;
        self.timeline.reset();
        self.hub.break_gop();
        self.status
            .recording(time::timestamp(self.last_end), false)
            .await;
    }

    /// A write failed: abandon the segment, end the run, enter the error state.
    async fn fail(&mut self, err: StoreError) {
        tracing::error!(error = %err, "recording failed; will retry at a later key frame");
        if err.is_disk_full() {
            self.shared.space_pressure.notify_one();
        }
        let now = self.last_received;
        self.retry_at = Some(now.add_ms(self.backoff_ms));
        self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS);
        if let Some(seg) = self.seg.take() {
            let committed = seg.record.fragments > 0;
            let vanished = matches!(err, StoreError::Vanished { .. });
            if vanished && committed {
                tracing::error!(file = %seg.record.file, seconds = (seg.record.end_90k - seg.record.start_90k) / time::TICKS_PER_SEC,
                    "recorded video was deleted by someone else; forgetting the segment");
            }
            let mut record = seg.record;
            record.state = SegmentState::Complete;
            let index = self.shared.index.clone();
            let file = seg.file;
            let span = tracing::Span::current();
            let res = tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                if let Some(f) = file {
                    f.abandon();
                }
                if vanished && committed {
                    index
                        .remove_segments(&[record.key()])
                        .map_err(|e| e.to_string())
                } else if committed {
                    index.put_segment(&record).map_err(|e| e.to_string())
                } else {
                    Ok(())
                }
            })
            .await;
            if let Ok(Err(e)) = res {
                self.index_failed(e);
            }
            self.builder = FragmentBuilder::for_params(&seg.params);
        }
        self.timeline.reset();
        self.hub.break_gop();
        self.status
            .recording(time::timestamp(self.last_end), false)
            .await;
        let reason = err.to_string();
        let frames = std::mem::take(&mut self.unreported_frames);
        // One update, so that watchers never see the error counted but the status not yet
        // changed.
        self.hub.state.send_modify(|s| {
            s.frames_received += frames;
            s.write_errors += 1;
            s.segment = None;
            s.committed_len = 0;
            s.last_error = Some((now, reason.clone()));
            s.status = RecorderStatus::Error { reason };
            s.since = now;
        });
    }

    fn index_failed(&mut self, reason: String) {
        tracing::error!(%reason, "index update failed; the segment files stay authoritative");
        self.hub.state.send_modify(|s| s.index_error = Some(reason));
    }
}

/// The instant at or after which a segment that started at `start` is cut: the first
/// instant of this camera's rotation phase at least half a segment after `start`.
pub(crate) fn rotation_instant(camera: &GbId, start: i64, seg_len: i64) -> i64 {
    let phase = (crate::util::fnv1a(camera.as_bytes()) % seg_len as u64) as i64;
    let x = start + seg_len / 2 - phase;
    let k = x.div_euclid(seg_len) + i64::from(x.rem_euclid(seg_len) != 0);
    phase + k * seg_len
}

#[cfg(test)]
mod tests;
