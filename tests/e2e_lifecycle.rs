//! The daemon's life: the CLI refuses while the daemon holds the data directory; SIGTERM
//! stops it cleanly (open status intervals closed at the stop, index flushed) and a restart
//! finds every record, report and audit entry; after a crash (SIGKILL) the next start closes
//! the intervals at the last heartbeat; `vigil demo` serves a generated town and records its
//! simulated cameras.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::dataset::*;
use support::{gb18030, vigil_bin, Client, Daemon, Env};

const C1: &str = "37010000001320000001";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(rfc3339: &str) -> i64 {
    // Timestamps come back as YYYY-MM-DDTHH:MM:SS.mmmZ; days from the civil date.
    let (date, time) = rfc3339.split_once('T').expect("date and time");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<f64> = time
        .trim_end_matches('Z')
        .split(':')
        .map(|p| p.parse().unwrap())
        .collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400_000 + ((t[0] * 3600.0 + t[1] * 60.0 + t[2]) * 1000.0).round() as i64
}

fn import_all(api: &Client) {
    api.post("/api/v1/imports/grids", "text/csv", &gb18030(GRIDS_CSV))
        .expect(200);
    api.post(
        "/api/v1/imports/sites",
        "application/json",
        SITES_JSON.as_bytes(),
    )
    .expect(200);
    api.post("/api/v1/imports/cameras", "text/csv", &gb18030(CAMERAS_CSV))
        .expect(200);
    api.post(
        "/api/v1/imports/intervals",
        "text/csv",
        INTERVALS_CSV.as_bytes(),
    )
    .expect(200);
    api.post(
        "/api/v1/imports/diagnoses",
        "application/json",
        DIAGNOSES_JSON.as_bytes(),
    )
    .expect(200);
}

/// The online intervals of camera C1 (the last one was open when imported).
fn c1_online(api: &Client) -> Value {
    api.get(&format!(
        "/api/v1/cameras/{C1}/history?kind=online&from=2024-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    ))
    .expect(200)
    .json()
}

fn everything(api: &Client) -> (Value, Value, Value, Value) {
    (
        api.get(&format!(
            "/api/v1/reports/figures?grid=city&at={AT}&limit=1000"
        ))
        .expect(200)
        .json(),
        api.get(&format!(
            "/api/v1/cameras?at={AT}&include_decommissioned=true"
        ))
        .expect(200)
        .json(),
        api.get("/api/v1/sites").expect(200).json(),
        api.get("/api/v1/audit?limit=1000").expect(200).json(),
    )
}

#[test]
fn sigterm_stops_cleanly_and_a_restart_finds_everything() {
    let env = Env::new("[service]\nheartbeat_secs = 1\n");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    import_all(&api);
    assert_eq!(
        c1_online(&api)[0]["end"],
        Value::Null,
        "C1 is online until further notice"
    );
    let before = everything(&api);

    // The CLI cannot open the data directory while the daemon holds it, and says why.
    let out = env.cli(&["token", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use"), "{err}");
    assert!(
        err.contains(&format!("pid {} (vigil run)", daemon.pid())),
        "{err}"
    );
    assert!(err.contains("HTTP API"), "{err}");

    let stop_from = now_ms();
    let log = daemon.log.clone();
    daemon.stop();
    let stop_to = now_ms();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(logs.contains("stopped cleanly"), "{logs}");
    let state: Value =
        serde_json::from_slice(&support::read(&env.data_dir().join("vigil.state"))).unwrap();
    assert_eq!(state["clean"], true);

    // Restart: the same token works, and records, reports and the audit trail are intact.
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    assert_eq!(everything(&api), before);
    // The interval that was open was closed at the stop instant.
    let online = c1_online(&api);
    let end = ms(online[0]["end"].as_str().expect("closed at the stop"));
    assert!(
        (stop_from..=stop_to).contains(&end),
        "closed at {end}, stop between {stop_from} and {stop_to}"
    );
    assert!(!daemon.logs().contains("did not stop cleanly"));
    daemon.stop();
}

#[test]
fn after_a_crash_open_intervals_are_closed_at_the_last_heartbeat() {
    let env = Env::new("[service]\nheartbeat_secs = 1\n");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    import_all(&api);
    std::thread::sleep(Duration::from_millis(2500));
    let killed_at = now_ms();
    let status = daemon.signal_and_wait(libc::SIGKILL);
    assert!(!status.success());

    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    let logs = daemon.logs();
    assert!(logs.contains("did not stop cleanly"), "{logs}");
    let end = ms(c1_online(&api)[0]["end"]
        .as_str()
        .expect("closed on restart"));
    // At the last heartbeat: before the kill, and at most a heartbeat (plus scheduling slack)
    // earlier.
    assert!(end <= killed_at, "closed at {end}, killed at {killed_at}");
    assert!(
        end >= killed_at - 2500,
        "closed at {end}, killed at {killed_at}"
    );
    // Nothing else was lost: the report at T is the hand-computed one.
    let rep = api
        .get(&format!("/api/v1/reports/figures?grid=city&at={AT}"))
        .expect(200)
        .json();
    assert_eq!(rep["figures"][0]["ratio"]["numerator"], 2);
    assert_eq!(rep["figures"][0]["ratio"]["denominator"], 5);
    daemon.stop();
}

#[test]
fn demo_serves_a_generated_town_and_cleans_up() {
    let log = std::env::temp_dir().join(format!("vigil-e2e-demo-{}.log", std::process::id()));
    let daemon = Daemon::spawn(
        std::process::Command::new(vigil_bin()).args(["demo", "--listen", "127.0.0.1:0"]),
        log.clone(),
        "url:",
    );
    let line = |prefix: &str| {
        daemon
            .stdout
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {prefix} line in {:?}", daemon.stdout))
    };
    let token = line("token:");
    let data = line("data:");
    let data = std::path::PathBuf::from(data.trim_end_matches(" (deleted on exit)"));
    assert!(data.join("index").exists(), "{}", data.display());
    let api = daemon.client(Some(&token));
    let rep = api.get("/api/v1/reports/figures").expect(200).json();
    assert!(rep["cameras_in_service"].as_u64().unwrap() > 1000, "{rep}");
    assert_eq!(rep["name"], "济南市");
    let deadlines = api.get("/api/v1/reports/deadlines").expect(200).json();
    assert_eq!(deadlines["deadlines"][0]["figure"], "coverage");
    let ranking = api
        .get("/api/v1/reports/ranking?format=csv")
        .expect(200)
        .text();
    assert_eq!(
        ranking.lines().count(),
        4,
        "three towns and a header: {ranking}"
    );
    // The demo's simulated cameras are recorded; the town's cameras are records only.
    assert!(
        daemon
            .stdout
            .iter()
            .any(|l| l.contains("simulated RTSP cameras")),
        "{:?}",
        daemon.stdout
    );
    let recorders = support::video::wait_for(
        "the demo cameras recording",
        Duration::from_secs(30),
        || {
            let r = api.get("/api/v1/recorders").expect(200).json();
            let pulled: Vec<serde_json::Value> = r
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["url"].is_string())
                .cloned()
                .collect();
            let recording = |s: &serde_json::Value| {
                s["state"] == "recording" && s["recorder"]["committed_end"].is_string()
            };
            if pulled.len() == 4 && pulled.iter().all(recording) {
                Ok(pulled)
            } else {
                Err(r.to_string())
            }
        },
    );
    let first = recorders[0]["camera"].as_str().unwrap();
    let list = api
        .get(&format!("/api/v1/cameras/{first}/recordings"))
        .expect(200)
        .json();
    assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
    daemon.stop();
    assert!(!data.exists(), "the throwaway directory was not removed");
    let _ = std::fs::remove_file(log);
}

/// The daemon's stdout and stderr readers may go away (a closed pipe, a log collector that
/// stopped): it keeps serving, and SIGTERM still stops it cleanly.
#[test]
fn sigterm_stops_the_daemon_even_when_its_output_is_gone() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let env = Env::new("");
    let mut child = Command::new(vigil_bin())
        .arg("--config")
        .arg(&env.config)
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vigil");
    drop(child.stderr.take());
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    stdout.read_line(&mut line).expect("the listening line");
    drop(stdout);
    let base = line
        .trim()
        .strip_prefix("vigil listening on ")
        .and_then(|url| url.strip_suffix("/api/v1"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let client = support::Client { base, token: None };
    client.get("/api/v1/health").expect(200);
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with plain integers on our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("vigil did not stop on SIGTERM with its stderr closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let state: Value =
        serde_json::from_slice(&support::read(&env.data_dir().join("vigil.state"))).unwrap();
    assert_eq!(state["clean"], true);
}
