//! Listing a camera's recordings over a time range: runs of continuous video and the gaps
//! between them (from the catalogue alone, no file is opened).

use vigil_core::id::GbId;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::{SegmentRecord, SegmentState, StreamInfo};

use crate::error::StoreError;
use crate::store::Store;
use crate::time;

/// Most segments a listing reads (about 700 days of 60 s segments).
const MAX_SEGMENTS: usize = 1 << 20;

/// A stretch of continuous video with one set of codec parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRun {
    /// Start, clipped to the requested range.
    pub start: Timestamp,
    /// End (exclusive), clipped to the requested range.
    pub end: Timestamp,
    /// What the camera sent.
    pub stream: StreamInfo,
    /// Bytes of the segments making up the run (whole segments, not clipped).
    pub bytes: u64,
    /// Frames in those segments.
    pub frames: u64,
    /// Number of segments.
    pub segments: usize,
    /// Whether the run's last segment is still being written.
    pub in_progress: bool,
}

/// A camera's recordings over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingList {
    /// The requested range.
    pub range: Interval,
    /// Runs in time order. A run ends where video stops or the codec parameters change.
    pub runs: Vec<RecordingRun>,
    /// The parts of the range without video, in time order.
    pub gaps: Vec<Interval>,
    /// Milliseconds of video inside the range.
    pub recorded_ms: i64,
}

impl Store {
    /// The recordings of `camera` overlapping `range` (an open range ends now). Reads the
    /// index only.
    pub fn recordings(&self, camera: &GbId, range: &Interval) -> Result<RecordingList, StoreError> {
        let records = self
            .index()
            .segments(
                camera,
                time::ticks(range.start()),
                time::ticks(range.end()),
                MAX_SEGMENTS,
            )
            .map_err(|e| StoreError::index(*camera, e))?;
        Ok(build_list(range, &records))
    }
}

/// Groups segments into runs and computes the gaps (pure, for testing).
pub(crate) fn build_list(range: &Interval, records: &[SegmentRecord]) -> RecordingList {
    let mut runs: Vec<RecordingRun> = Vec::new();
    let mut last_end_90k = i64::MIN;
    for r in records
        .iter()
        .filter(|r| r.state != SegmentState::Deleting && r.end_90k > r.start_90k)
    {
        let touches = r.start_90k <= last_end_90k + time::TICKS_PER_MS;
        let start = time::timestamp(r.start_90k).max(range.start());
        let end = time::timestamp_ceil(r.end_90k).min(range.end());
        match runs.last_mut() {
            Some(run) if touches && run.stream.params_id == r.stream.params_id => {
                run.end = run.end.max(end);
                run.bytes += r.len;
                run.frames += u64::from(r.frames);
                run.segments += 1;
                run.in_progress = r.state == SegmentState::Writing;
            }
            _ => runs.push(RecordingRun {
                start,
                end,
                stream: r.stream.clone(),
                bytes: r.len,
                frames: u64::from(r.frames),
                segments: 1,
                in_progress: r.state == SegmentState::Writing,
            }),
        }
        last_end_90k = last_end_90k.max(r.end_90k);
    }
    runs.retain(|r| r.end > r.start);
    let mut gaps = Vec::new();
    let mut cursor = range.start();
    let mut recorded_ms = 0;
    for run in &runs {
        if run.start > cursor {
            if let Ok(g) = Interval::new(cursor, run.start) {
                gaps.push(g);
            }
        }
        let from = run.start.max(cursor);
        if run.end > from {
            recorded_ms += run.end.ms_since(from);
        }
        cursor = cursor.max(run.end);
    }
    if cursor < range.end() && !range.is_open() {
        if let Ok(g) = Interval::new(cursor, range.end()) {
            gaps.push(g);
        }
    }
    RecordingList {
        range: *range,
        runs,
        gaps,
        recorded_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::id::GbId;

    fn rec(start_s: i64, end_s: i64, params: u64, state: SegmentState) -> SegmentRecord {
        SegmentRecord {
            camera: GbId::parse("34010000001320000001").unwrap(),
            start_90k: start_s * 90_000,
            end_90k: end_s * 90_000,
            file: String::new(),
            len: 100,
            fragments: 1,
            frames: 25,
            stream: StreamInfo {
                codec: "avc1.64001f".into(),
                width: 1280,
                height: 720,
                frame_rate: Some((25, 1)),
                params_id: params,
            },
            state,
        }
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn runs_split_at_gaps_and_parameter_changes_and_gaps_fill_the_rest() {
        use SegmentState::*;
        let records = [
            rec(10, 70, 1, Complete),
            rec(70, 130, 1, Complete),
            rec(130, 150, 2, Complete), // parameters changed, no gap
            rec(200, 260, 2, Deleting), // being deleted: not listed
            rec(300, 320, 2, Writing),
        ];
        let range = Interval::new(ts(0), ts(400)).unwrap();
        let l = build_list(&range, &records);
        let spans: Vec<(Timestamp, Timestamp, usize)> = l
            .runs
            .iter()
            .map(|r| (r.start, r.end, r.segments))
            .collect();
        assert_eq!(
            spans,
            vec![
                (ts(10), ts(130), 2),
                (ts(130), ts(150), 1),
                (ts(300), ts(320), 1)
            ]
        );
        assert!(l.runs[2].in_progress);
        assert_eq!(
            l.gaps,
            vec![
                Interval::new(ts(0), ts(10)).unwrap(),
                Interval::new(ts(150), ts(300)).unwrap(),
                Interval::new(ts(320), ts(400)).unwrap(),
            ]
        );
        assert_eq!(l.recorded_ms, 160_000);
        // Clipping to a range inside a run.
        let inner = Interval::new(ts(20), ts(100)).unwrap();
        let l = build_list(&inner, &records[..2]);
        assert_eq!(l.runs.len(), 1);
        assert_eq!((l.runs[0].start, l.runs[0].end), (ts(20), ts(100)));
        assert!(l.gaps.is_empty());
        assert_eq!(l.recorded_ms, 80_000);
    }
}
