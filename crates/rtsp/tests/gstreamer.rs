//! The puller and the access test against the real peer: GStreamer's RTSP server
//! (`tests/support/rtsp_server.py`), H.264 and H.265, TCP and UDP, Digest and Basic auth.

mod support;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_media::VideoCodec;
use vigil_rtsp::{
    probe, CameraSource, Credentials, ErrorKind, FailureKind, ProbeOptions, PullerOptions,
    PullerRegistry, PullerState, Transport,
};
use vigil_store::SourceEvent;

use support::gst_server::GstServer;
use support::*;

/// Pulls `path` until two key frames arrived; checks codec, size, key frames and the state.
async fn pulls(path: &str, transport: Transport, codec: VideoCodec) {
    let _serial = GSTREAMER.lock().await;
    let server = GstServer::start(&[]);
    let (tx, mut rx) = mpsc::channel(256);
    let source = source(&server.url(path)).with_transport(transport);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source,
        Arc::new(PullerOptions::default()),
        tx,
        CancellationToken::new(),
    );
    let events = collect(&mut rx, Duration::from_secs(30), |e| key_frames(e) >= 2).await;
    let SourceEvent::Frame { params, frame, .. } = &events[0] else {
        panic!("first event is a frame: {:?}", summary(&events));
    };
    assert!(frame.is_key, "the first frame delivered is a key frame");
    assert_eq!(params.codec(), codec);
    assert_eq!((params.width(), params.height()), (1280, 720));
    // One Arc while the parameters stay the same.
    for e in &events {
        match e {
            SourceEvent::Frame {
                params: p, frame, ..
            } => {
                assert!(Arc::ptr_eq(p, params));
                assert!(frame.nal_units().all(|n| n.is_ok()));
            }
            SourceEvent::Interrupted { reason, .. } => panic!("interrupted: {reason}"),
        }
    }
    // The GOP is 25 frames at 25 fps.
    assert!(frames(&events) >= 26, "{:?}", summary(&events));

    let mut state = handle.subscribe();
    let streaming = wait_state(&mut state, Duration::from_secs(5), "streaming", |s| {
        s.is_streaming()
    })
    .await;
    let PullerState::Streaming(s) = streaming else {
        unreachable!()
    };
    assert_eq!((s.codec, s.width, s.height), (codec, 1280, 720));
    assert!(s.counters.frames > 0 && s.counters.bytes > 0);
    handle.stop().await;
    // Stopping an open interval tells the store.
    let mut rest = Vec::new();
    while let Ok(e) = rx.try_recv() {
        rest.push(e);
    }
    assert!(
        matches!(rest.last(), Some(SourceEvent::Interrupted { reason, .. }) if reason == "recording stopped"),
        "{:?}",
        summary(&rest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_over_tcp() {
    pulls("/h264", Transport::Tcp, VideoCodec::H264).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_over_tcp() {
    pulls("/h265", Transport::Tcp, VideoCodec::H265).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_over_udp() {
    pulls("/h264", Transport::Udp, VideoCodec::H264).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_over_udp() {
    pulls("/h265", Transport::Udp, VideoCodec::H265).await;
}

async fn auth(mode: &str) {
    let _serial = GSTREAMER.lock().await;
    let server = GstServer::start(&[
        "--user",
        "admin",
        "--password",
        "Right#Pass1",
        "--auth",
        mode,
    ]);
    let registry = PullerRegistry::new(PullerOptions::default());

    // The right password, given in the URL (percent-encoded '#').
    let good = CameraSource::parse(&format!(
        "rtsp://admin:Right%23Pass1@127.0.0.1:{}/h264",
        server.port
    ))
    .unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let mut state = registry.start(camera(1), good, tx).unwrap();
    collect(&mut rx, Duration::from_secs(30), |e| key_frames(e) >= 1).await;
    wait_state(
        &mut state,
        Duration::from_secs(5),
        "streaming",
        PullerState::is_streaming,
    )
    .await;

    // The wrong password: the auth-failed state, and no quick retry loop.
    let bad = source(&server.url("/h264"))
        .with_credentials(Some(Credentials::new("admin", "wrong-password")));
    let (tx, _rx_bad) = mpsc::channel(16);
    let mut state = registry.start(camera(2), bad, tx).unwrap();
    let failed = wait_state(&mut state, Duration::from_secs(15), "an error", |s| {
        s.last_error().is_some()
    })
    .await;
    let PullerState::Retrying {
        attempt,
        failed_at,
        next_attempt_at,
        last_error,
    } = &failed
    else {
        unreachable!()
    };
    assert_eq!(last_error.kind(), ErrorKind::AuthFailed, "{last_error}");
    assert_eq!(*attempt, 1);
    let message = last_error.to_string();
    assert!(message.contains("user `admin`"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    let json = serde_json::to_string(&registry.states()).unwrap();
    assert!(
        !json.contains("wrong-password") && !json.contains("Right#Pass1"),
        "{json}"
    );
    // Policy AuthFailureWaitsLongest: the next attempt is 60 s × (1 − up to 0.3) away.
    let retry_in = next_attempt_at.as_millis() - failed_at.as_millis();
    assert!(
        (42_000..=60_000).contains(&retry_in),
        "retry in {retry_in} ms"
    );

    // No credentials at all: also auth failed, saying none were configured.
    let (tx, _rx_none) = mpsc::channel(16);
    let mut state = registry
        .start(camera(3), source(&server.url("/h264")), tx)
        .unwrap();
    let failed = wait_state(&mut state, Duration::from_secs(15), "an error", |s| {
        s.last_error().is_some()
    })
    .await;
    let error = failed.last_error().unwrap();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(
        error.to_string().contains("no credentials configured"),
        "{error}"
    );

    assert_eq!(registry.states().len(), 3);
    registry.shutdown().await;
    assert!(registry.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth() {
    auth("digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() {
    auth("basic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_path_is_not_found() {
    let _serial = GSTREAMER.lock().await;
    let server = GstServer::start(&[]);
    let (tx, _rx) = mpsc::channel(16);
    let handle = vigil_rtsp::spawn(
        camera(1),
        source(&server.url("/no-such-stream")),
        Arc::new(quick_options()),
        tx,
        CancellationToken::new(),
    );
    let mut state = handle.subscribe();
    let failed = wait_state(&mut state, Duration::from_secs(15), "an error", |s| {
        s.last_error().is_some()
    })
    .await;
    let error = failed.last_error().unwrap();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("/no-such-stream"), "{error}");
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_test_passes_hd_and_fails_small() {
    let _serial = GSTREAMER.lock().await;
    let server = GstServer::start(&["--width", "1280", "--height", "720", "--fps", "25"]);
    let options = ProbeOptions::default();

    let hd = probe(
        &source(&server.url("/h264")),
        Duration::from_secs(3),
        &options,
    )
    .await;
    assert!(hd.meets_hd, "{hd:#?}");
    assert_eq!(hd.codec.as_deref(), Some("H.264"));
    assert!(
        hd.rfc6381_codec
            .as_deref()
            .is_some_and(|c| c.starts_with("avc1.")),
        "{hd:?}"
    );
    assert_eq!((hd.width, hd.height), (Some(1280), Some(720)));
    let fps = hd.fps.unwrap();
    assert!((24.5..=25.5).contains(&fps), "{fps}");
    assert!(hd.key_frames >= 2, "{hd:?}");
    assert_eq!(hd.gop_frames, Some(25));
    assert!(hd.bitrate_bps.unwrap() > 100_000, "{hd:?}");
    assert!(hd.error.is_none() && hd.failures.is_empty());

    let small = probe(
        &source(&server.url("/h264-small")),
        Duration::from_secs(2),
        &options,
    )
    .await;
    assert!(!small.meets_hd, "{small:#?}");
    assert_eq!((small.width, small.height), (Some(640), Some(360)));
    assert_eq!(small.failures.len(), 1, "{:?}", small.failures);
    assert_eq!(small.failures[0].kind, FailureKind::Resolution);
    assert_eq!(
        small.failures[0].message,
        "resolution 640×360 is below the required 1280×720"
    );
    let json = serde_json::to_value(&small).unwrap();
    assert_eq!(json["failures"][0]["kind"], "resolution");

    let h265 = probe(
        &source(&server.url("/h265")),
        Duration::from_secs(2),
        &options,
    )
    .await;
    assert!(h265.meets_hd, "{h265:#?}");
    assert_eq!(h265.codec.as_deref(), Some("H.265"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_test_of_a_missing_stream_reports_the_error() {
    let _serial = GSTREAMER.lock().await;
    let server = GstServer::start(&[]);
    let report = probe(
        &source(&server.url("/missing")),
        Duration::from_secs(2),
        &ProbeOptions::default(),
    )
    .await;
    assert!(!report.meets_hd);
    assert_eq!(
        report.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(report.failures[0].kind, FailureKind::NoVideo);
}
