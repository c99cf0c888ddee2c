//! End to end with a third-party device implementation: the `gb28181-rs` 0.14.1 crate (a
//! device-side GB/T 28181 library by another author) registers with digest authentication,
//! answers DeviceInfo and Catalog, and streams PS over RTP from our H.264 and H.265 clips when
//! we INVITE it (UDP, and TCP where it connects to us). We receive frames, write them to an
//! fMP4 with `vigil_media::fmp4` and check the file with ffprobe; and once more through the
//! real store (`vigil_store::Store` recorder, then its export), checked the same way.

mod common;
#[path = "../../../tests/support/gb28181_rs_feed.rs"]
mod feed;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use feed::feed;
use gb28181_rs::config::Transport as DevTransport;
use gb28181_rs::mock::MockFrameHub;
use gb28181_rs::{Gb28181Config, Gb28181Server};
use vigil_gb28181::catalog::{Completion, ItemKind};
use vigil_gb28181::server::{ChannelKey, GbEvent, MediaState, RecordingMode, TransportPreference};
use vigil_media::VideoCodec;
use vigil_sim::gb::GbClip;

const DEVICE: &str = "34020000001320000101";
/// Configured, but gb28181-rs 0.14 lists the device itself as its one catalog item (see
/// testdata/interop), and that is the channel we INVITE.
const CHANNEL: &str = "34020000001310000101";

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn third_party_device_streams(codec: VideoCodec, media: TransportPreference) {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    cfg.media.transport = media;
    let mut server = start(cfg, &sinks).await;
    let addr = server.handle.sip_udp_addr();

    let clip = match codec {
        VideoCodec::H264 => GbClip::demo_h264().unwrap(),
        VideoCodec::H265 => GbClip::demo_h265().unwrap(),
    };
    let (width, height) = (clip.params.width(), clip.params.height());
    let hub = Arc::new(MockFrameHub::new());
    let feeder = feed(hub.clone(), clip);
    let dev_cfg = Gb28181Config {
        enabled: true,
        platform_sip_address: "127.0.0.1".into(),
        platform_sip_port: addr.port(),
        device_id: DEVICE.into(),
        channel_id: CHANNEL.into(),
        sip_domain: DOMAIN.into(),
        password: PASSWORD.into(),
        local_sip_port: free_udp_port(),
        register_interval_secs: 3600,
        heartbeat_interval_secs: 20,
        heartbeat_timeout_count: 3,
        transport: DevTransport::Udp,
        manufacturer: Some("interop-peer".into()),
        ..Gb28181Config::default()
    };
    let mut device = Gb28181Server::new(dev_cfg, hub)
        .spawn()
        .await
        .expect("gb28181-rs device starts");

    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(20),
        "registration, catalog, streaming",
        |s| {
            s.iter().any(|e| matches!(e, GbEvent::DeviceOnline { .. }))
                && s.iter().any(|e| matches!(e, GbEvent::Catalog { .. }))
                && s.iter().any(|e| matches!(e, GbEvent::DeviceInfo { .. }))
                && s.iter().any(|e| {
                    matches!(
                        e,
                        GbEvent::Media {
                            state: MediaState::Streaming,
                            ..
                        }
                    )
                })
        },
    )
    .await;
    let catalog = seen
        .iter()
        .find_map(|e| match e {
            GbEvent::Catalog {
                device, catalog, ..
            } if device.as_str() == DEVICE => Some(catalog),
            _ => None,
        })
        .expect("the catalog of the device");
    assert_eq!(catalog.completion, Completion::Complete);
    let channel = catalog
        .entries
        .iter()
        .find(|e| e.kind == ItemKind::VideoChannel)
        .map(|e| e.item.device_id.clone())
        .expect("a video channel in the catalog");
    let info = seen
        .iter()
        .find_map(|e| match e {
            GbEvent::DeviceInfo { info, .. } => Some(info),
            _ => None,
        })
        .unwrap();
    assert_eq!(info.manufacturer.as_deref(), Some("interop-peer"));

    // Record ~3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let key = ChannelKey {
        device: DEVICE.parse().unwrap(),
        channel: channel.parse().unwrap(),
    };
    let evs = sinks.drain(&key);
    let (params, frames) = frames_of(&evs).expect("frames from the third-party device");
    assert_eq!(params.codec(), codec);
    assert_eq!((params.width(), params.height()), (width, height));
    assert!(
        frames.len() >= 40,
        "{} frames in ~3 s at 25 fps",
        frames.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gb28181-rs.mp4");
    write_fmp4(&path, &params, &frames);
    let (name, w, h, n) = ffprobe(&path);
    assert_eq!(
        name,
        match codec {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        }
    );
    assert_eq!((w, h), (u64::from(width), u64::from(height)));
    assert_eq!(
        n,
        frames.len() as u64,
        "ffprobe decodes every frame we wrote"
    );
    let m = server.handle.metrics();
    assert_eq!(m.rtp_ssrc_mismatches, 0);
    assert_eq!(m.frames_dropped, 0);
    // The device's attribute-form MANSCDP is a named quirk.
    // Its attribute-form MANSCDP and its PES headers are named quirks; over TCP, so is its
    // `$` framing.
    let d = server.handle.device(key.device).await.unwrap().unwrap();
    assert!(
        d.quirks.contains(&"manscdp_header_as_attributes"),
        "{:?}",
        d.quirks
    );
    assert!(
        d.quirks.contains(&"pes_header_without_marker_byte"),
        "{:?}",
        d.quirks
    );
    assert_eq!(
        d.quirks.contains(&"rtp_over_tcp_dollar_framing"),
        media == TransportPreference::TcpPassive,
        "{:?}",
        d.quirks
    );

    let _ = device.shutdown_with_deregister().await;
    feeder.abort();
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gb28181_rs_device_streams_h264_over_udp() {
    third_party_device_streams(VideoCodec::H264, TransportPreference::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gb28181_rs_device_streams_h265_over_tcp() {
    third_party_device_streams(VideoCodec::H265, TransportPreference::TcpPassive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gb28181_rs_device_is_recorded_through_the_store() {
    use std::collections::HashMap;
    use vigil_core::time::{Interval, Timestamp};
    use vigil_gb28181::server::{GbServer, SinkProvider};
    use vigil_store::{RecorderHandle, Store, StoreConfig};

    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(vigil_index::Index::open(dir.path().join("index")).unwrap());
    let (store, _) = Store::open(StoreConfig::new(dir.path().join("store")), index).unwrap();
    // The daemon's wiring in miniature: one store recorder per channel.
    let recorders: Arc<parking_lot::Mutex<HashMap<ChannelKey, RecorderHandle>>> = Arc::default();
    let senders: Arc<parking_lot::Mutex<HashMap<ChannelKey, tokio::sync::mpsc::Sender<_>>>> =
        Arc::default();
    let provider: Arc<dyn SinkProvider> = {
        let store = store.clone();
        let recorders = recorders.clone();
        let senders = senders.clone();
        Arc::new(move |k: &ChannelKey| {
            let mut s = senders.lock();
            if let Some(tx) = s.get(k) {
                return Some(tx.clone());
            }
            let (tx, handle) = store.recorder_channel(k.channel, 256).ok()?;
            recorders.lock().insert(*k, handle);
            s.insert(*k, tx.clone());
            Some(tx)
        })
    };
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    let mut server = GbServer::start(cfg, provider).await.unwrap();
    let addr = server.handle.sip_udp_addr();
    let hub = Arc::new(MockFrameHub::new());
    let feeder = feed(hub.clone(), GbClip::demo_h264().unwrap());
    let started = Timestamp::from_system_time(std::time::SystemTime::now());
    let mut device = Gb28181Server::new(
        Gb28181Config {
            enabled: true,
            platform_sip_address: "127.0.0.1".into(),
            platform_sip_port: addr.port(),
            device_id: DEVICE.into(),
            channel_id: CHANNEL.into(),
            sip_domain: DOMAIN.into(),
            password: PASSWORD.into(),
            local_sip_port: free_udp_port(),
            register_interval_secs: 3600,
            heartbeat_interval_secs: 20,
            transport: DevTransport::Udp,
            ..Gb28181Config::default()
        },
        hub,
    )
    .spawn()
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(20),
        "streaming",
        |s| {
            s.iter().any(|e| {
                matches!(
                    e,
                    GbEvent::Media {
                        state: MediaState::Streaming,
                        ..
                    }
                )
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let key = *senders.lock().keys().next().unwrap();
    // Stopping the recording ends the interval (Interrupted) and the store closes the segment.
    server.handle.stop_recording(key).await.unwrap();
    senders.lock().clear();
    let handle = recorders.lock().remove(&key).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    handle.stop().await;
    let ended = Timestamp::from_system_time(std::time::SystemTime::now());
    let list = store
        .recordings(&key.channel, &Interval::new(started, ended).unwrap())
        .unwrap();
    assert_eq!(list.runs.len(), 1, "{list:?}");
    assert!(list.recorded_ms >= 3000, "{} ms recorded", list.recorded_ms);
    let run = &list.runs[0];
    let export = store
        .export(&key.channel, run.start, run.end)
        .await
        .unwrap()
        .expect("an export");
    let bytes = export.read_blocking(0..export.len()).unwrap();
    let path = dir.path().join("export.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let (name, w, h, n) = ffprobe(&path);
    assert_eq!((name.as_str(), w, h), ("h264", 1280, 720));
    assert_eq!(n, export.frames());
    assert!(n >= 75, "{n} frames in ~4 s at 25 fps");
    let _ = device.shutdown_with_deregister().await;
    feeder.abort();
    server.handle.shutdown();
}
