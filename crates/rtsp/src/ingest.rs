//! Turning depacketized frames into [`SourceEvent`]s, without I/O: codec parameters shared
//! while unchanged, the key-frame gate, frame validation, counters, rates and clock jumps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use vigil_core::time::Timestamp;
use vigil_media::nal::AvccNals;
use vigil_media::{VideoFrame, VideoParameters};
use vigil_store::SourceEvent;

use crate::error::PullError;

/// One access unit as the RTSP client handed it over.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame {
    /// 90 kHz, extended to 64 bits by the client.
    pub pts: i64,
    /// 4-byte length-prefixed NAL units.
    pub data: Bytes,
    /// RTP packets lost just before this frame.
    pub loss: u16,
}

/// A camera clock jump: the media timestamps moved by something other than the time that
/// passed between the frames' arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockJump {
    /// When the frame after the jump arrived.
    pub at: Timestamp,
    /// How far the camera's clock moved beyond (positive) or behind (negative) the
    /// wall-clock time between the two frames, in milliseconds.
    pub delta_ms: i64,
}

/// Counters of one session (one RTSP connection), reset on reconnect.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionCounters {
    /// Frames delivered (after the first key frame).
    pub frames: u64,
    pub key_frames: u64,
    /// Bytes of delivered frames (length prefixes included).
    pub bytes: u64,
    /// Frames dropped because no key frame had arrived yet in this session.
    pub dropped_before_key_frame: u64,
    /// Frames dropped because the consumer was not keeping up (see the crate docs).
    pub dropped_slow_consumer: u64,
    /// RTP packets the client reported lost (UDP; or a camera skipping sequence numbers).
    pub rtp_packets_lost: u64,
    pub clock_jumps: u64,
    pub last_clock_jump: Option<ClockJump>,
}

/// Policy `ClockJumpDetection`: between consecutive frames, a camera clock jump is a
/// timestamp step that runs ahead of the arrival times by more than `threshold`, or any
/// backward step larger than `threshold`. Network delay only ever makes arrivals later (and
/// then bunched), never timestamps larger, so delays and bursts are not mistaken for jumps;
/// B-frame reordering steps back by a few frames only, well under a second.
#[derive(Debug, Clone)]
pub(crate) struct ClockJumpDetector {
    threshold_ms: i64,
    last: Option<(i64, Instant)>,
}

impl ClockJumpDetector {
    pub(crate) fn new(threshold: Duration) -> Self {
        Self {
            threshold_ms: i64::try_from(threshold.as_millis()).unwrap_or(i64::MAX),
            last: None,
        }
    }

    /// The jump in milliseconds, if this frame follows one.
    pub(crate) fn observe(&mut self, pts: i64, received: Instant) -> Option<i64> {
        let previous = self.last.replace((pts, received));
        let (last_pts, last_received) = previous?;
        let media_ms = pts.saturating_sub(last_pts).saturating_mul(1000) / 90_000;
        let wall_ms = i64::try_from(
            received
                .saturating_duration_since(last_received)
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let ahead = media_ms.saturating_sub(wall_ms);
        if ahead > self.threshold_ms || media_ms < -self.threshold_ms {
            Some(if media_ms < 0 { media_ms } else { ahead })
        } else {
            None
        }
    }
}

/// Rates over the last complete window (about one state interval).
#[derive(Debug, Clone, Default)]
struct RateWindow {
    started: Option<Instant>,
    bytes: u64,
    frames: u64,
    first_pts: i64,
    max_pts: i64,
    bitrate_bps: Option<u64>,
    fps: Option<f64>,
}

impl RateWindow {
    fn add(&mut self, now: Instant, interval: Duration, pts: i64, bytes: usize) {
        let Some(started) = self.started else {
            *self = RateWindow {
                started: Some(now),
                first_pts: pts,
                max_pts: pts,
                bitrate_bps: self.bitrate_bps,
                fps: self.fps,
                ..RateWindow::default()
            };
            return;
        };
        self.bytes += bytes as u64;
        self.frames += 1;
        self.max_pts = self.max_pts.max(pts);
        let elapsed = now.saturating_duration_since(started);
        if elapsed >= interval {
            self.bitrate_bps = Some((self.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64);
            let span = self.max_pts - self.first_pts;
            self.fps = (span > 0).then(|| self.frames as f64 * 90_000.0 / span as f64);
            // The frame that closes this window opens the next one.
            *self = RateWindow {
                started: Some(now),
                first_pts: pts,
                max_pts: pts,
                bitrate_bps: self.bitrate_bps,
                fps: self.fps,
                ..RateWindow::default()
            };
        }
    }
}

/// Facts for measuring a stream over its whole duration (the access test).
///
/// The frame rate is measured over the steps between consecutive frames that move forward by
/// at most [`Measure::MAX_STEP`]: a camera (or a server re-syncing a shared pipeline when a
/// second client joins) may step its clock back or forward, and a span from the smallest to
/// the largest timestamp would then count frames over the wrong length of media time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measure {
    /// The previous frame's timestamp.
    pub last_pts: Option<i64>,
    /// Sum of the forward steps between consecutive frames, 90 kHz ticks.
    pub steady_ticks: i64,
    /// Number of those steps.
    pub steady_steps: u64,
    /// Index (in delivered frames) of the last two key frames.
    pub last_keys: (Option<u64>, Option<u64>),
}

impl Measure {
    /// Longest step between consecutive frames that counts as steady (1 s: a frame rate of 1).
    pub const MAX_STEP: i64 = 90_000;

    fn observe(&mut self, pts: i64) {
        if let Some(last) = self.last_pts {
            let step = pts - last;
            if step > 0 && step <= Self::MAX_STEP {
                self.steady_ticks += step;
                self.steady_steps += 1;
            }
        }
        self.last_pts = Some(pts);
    }
}

/// The per-session frame pipeline.
#[derive(Debug)]
pub(crate) struct Ingest {
    params: Option<Arc<VideoParameters>>,
    seen_key: bool,
    clock: ClockJumpDetector,
    window: RateWindow,
    rate_interval: Duration,
    pub(crate) counters: SessionCounters,
    pub(crate) measure: Measure,
}

impl Ingest {
    pub(crate) fn new(clock_jump_threshold: Duration, rate_interval: Duration) -> Self {
        Self {
            params: None,
            seen_key: false,
            clock: ClockJumpDetector::new(clock_jump_threshold),
            window: RateWindow::default(),
            rate_interval,
            counters: SessionCounters::default(),
            measure: Measure::default(),
        }
    }

    /// Takes the client's MP4 sample entry after a parameter change. The parameters are
    /// parsed by `vigil-media`; when they equal the current ones (a camera repeating its
    /// SPS/PPS), the current `Arc` stays, so the store sees no change.
    pub(crate) fn set_sample_entry(&mut self, entry: Bytes) -> Result<(), PullError> {
        let params = VideoParameters::from_sample_entry(entry).map_err(|e| PullError::BadData {
            detail: format!("unusable codec parameters (SPS/PPS): {e}"),
        })?;
        if self.params.as_deref() != Some(&params) {
            self.params = Some(Arc::new(params));
        }
        Ok(())
    }

    pub(crate) fn params(&self) -> Option<&Arc<VideoParameters>> {
        self.params.as_ref()
    }

    pub(crate) fn seen_key(&self) -> bool {
        self.seen_key
    }

    /// The bit rate and frame rate of the last complete window.
    pub(crate) fn rates(&self) -> (Option<u64>, Option<f64>) {
        (self.window.bitrate_bps, self.window.fps)
    }

    /// Handles one frame received at `received_at` (wall clock) / `received` (monotonic).
    /// Returns the event to deliver, or `None` when the frame is dropped before the first key
    /// frame. An access unit whose length prefixes do not add up is bad data.
    pub(crate) fn frame(
        &mut self,
        raw: RawFrame,
        received_at: Timestamp,
        received: Instant,
    ) -> Result<Option<SourceEvent>, PullError> {
        let Some(params) = &self.params else {
            return Err(PullError::BadData {
                detail: "a frame arrived before any codec parameters".into(),
            });
        };
        check_nal_units(&raw.data)?;
        self.counters.rtp_packets_lost += u64::from(raw.loss);
        // Policy `IrapIsKey`: key frames are what vigil-media says they are (H.264 IDR,
        // H.265 IRAP including CRA), not the client's flag: retina flags only IDR for H.265,
        // and cameras with open GOPs send CRA at every GOP after the first.
        let is_key = params.codec().is_key_frame(&raw.data);
        if !self.seen_key {
            if !is_key {
                // Policy `StartAtKeyFrame`: nothing before the first key frame of a session
                // can be decoded, so nothing before it is recorded.
                self.counters.dropped_before_key_frame += 1;
                return Ok(None);
            }
            self.seen_key = true;
        }
        if let Some(delta_ms) = self.clock.observe(raw.pts, received) {
            self.counters.clock_jumps += 1;
            self.counters.last_clock_jump = Some(ClockJump {
                at: received_at,
                delta_ms,
            });
            tracing::info!(
                delta_ms,
                "camera clock jump observed (informational: the store re-anchors time)"
            );
        }
        let index = self.counters.frames;
        self.counters.frames += 1;
        self.counters.bytes += raw.data.len() as u64;
        if is_key {
            self.counters.key_frames += 1;
            self.measure.last_keys = (self.measure.last_keys.1, Some(index));
        }
        self.measure.observe(raw.pts);
        self.window
            .add(received, self.rate_interval, raw.pts, raw.data.len());
        Ok(Some(SourceEvent::Frame {
            params: params.clone(),
            frame: VideoFrame::new(raw.pts, is_key, raw.data),
            received_at,
        }))
    }
}

/// Checks that the 4-byte length prefixes tile the access unit exactly.
fn check_nal_units(data: &[u8]) -> Result<(), PullError> {
    let mut count = 0usize;
    for nal in AvccNals::new(data) {
        match nal {
            Ok(n) if !n.is_empty() => count += 1,
            Ok(_) => {
                return Err(PullError::BadData {
                    detail: "an access unit holds an empty NAL unit".into(),
                })
            }
            Err(e) => {
                return Err(PullError::BadData {
                    detail: format!("truncated NAL unit: {e}"),
                })
            }
        }
    }
    if count == 0 {
        return Err(PullError::BadData {
            detail: "an access unit holds no NAL unit".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vigil_media::fmp4::init_segment;

    /// The sample entry of the bundled 720p H.264 clip, as an RTSP client would build it.
    pub(crate) fn sample_entry() -> Bytes {
        let clip = vigil_sim::rtsp::DemoClip::H264_720p.load().unwrap();
        clip.params.sample_entry().clone()
    }

    fn avcc(nals: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out.into()
    }

    const IDR: &[u8] = &[0x65, 0x88, 0x84];
    const P: &[u8] = &[0x41, 0x9a, 0x02];

    fn raw(pts: i64, nal: &[u8]) -> RawFrame {
        RawFrame {
            pts,
            data: avcc(&[nal]),
            loss: 0,
        }
    }

    fn ingest() -> Ingest {
        let mut i = Ingest::new(Duration::from_secs(1), Duration::from_secs(1));
        i.set_sample_entry(sample_entry()).unwrap();
        i
    }

    #[test]
    fn frames_before_the_first_key_frame_are_dropped_and_counted() {
        let mut i = ingest();
        let t0 = Instant::now();
        let at = Timestamp::from_millis(1_000);
        assert!(i.frame(raw(0, P), at, t0).unwrap().is_none());
        assert!(i.frame(raw(3600, P), at, t0).unwrap().is_none());
        let Some(SourceEvent::Frame {
            frame, received_at, ..
        }) = i.frame(raw(7200, IDR), at, t0).unwrap()
        else {
            panic!("the key frame is delivered");
        };
        assert!(frame.is_key);
        assert_eq!(frame.pts, 7200);
        assert_eq!(received_at, at);
        assert!(i.frame(raw(10800, P), at, t0).unwrap().is_some());
        assert_eq!(i.counters.dropped_before_key_frame, 2);
        assert_eq!(i.counters.frames, 2);
        assert_eq!(i.counters.key_frames, 1);
    }

    #[test]
    fn parameters_are_shared_while_unchanged() {
        let mut i = ingest();
        let first = i.params().unwrap().clone();
        // The camera repeats the same SPS/PPS: same Arc.
        i.set_sample_entry(sample_entry()).unwrap();
        assert!(Arc::ptr_eq(&first, i.params().unwrap()));
        let t = Instant::now();
        let at = Timestamp::from_millis(0);
        let a = i.frame(raw(0, IDR), at, t).unwrap();
        let b = i.frame(raw(3600, P), at, t).unwrap();
        match (a, b) {
            (
                Some(SourceEvent::Frame { params: pa, .. }),
                Some(SourceEvent::Frame { params: pb, .. }),
            ) => assert!(Arc::ptr_eq(&pa, &pb)),
            other => panic!("{other:?}"),
        }
        // A different stream (the 360p clip): a new Arc.
        let other = vigil_sim::rtsp::DemoClip::H264_360p.load().unwrap();
        i.set_sample_entry(other.params.sample_entry().clone())
            .unwrap();
        assert!(!Arc::ptr_eq(&first, i.params().unwrap()));
        assert_eq!(i.params().unwrap().height(), 360);
        let _ = init_segment(i.params().unwrap());
    }

    #[test]
    fn unparsable_parameters_are_bad_data() {
        let mut i = Ingest::new(Duration::from_secs(1), Duration::from_secs(1));
        let err = i
            .set_sample_entry(Bytes::from_static(b"\0\0\0\x10mp4vxxxxxxxx"))
            .unwrap_err();
        assert!(matches!(err, PullError::BadData { .. }), "{err}");
        // And a frame without parameters is refused rather than delivered.
        let err = i
            .frame(raw(0, IDR), Timestamp::EPOCH, Instant::now())
            .unwrap_err();
        assert!(matches!(err, PullError::BadData { .. }));
    }

    #[test]
    fn truncated_nal_units_are_bad_data() {
        let mut i = ingest();
        let t = Instant::now();
        let bad = RawFrame {
            pts: 0,
            data: Bytes::from_static(&[0, 0, 0, 9, 0x65, 0x88]),
            loss: 0,
        };
        let err = i.frame(bad, Timestamp::EPOCH, t).unwrap_err();
        assert!(err.to_string().contains("truncated NAL unit"), "{err}");
        for data in [&[][..], &[0, 0, 0, 0][..]] {
            let frame = RawFrame {
                pts: 0,
                data: Bytes::copy_from_slice(data),
                loss: 0,
            };
            assert!(i.frame(frame, Timestamp::EPOCH, t).is_err());
        }
    }

    #[test]
    fn h265_cra_frames_are_key_frames() {
        let clip = vigil_sim::rtsp::DemoClip::H265_720p.load().unwrap();
        let mut i = Ingest::new(Duration::from_secs(1), Duration::from_secs(1));
        i.set_sample_entry(clip.params.sample_entry().clone())
            .unwrap();
        // A CRA slice (type 21): header 0x2a 0x01, first_slice_segment_in_pic_flag set.
        let cra = raw(0, &[0x2a, 0x01, 0x80, 0x11]);
        let Some(SourceEvent::Frame { frame, .. }) =
            i.frame(cra, Timestamp::EPOCH, Instant::now()).unwrap()
        else {
            panic!("a CRA opens the stream");
        };
        assert!(frame.is_key);
    }

    #[test]
    fn clock_jumps_are_detected_but_delays_and_bursts_are_not() {
        let mut d = ClockJumpDetector::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(d.observe(0, ms(0)), None);
        assert_eq!(d.observe(3600, ms(40)), None);
        // Network hiccup: 5 s without frames, then a burst.
        assert_eq!(d.observe(7200, ms(5040)), None);
        assert_eq!(d.observe(10800, ms(5041)), None);
        assert_eq!(d.observe(14400, ms(5042)), None);
        // B-frame reordering: a small step back.
        assert_eq!(d.observe(7200, ms(5080)), None);
        // The camera's clock resets forward by an hour…
        assert_eq!(
            d.observe(7200 + 3600 * 90_000, ms(5120)),
            Some(3_600_000 - 40)
        );
        // …and back.
        assert_eq!(d.observe(7200, ms(5160)), Some(-3_600_000));
    }

    #[test]
    fn clock_jumps_are_counted_and_frames_keep_flowing() {
        let mut i = ingest();
        let t0 = Instant::now();
        let at = Timestamp::from_millis(42);
        i.frame(raw(0, IDR), at, t0).unwrap();
        let after = i
            .frame(raw(90_000 * 600, P), at, t0 + Duration::from_millis(40))
            .unwrap();
        assert!(after.is_some());
        assert_eq!(i.counters.clock_jumps, 1);
        assert_eq!(
            i.counters.last_clock_jump,
            Some(ClockJump {
                at,
                delta_ms: 600_000 - 40
            })
        );
    }

    #[test]
    fn rates_come_from_a_window() {
        let mut i = ingest();
        let t0 = Instant::now();
        let at = Timestamp::EPOCH;
        assert_eq!(i.rates(), (None, None));
        // 25 fps, 1000-byte frames (plus 4 bytes of length prefix… 3-byte NAL: 7 bytes).
        for n in 0..=25i64 {
            let nal = if n == 0 { IDR } else { P };
            i.frame(
                raw(n * 3600, nal),
                at,
                t0 + Duration::from_millis(n as u64 * 40),
            )
            .unwrap();
        }
        let (bps, fps) = i.rates();
        assert_eq!(fps, Some(25.0));
        // 25 frames of 7 bytes in one second.
        assert_eq!(bps, Some(25 * 7 * 8));
        assert_eq!(i.counters.bytes, 26 * 7);
    }

    #[test]
    fn rtp_loss_is_counted() {
        let mut i = ingest();
        let mut f = raw(0, IDR);
        f.loss = 3;
        i.frame(f, Timestamp::EPOCH, Instant::now()).unwrap();
        assert_eq!(i.counters.rtp_packets_lost, 3);
    }
}
