//! Faults: garbage datagrams, truncated SIP, bad XML, a lying SumNum, wrong SSRC, broken PS, an
//! INVITE never answered, a stalled stream, keepalive loss and a dropped TCP connection. Each is
//! logged, counted, and isolated: another device keeps being served throughout.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;
use vigil_gb28181::catalog::{Completion, Inconsistency};
use vigil_gb28181::registry::OfflineReason;
use vigil_gb28181::server::{ChannelKey, GbEvent, MediaState, RecordingMode};
use vigil_gb28181::sip::parse_datagram;
use vigil_sim::gb::{GbClip, GbSimConfig, GbSimFleet, InviteBehavior, MediaFault, SipTransport};
use vigil_store::SourceEvent;

fn sim(server: SocketAddr, first_serial: u32) -> GbSimConfig {
    GbSimConfig {
        server,
        server_id: SERVER_ID.into(),
        domain: DOMAIN.into(),
        password: PASSWORD.into(),
        first_serial,
        ..GbSimConfig::default()
    }
}

fn clip() -> Option<Arc<GbClip>> {
    Some(Arc::new(GbClip::demo_h264().unwrap()))
}

/// A MESSAGE from `device` with `body`, as a device would send it.
fn message(device: &str, from: SocketAddr, branch: u32, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK{branch}\r\n\
         From: <sip:{device}@{DOMAIN}>;tag=1{branch}\r\n\
         To: <sip:{SERVER_ID}@{DOMAIN}>\r\n\
         Call-ID: fault-{branch}@{from}\r\nCSeq: 20 MESSAGE\r\nMax-Forwards: 70\r\n\
         Content-Type: Application/MANSCDP+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn recv_status(sock: &UdpSocket) -> Option<u16> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    parse_datagram(buf[..n].to_vec()).ok()?.status()
}

#[tokio::test]
async fn garbage_truncated_sip_bad_xml_and_wrong_sumnum_are_isolated() {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.keepalive_interval_secs = 1;
    let mut server = start(cfg, &sinks).await;
    let addr = server.handle.sip_udp_addr();
    let good = GbSimFleet::start(GbSimConfig {
        keepalive_interval: Duration::from_millis(500),
        ..sim(addr, 1)
    })
    .await
    .unwrap();
    // A device whose catalog announces 3 more items than it sends.
    let liar = GbSimFleet::start(GbSimConfig {
        keepalive_interval: Duration::from_millis(500),
        channels_per_device: 4,
        sum_num_offset: 3,
        ..sim(addr, 50)
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(10),
        "both online",
        |s| count(s, |e| matches!(e, GbEvent::DeviceOnline { .. })) == 2,
    )
    .await;
    let before = server.handle.metrics();

    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = raw.local_addr().unwrap();
    // Garbage.
    let mut x: u32 = 0x1234_5678;
    for len in [1usize, 13, 200, 1400, 9000] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        raw.send_to(&junk, addr).await.unwrap();
    }
    // Truncated SIP: a keepalive cut inside its header block.
    let ka = message(
        good.device_ids()[0].as_str(),
        me,
        1,
        "<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>x</DeviceID><Status>OK</Status></Notify>",
    );
    raw.send_to(&ka[..60], addr).await.unwrap();
    // Bad XML from a registered device: answered 400, counted, the device stays online.
    let bad = message(
        good.device_ids()[0].as_str(),
        me,
        2,
        "<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>x</DevID></Response>",
    );
    raw.send_to(&bad, addr).await.unwrap();
    assert_eq!(recv_status(&raw).await, Some(400));

    eventually(Duration::from_secs(5), "garbage counted", || {
        let m = server.handle.metrics();
        m.sip_parse_errors >= before.sip_parse_errors + 6 && m.bad_bodies > before.bad_bodies
    })
    .await;

    // The lying catalog completes after the quiet timeout, flagged.
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(10),
        "liar's catalog",
        |s| {
            s.iter().any(
                |e| matches!(e, GbEvent::Catalog { device, .. } if *device == liar.device_ids()[0]),
            )
        },
    )
    .await;
    let (_, cat) = seen
        .iter()
        .find_map(|e| match e {
            GbEvent::Catalog {
                device, catalog, ..
            } if *device == liar.device_ids()[0] => Some((device, catalog)),
            _ => None,
        })
        .unwrap();
    assert_eq!(cat.completion, Completion::QuietTimeout);
    assert_eq!(cat.entries.len(), 4, "the items that came are kept");
    assert!(cat
        .inconsistencies
        .contains(&Inconsistency::FewerItemsThanAnnounced {
            announced: 7,
            received: 4
        }));
    assert!(server.handle.metrics().catalog_inconsistencies >= 1);

    // The good device kept being served: keepalives answered, still online, its last error
    // names the bad body.
    let ka_before = server.handle.metrics().keepalives;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(server.handle.metrics().keepalives > ka_before);
    let d = server
        .handle
        .device(good.device_ids()[0])
        .await
        .unwrap()
        .unwrap();
    assert!(d.online);
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not well-formed"),
        "{:?}",
        d.last_error
    );
    assert!(!seen
        .iter()
        .any(|e| matches!(e, GbEvent::DeviceOffline { .. })));
    good.stop(false).await;
    liar.stop(false).await;
    server.handle.shutdown();
}

#[tokio::test]
async fn wrong_ssrc_broken_ps_and_unanswered_invites_fail_only_their_channels() {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    cfg.media.invite_timeout_secs = 2;
    cfg.media.retry_initial_secs = 30;
    let mut server = start(cfg, &sinks).await;
    let addr = server.handle.sip_udp_addr();
    let good = GbSimFleet::start(GbSimConfig {
        clip: clip(),
        ..sim(addr, 1)
    })
    .await
    .unwrap();
    let wrong_ssrc = GbSimFleet::start(GbSimConfig {
        clip: clip(),
        media_fault: MediaFault::WrongSsrc,
        ..sim(addr, 10)
    })
    .await
    .unwrap();
    let garbage = GbSimFleet::start(GbSimConfig {
        clip: clip(),
        media_fault: MediaFault::GarbagePayload,
        ..sim(addr, 20)
    })
    .await
    .unwrap();
    let silent = GbSimFleet::start(GbSimConfig {
        clip: clip(),
        invite: InviteBehavior::Ignore,
        ..sim(addr, 30)
    })
    .await
    .unwrap();
    let failed_for = |s: &[GbEvent], dev: vigil_gb28181::gbid::GbId| -> Option<String> {
        s.iter().find_map(|e| match e {
            GbEvent::Media {
                device,
                state: MediaState::Failed { error, .. },
                ..
            } if *device == dev => Some(error.clone()),
            _ => None,
        })
    };
    let mut seen = Vec::new();
    let (w, g, q) = (
        wrong_ssrc.device_ids()[0],
        garbage.device_ids()[0],
        silent.device_ids()[0],
    );
    wait_for(&mut server.events, &mut seen, Duration::from_secs(20), "three failures and one stream", |s| {
        failed_for(s, w).is_some()
            && failed_for(s, g).is_some()
            && failed_for(s, q).is_some()
            && s.iter().any(|e| matches!(e, GbEvent::Media { device, state: MediaState::Streaming, .. } if *device == good.device_ids()[0]))
    })
    .await;
    let e = failed_for(&seen, w).unwrap();
    assert!(e.contains("rejected") && e.contains("SSRC"), "{e}");
    let e = failed_for(&seen, g).unwrap();
    assert!(e.contains("not an MPEG program stream"), "{e}");
    let e = failed_for(&seen, q).unwrap();
    assert!(e.contains("not answered"), "{e}");
    let m = server.handle.metrics();
    assert!(m.rtp_ssrc_mismatches >= 16 && m.ps_corrupt >= 1 && m.invites_unanswered >= 1);
    // None of the faulty channels produced a frame; the good one does.
    for f in [&wrong_ssrc, &garbage, &silent] {
        let key = ChannelKey {
            device: f.device_ids()[0],
            channel: f.channel_ids(0)[0],
        };
        assert!(!sinks
            .drain(&key)
            .iter()
            .any(|e| matches!(e, SourceEvent::Frame { .. })));
    }
    let key = ChannelKey {
        device: good.device_ids()[0],
        channel: good.channel_ids(0)[0],
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sinks
        .drain(&key)
        .iter()
        .any(|e| matches!(e, SourceEvent::Frame { .. })));
    let chans = server.handle.channels(Some(w)).await.unwrap();
    assert!(chans[0]
        .last_media_error
        .as_deref()
        .unwrap_or("")
        .contains("SSRC"));
    assert!(chans[0].counters.rtp_ssrc_mismatches >= 16);
    for f in [good, wrong_ssrc, garbage, silent] {
        f.stop(false).await;
    }
    server.handle.shutdown();
}

#[tokio::test]
async fn a_stalled_stream_is_interrupted_and_reinvited() {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.recording.mode = RecordingMode::All;
    cfg.media.no_rtp_timeout_secs = 1;
    cfg.media.retry_initial_secs = 1;
    let mut server = start(cfg, &sinks).await;
    let fleet = GbSimFleet::start(GbSimConfig {
        clip: clip(),
        media_fault: MediaFault::StopAfter(Duration::from_millis(800)),
        ..sim(server.handle.sip_udp_addr(), 1)
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(15),
        "stream, stall, stream again",
        |s| {
            count(s, |e| {
                matches!(
                    e,
                    GbEvent::Media {
                        state: MediaState::Streaming,
                        ..
                    }
                )
            }) >= 2
        },
    )
    .await;
    let failure = seen
        .iter()
        .find_map(|e| match e {
            GbEvent::Media {
                state: MediaState::Failed { error, retry_in },
                ..
            } => Some((error.clone(), *retry_in)),
            _ => None,
        })
        .unwrap();
    assert!(failure.0.contains("no RTP"), "{}", failure.0);
    assert_eq!(failure.1, Duration::from_secs(1));
    let key = ChannelKey {
        device: fleet.device_ids()[0],
        channel: fleet.channel_ids(0)[0],
    };
    let evs = sinks.drain(&key);
    let first_interrupt = evs
        .iter()
        .position(|e| matches!(e, SourceEvent::Interrupted { .. }))
        .expect("an Interrupted after the stall");
    assert!(first_interrupt > 10, "frames before the stall");
    let SourceEvent::Interrupted { reason, .. } = &evs[first_interrupt] else {
        unreachable!()
    };
    assert!(reason.contains("no RTP"));
    assert!(server.handle.metrics().invites_sent >= 2);
    fleet.stop(false).await;
    server.handle.shutdown();
}

#[tokio::test]
async fn keepalive_loss_and_a_dropped_tcp_connection_take_only_that_device_offline() {
    init_logging();
    let sinks = Sinks::default();
    let mut cfg = config();
    cfg.keepalive_interval_secs = 1;
    cfg.keepalive_max_missed = 2;
    let mut server = start(cfg, &sinks).await;
    let addr = server.handle.sip_udp_addr();
    let good = GbSimFleet::start(GbSimConfig {
        keepalive_interval: Duration::from_millis(400),
        ..sim(addr, 1)
    })
    .await
    .unwrap();
    let quiet = GbSimFleet::start(GbSimConfig {
        keepalive_interval: Duration::from_secs(600),
        ..sim(addr, 2)
    })
    .await
    .unwrap();
    let tcp = GbSimFleet::start(GbSimConfig {
        transport: SipTransport::Tcp,
        keepalive_interval: Duration::from_millis(400),
        ..sim(addr, 3)
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(10),
        "3 online",
        |s| count(s, |e| matches!(e, GbEvent::DeviceOnline { .. })) == 3,
    )
    .await;
    let q = quiet.device_ids()[0];
    wait_for(&mut server.events, &mut seen, Duration::from_secs(6), "keepalive timeout", |s| {
        s.iter().any(|e| matches!(e, GbEvent::DeviceOffline { device, reason: OfflineReason::KeepaliveTimeout, .. } if *device == q))
    })
    .await;
    // The TCP device's process dies: its connection drops.
    let t = tcp.device_ids()[0];
    tcp.stop(false).await;
    wait_for(&mut server.events, &mut seen, Duration::from_secs(5), "transport lost", |s| {
        s.iter().any(|e| matches!(e, GbEvent::DeviceOffline { device, reason: OfflineReason::TransportLost, .. } if *device == t))
    })
    .await;
    let g = good.device_ids()[0];
    assert!(!seen
        .iter()
        .any(|e| matches!(e, GbEvent::DeviceOffline { device, .. } if *device == g)));
    assert!(server.handle.device(g).await.unwrap().unwrap().online);
    let v = server.handle.device(t).await.unwrap().unwrap();
    assert!(!v.online && !v.registered);
    good.stop(false).await;
    quiet.stop(false).await;
    server.handle.shutdown();
}
