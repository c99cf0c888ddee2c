//! Shared pieces of the integration tests: the real GStreamer RTSP server, the simulator, and
//! waiting for puller states and events.

#![allow(dead_code)] // each test binary uses a different subset

#[path = "../../../../tests/support/gst_server.rs"]
pub mod gst_server;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use vigil_core::id::GbId;
use vigil_rtsp::{CameraSource, PullerOptions, PullerState};
use vigil_sim::rtsp::{Clip, DemoClip, Fault, SimServer, Stream};
use vigil_store::SourceEvent;

/// GStreamer tests encode live video; one at a time keeps a 2-core machine from starving
/// the encoders (and turning a slow machine into false stalls).
pub static GSTREAMER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A simulated camera server serving `clip` with `fault` at `/cam`.
pub async fn sim(clip: DemoClip, fault: Fault) -> SimServer {
    let server = SimServer::start("127.0.0.1:0".parse().unwrap(), CancellationToken::new())
        .await
        .unwrap();
    server.add_stream("/cam", stream(clip, fault));
    server
}

pub fn stream(clip: DemoClip, fault: Fault) -> Stream {
    let clip: Clip = clip.load().unwrap();
    Stream {
        clip: Arc::new(clip),
        fault,
    }
}

pub fn camera(n: u32) -> GbId {
    GbId::parse(&format!("3401000000132{n:07}")).unwrap()
}

/// Options that make fault tests fast: short watchdogs and backoff.
pub fn quick_options() -> PullerOptions {
    PullerOptions {
        stall_timeout: Duration::from_secs(2),
        key_frame_timeout: Duration::from_secs(2),
        backoff: vigil_rtsp::BackoffPolicy {
            min: Duration::from_millis(200),
            max: Duration::from_secs(2),
            jitter: 0.2,
        },
        state_interval: Duration::from_millis(200),
        ..PullerOptions::default()
    }
}

/// Waits until `pred` holds for the published state, or panics after `limit` with the last
/// state seen.
pub async fn wait_state(
    rx: &mut watch::Receiver<PullerState>,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&PullerState) -> bool,
) -> PullerState {
    let waited = tokio::time::timeout(limit, rx.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|state| state.clone()));
    match waited {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the puller went away while waiting for {what}"),
        Err(_) => panic!(
            "no state with {what} within {limit:?}; last state: {:#?}",
            *rx.borrow()
        ),
    }
}

/// Receives events until `done` says so, or panics after `limit`.
pub async fn collect(
    rx: &mut mpsc::Receiver<SourceEvent>,
    limit: Duration,
    mut done: impl FnMut(&[SourceEvent]) -> bool,
) -> Vec<SourceEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&events) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => events.push(e),
            Ok(None) => panic!("the event channel closed after {} events", events.len()),
            Err(_) => panic!(
                "condition not met within {limit:?}; {} events: {:?}",
                events.len(),
                summary(&events)
            ),
        }
    }
    events
}

/// A short description of events for failure messages.
pub fn summary(events: &[SourceEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            SourceEvent::Frame { frame, .. } => {
                format!("{}{}", if frame.is_key { "K" } else { "f" }, frame.pts)
            }
            SourceEvent::Interrupted { reason, .. } => format!("interrupted: {reason}"),
        })
        .collect()
}

pub fn frames(events: &[SourceEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, SourceEvent::Frame { .. }))
        .count()
}

pub fn key_frames(events: &[SourceEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, SourceEvent::Frame { frame, .. } if frame.is_key))
        .count()
}

pub fn source(url: &str) -> CameraSource {
    CameraSource::parse(url).unwrap()
}
