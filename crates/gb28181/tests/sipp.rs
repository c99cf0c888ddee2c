//! The server against sipp (Debian's `sip-tester`; `scripts/ensure-test-deps` installs it),
//! with the scenarios in `tests/sipp/`: registration with a 401 digest challenge computed by
//! sipp's `[authentication]`, keepalives, unregistration, a wrong password until the source is
//! banned, and a multi-packet GB2312 catalog built from real Dahua IVSS bodies.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::*;
use vigil_gb28181::catalog::Completion;
use vigil_gb28181::quirks::Quirk;
use vigil_gb28181::registry::OfflineReason;
use vigil_gb28181::server::{GbConfig, GbEvent};

fn scenario(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "sipp",
        name,
    ]
    .iter()
    .collect();
    p.to_string_lossy().into_owned()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs sipp as device `device` against the server; panics (with sipp's output) if sipp is
/// missing.
async fn sipp(
    server: std::net::SocketAddr,
    device: &str,
    password: &str,
    main: &str,
    ooc: &str,
) -> Output {
    let trace_dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let out = tokio::process::Command::new("sipp")
        .current_dir(trace_dir.path())
        .args([
            &server.to_string(),
            "-sf",
            &scenario(main),
            "-oocsf",
            &scenario(ooc),
            "-s",
            device,
            "-au",
            device,
            "-ap",
            password,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "u1",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
            "-nd",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("sipp runs (install it with scripts/ensure-test-deps)");
    if !out.status.success() {
        let errs: String = std::fs::read_dir(trace_dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        eprintln!(
            "sipp failed: {}\nstdout:\n{}\nstderr:\n{}\ntraces:\n{errs}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

const IPC: &str = "34020000001320000077";

#[tokio::test]
async fn sipp_registers_with_digest_keeps_alive_and_unregisters() {
    init_logging();
    let sinks = Sinks::default();
    let mut server = start(config(), &sinks).await;
    let out = sipp(
        server.handle.sip_udp_addr(),
        IPC,
        PASSWORD,
        "register_keepalive_unregister.xml",
        "ooc_answer.xml",
    )
    .await;
    assert!(out.status.success(), "sipp scenario failed");
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(5),
        "register, online, offline",
        |s| {
            s.iter().any(
                |e| matches!(e, GbEvent::DeviceRegistered { device, .. } if device.as_str() == IPC),
            ) && s.iter().any(|e| matches!(e, GbEvent::DeviceOnline { .. }))
                && s.iter().any(|e| {
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
    let GbEvent::DeviceRegistered {
        user_agent,
        expires,
        ..
    } = seen
        .iter()
        .find(|e| matches!(e, GbEvent::DeviceRegistered { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(user_agent.as_deref(), Some("sipp-gb28181-ipc"));
    assert_eq!(*expires, Duration::from_secs(3600));
    let m = server.handle.metrics();
    assert_eq!(m.registrations, 1);
    assert_eq!(m.keepalives, 2);
    assert_eq!(m.unregistrations, 1);
    assert_eq!(m.auth_failures, 0);
    assert_eq!(
        m.subscriptions_unsupported, 1,
        "sipp refused the SUBSCRIBE with 489"
    );
    let v = server
        .handle
        .device(IPC.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!v.online && !v.registered);
    server.handle.shutdown();
}

#[tokio::test]
async fn sipp_with_a_wrong_password_is_refused_then_banned() {
    init_logging();
    let sinks = Sinks::default();
    let cfg = GbConfig {
        ban_max_failures: 3,
        ..config()
    };
    let mut server = start(cfg, &sinks).await;
    let out = sipp(
        server.handle.sip_udp_addr(),
        IPC,
        "not-the-password",
        "bad_password_until_banned.xml",
        "ooc_answer.xml",
    )
    .await;
    assert!(out.status.success(), "sipp scenario failed");
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(5),
        "ban",
        |s| s.iter().any(|e| matches!(e, GbEvent::SourceBanned { .. })),
    )
    .await;
    assert_eq!(count(&seen, |e| matches!(e, GbEvent::AuthFailed { .. })), 3);
    assert!(!seen
        .iter()
        .any(|e| matches!(e, GbEvent::DeviceRegistered { .. })));
    // The REGISTER after the ban was dropped without an answer.
    eventually(Duration::from_secs(3), "a dropped REGISTER", || {
        server.handle.metrics().banned_requests >= 1
    })
    .await;
    let m = server.handle.metrics();
    assert_eq!(m.auth_failures, 3);
    assert_eq!(m.bans, 1);
    let v = server.handle.device(IPC.parse().unwrap()).await.unwrap();
    assert!(v.is_none(), "a device that never registered has no record");
    server.handle.shutdown();
}

#[tokio::test]
async fn sipp_answers_the_catalog_query_with_four_gb2312_packets() {
    init_logging();
    let sinks = Sinks::default();
    let mut server = start(config(), &sinks).await;
    let nvr = "34020000001180000001";
    let out = sipp(
        server.handle.sip_udp_addr(),
        nvr,
        PASSWORD,
        "register_wait_unregister.xml",
        "ooc_catalog_dahua_ivss.xml",
    )
    .await;
    assert!(out.status.success(), "sipp scenario failed");
    let mut seen = Vec::new();
    wait_for(
        &mut server.events,
        &mut seen,
        Duration::from_secs(5),
        "catalog",
        |s| s.iter().any(|e| matches!(e, GbEvent::Catalog { .. })),
    )
    .await;
    let GbEvent::Catalog {
        device, catalog, ..
    } = seen
        .iter()
        .find(|e| matches!(e, GbEvent::Catalog { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(device.as_str(), nvr);
    assert_eq!(catalog.completion, Completion::Complete);
    assert_eq!(catalog.packets, 4);
    assert_eq!(catalog.announced, Some(4));
    let names: Vec<_> = catalog
        .entries
        .iter()
        .map(|e| {
            (
                e.item.device_id.as_str(),
                e.item.name.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("34020000001310000002", "GB_Chn_002"),
            ("34020000001310000003", "1.64 海康摄像机"),
            ("34020000001310000004", "1.64 海康摄像机"),
            ("34020000001310000001", "大华1.107"),
        ]
    );
    let first = &catalog.entries[0].item;
    assert_eq!(
        first.ip(),
        Some("192.168.1.64".parse().unwrap()),
        "RTSP URL in IPAddress"
    );
    assert_eq!(
        first.civil_code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("340200")
    );
    assert_eq!(first.parent_ids(), vec![nvr]);
    // The RTSP URL in <IPAddress> is a named quirk, reported once for the device.
    assert!(seen.iter().any(|e| matches!(e,
        GbEvent::QuirksSeen { quirks, .. } if quirks.contains(&Quirk::UrlInIpAddress.name()))));
    let m = server.handle.metrics();
    assert_eq!(m.catalogs_complete, 1);
    assert_eq!(m.bad_bodies, 0);
    server.handle.shutdown();
}
