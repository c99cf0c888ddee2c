//! GB/T 28181 through the real `vigil` daemon:
//! - a third-party device implementation (`gb28181-rs` 0.14.1, GB/T 28181-2022 `X-GB-Ver:
//!   3.0`) registers with digest authentication, answers the catalog and streams PS; the
//!   daemon files its channel as a camera, follows its liveness in the online history,
//!   records it into the segment store, and the recording exported through the API passes
//!   ffprobe; an operator stops the recording and re-queries the catalog through the API; the
//!   device's password appears in no log line and no answer;
//! - sipp (a second independent SIP stack): registration with a 401 digest challenge,
//!   keepalives, unregistration, a multi-packet GB2312 catalog of real Dahua IVSS bodies filed
//!   in the grid its CivilCode maps to, and a wrong password until the source is banned;
//! - faults: garbage datagrams, truncated SIP, non-well-formed XML, a catalog with a wrong
//!   SumNum, RTP with the wrong SSRC, PS with broken start codes and with garbage, a device
//!   that never answers the INVITE — each logged with the device ID and counted in the API's
//!   metrics, while a good device keeps being recorded; catalog notifications (OFF, VLOST,
//!   DEL, ADD) reach the register and the histories;
//! - cascade: one vigil registers upward to another; its uplink history makes its shared
//!   camera count as networked, and the upper vigil files that camera and records it through
//!   the relay;
//! - `vigil demo`: its simulated NVR's channels are filed in the town's streets by CivilCode.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Client, Daemon, Env};
use vigil_core::id::CivilCode;
use vigil_gb28181::manscdp::{CatalogEvent, CatalogItem, ChannelStatus};
use vigil_sim::gb::{GbClip, GbSimConfig, GbSimFleet, InviteBehavior, MediaFault};

const PASSWORD: &str = "gb-e2e-Secret-7731";
const SERVER_ID: &str = "34020000002000000001";
const DOMAIN: &str = "3402000000";

/// Recording into the store with short segments and fragments (so that a few seconds of video
/// are committed and exportable).
const FAST_RECORDING: &str =
    "[recording]\nenabled = true\nsegment_secs = 2\nmax_fragment_ms = 1000\n";

/// The wall clock in milliseconds.
fn now_ms() -> i64 {
    vigil_core::time::Timestamp::from_system_time(std::time::SystemTime::now()).as_millis()
}

/// Milliseconds as RFC 3339 text (for query strings).
fn rfc3339(ms: i64) -> String {
    vigil_core::time::Timestamp::from_millis(ms).to_string()
}

/// Polls `check` every 100 ms until it returns `Ok`, or panics after `limit` naming `what`
/// and what it saw last.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if std::time::Instant::now() > deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `GET /cameras/{id}/recorder`.
fn recorder(api: &Client, camera: &str) -> Value {
    api.get(&format!("/api/v1/cameras/{camera}/recorder"))
        .expect(200)
        .json()
}

/// Waits until the camera records and has at least `seconds` of video committed.
fn wait_recording(api: &Client, camera: &str, seconds: f64) {
    wait_for(
        &format!("camera {camera} recording {seconds} s"),
        Duration::from_secs(40),
        || {
            let r = api.get(&format!("/api/v1/cameras/{camera}/recorder"));
            if r.status != 200 {
                return Err(r.text());
            }
            let s = r.json();
            let ms = |v: &Value| {
                v.as_str()
                    .and_then(|t| vigil_core::time::Timestamp::parse_rfc3339(t).ok())
                    .map(|t| t.as_millis())
            };
            let recorded = ms(&s["recorder"]["committed_end"])
                .zip(ms(&s["recorder"]["since"]))
                .map(|(end, since)| (end - since) as f64 / 1000.0);
            match (s["state"].as_str(), recorded) {
                (Some("recording"), Some(r)) if r >= seconds => Ok(()),
                _ => Err(s.to_string()),
            }
        },
    );
}

/// A daemon configuration: fast recording, the GB/T 28181 server on a free loopback port with
/// short timers, CivilCode 3402 → grid `gb-city`, unmapped channels in `gb-unmapped`.
fn config(recording_mode: &str, top: &str) -> String {
    Conf {
        recording_mode,
        top,
        ..Conf::default()
    }
    .text()
}

/// The variable parts of [`config`].
struct Conf<'a> {
    recording_mode: &'a str,
    /// Keys of `[gb28181]`.
    top: &'a str,
    /// `[gb28181.filing] shared_upward`.
    shared_upward: bool,
    /// `[gb28181.catalog] refresh_interval_secs`.
    catalog_refresh_secs: u64,
    /// Tables appended at the end (`[[gb28181.uplinks]]`).
    tail: &'a str,
}

impl Default for Conf<'_> {
    fn default() -> Self {
        Conf {
            recording_mode: "none",
            top: "",
            shared_upward: false,
            catalog_refresh_secs: 0,
            tail: "",
        }
    }
}

impl Conf<'_> {
    fn text(&self) -> String {
        let Conf {
            recording_mode,
            top,
            shared_upward,
            catalog_refresh_secs,
            tail,
        } = self;
        format!(
            "{FAST_RECORDING}\n\
             [gb28181]\n\
             enabled = true\n\
             listen = \"127.0.0.1:0\"\n\
             default_password = \"{PASSWORD}\"\n\
             {top}\n\
             [gb28181.civil_codes]\n\
             \"3402\" = \"gb-city\"\n\
             [gb28181.filing]\n\
             unmapped_grid = \"gb-unmapped\"\n\
             shared_upward = {shared_upward}\n\
             [gb28181.catalog]\n\
             refresh_interval_secs = {catalog_refresh_secs}\n\
             quiet_timeout_secs = 2\n\
             no_response_timeout_secs = 5\n\
             [gb28181.media]\n\
             rtp_ports = {{ start = 0, end = 0 }}\n\
             invite_timeout_secs = 2\n\
             retry_initial_secs = 30\n\
             [gb28181.recording]\n\
             mode = \"{recording_mode}\"\n\
             {tail}\n"
        )
    }
}

/// Starts the daemon, files the two grids, returns the daemon, an admin client and the SIP
/// address.
fn start(env: &Env) -> (Daemon, Client, SocketAddr) {
    let token = env.token("admin", "gb e2e");
    let daemon = env.start();
    let api = daemon.client(Some(&token));
    for (code, name) in [("gb-city", "合肥市"), ("gb-unmapped", "未映射")] {
        api.post_json(
            "/api/v1/grids",
            &json!({"code": code, "name": name, "level_label": "市"}),
        )
        .expect(201);
    }
    let server = api.get("/api/v1/gb28181").expect(200).json();
    let sip: SocketAddr = server["sip_udp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SIP address in {server}"));
    (daemon, api, sip)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A token of `role`, created through the API (the CLI cannot while the daemon runs).
fn token(api: &Client, role: &str) -> String {
    let t = api
        .post_json(
            "/api/v1/tokens",
            &json!({"role": role, "name": format!("gb e2e {role}")}),
        )
        .expect(201)
        .json();
    t["token"].as_str().unwrap_or_default().to_owned()
}

fn metric(api: &Client, name: &str) -> u64 {
    let s = api.get("/api/v1/gb28181").expect(200).json();
    s["metrics"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no metric {name} in {}", s["metrics"]))
}

fn channels(api: &Client, device: &str) -> Vec<Value> {
    api.get(&format!("/api/v1/gb28181/devices/{device}/channels"))
        .expect(200)
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn channel(api: &Client, device: &str, id: &str) -> Value {
    channels(api, device)
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no channel {id} on device {device}"))
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[path = "support/gb28181_rs_feed.rs"]
mod feed;

mod interop {
    use super::feed::feed;
    use super::*;
    use gb28181_rs::config::Transport as DevTransport;
    use gb28181_rs::mock::MockFrameHub;
    use gb28181_rs::{Gb28181Config, Gb28181Server};

    /// gb28181-rs lists the device itself as its only catalog item (crates/gb28181/testdata/
    /// interop): that is the channel.
    const DEVICE: &str = "34020000001320000101";

    #[test]
    fn a_third_party_device_is_filed_followed_recorded_and_exported() {
        let env = Env::new(&config("all", "keepalive_interval_secs = 20"));
        let (daemon, api, sip) = start(&env);
        let started = now_ms();
        let rt = runtime();
        let clip = GbClip::demo_h264().expect("the demo clip");
        let hub = Arc::new(MockFrameHub::new());
        let feeder = {
            let _guard = rt.enter();
            feed(hub.clone(), clip)
        };
        let mut device = rt
            .block_on(
                Gb28181Server::new(
                    Gb28181Config {
                        enabled: true,
                        platform_sip_address: "127.0.0.1".into(),
                        platform_sip_port: sip.port(),
                        device_id: DEVICE.into(),
                        channel_id: "34020000001310000101".into(),
                        sip_domain: DOMAIN.into(),
                        password: PASSWORD.into(),
                        local_sip_port: free_udp_port(),
                        register_interval_secs: 3600,
                        heartbeat_interval_secs: 20,
                        heartbeat_timeout_count: 3,
                        transport: DevTransport::Udp,
                        manufacturer: Some("interop-peer".into()),
                        model: Some("gb28181-rs".into()),
                        device_name: Some("第三方设备".into()),
                        protocol_version: Some("3.0".into()),
                        ..Gb28181Config::default()
                    },
                    hub,
                )
                .spawn(),
            )
            .expect("gb28181-rs device starts");

        assert_eq!(
            api.get("/api/v1/gb28181").expect(200).json()["server"]["sip_id"],
            SERVER_ID
        );
        // Registered and online, as GB/T 28181-2022, with its DeviceInfo.
        let dev = wait_for("the device online", Duration::from_secs(20), || {
            let r = api.get(&format!("/api/v1/gb28181/devices/{DEVICE}"));
            let d = r.json();
            match (r.status, d["online"].as_bool(), d["manufacturer"].as_str()) {
                (200, Some(true), Some(_)) => Ok(d),
                _ => Err(d.to_string()),
            }
        });
        assert_eq!(dev["registered"], true);
        assert_eq!(dev["version"], "2022", "{dev}");
        assert_eq!(dev["x_gb_ver"], "3.0");
        assert_eq!(dev["manufacturer"], "interop-peer");
        assert!(dev["last_keepalive"].is_string(), "{dev}");
        let events: Vec<&str> = dev["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["event"].as_str())
            .collect();
        assert_eq!(events, ["registered", "online"], "{dev}");

        // Its channel is a camera in the register: no CivilCode, so in the unmapped grid.
        let camera = wait_for("the camera filed", Duration::from_secs(15), || {
            let r = api.get(&format!("/api/v1/cameras/{DEVICE}"));
            match r.status {
                200 => Ok(r.json()),
                _ => Err(r.text()),
            }
        });
        let record = &camera["record"];
        assert_eq!(record["source"], "gb", "{camera}");
        assert_eq!(record["gb_device_id"], DEVICE);
        assert_eq!(record["gb_channel_id"], DEVICE);
        assert_eq!(record["grid"], "gb-unmapped");
        assert_eq!(record["registration"], "not_filed");
        let ch = channel(&api, DEVICE, DEVICE);
        assert_eq!(ch["kind"], "video_channel", "{ch}");
        assert_eq!(ch["filing"]["state"], "filed");
        assert_eq!(ch["filing"]["camera"], DEVICE);
        let report = api.get("/api/v1/gb28181/civil-codes").expect(200).json();
        assert_eq!(report["unmapped_grid"], "gb-unmapped");
        let none = report["unmapped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["civil_code"].is_null())
            .unwrap_or_else(|| panic!("{report}"));
        assert_eq!(none["channels"], 1);
        assert_eq!(none["examples"][0], format!("{DEVICE}/{DEVICE}"));
        assert_eq!(report["mappings"][0]["civil_code"], "3402");
        assert_eq!(report["mappings"][0]["grid_exists"], true);

        // Online history and recording into the store, like an RTSP camera.
        wait_for("online now", Duration::from_secs(10), || {
            let c = api
                .get(&format!("/api/v1/cameras/{DEVICE}"))
                .expect(200)
                .json();
            if c["online"] == true {
                Ok(())
            } else {
                Err(c.to_string())
            }
        });
        wait_recording(&api, DEVICE, 3.0);
        let ch = channel(&api, DEVICE, DEVICE);
        assert_eq!(ch["session"], "streaming", "{ch}");
        assert!(ch["counters"]["frames"].as_u64().unwrap_or(0) > 50, "{ch}");
        assert_eq!(ch["counters"]["rtp_ssrc_mismatches"], 0);

        // The recording, exported through the API, passes ffprobe.
        let list = api
            .get(&format!(
                "/api/v1/cameras/{DEVICE}/recordings?from={}&to={}",
                rfc3339(started - 1000),
                rfc3339(now_ms() + 1000)
            ))
            .expect(200)
            .json();
        let run = &list["runs"][0];
        assert!(list["recorded_ms"].as_i64().unwrap_or(0) >= 2500, "{list}");
        let mp4 = api
            .get(&format!(
                "/api/v1/cameras/{DEVICE}/recording.mp4?start={}&end={}",
                run["start"].as_str().unwrap(),
                run["end"].as_str().unwrap()
            ))
            .expect(200);
        assert_eq!(mp4.header("content-type"), Some("video/mp4"));
        let file: PathBuf = env.path("gb28181-rs.mp4");
        std::fs::write(&file, &mp4.body).unwrap();
        let probe = vigil_store::testing::ffprobe(&file);
        assert_eq!(
            (probe.codec.as_str(), probe.width, probe.height),
            ("h264", 1280, 720)
        );
        assert!(probe.frames >= 50, "{probe:?}");

        // An operator (not an integrator) stops the recording; it is audited.
        let integrator = api.with_token(&token(&api, "integrator"));
        let path = format!("/api/v1/gb28181/devices/{DEVICE}/channels/{DEVICE}/recording");
        integrator
            .put_json(&path, &json!({"recording": "off"}))
            .problem(403);
        api.put_json(&path, &json!({"recording": "maybe"}))
            .problem(400);
        let operator = api.with_token(&token(&api, "operator"));
        let ch = operator
            .put_json(&path, &json!({"recording": "off"}))
            .expect(200)
            .json();
        assert_eq!(ch["recording"]["override"], "off", "{ch}");
        assert_eq!(ch["recording"]["wanted"], false);
        wait_for("the recorder idle", Duration::from_secs(10), || {
            let s = recorder(&api, DEVICE);
            match s["state"].as_str() {
                Some("idle") => Ok(()),
                _ => Err(s.to_string()),
            }
        });
        let audit = api.get("/api/v1/audit?limit=1000").expect(200).json();
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"gb28181.recording"), "{actions:?}");
        assert!(actions.contains(&"camera.gb_catalog"), "{actions:?}");

        // Re-querying the catalog is accepted; its answer files nothing new.
        let sn = operator
            .post_json(
                &format!("/api/v1/gb28181/devices/{DEVICE}/catalog-query"),
                &json!({}),
            )
            .expect(202)
            .json();
        assert!(sn["sn"].as_u64().is_some(), "{sn}");
        api.post_json(
            "/api/v1/gb28181/devices/34020000001320009999/catalog-query",
            &json!({}),
        )
        .problem(404);

        // The device unregisters: offline, and the camera's online interval is closed.
        rt.block_on(async {
            let _ = device.shutdown_with_deregister().await;
        });
        feeder.abort();
        wait_for("the device offline", Duration::from_secs(10), || {
            let d = api
                .get(&format!("/api/v1/gb28181/devices/{DEVICE}"))
                .expect(200)
                .json();
            let last = d["transitions"]
                .as_array()
                .and_then(|t| t.last())
                .cloned()
                .unwrap_or_default();
            if d["online"] == false && last["event"] == "offline" {
                Ok(last)
            } else {
                Err(d.to_string())
            }
        });
        let history = api
            .get(&format!(
                "/api/v1/cameras/{DEVICE}/history?kind=online&from={}",
                rfc3339(started - 1000)
            ))
            .expect(200)
            .json();
        let intervals = history.as_array().unwrap();
        assert_eq!(intervals.len(), 1, "{history}");
        assert!(intervals[0]["end"].is_string(), "closed: {history}");

        // The password is nowhere: not in the answers, not in the logs.
        let mut answers = String::new();
        for p in [
            "/api/v1/gb28181".to_owned(),
            "/api/v1/gb28181/devices".to_owned(),
            format!("/api/v1/gb28181/devices/{DEVICE}"),
            format!("/api/v1/gb28181/devices/{DEVICE}/channels"),
            "/api/v1/gb28181/civil-codes".to_owned(),
            "/api/v1/health".to_owned(),
        ] {
            answers.push_str(&api.get(&p).expect(200).text());
        }
        assert!(!answers.contains(PASSWORD));
        let logs = daemon.logs();
        assert!(logs.contains(DEVICE), "the logs name the device");
        assert!(
            !logs.contains(PASSWORD),
            "the password leaked into the logs"
        );
        daemon.stop();
    }
}

mod sipp {
    use super::*;
    use std::process::Output;

    fn scenario(name: &str) -> String {
        format!("{}/../../tests/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// Runs sipp as device `device` (password `password`) against `server`.
    fn sipp(server: SocketAddr, device: &str, password: &str, main: &str, ooc: &str) -> Output {
        let trace_dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sipp")
            .current_dir(trace_dir.path())
            .arg(server.to_string())
            .args(["-sf", &scenario(main), "-oocsf", &scenario(ooc)])
            .args(["-s", device, "-au", device, "-ap", password])
            .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
            .args(["-t", "u1", "-m", "1", "-nostdin", "-timeout", "30s"])
            .args(["-timeout_error", "-trace_err", "-nd"])
            .output()
            .expect("sipp runs (install it with scripts/ensure-test-deps)");
        if !out.status.success() {
            let traces: String = std::fs::read_dir(trace_dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            eprintln!(
                "sipp failed: {}\nstdout:\n{}\nstderr:\n{}\ntraces:\n{traces}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out
    }

    const IPC: &str = "34020000001320000077";
    const NVR: &str = "34020000001180000001";

    #[test]
    fn sipp_registers_keeps_alive_files_a_gb2312_catalog_and_is_banned_for_a_bad_password() {
        let env = Env::new(&config("none", "ban_max_failures = 3\nban_secs = 600"));
        let (daemon, api, sip) = start(&env);

        // Register (401 challenge, digest), two keepalives, unregister.
        let out = sipp(
            sip,
            IPC,
            PASSWORD,
            "register_keepalive_unregister.xml",
            "ooc_answer.xml",
        );
        assert!(out.status.success(), "sipp scenario failed");
        let d = wait_for("the IPC unregistered", Duration::from_secs(10), || {
            let r = api.get(&format!("/api/v1/gb28181/devices/{IPC}"));
            let d = r.json();
            let events: Vec<String> = d["transitions"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|e| e["event"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if events == ["registered", "online", "offline"] {
                Ok(d)
            } else {
                Err(d.to_string())
            }
        });
        assert_eq!(d["registered"], false);
        assert_eq!(d["user_agent"], "sipp-gb28181-ipc");
        assert_eq!(d["version"], "2016", "no X-GB-Ver: the 2016 edition");
        assert_eq!(d["transitions"][2]["detail"], "Unregistered");
        assert_eq!(metric(&api, "registrations"), 1);
        assert_eq!(metric(&api, "keepalives"), 2);
        assert_eq!(metric(&api, "unregistrations"), 1);
        assert_eq!(metric(&api, "auth_failures"), 0);

        // An NVR answers the catalog query with four GB2312 packets of a real Dahua IVSS:
        // its four channels are filed in the grid their CivilCode 340200 maps to.
        let out = sipp(
            sip,
            NVR,
            PASSWORD,
            "register_wait_unregister.xml",
            "ooc_catalog_dahua_ivss.xml",
        );
        assert!(out.status.success(), "sipp scenario failed");
        let cams = wait_for("four cameras", Duration::from_secs(10), || {
            let page = api.get("/api/v1/cameras?grid=gb-city").expect(200).json();
            if page["total"] == 4 {
                Ok(page)
            } else {
                Err(page.to_string())
            }
        });
        let names: Vec<(&str, &str)> = cams["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["record"]["id"].as_str().unwrap_or(""),
                    c["record"]["name"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("34020000001310000001", "大华1.107"),
                ("34020000001310000002", "GB_Chn_002"),
                ("34020000001310000003", "1.64 海康摄像机"),
                ("34020000001310000004", "1.64 海康摄像机"),
            ]
        );
        let ch = channel(&api, NVR, "34020000001310000002");
        assert_eq!(ch["civil_code"], "340200");
        assert_eq!(ch["parents"], json!([NVR]));
        assert_eq!(ch["manufacturer"], "General");
        assert_eq!(ch["model"], "DH-IVSS708-S1");
        assert_eq!(ch["filing"]["grid"], "gb-city");
        assert_eq!(
            ch["filing"]["detail"],
            "CivilCode 340200 → 3402 → grid gb-city"
        );
        let report = api.get("/api/v1/gb28181/civil-codes").expect(200).json();
        assert_eq!(report["mappings"][0]["channels"], 4, "{report}");
        assert_eq!(metric(&api, "catalogs_complete"), 1);
        assert_eq!(metric(&api, "daemon_cameras_filed"), 4);

        // A wrong password: refused three times, then the source is banned.
        let out = sipp(
            sip,
            "34020000001320000078",
            "not-the-password",
            "bad_password_until_banned.xml",
            "ooc_answer.xml",
        );
        assert!(out.status.success(), "sipp scenario failed");
        wait_for("the ban", Duration::from_secs(5), || {
            match (metric(&api, "bans"), metric(&api, "banned_requests")) {
                (1, b) if b >= 1 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        assert_eq!(metric(&api, "auth_failures"), 3);
        api.get("/api/v1/gb28181/devices/34020000001320000078")
            .problem(404);
        assert!(!daemon.logs().contains(PASSWORD));
        daemon.stop();
    }
}

mod faults {
    use super::*;
    use tokio::net::UdpSocket;

    fn sim(server: SocketAddr, first_serial: u32) -> GbSimConfig {
        GbSimConfig {
            server,
            server_id: SERVER_ID.into(),
            domain: DOMAIN.into(),
            password: PASSWORD.into(),
            first_serial,
            civil_code: "340200".into(),
            clip: Some(Arc::new(GbClip::demo_h264().expect("the demo clip"))),
            ..GbSimConfig::default()
        }
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

    #[test]
    fn every_fault_is_logged_counted_and_isolated_while_a_good_device_records() {
        let env = Env::new(&config("all", ""));
        let (daemon, api, sip) = start(&env);
        let rt = runtime();
        let start = |cfg: GbSimConfig| {
            rt.block_on(GbSimFleet::start(cfg))
                .expect("simulated device starts")
        };
        let good = start(sim(sip, 1));
        let liar = start(GbSimConfig {
            channels_per_device: 3,
            sum_num_offset: 2,
            clip: None,
            invite: InviteBehavior::Reject(488),
            // Channel serials 300-302, apart from the others' (20, 30, …).
            ..sim(sip, 100)
        });
        let wrong_ssrc = start(GbSimConfig {
            media_fault: MediaFault::WrongSsrc,
            ..sim(sip, 20)
        });
        let broken_start_codes = start(GbSimConfig {
            media_fault: MediaFault::BrokenStartCodes,
            ..sim(sip, 30)
        });
        let garbage_ps = start(GbSimConfig {
            media_fault: MediaFault::GarbagePayload,
            ..sim(sip, 40)
        });
        let silent = start(GbSimConfig {
            invite: InviteBehavior::Ignore,
            ..sim(sip, 50)
        });
        let id = |f: &GbSimFleet| f.device_ids()[0].to_string();
        let ch = |f: &GbSimFleet| f.channel_ids(0)[0].to_string();
        wait_for("six devices online", Duration::from_secs(20), || {
            let page = api
                .get("/api/v1/gb28181/devices?online=true")
                .expect(200)
                .json();
            if page["total"] == 6 {
                Ok(())
            } else {
                Err(page["total"].to_string())
            }
        });

        // Garbage datagrams, a truncated SIP message and non-well-formed XML from the good
        // device's address book entry.
        let before = (metric(&api, "sip_parse_errors"), metric(&api, "bad_bodies"));
        rt.block_on(async {
            let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let me = raw.local_addr().unwrap();
            let mut x: u32 = 0x9e37_79b9;
            for len in [1usize, 13, 200, 1400, 9000] {
                let junk: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                raw.send_to(&junk, sip).await.unwrap();
            }
            let ka = message(&id(&good), me, 1, "<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>x</DeviceID><Status>OK</Status></Notify>");
            raw.send_to(&ka[..60], sip).await.unwrap();
            let bad = message(&id(&good), me, 2, "<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>x</DevID></Response>");
            raw.send_to(&bad, sip).await.unwrap();
        });
        wait_for(
            "garbage and bad XML counted",
            Duration::from_secs(10),
            || {
                let now = (metric(&api, "sip_parse_errors"), metric(&api, "bad_bodies"));
                if now.0 >= before.0 + 6 && now.1 > before.1 {
                    Ok(())
                } else {
                    Err(format!("{now:?}"))
                }
            },
        );
        let g = api
            .get(&format!("/api/v1/gb28181/devices/{}", id(&good)))
            .expect(200)
            .json();
        assert!(
            g["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("not well-formed"),
            "{g}"
        );

        // The lying catalog: kept, flagged, its channels filed.
        let l = wait_for("the liar's catalog", Duration::from_secs(15), || {
            let d = api
                .get(&format!("/api/v1/gb28181/devices/{}", id(&liar)))
                .expect(200)
                .json();
            if d["catalog_completion"] == "quiet_timeout" {
                Ok(d)
            } else {
                Err(d.to_string())
            }
        });
        let problems = l["catalog_problems"].to_string();
        assert!(problems.contains("FewerItemsThanAnnounced"), "{l}");
        assert_eq!(
            channels(&api, &id(&liar))
                .iter()
                .filter(|c| c["filing"]["state"] == "filed")
                .count(),
            3
        );
        assert!(metric(&api, "catalog_inconsistencies") >= 1);

        // Catalog notifications from the same device: OFF takes a camera offline, VLOST is a
        // failed signal-loss diagnosis, DEL removes a channel (its camera stays, offline),
        // ADD files a new one.
        let liar_id = id(&liar);
        let liar_ch: Vec<String> = liar.channel_ids(0).iter().map(|c| c.to_string()).collect();
        let online = |camera: &str| {
            api.get(&format!("/api/v1/cameras/{camera}"))
                .expect(200)
                .json()["online"]
                .as_bool()
                .unwrap_or(false)
        };
        wait_for(
            "the liar's cameras online",
            Duration::from_secs(10),
            || match liar_ch.iter().all(|c| online(c)) {
                true => Ok(()),
                false => Err("not all online".to_owned()),
            },
        );
        let notify = |id: &str, event: CatalogEvent| CatalogItem {
            device_id: id.to_owned(),
            event: Some(event),
            ..CatalogItem::default()
        };
        let added = "34020000001310000399";
        let (group, org) = ("34020000002150000001", "34020000002160000001");
        let items = vec![
            notify(&liar_ch[0], CatalogEvent::Off),
            notify(&liar_ch[1], CatalogEvent::VideoLost),
            notify(&liar_ch[2], CatalogEvent::Del),
            CatalogItem {
                name: Some("治安业务分组".into()),
                ..notify(group, CatalogEvent::Add)
            },
            CatalogItem {
                name: Some("东区".into()),
                business_group_id: Some(group.into()),
                parent_id: Some(group.into()),
                ..notify(org, CatalogEvent::Add)
            },
            CatalogItem {
                name: Some("新增通道".into()),
                civil_code: CivilCode::parse("340201").ok(),
                parent_id: Some(format!("{liar_id}/{org}")),
                status: Some(ChannelStatus::On),
                ..notify(added, CatalogEvent::Add)
            },
        ];
        rt.block_on(liar.notify_catalog(0, items))
            .expect("notified");
        wait_for("the changes applied", Duration::from_secs(10), || {
            let removed = channel(&api, &liar_id, &liar_ch[2]);
            let new = api.get(&format!("/api/v1/cameras/{added}"));
            match (
                online(&liar_ch[0]),
                removed["filing"]["state"].as_str(),
                online(&liar_ch[2]),
                new.status,
            ) {
                (false, Some("removed"), false, 200) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        assert!(online(&liar_ch[1]), "video lost is not offline");
        let diagnoses = api
            .get(&format!("/api/v1/cameras/{}/diagnoses", liar_ch[1]))
            .expect(200)
            .json();
        assert_eq!(diagnoses[0]["check"], "signal_loss", "{diagnoses}");
        assert_eq!(diagnoses[0]["passed"], false);
        assert_eq!(
            api.get(&format!("/api/v1/cameras/{added}"))
                .expect(200)
                .json()["record"]["grid"],
            "gb-city"
        );
        // The business group (215) and virtual organisation (216) form the tree; the new
        // channel has two parents (GB/T 28181-2022).
        let g = channel(&api, &liar_id, group);
        assert_eq!(g["kind"], "business_group", "{g}");
        assert_eq!(g["filing"]["state"], "not_video");
        assert_eq!(g["children"], json!([org]));
        let o = channel(&api, &liar_id, org);
        assert_eq!(o["kind"], "virtual_organisation", "{o}");
        assert_eq!(o["business_group"], group);
        assert_eq!(o["children"], json!([added]));
        let n = channel(&api, &liar_id, added);
        assert_eq!(n["parents"], json!([liar_id, org]), "{n}");

        // Media faults fail (or degrade) only their own channel.
        let failed = |f: &GbSimFleet, needle: &str| {
            wait_for(
                &format!("{needle} on {}", id(f)),
                Duration::from_secs(20),
                || {
                    let c = channel(&api, &id(f), &ch(f));
                    match c["last_media_error"].as_str() {
                        Some(e) if e.contains(needle) => Ok(c),
                        _ => Err(c.to_string()),
                    }
                },
            )
        };
        let w = failed(&wrong_ssrc, "SSRC");
        assert!(w["counters"]["rtp_ssrc_mismatches"].as_u64().unwrap_or(0) >= 16);
        assert_eq!(w["counters"]["frames"], 0);
        let p = failed(&garbage_ps, "not an MPEG program stream");
        assert_eq!(p["counters"]["frames"], 0);
        let s = failed(&silent, "not answered");
        assert_eq!(s["session"], "backoff", "{s}");
        let b = wait_for(
            "frames despite broken start codes",
            Duration::from_secs(20),
            || {
                let c = channel(&api, &id(&broken_start_codes), &ch(&broken_start_codes));
                let n = |k: &str| c["counters"][k].as_u64().unwrap_or(0);
                if n("ps_corrupt") >= 3 && n("frames") >= 20 {
                    Ok(c)
                } else {
                    Err(c.to_string())
                }
            },
        );
        assert_eq!(b["session"], "streaming", "{b}");
        assert!(metric(&api, "rtp_ssrc_mismatches") >= 16);
        assert!(metric(&api, "ps_corrupt") >= 4);
        assert!(metric(&api, "invites_unanswered") >= 1);
        assert!(metric(&api, "invites_rejected") >= 1);

        // The good device was recorded throughout and is still online.
        wait_recording(&api, &ch(&good), 3.0);
        let d = api
            .get(&format!("/api/v1/gb28181/devices/{}", id(&good)))
            .expect(200)
            .json();
        assert_eq!(d["online"], true);
        assert_eq!(d["transitions"].as_array().map(Vec::len), Some(2), "{d}");

        // Each fault is in the log with its device.
        let logs = daemon.logs();
        for (f, what) in [
            (&wrong_ssrc, "RTP packet dropped"),
            (&garbage_ps, "media session failed"),
            (&silent, "media session failed"),
            (&broken_start_codes, "PS data dropped"),
        ] {
            assert!(
                logs.lines().any(|l| l.contains(&id(f)) && l.contains(what)),
                "no log line naming {} with {what:?}",
                id(f)
            );
        }
        assert!(
            logs.lines()
                .any(|l| l.contains(&id(&liar)) && l.contains("catalog does not add up")),
            "the lying catalog is logged with its device"
        );
        for f in [
            good,
            liar,
            wrong_ssrc,
            broken_start_codes,
            garbage_ps,
            silent,
        ] {
            rt.block_on(f.stop(false));
        }
        daemon.stop();
    }
}

mod cascade {
    use super::*;

    /// vigil A (a lower platform) registers upward to vigil B: A's uplink history says
    /// connected, so A's shared camera counts as networked; B queries A's catalog (the cameras
    /// A shares), files A's camera, INVITEs it through A (which relays its device's PS) and
    /// records it.
    #[test]
    fn a_lower_vigil_registers_upward_shares_its_camera_and_the_upper_one_records_it() {
        let upper = Env::new(
            &Conf {
                recording_mode: "all",
                catalog_refresh_secs: 2,
                ..Conf::default()
            }
            .text(),
        );
        let (upper_daemon, upper_api, upper_sip) = start(&upper);
        const LOWER_ID: &str = "34020000002000000002";
        let tail = format!(
            "[[gb28181.uplinks]]\n\
             name = \"upper-vigil\"\n\
             upper_id = \"{SERVER_ID}\"\n\
             upper_domain = \"{DOMAIN}\"\n\
             addr = \"{upper_sip}\"\n\
             password = \"{PASSWORD}\"\n\
             keepalive_interval_secs = 5\n"
        );
        let top = format!("sip_id = \"{LOWER_ID}\"\nshared_catalog_refresh_secs = 1");
        let lower = Env::new(
            &Conf {
                recording_mode: "all",
                top: &top,
                shared_upward: true,
                tail: &tail,
                ..Conf::default()
            }
            .text(),
        );
        let (lower_daemon, lower_api, lower_sip) = start(&lower);
        let rt = runtime();
        let fleet = rt
            .block_on(GbSimFleet::start(GbSimConfig {
                server: lower_sip,
                server_id: LOWER_ID.into(),
                domain: DOMAIN.into(),
                password: PASSWORD.into(),
                civil_code: "340200".into(),
                clip: Some(Arc::new(GbClip::demo_h264().expect("the demo clip"))),
                ..GbSimConfig::default()
            }))
            .expect("the simulated device starts");
        let camera = fleet.channel_ids(0)[0].to_string();

        // The lower vigil files and records its device's channel, shared upward, and its
        // uplink is registered: the camera counts as networked.
        wait_recording(&lower_api, &camera, 2.0);
        let rec = lower_api
            .get(&format!("/api/v1/cameras/{camera}"))
            .expect(200)
            .json();
        assert_eq!(rec["record"]["shared_upward"], true, "{rec}");
        wait_for("the uplink registered", Duration::from_secs(15), || {
            let u = lower_api.get("/api/v1/uplinks").expect(200).json();
            if u[0]["platform"] == SERVER_ID && u[0]["registered"] == true {
                Ok(())
            } else {
                Err(u.to_string())
            }
        });
        let up = lower_api.get("/api/v1/gb28181").expect(200).json();
        assert_eq!(up["uplinks"][0]["up"], true, "{up}");
        assert!(
            up["uplinks"][0]["shared_items"].as_u64().unwrap_or(0) >= 1,
            "{up}"
        );
        let figures = lower_api
            .get("/api/v1/reports/figures?grid=gb-city&window=1m")
            .expect(200)
            .json();
        let networking = figures["figures"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["kind"] == "networking_all"))
            .cloned()
            .unwrap_or_else(|| panic!("no networking figure in {figures}"));
        assert_eq!(networking["ratio"]["numerator"], 1, "{networking}");
        assert_eq!(networking["ratio"]["denominator"], 1, "{networking}");

        // The upper vigil sees the lower one as a device, files the shared camera (by its
        // CivilCode) and records it through the cascade.
        let d = upper_api
            .get(&format!("/api/v1/gb28181/devices/{LOWER_ID}"))
            .expect(200)
            .json();
        assert_eq!(d["online"], true, "{d}");
        let c = wait_for(
            "the shared camera filed upstairs",
            Duration::from_secs(20),
            || {
                let r = upper_api.get(&format!("/api/v1/cameras/{camera}"));
                match r.status {
                    200 => Ok(r.json()),
                    _ => Err(r.text()),
                }
            },
        );
        assert_eq!(c["record"]["gb_device_id"], LOWER_ID, "{c}");
        assert_eq!(c["record"]["grid"], "gb-city");
        wait_recording(&upper_api, &camera, 2.0);
        let relayed = lower_api.get("/api/v1/gb28181").expect(200).json();
        assert!(relayed["metrics"]["frames"].as_u64().unwrap_or(0) > 0);
        let list = upper_api
            .get(&format!("/api/v1/cameras/{camera}/recordings"))
            .expect(200)
            .json();
        let run = &list["runs"][0];
        let mp4 = upper_api
            .get(&format!(
                "/api/v1/cameras/{camera}/recording.mp4?start={}&end={}",
                run["start"].as_str().unwrap_or_default(),
                run["end"].as_str().unwrap_or_default()
            ))
            .expect(200);
        let file = upper.path("cascade.mp4");
        std::fs::write(&file, &mp4.body).unwrap();
        let probe = vigil_store::testing::ffprobe(&file);
        assert_eq!(
            (probe.codec.as_str(), probe.width, probe.height),
            ("h264", 1280, 720)
        );

        rt.block_on(fleet.stop(false));
        lower_daemon.stop();
        // The lower vigil unregistered at its stop: offline upstairs.
        wait_for("the lower vigil offline", Duration::from_secs(10), || {
            let d = upper_api
                .get(&format!("/api/v1/gb28181/devices/{LOWER_ID}"))
                .expect(200)
                .json();
            if d["online"] == false {
                Ok(())
            } else {
                Err(d.to_string())
            }
        });
        upper_daemon.stop();
    }
}

mod demo {
    use super::*;

    /// `vigil demo` runs the GB/T 28181 server with a simulated NVR: three of its channels are
    /// filed in the town's streets by their CivilCodes and recorded, the fourth is reported as
    /// unmapped.
    #[test]
    fn the_demo_nvr_is_filed_in_the_town_by_civil_code_and_recorded() {
        let log =
            std::env::temp_dir().join(format!("vigil-e2e-gb-demo-{}.log", std::process::id()));
        let daemon = Daemon::spawn(
            std::process::Command::new(support::vigil_bin()).args([
                "demo",
                "--listen",
                "127.0.0.1:0",
            ]),
            log.clone(),
            "url:",
        );
        let token = daemon
            .stdout
            .iter()
            .find_map(|l| l.trim().strip_prefix("token:").map(|t| t.trim().to_owned()))
            .unwrap_or_else(|| panic!("no token in {:?}", daemon.stdout));
        assert!(
            daemon
                .stdout
                .iter()
                .any(|l| l.contains("GB/T 28181: a simulated NVR")),
            "{:?}",
            daemon.stdout
        );
        let api = daemon.client(Some(&token));
        const NVR: &str = "37010000001180000001";
        let chans = wait_for("the NVR's channels", Duration::from_secs(30), || {
            let r = api.get(&format!("/api/v1/gb28181/devices/{NVR}/channels"));
            if r.status != 200 {
                return Err(r.text());
            }
            let c = r.json();
            let streaming = c
                .as_array()
                .map(|a| a.iter().filter(|x| x["session"] == "streaming").count())
                .unwrap_or(0);
            if streaming == 3 {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        });
        let grids: Vec<(&str, &str)> = chans
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["civil_code"].as_str().unwrap_or(""),
                    c["filing"]["grid"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            grids,
            [
                ("37010001", "370100.1"),
                ("37010002", "370100.2"),
                ("37010003", "370100.3"),
                ("44010001", "-"),
            ]
        );
        let report = api.get("/api/v1/gb28181/civil-codes").expect(200).json();
        assert_eq!(report["unmapped"][0]["civil_code"], "44010001", "{report}");
        daemon.stop();
        let _ = std::fs::remove_file(log);
    }
}
