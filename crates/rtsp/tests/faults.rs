//! Fault handling against the simulated camera: stalls, disconnects, clock jumps, streams
//! without key frames, corrupt packets, refused connections, and a consumer that cannot keep
//! up.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_rtsp::{ErrorKind, PullerRegistry, PullerState, StopReason};
use vigil_sim::rtsp::{DemoClip, Fault};
use vigil_store::SourceEvent;

use support::*;

fn interrupted_reasons(events: &[SourceEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Interrupted { reason, .. } => Some(reason.as_str()),
            SourceEvent::Frame { .. } => None,
        })
        .collect()
}

/// Frames, then an interruption whose reason contains `reason`, then a key frame again.
async fn interrupts_and_recovers(fault: Fault, reason: &str, kind: ErrorKind) {
    let server = sim(DemoClip::H264_720p, fault).await;
    let (tx, mut rx) = mpsc::channel(256);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    // Record the error kinds the puller publishes (a retry state lasts ≥ 160 ms here).
    let mut state = handle.subscribe();
    let watcher = tokio::spawn(async move {
        let mut kinds = Vec::new();
        while state.changed().await.is_ok() {
            if let Some(e) = state.borrow_and_update().last_error() {
                kinds.push(e.kind());
            }
        }
        kinds
    });
    let events = collect(&mut rx, Duration::from_secs(30), |e| {
        let Some(cut) = e
            .iter()
            .position(|e| matches!(e, SourceEvent::Interrupted { .. }))
        else {
            return false;
        };
        key_frames(&e[cut..]) >= 1
    })
    .await;
    let cut = events
        .iter()
        .position(|e| matches!(e, SourceEvent::Interrupted { .. }))
        .unwrap();
    assert!(frames(&events[..cut]) >= 10, "{:?}", summary(&events));
    let reasons = interrupted_reasons(&events);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains(reason), "{reasons:?}");
    // The frame after the interruption starts a decodable stream.
    let SourceEvent::Frame { frame, .. } = &events[cut + 1] else {
        panic!("{:?}", summary(&events));
    };
    assert!(frame.is_key);
    // The recording ends at the last frame that arrived, not when the fault was noticed.
    let (SourceEvent::Frame { received_at, .. }, SourceEvent::Interrupted { at, .. }) =
        (&events[cut - 1], &events[cut])
    else {
        unreachable!()
    };
    assert_eq!(at, received_at);
    assert!(server.sessions() >= 2, "reconnected");
    handle.stop().await;
    let kinds = watcher.await.unwrap();
    assert_eq!(kinds.first(), Some(&kind), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_interrupts_and_reconnects() {
    interrupts_and_recovers(
        Fault::StallAfter(Duration::from_secs(1)),
        "stalled: no video frame for 2 s",
        ErrorKind::Stall,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_interrupts_and_reconnects() {
    interrupts_and_recovers(
        Fault::DisconnectAfter(Duration::from_secs(1)),
        "connection lost",
        ErrorKind::Disconnected,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_packet_is_bad_data_and_reconnects() {
    interrupts_and_recovers(
        Fault::CorruptAfter(Duration::from_secs(1)),
        "bad data from the camera",
        ErrorKind::BadData,
    )
    .await;
}

/// The error kinds a puller reports while retrying, watched from its state channel.
async fn first_error(fault: Fault) -> (PullerState, Vec<SourceEvent>) {
    let server = sim(DemoClip::H265_720p, fault).await;
    let (tx, mut rx) = mpsc::channel(256);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    let mut state = handle.subscribe();
    let failed = wait_state(&mut state, Duration::from_secs(20), "an error", |s| {
        s.last_error().is_some()
    })
    .await;
    handle.stop().await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (failed, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_state_names_the_cause() {
    let (state, _) = first_error(Fault::StallAfter(Duration::from_millis(500))).await;
    assert_eq!(state.last_error().map(|e| e.kind()), Some(ErrorKind::Stall));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_names_the_cause() {
    let (state, _) = first_error(Fault::CorruptAfter(Duration::from_millis(500))).await;
    let error = state.last_error().unwrap();
    assert_eq!(error.kind(), ErrorKind::BadData, "{error}");
    assert!(
        error.to_string().contains("FU"),
        "retina's reason is kept: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_nal_units_are_bad_data() {
    let (state, _) = first_error(Fault::TruncatedNalsAfter(Duration::from_millis(500))).await;
    let error = state.last_error().unwrap();
    assert_eq!(error.kind(), ErrorKind::BadData, "{error}");
    assert!(error.to_string().contains("FU"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sps_that_does_not_parse_is_bad_data() {
    for clip in [DemoClip::H264_720p, DemoClip::H265_720p] {
        let server = sim(clip, Fault::BadSps).await;
        let (tx, _rx) = mpsc::channel(256);
        let handle = vigil_rtsp::spawn(
            camera(1),
            source(&server.url("/cam")),
            Arc::new(quick_options()),
            tx,
            CancellationToken::new(),
        );
        let mut state = handle.subscribe();
        let failed = wait_state(&mut state, Duration::from_secs(20), "an error", |s| {
            s.last_error().is_some()
        })
        .await;
        handle.stop().await;
        let error = failed.last_error().unwrap();
        assert_eq!(error.kind(), ErrorKind::BadData, "{clip:?}: {error}");
        assert!(
            error.to_string().to_lowercase().contains("sps"),
            "{clip:?}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_frames_is_the_no_key_frame_error() {
    let (state, events) = first_error(Fault::NoKeyFrames).await;
    let error = state.last_error().unwrap();
    assert_eq!(error.kind(), ErrorKind::NoKeyFrame, "{error}");
    assert_eq!(
        error.to_string(),
        "no key frame within 2 s of the start of the stream"
    );
    // Nothing was delivered, so there was no interval to interrupt either.
    assert!(events.is_empty(), "{:?}", summary(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jump_keeps_frames_flowing() {
    let hour = 90_000 * 3600;
    let server = sim(
        DemoClip::H264_720p,
        Fault::ClockJumpAfter {
            after: Duration::from_secs(1),
            ticks: hour,
        },
    )
    .await;
    let (tx, mut rx) = mpsc::channel(256);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    let events = collect(&mut rx, Duration::from_secs(20), |e| frames(e) >= 60).await;
    assert!(interrupted_reasons(&events).is_empty());
    let pts: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Frame { frame, .. } => Some(frame.pts),
            SourceEvent::Interrupted { .. } => None,
        })
        .collect();
    let jumps: Vec<i64> = pts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d != 3600)
        .collect();
    assert_eq!(
        jumps,
        [hour + 3600],
        "the camera's own timestamps pass through"
    );
    let mut state = handle.subscribe();
    let streaming = wait_state(
        &mut state,
        Duration::from_secs(5),
        "a clock jump",
        |s| matches!(s, PullerState::Streaming(s) if s.counters.clock_jumps == 1),
    )
    .await;
    let PullerState::Streaming(s) = streaming else {
        unreachable!()
    };
    let jump = s.counters.last_clock_jump.unwrap();
    assert!((3_599_000..=3_600_100).contains(&jump.delta_ms), "{jump:?}");
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_backs_off() {
    // A port that nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tx, mut rx) = mpsc::channel(16);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&format!("rtsp://127.0.0.1:{port}/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    let mut state = handle.subscribe();
    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        let s = wait_state(
            &mut state,
            Duration::from_secs(10),
            "a retry",
            |s| matches!(s, PullerState::Retrying { attempt: a, .. } if *a == attempt),
        )
        .await;
        let PullerState::Retrying {
            failed_at,
            next_attempt_at,
            last_error,
            ..
        } = s
        else {
            unreachable!()
        };
        assert_eq!(last_error.kind(), ErrorKind::Refused, "{last_error}");
        assert!(
            last_error
                .to_string()
                .contains(&format!("127.0.0.1:{port}")),
            "{last_error}"
        );
        delays.push(next_attempt_at.as_millis() - failed_at.as_millis());
    }
    // min 200 ms doubling, at most 20 % jitter off each delay.
    for (delay, full) in delays.iter().zip([200, 400, 800, 1600]) {
        assert!((full * 8 / 10 - 1..=full).contains(delay), "{delays:?}");
    }
    assert!(
        rx.try_recv().is_err(),
        "nothing streamed, nothing interrupted"
    );
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_drops_to_key_frames_and_keeps_reading() {
    let server = sim(DemoClip::H264_720p, Fault::None).await;
    let capacity = 8;
    let (tx, mut rx) = mpsc::channel(capacity);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    // A consumer that takes one event every 100 ms (a quarter of the frame rate) for 4 s.
    let mut received = Vec::new();
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match rx.try_recv() {
            Ok(e) => received.push(e),
            Err(mpsc::error::TryRecvError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(rx.len() <= capacity);
    }
    let PullerState::Streaming(s) = handle.state() else {
        panic!("still streaming: {:?}", handle.state());
    };
    // The puller kept reading the camera at its frame rate: ~4 s × 25 fps went through it,
    // far more than the consumer took; the rest was dropped, not buffered.
    assert!(s.counters.frames >= 60, "{:?}", s.counters);
    assert!(s.counters.dropped_slow_consumer >= 30, "{:?}", s.counters);
    assert!(frames(&received) <= 45, "{}", frames(&received));
    assert!(server.frames_sent() >= 75, "the camera was never held back");
    // The consumer saw honest gaps, each followed by a key frame.
    let reasons = interrupted_reasons(&received);
    assert!(!reasons.is_empty(), "{:?}", summary(&received));
    assert!(reasons[0].contains("consumer too slow"), "{reasons:?}");
    for (i, e) in received.iter().enumerate() {
        if matches!(e, SourceEvent::Interrupted { .. }) {
            if let Some(SourceEvent::Frame { frame, .. }) = received.get(i + 1) {
                assert!(frame.is_key, "{:?}", summary(&received));
            }
        }
    }
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_gone_stops_the_puller() {
    let server = sim(DemoClip::H264_360p, Fault::None).await;
    let (tx, rx) = mpsc::channel(4);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/cam")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    drop(rx);
    let mut state = handle.subscribe();
    let stopped = wait_state(&mut state, Duration::from_secs(10), "stopped", |s| {
        matches!(s, PullerState::Stopped { .. })
    })
    .await;
    assert!(matches!(
        stopped,
        PullerState::Stopped {
            reason: StopReason::ConsumerGone,
            ..
        }
    ));
    assert!(
        handle.is_finished()
            || tokio::time::timeout(Duration::from_secs(5), async {
                while !handle.is_finished() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_starts_stops_restarts_and_lists() {
    let server = sim(DemoClip::H264_360p, Fault::None).await;
    server.add_stream("/other", stream(DemoClip::H265_720p, Fault::None));
    let registry = PullerRegistry::new(quick_options());
    let (tx1, mut rx1) = mpsc::channel(64);
    let (tx2, mut rx2) = mpsc::channel(64);
    let mut s1 = registry
        .start(camera(1), source(&server.url("/cam")), tx1.clone())
        .unwrap();
    registry
        .start(camera(2), source(&server.url("/other")), tx2)
        .unwrap();
    assert_eq!(
        registry
            .start(camera(1), source(&server.url("/cam")), tx1)
            .unwrap_err(),
        vigil_rtsp::RegistryError::AlreadyRunning(camera(1))
    );
    collect(&mut rx1, Duration::from_secs(10), |e| frames(e) >= 5).await;
    collect(&mut rx2, Duration::from_secs(10), |e| frames(e) >= 5).await;
    wait_state(
        &mut s1,
        Duration::from_secs(5),
        "streaming",
        PullerState::is_streaming,
    )
    .await;
    let states = registry.states();
    assert_eq!(
        states.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [camera(1), camera(2)]
    );

    // Restart: the old session ends (the store is told), a new one streams.
    let sessions = server.sessions();
    let mut s1 = registry.restart(&camera(1)).await.unwrap();
    wait_state(
        &mut s1,
        Duration::from_secs(10),
        "streaming again",
        PullerState::is_streaming,
    )
    .await;
    assert!(server.sessions() > sessions);
    let events = collect(&mut rx1, Duration::from_secs(10), |e| {
        e.iter()
            .any(|e| matches!(e, SourceEvent::Interrupted { .. }))
    })
    .await;
    assert_eq!(interrupted_reasons(&events), ["recording stopped"]);

    // Update: camera 2 moves to the 360p stream.
    let mut s2 = registry
        .update(&camera(2), source(&server.url("/cam")))
        .await
        .unwrap();
    let streaming = wait_state(
        &mut s2,
        Duration::from_secs(10),
        "streaming 360p",
        |s| matches!(s, PullerState::Streaming(s) if s.height == 360),
    )
    .await;
    assert!(streaming.is_streaming());

    // Stop is prompt and forgets the camera.
    tokio::time::timeout(Duration::from_secs(5), registry.stop(&camera(1)))
        .await
        .expect("stop does not hang")
        .unwrap();
    assert!(registry.state(&camera(1)).is_none());
    assert_eq!(
        registry.stop(&camera(1)).await.unwrap_err(),
        vigil_rtsp::RegistryError::NotFound(camera(1))
    );
    tokio::time::timeout(Duration::from_secs(5), registry.shutdown())
        .await
        .expect("shutdown does not hang");
    assert!(registry.is_empty());
}
