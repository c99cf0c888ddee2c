//! The server end to end on loopback with simulated devices (crates/sim/src/gb): registration,
//! catalog, DeviceInfo, subscriptions and catalog changes, recording over UDP / TCP passive /
//! TCP active, stop/start through the handle, unregistration, and an uplink to a second server.

mod common;

use std::time::Duration;

use common::*;
use vigil_gb28181::catalog::{Completion, ItemKind};
use vigil_gb28181::manscdp::{CatalogEvent, CatalogItem, ChannelStatus};
use vigil_gb28181::registry::OfflineReason;
use vigil_gb28181::server::{
    ChannelKey, GbEvent, MediaState, NotifyVia, RecordingMode, SessionView, SubscriptionChange,
    TransportPreference, UplinkSettings, UplinkState,
};
use vigil_media::VideoCodec;
use vigil_sim::gb::{GbClip, GbSimConfig, GbSimFleet, SipTransport};
use vigil_store::SourceEvent;

fn sim_config(server: std::net::SocketAddr) -> GbSimConfig {
    GbSimConfig {
        server,
        server_id: SERVER_ID.into(),
        domain: DOMAIN.into(),
        password: PASSWORD.into(),
        ..GbSimConfig::default()
    }
}

fn frames(evs: &[SourceEvent]) -> Vec<&vigil_media::VideoFrame> {
    evs.iter()
        .filter_map(|e| match e {
            SourceEvent::Frame { frame, .. } => Some(frame),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn devices_register_answer_catalogs_and_are_recorded_over_udp() {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    let mut server = start(cfg, &sinks).await;
    let addr = server.handle.sip_udp_addr();
    let clip = std::sync::Arc::new(GbClip::demo_h264().unwrap());
    let fleet = GbSimFleet::start(GbSimConfig {
        devices: 2,
        channels_per_device: 3,
        catalog_items_per_packet: 2,
        clip: Some(clip),
        ..sim_config(addr)
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(20),
        "2 devices online, 2 catalogs, 6 channels streaming",
        |s| {
            count(s, |e| matches!(e, GbEvent::DeviceOnline { .. })) == 2
                && count(s, |e| matches!(e, GbEvent::Catalog { .. })) == 2
                && count(s, |e| matches!(e, GbEvent::DeviceInfo { .. })) == 2
                && count(s, |e| {
                    matches!(
                        e,
                        GbEvent::Media {
                            state: MediaState::Streaming,
                            ..
                        }
                    )
                }) == 6
        },
    )
    .await;
    for e in &seen {
        if let GbEvent::Catalog {
            catalog, device, ..
        } = e
        {
            assert_eq!(catalog.completion, Completion::Complete, "{device}");
            assert_eq!(catalog.entries.len(), 3);
            assert_eq!(catalog.packets, 2, "3 items at 2 per packet");
            assert!(
                catalog.inconsistencies.is_empty(),
                "{:?}",
                catalog.inconsistencies
            );
            for entry in &catalog.entries {
                assert_eq!(entry.kind, ItemKind::VideoChannel);
                assert_eq!(
                    entry
                        .item
                        .civil_code
                        .map(|c| c.as_str().to_owned())
                        .as_deref(),
                    Some("340200")
                );
                assert!(
                    entry.item.name.as_deref().unwrap().starts_with("模拟通道"),
                    "GB2312 names decode"
                );
                assert_eq!(entry.item.parent_ids(), vec![device.as_str()]);
                assert!(entry.item.longitude.is_some());
            }
        }
    }
    // Frames reach every sink with H.264 720p parameters.
    let ids: Vec<_> = fleet.device_ids().to_vec();
    let key = ChannelKey {
        device: ids[0],
        channel: fleet.channel_ids(0)[1],
    };
    eventually(Duration::from_secs(10), "frames on every channel", || {
        sinks.keys().len() == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let evs = sinks.drain(&key);
    let f = frames(&evs);
    assert!(f.len() >= 20, "got {} frames in 1.5 s at 25 fps", f.len());
    assert!(
        f[0].is_key,
        "the first frame handed to the store is a key frame"
    );
    let SourceEvent::Frame { params, .. } = &evs[0] else {
        panic!("first event is a frame")
    };
    assert_eq!(params.codec(), VideoCodec::H264);
    assert_eq!((params.width(), params.height()), (1280, 720));
    for w in f.windows(2) {
        assert!(w[1].pts > w[0].pts, "timestamps increase");
    }

    // Views.
    let devices = server.handle.devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices
        .iter()
        .all(|d| d.online && d.registered && d.channels == 3));
    assert!(devices.iter().all(|d| d
        .info
        .as_ref()
        .is_some_and(|i| i.manufacturer.as_deref() == Some("vigil-sim"))));
    let chans = server.handle.channels(Some(ids[0])).await.unwrap();
    assert_eq!(chans.len(), 3);
    assert!(chans
        .iter()
        .all(|c| c.session == SessionView::Streaming && c.recording.wanted));
    assert!(chans
        .iter()
        .all(|c| c.counters.frames > 0 && c.counters.rtp_ssrc_mismatches == 0));

    // Stop one channel through the handle: BYE, Interrupted in its sink, state Stopped.
    server.handle.stop_recording(key).await.unwrap();
    wait_for(&mut server.events, &mut seen, Duration::from_secs(5), "media stopped", |s| {
        s.iter().any(|e| matches!(e, GbEvent::Media { channel, state: MediaState::Stopped { .. }, .. } if *channel == key.channel))
    })
    .await;
    eventually(Duration::from_secs(5), "Interrupted in the sink", || {
        sinks
            .drain(&key)
            .iter()
            .any(|e| matches!(e, SourceEvent::Interrupted { .. }))
    })
    .await;
    let chans = server.handle.channels(Some(ids[0])).await.unwrap();
    let c = chans.iter().find(|c| c.id == key.channel.as_str()).unwrap();
    assert_eq!(c.session, SessionView::Idle);
    assert_eq!(c.recording.overridden, Some(false));
    // ... and start it again.
    server.handle.reset_recording(key).await.unwrap();
    wait_for(&mut server.events, &mut seen, Duration::from_secs(10), "streaming again", |s| {
        count(s, |e| matches!(e, GbEvent::Media { channel, state: MediaState::Streaming, .. } if *channel == key.channel)) == 2
    })
    .await;

    let m = server.handle.metrics();
    assert_eq!(m.registrations, 2);
    assert!(m.catalogs_complete >= 2 && m.frames > 0 && m.invites_accepted >= 7);
    assert_eq!(m.sip_parse_errors, 0);

    fleet.stop(true).await;
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(10),
        "unregistered",
        |s| {
            count(s, |e| {
                matches!(
                    e,
                    GbEvent::DeviceOffline {
                        reason: OfflineReason::Unregistered,
                        ..
                    }
                )
            }) == 2
        },
    )
    .await;
    server.handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), server.task).await;
}

async fn record_one_channel(transport: TransportPreference, sip: SipTransport, codec: VideoCodec) {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    cfg.media.transport = transport;
    let mut server = start(cfg, &sinks).await;
    let clip = match codec {
        VideoCodec::H264 => GbClip::demo_h264().unwrap(),
        VideoCodec::H265 => GbClip::demo_h265().unwrap(),
    };
    let fleet = GbSimFleet::start(GbSimConfig {
        transport: sip,
        clip: Some(std::sync::Arc::new(clip)),
        tcp_media_listen: true,
        ..sim_config(server.handle.sip_udp_addr())
    })
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
    let key = ChannelKey {
        device: fleet.device_ids()[0],
        channel: fleet.channel_ids(0)[0],
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let evs = sinks.drain(&key);
    let f = frames(&evs);
    assert!(f.len() >= 15, "{transport:?}/{sip:?}: {} frames", f.len());
    let SourceEvent::Frame { params, .. } = &evs[0] else {
        panic!()
    };
    assert_eq!(params.codec(), codec);
    let m = server.handle.metrics();
    assert_eq!(m.rtp_lost, 0, "{transport:?}: no loss on loopback");
    assert_eq!(m.ps_corrupt, 0);
    fleet.stop(true).await;
    server.handle.shutdown();
}

#[tokio::test]
async fn records_over_tcp_passive_with_sip_over_tcp_h265() {
    record_one_channel(
        TransportPreference::TcpPassive,
        SipTransport::Tcp,
        VideoCodec::H265,
    )
    .await;
}

#[tokio::test]
async fn records_over_tcp_active() {
    record_one_channel(
        TransportPreference::TcpActive,
        SipTransport::Udp,
        VideoCodec::H264,
    )
    .await;
}

#[tokio::test]
async fn subscriptions_and_catalog_changes_update_channels() {
    init_logging();
    let sinks = Sinks::default();
    let mut server = start(config(), &sinks).await;
    let fleet = GbSimFleet::start(GbSimConfig {
        devices: 2,
        channels_per_device: 2,
        ..sim_config(server.handle.sip_udp_addr())
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(15),
        "subscriptions active",
        |s| {
            count(s, |e| {
                matches!(
                    e,
                    GbEvent::Subscription {
                        change: SubscriptionChange::Active { .. },
                        ..
                    }
                )
            }) == 2
                && count(s, |e| matches!(e, GbEvent::Catalog { .. })) == 2
        },
    )
    .await;
    let dev = fleet.device_ids()[0];
    let ch0 = fleet.channel_ids(0)[0];
    let added = CatalogItem {
        device_id: "34020000001310099999".into(),
        name: Some("新加的摄像机".into()),
        event: Some(CatalogEvent::Add),
        status: Some(ChannelStatus::On),
        parent_id: Some(dev.to_string()),
        ..CatalogItem::default()
    };
    let off = CatalogItem {
        device_id: ch0.to_string(),
        event: Some(CatalogEvent::Off),
        ..CatalogItem::default()
    };
    fleet.notify_catalog(0, vec![added, off]).await.unwrap();
    wait_for(&mut server.events, &mut seen, Duration::from_secs(5), "catalog changes", |s| {
        s.iter().any(|e| matches!(e, GbEvent::CatalogChanged { via: NotifyVia::Notify, .. }))
            && s.iter().any(|e| matches!(e, GbEvent::ChannelStatus { channel, status: Some(ChannelStatus::Off), .. } if *channel == ch0.as_str()))
    })
    .await;
    let chans = server.handle.channels(Some(dev)).await.unwrap();
    assert_eq!(chans.len(), 3, "the ADDed channel is listed");
    let c0 = chans.iter().find(|c| c.id == ch0.as_str()).unwrap();
    assert_eq!(c0.status, Some(ChannelStatus::Off));
    let d = server.handle.device(dev).await.unwrap().unwrap();
    assert_eq!(d.subscription.as_deref(), Some("active"));
    // Re-query on demand: a fresh complete catalog replaces the notified additions.
    let sn = server.handle.refresh_catalog(dev).await.unwrap();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(5),
        "refreshed catalog",
        |s| {
            s.iter()
                .any(|e| matches!(e, GbEvent::Catalog { catalog, .. } if catalog.sn == sn))
        },
    )
    .await;
    assert_eq!(server.handle.channels(Some(dev)).await.unwrap().len(), 2);
    assert!(server.handle.metrics().catalog_notifies >= 1);
    fleet.stop(false).await;
    server.handle.shutdown();
}

#[tokio::test]
async fn uplink_registers_to_an_upper_server_and_serves_the_shared_catalog() {
    init_logging();
    let sinks = Sinks::default();
    // The upper platform is a second vigil server (a lower platform registers like a device).
    let mut upper_cfg = config();
    upper_cfg.sip_id = "44010000002000000001".into();
    upper_cfg.domain = "4401000000".into();
    upper_cfg.default_password = Some("upper-secret".into());
    let mut upper = start(upper_cfg, &sinks).await;
    let mut lower_cfg = config();
    lower_cfg.uplinks.push(UplinkSettings {
        name: "city".into(),
        upper_id: "44010000002000000001".into(),
        upper_domain: "4401000000".into(),
        addr: upper.handle.sip_udp_addr(),
        password: "upper-secret".into(),
        keepalive_interval_secs: 1,
        catalog_items_per_packet: 3,
        ..UplinkSettings::default()
    });
    let mut lower = start(lower_cfg, &sinks).await;
    let shared: Vec<CatalogItem> = (0..7)
        .map(|i| CatalogItem {
            device_id: format!("3402000000131000{i:04}"),
            name: Some(format!("共享摄像机 {i}")),
            civil_code: Some(vigil_gb28181::gbid::CivilCode::parse("340200").unwrap()),
            parent_id: Some(SERVER_ID.into()),
            status: Some(ChannelStatus::On),
            ..CatalogItem::default()
        })
        .collect();
    lower
        .handle
        .set_shared_catalog(shared.clone())
        .await
        .unwrap();
    let mut lower_seen = Vec::new();
    wait_for(
        &mut lower.events,
        &mut lower_seen,
        Duration::from_secs(10),
        "uplink up",
        |s| {
            s.iter().any(|e| {
                matches!(
                    e,
                    GbEvent::Uplink {
                        state: UplinkState::Up { .. },
                        ..
                    }
                )
            })
        },
    )
    .await;
    let mut upper_seen = Vec::new();
    wait_for(
        &mut upper.events,
        &mut upper_seen,
        Duration::from_secs(10),
        "the upper platform gets our catalog",
        |s| {
            s.iter().any(
                |e| matches!(e, GbEvent::Catalog { catalog, .. } if catalog.entries.len() == 7),
            )
        },
    )
    .await;
    let cat = upper_seen
        .iter()
        .find_map(|e| match e {
            GbEvent::Catalog {
                device, catalog, ..
            } => Some((device, catalog)),
            _ => None,
        })
        .unwrap();
    assert_eq!(cat.0.as_str(), SERVER_ID);
    assert_eq!(cat.1.completion, Completion::Complete);
    assert_eq!(cat.1.packets, 3);
    let names: Vec<_> = cat
        .1
        .entries
        .iter()
        .map(|e| e.item.name.clone().unwrap())
        .collect();
    assert_eq!(names[3], "共享摄像机 3");
    let views = lower.handle.uplinks().await.unwrap();
    assert!(views[0].up && views[0].shared_items == 7);
    // Keepalives keep the lower platform online upstairs.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(upper.handle.metrics().keepalives >= 2);
    // Shutdown unregisters upward.
    lower.handle.shutdown();
    wait_for(
        &mut upper.events,
        &mut upper_seen,
        Duration::from_secs(5),
        "lower platform offline",
        |s| {
            s.iter().any(|e| {
                matches!(
                    e,
                    GbEvent::DeviceOffline {
                        reason: OfflineReason::Unregistered,
                        ..
                    }
                )
            })
        },
    )
    .await;
    upper.handle.shutdown();
}

async fn cascade_relays_live_video(upper_transport: TransportPreference) {
    init_logging();
    // Upper platform A records every video channel it learns from its lower platforms.
    let upper_sinks = Sinks::default();
    let mut upper_cfg = config();
    upper_cfg.sip_id = "44010000002000000001".into();
    upper_cfg.domain = "4401000000".into();
    upper_cfg.default_password = Some("upper-secret".into());
    upper_cfg.recording.mode = RecordingMode::All;
    upper_cfg.media.transport = upper_transport;
    let mut upper = start(upper_cfg, &upper_sinks).await;
    // Lower platform B: a device registers to it; it shares that device's channel upward and
    // records nothing itself.
    let lower_sinks = Sinks::default();
    let mut lower_cfg = config();
    lower_cfg.uplinks.push(UplinkSettings {
        name: "city".into(),
        upper_id: "44010000002000000001".into(),
        upper_domain: "4401000000".into(),
        addr: upper.handle.sip_udp_addr(),
        password: "upper-secret".into(),
        ..UplinkSettings::default()
    });
    let mut lower = start(lower_cfg, &lower_sinks).await;
    let fleet = GbSimFleet::start(GbSimConfig {
        clip: Some(std::sync::Arc::new(GbClip::demo_h264().unwrap())),
        ..sim_config(lower.handle.sip_udp_addr())
    })
    .await
    .unwrap();
    let channel = fleet.channel_ids(0)[0];
    let mut lower_seen = Vec::new();
    wait_for(
        &mut lower.events,
        &mut lower_seen,
        Duration::from_secs(10),
        "device catalog at the lower platform",
        |s| s.iter().any(|e| matches!(e, GbEvent::Catalog { .. })),
    )
    .await;
    lower
        .handle
        .set_shared_catalog(vec![CatalogItem {
            device_id: channel.to_string(),
            name: Some("共享通道".into()),
            parent_id: Some(SERVER_ID.into()),
            status: Some(ChannelStatus::On),
            ..CatalogItem::default()
        }])
        .await
        .unwrap();
    // The uplink registers after the shared catalog is set only by chance; ask for it again.
    let mut upper_seen = Vec::new();
    wait_for(
        &mut upper.events,
        &mut upper_seen,
        Duration::from_secs(10),
        "lower platform online",
        |s| s.iter().any(|e| matches!(e, GbEvent::DeviceOnline { .. })),
    )
    .await;
    let lower_id = SERVER_ID.parse().unwrap();
    upper.handle.refresh_catalog(lower_id).await.unwrap();
    wait_for(&mut upper.events, &mut upper_seen, Duration::from_secs(15), "the upper platform streams the shared channel", |s| {
        s.iter().any(|e| matches!(e, GbEvent::Media { channel: c, state: MediaState::Streaming, .. } if *c == channel))
    })
    .await;
    wait_for(
        &mut lower.events,
        &mut lower_seen,
        Duration::from_secs(5),
        "relay event",
        |s| {
            s.iter()
                .any(|e| matches!(e, GbEvent::UplinkRelay { active: true, .. }))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let key = ChannelKey {
        device: lower_id,
        channel,
    };
    let evs = upper_sinks.drain(&key);
    let (params, f) = frames_of(&evs).expect("frames relayed through the lower platform");
    assert!(f.len() >= 15, "{} frames", f.len());
    assert_eq!(params.codec(), VideoCodec::H264);
    assert_eq!(lower.handle.metrics().media_failures, 0);
    // The upper platform stops: BYE, the lower platform stops relaying and pulling.
    upper.handle.stop_recording(key).await.unwrap();
    wait_for(
        &mut lower.events,
        &mut lower_seen,
        Duration::from_secs(5),
        "relay stopped",
        |s| {
            s.iter()
                .any(|e| matches!(e, GbEvent::UplinkRelay { active: false, .. }))
                && s.iter().any(|e| {
                    matches!(
                        e,
                        GbEvent::Media {
                            state: MediaState::Stopped { .. },
                            ..
                        }
                    )
                })
        },
    )
    .await;
    fleet.stop(false).await;
    lower.handle.shutdown();
    upper.handle.shutdown();
}

#[tokio::test]
async fn cascade_upper_platform_watches_a_shared_channel_over_udp() {
    cascade_relays_live_video(TransportPreference::Udp).await;
}

#[tokio::test]
async fn cascade_upper_platform_watches_a_shared_channel_over_tcp() {
    cascade_relays_live_video(TransportPreference::TcpPassive).await;
}
