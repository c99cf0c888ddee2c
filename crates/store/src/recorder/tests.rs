//! Recorder tests with the real demo clips, a real index and ffprobe.

use std::sync::Arc;

use vigil_core::status::StatusKind;
use vigil_core::time::Interval;
use vigil_index::SegmentState;
use vigil_media::VideoFrame;

use super::rotation_instant;
use crate::live::LiveEvent;
use crate::state::RecorderStatus;
use crate::test_util::{cam, register, take, Harness, T0};
use crate::testing::{ffprobe, Clip, ClipFeed};
use crate::{scan, time, SourceEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_contiguous_self_contained_segments() {
    let h = Harness::new();
    let camera = cam(1);
    let clip = Clip::h264_720p();
    let mut feed = ClipFeed::new(&clip, T0, 12_345);
    // 15 s of video: segments of ~4 s (cut at 1 s key frames, staggered phase).
    let state = h.record(camera, take(&mut feed, 375)).await;
    assert_eq!(state.status.code(), "idle");
    assert_eq!(state.frames_recorded, 375);
    assert_eq!(state.write_errors, 0);

    let segs = h.segments(&camera);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    assert_eq!(segs[0].start_90k, time::ticks(T0));
    let end = time::ticks(T0) + 375 * 3600;
    assert_eq!(segs.last().unwrap().end_90k, end);
    for w in segs.windows(2) {
        assert_eq!(w[0].end_90k, w[1].start_90k, "segments are contiguous");
    }
    let total: u32 = segs.iter().map(|s| s.frames).sum();
    assert_eq!(total, 375);
    for s in &segs {
        assert_eq!(s.state, SegmentState::Complete);
        assert_eq!((s.stream.width, s.stream.height), (1280, 720));
        let path = h.path_of(s);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), s.len);
        // Self-contained: ffprobe decodes every frame of the file on its own.
        let p = ffprobe(&path);
        assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 1280, 720));
        assert_eq!(p.frames, u64::from(s.frames), "{}", path.display());
        // Wall clock from the file alone.
        let file = std::fs::File::open(&path).unwrap();
        let scanned = scan::scan(&file, s.len, 0).unwrap();
        assert_eq!(scanned.problem, None);
        assert_eq!(scanned.fragments[0].wall_90k, s.start_90k);
        assert_eq!(scanned.end_90k(), Some(s.end_90k));
        assert!(scanned
            .fragments
            .iter()
            .all(|f| f.first_is_sync && f.samples == 25));
    }
    // Segments (except the first and last) cover the 4 s target.
    for s in &segs[1..segs.len() - 1] {
        assert_eq!(s.end_90k - s.start_90k, 4 * 90_000);
    }
}

#[test]
fn rotation_is_staggered_per_camera_and_at_least_half_a_segment_after_the_start() {
    let len = 60 * 90_000;
    let start = time::ticks(T0) + 17;
    let phases: std::collections::BTreeSet<i64> = (1..50)
        .map(|n| rotation_instant(&cam(n), start, len) % len)
        .collect();
    assert!(phases.len() > 40, "phases should spread: {}", phases.len());
    for n in 1..50 {
        let r = rotation_instant(&cam(n), start, len);
        assert!(r >= start + len / 2 && r < start + len / 2 + len, "{n}");
        // The same phase for every segment of a camera.
        assert_eq!(rotation_instant(&cam(n), r, len), r + len);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interruption_ends_the_interval_and_the_next_key_frame_starts_a_new_segment() {
    let h = Harness::with(|c| c.segment_duration = std::time::Duration::from_secs(60));
    let camera = cam(2);
    register(h.index(), camera);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    let mut events = take(&mut feed, 60); // 2.4 s: ends mid-GOP
    let cut_at = feed.now();
    events.push(SourceEvent::Interrupted {
        at: cut_at.add_ms(500),
        reason: "camera closed the RTSP session".into(),
    });
    feed.skip(10 * 90_000);
    // Resume mid-GOP: 15 frames before the next key frame are dropped.
    events.extend(take(&mut feed, 50));
    let state = h.record(camera, events).await;
    assert_eq!(state.frames_recorded, 60 + 35);

    let segs = h.segments(&camera);
    assert_eq!(segs.len(), 2);
    assert_eq!(
        segs[0].end_90k,
        time::ticks(cut_at),
        "the last fragment closes at the last frame's end"
    );
    assert_eq!(segs[0].frames, 60);
    assert_eq!(segs[1].frames, 35);
    let resumed = time::ticks(T0) + (60 + 250 + 15) * 3600;
    assert_eq!(segs[1].start_90k, resumed);

    let rec = h.history(&camera, StatusKind::Recording);
    assert_eq!(
        rec,
        vec![
            Interval::new(T0, cut_at).unwrap(),
            Interval::new(time::timestamp(resumed), time::timestamp(segs[1].end_90k)).unwrap(),
        ]
    );
    // The listing shows the two runs and the gap between them.
    let range = Interval::new(T0.sub_ms(1000), T0.add_ms(20_000)).unwrap();
    let list = h.store.recordings(&camera, &range).unwrap();
    let runs: Vec<_> = list
        .runs
        .iter()
        .map(|r| (r.start, r.end, r.frames))
        .collect();
    assert_eq!(
        runs,
        vec![
            (T0, cut_at, 60),
            (
                time::timestamp(resumed),
                time::timestamp(segs[1].end_90k),
                35
            )
        ]
    );
    assert_eq!(list.gaps.len(), 3);
    assert_eq!(
        list.gaps[1],
        Interval::new(cut_at, time::timestamp(resumed)).unwrap()
    );
    assert_eq!(list.recorded_ms, (60 + 35) * 40);
    let up = h.history(&camera, StatusKind::Upload);
    assert_eq!(up.len(), 2);
    assert_eq!(up[0], Interval::new(T0, cut_at.add_ms(500)).unwrap());
    // Frames arrived from the first frame after the interruption, key or not.
    assert_eq!(up[1].start(), time::timestamp(time::ticks(T0) + 310 * 3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_key_frame_is_visible_in_the_state() {
    let h = Harness::new();
    let camera = cam(3);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    take(&mut feed, 5);
    let (tx, handle) = h.store.recorder_channel(camera, 16).unwrap();
    let mut watch = h.store.watch_recorder(&camera);
    for ev in take(&mut feed, 3) {
        tx.send(ev).await.unwrap();
    }
    let state = watch
        .wait_for(|s| s.status == RecorderStatus::WaitingForKeyFrame)
        .await
        .unwrap()
        .clone();
    assert_eq!(state.since, time::timestamp(time::ticks(T0) + 5 * 3600));
    for ev in take(&mut feed, 60) {
        tx.send(ev).await.unwrap();
    }
    watch.wait_for(|s| s.fragments_written >= 1).await.unwrap();
    assert_eq!(
        h.store.recorder_state(&camera).status,
        RecorderStatus::Recording
    );
    drop(tx);
    handle.join().await;
    assert_eq!(
        h.segments(&camera)[0].start_90k,
        time::ticks(T0) + 25 * 3600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codec_change_starts_a_new_segment_with_the_new_parameters() {
    let h = Harness::new();
    let camera = cam(4);
    let a = Clip::h264_720p();
    let b = Clip::h265_720p();
    let mut fa = ClipFeed::new(&a, T0, 0);
    let mut events = take(&mut fa, 50);
    let mut fb = ClipFeed::new(&b, fa.now(), fa.pts);
    events.extend(take(&mut fb, 50));
    h.record(camera, events).await;
    let segs = h.segments(&camera);
    assert_eq!(segs.len(), 2);
    assert_eq!(
        segs[0].end_90k, segs[1].start_90k,
        "no gap at a parameter change"
    );
    assert!(segs[0].stream.codec.starts_with("avc1"));
    assert!(segs[1].stream.codec.starts_with("hvc1") || segs[1].stream.codec.starts_with("hev1"));
    assert_ne!(segs[0].stream.params_id, segs[1].stream.params_id);
    assert_eq!(ffprobe(&h.path_of(&segs[1])).codec, "hevc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_clock_jumps_keep_store_time_monotonic_within_one_segment() {
    let h = Harness::with(|c| c.segment_duration = std::time::Duration::from_secs(60));
    let camera = cam(5);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 900_000_000);
    let mut events = take(&mut feed, 40);
    // The camera's clock resets to zero mid-GOP, later jumps an hour ahead.
    feed.pts = 0;
    events.extend(take(&mut feed, 40));
    feed.pts += 3600 * 90_000;
    events.extend(take(&mut feed, 45));
    let state = h.record(camera, events).await;
    assert_eq!(state.clock_discontinuities, 2);
    let segs = h.segments(&camera);
    assert_eq!(
        segs.len(),
        1,
        "a camera clock jump does not cut the segment"
    );
    assert_eq!(segs[0].end_90k - segs[0].start_90k, 125 * 3600);
    let p = ffprobe(&h.path_of(&segs[0]));
    assert_eq!(p.frames, 125);
    assert!((p.duration - 5.0).abs() < 0.01, "{}", p.duration);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_subscribers_start_at_a_key_frame_and_get_a_playable_stream() {
    let h = Harness::new();
    let camera = cam(6);
    let clip = Clip::h264_720p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    let mut early = h.store.live(&camera);
    let (tx, handle) = h.store.recorder_channel(camera, 16).unwrap();
    for ev in take(&mut feed, 60) {
        tx.send(ev).await.unwrap();
    }
    // A late subscriber gets the GOP in progress replayed from its key frame.
    let mut watch = h.store.watch_recorder(&camera);
    watch.wait_for(|s| s.fragments_written >= 2).await.unwrap();
    let mut late = h.store.live(&camera);
    for ev in take(&mut feed, 40) {
        tx.send(ev).await.unwrap();
    }
    drop(tx);
    handle.join().await;

    let mut bytes = Vec::new();
    let mut fragments = 0;
    let first = early.next().await.unwrap();
    assert!(matches!(first, LiveEvent::Init { .. }));
    bytes.extend_from_slice(&first.bytes());
    // 100 frames = 4 GOPs; the last is cut at the end of the feed.
    while fragments < 4 {
        match early.next().await.unwrap() {
            LiveEvent::Fragment(f) => {
                assert!(f.starts_with_key_frame());
                bytes.extend_from_slice(&f.bytes());
                fragments += 1;
            }
            LiveEvent::Init { .. } => panic!("parameters did not change"),
        }
    }
    let path = h.dir.path().join("live.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let p = ffprobe(&path);
    assert_eq!(p.frames, 100);
    assert!((p.duration - 4.0).abs() < 0.01, "{}", p.duration);

    let LiveEvent::Init { .. } = late.next().await.unwrap() else {
        panic!("a subscription starts with an init segment");
    };
    let LiveEvent::Fragment(f) = late.next().await.unwrap() else {
        panic!("then a fragment");
    };
    assert!(f.starts_with_key_frame());
    // The last complete GOP when it subscribed (the next one was still being collected).
    assert_eq!(f.start(), T0.add_ms(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_key_frame_decodes_as_a_picture() {
    let h = Harness::new();
    let camera = cam(7);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    h.record(camera, take(&mut feed, 30)).await;
    let k = h.store.latest_key_frame(&camera).expect("a key frame");
    assert_eq!(k.received_at, T0.add_ms(1000));
    let annexb = k.annexb(&camera).unwrap();
    assert_eq!(&annexb[..4], &[0, 0, 0, 1]);
    let out = h.dir.path().join("snap.jpg");
    let mut child = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "h264",
            "-i",
            "-",
            "-frames:v",
            "1",
            "-y",
        ])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg is required for this test; install it with scripts/ensure-test-deps");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&annexb).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_segment_is_an_error_state_and_recording_resumes_in_a_new_file() {
    let h = Harness::with(|c| c.segment_duration = std::time::Duration::from_secs(60));
    let camera = cam(8);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    let (tx, handle) = h.store.recorder_channel(camera, 16).unwrap();
    let mut watch = h.store.watch_recorder(&camera);
    for ev in take(&mut feed, 60) {
        tx.send(ev).await.unwrap();
    }
    let s = watch
        .wait_for(|s| s.fragments_written >= 2)
        .await
        .unwrap()
        .clone();
    let victim = s.segment.clone().unwrap();
    std::fs::remove_file(&victim).unwrap();
    // The next fragment write (at frame 75) notices.
    for ev in take(&mut feed, 20) {
        tx.send(ev).await.unwrap();
    }
    let err = watch
        .wait_for(|s| s.write_errors >= 1)
        .await
        .unwrap()
        .clone();
    let RecorderStatus::Error { reason } = &err.status else {
        panic!("expected an error state, got {:?}", err.status);
    };
    assert!(
        reason.contains("vanished") && reason.contains(&victim.display().to_string()),
        "{reason}"
    );
    assert_eq!(err.since, T0.add_ms(3000));
    // Frames within the 1 s backoff are dropped; recording resumes at a later key frame in a
    // new file, and the error stays visible.
    for ev in take(&mut feed, 120) {
        tx.send(ev).await.unwrap();
    }
    watch
        .wait_for(|s| s.status == RecorderStatus::Recording && s.segment.as_ref() != Some(&victim))
        .await
        .unwrap();
    assert!(h.store.recorder_state(&camera).last_error.is_some());
    drop(tx);
    handle.join().await;
    // The vanished segment is forgotten; the new one holds what came after the backoff.
    let segs = h.segments(&camera);
    assert_eq!(segs.len(), 1, "{segs:#?}");
    assert_eq!(segs[0].start_90k, time::ticks(T0) + 100 * 3600);
    assert_eq!(ffprobe(&h.path_of(&segs[0])).frames, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_recorder_for_the_same_camera_is_refused() {
    let h = Harness::new();
    let camera = cam(9);
    let (_tx, handle) = h.store.recorder_channel(camera, 4).unwrap();
    let err = h.store.recorder_channel(camera, 4).unwrap_err();
    assert!(
        err.to_string().contains("already has a running recorder"),
        "{err}"
    );
    handle.stop().await;
    // Stopping frees the camera.
    let (_tx, handle) = h.store.recorder_channel(camera, 4).unwrap();
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_gops_are_split_into_bounded_fragments() {
    let h = Harness::with(|c| c.max_fragment_duration = std::time::Duration::from_millis(400));
    let camera = cam(10);
    let clip = Clip::h264_360p();
    let params = clip.params.clone();
    // A synthetic 3 s GOP: one key frame then 74 P frames.
    let events: Vec<SourceEvent> = (0..75)
        .map(|i| SourceEvent::Frame {
            params: Arc::clone(&params),
            frame: VideoFrame::new(
                i * 3600,
                i == 0,
                clip.frames[(i % 25) as usize].data.clone(),
            ),
            received_at: time::timestamp(time::ticks(T0) + i * 3600),
        })
        .collect();
    h.record(camera, events).await;
    let segs = h.segments(&camera);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].fragments, 8, "75 frames in fragments of at most 10");
    assert_eq!(segs[0].frames, 75);
    let file = std::fs::File::open(h.path_of(&segs[0])).unwrap();
    let scanned = scan::scan(&file, segs[0].len, 0).unwrap();
    assert!(scanned.fragments[0].first_is_sync);
    assert!(scanned.fragments[1..]
        .iter()
        .all(|f| !f.first_is_sync && f.samples <= 10));
}
