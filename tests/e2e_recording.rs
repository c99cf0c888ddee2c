//! Recording end to end against a real RTSP server (GStreamer's, `tests/support/rtsp_server.py`,
//! Digest authentication, H.264 and H.265 at 1280×720, 25 fps, a key frame every second) and
//! the real daemon:
//!
//! - an integrator files RTSP cameras with `POST /cameras` (password in the URL): the access
//!   test runs and its result is on the record (HD capability, `access_tested` / `rejected`);
//!   the report is kept; acceptance is the operator's decision and needs a passing test;
//! - the daemon records them: recorder state, recordings as runs and gaps;
//! - an auditor exports a range: one MP4 that ffprobe reads with the right codec, frame count
//!   and a duration within one GOP of the range at each end; byte ranges; 404 when nothing;
//! - an operator watches live (fragmented MP4, starting at a key frame) and takes a snapshot;
//! - a camera with a wrong password says so while the others keep recording;
//! - roles: integrators neither watch nor export, auditors export but do not watch live;
//! - the password appears in no answer and no log line.

mod support;

use std::time::Duration;

use serde_json::json;
use support::gst_server::GstServer;
use support::video::{
    fast_recording, ms, read_stream, recorder, rfc3339, wait_for, wait_recording,
};
use support::{Client, Env};
use vigil_store::testing::ffprobe;

const PASSWORD: &str = "Gst-S3cret!9";
const GOP_MS: i64 = 1000;

fn camera_body(name: &str, url: &str) -> serde_json::Value {
    json!({"name": name, "source": "rtsp", "rtsp_url": url, "grid": "v11",
           "registration": "filed"})
}

/// Files a camera through the API (which runs the access test) and returns its record.
fn file_camera(api: &Client, name: &str, url: &str) -> serde_json::Value {
    api.post_json("/api/v1/cameras", &camera_body(name, url))
        .expect(201)
        .json()
}

#[test]
fn cameras_are_tested_recorded_exported_and_watched() {
    let gst = GstServer::start(&[
        "--user",
        "admin",
        "--password",
        PASSWORD,
        "--auth",
        "digest",
        "--gop",
        "25",
        "--kbps",
        "1500",
    ]);
    let env = Env::new(&format!(
        "[ids]\nrtsp_domain = \"3701000000\"\n\n{}",
        fast_recording(2)
    ));
    let admin = env.token("admin", "e2e admin");
    let integrator = env.token("integrator", "e2e integrator");
    let operator = env.token("operator", "e2e operator");
    let auditor = env.token("auditor", "e2e auditor");
    let daemon = env.start();
    let base = daemon.client(None);
    let as_admin = base.with_token(&admin);
    let as_integrator = base.with_token(&integrator);
    let as_operator = base.with_token(&operator);
    let as_auditor = base.with_token(&auditor);
    as_admin
        .post(
            "/api/v1/imports/grids",
            "text/csv",
            support::dataset::GRIDS_CSV.as_bytes(),
        )
        .expect(200);

    // Filing runs the access test.
    let creds = Some(("admin", PASSWORD));
    let h264 = file_camera(
        &as_integrator,
        "东门 H.264",
        &gst.url_with_credentials(creds, "/h264"),
    );
    let h265 = file_camera(
        &as_integrator,
        "西门 H.265",
        &gst.url_with_credentials(creds, "/h265"),
    );
    let small = file_camera(
        &as_integrator,
        "后门 360p",
        &gst.url_with_credentials(creds, "/h264-small"),
    );
    let id = |c: &serde_json::Value| c["record"]["id"].as_str().unwrap().to_owned();
    let (c264, c265, csmall) = (id(&h264), id(&h265), id(&small));
    for (cam, codec) in [(&h264, "h264"), (&h265, "h265")] {
        let r = &cam["record"];
        assert_eq!(r["acceptance"], "access_tested", "{cam}");
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(1280), Some(720))
        );
        assert_eq!(r["codec"], codec);
        let fps = r["fps"].as_f64().unwrap();
        assert!((24.0..=26.0).contains(&fps), "{fps}");
        assert_eq!(
            r["rtsp_url"],
            gst.url(if codec == "h264" { "/h264" } else { "/h265" })
        );
    }
    assert_eq!(small["record"]["acceptance"], "rejected", "{small}");
    assert_eq!(small["record"]["width"], 640);
    let report = as_integrator
        .get(&format!("/api/v1/cameras/{csmall}/access-test"))
        .expect(200)
        .json();
    assert_eq!(report["meets_hd"], false);
    assert_eq!(report["failures"][0]["kind"], "resolution", "{report}");
    assert!(
        report["bitrate_bps"].as_u64().unwrap() > 100_000,
        "{report}"
    );
    let report = as_integrator
        .get(&format!("/api/v1/cameras/{c265}/access-test"))
        .expect(200)
        .json();
    assert_eq!(report["meets_hd"], true, "{report}");
    assert_eq!(report["codec"], "H.265");
    assert_eq!(report["gop_frames"], 25, "{report}");

    // Acceptance is the operator's, and needs a passing test.
    let accept = json!({"decision": "accepted", "note": "验收合格"});
    as_integrator
        .post_json(&format!("/api/v1/cameras/{c264}/acceptance"), &accept)
        .problem(403);
    let p = as_operator
        .post_json(&format!("/api/v1/cameras/{csmall}/acceptance"), &accept)
        .problem(409);
    assert!(p["detail"].as_str().unwrap().contains("access test"), "{p}");
    let accepted = as_operator
        .post_json(&format!("/api/v1/cameras/{c264}/acceptance"), &accept)
        .expect(200)
        .json();
    assert_eq!(accepted["record"]["acceptance"], "accepted");
    // A re-test keeps the centre's decision.
    let retest = as_integrator
        .post(
            &format!("/api/v1/cameras/{c264}/access-test?seconds=1"),
            "application/json",
            b"",
        )
        .expect(200)
        .json();
    assert_eq!(retest["camera"]["record"]["acceptance"], "accepted");
    assert_eq!(retest["report"]["meets_hd"], true);

    // A camera with a wrong password says so; the others keep recording.
    let wrong = file_camera(
        &as_integrator,
        "错误密码",
        &gst.url_with_credentials(Some(("admin", "not-the-password")), "/h264"),
    );
    let cwrong = id(&wrong);
    assert_eq!(wrong["record"]["acceptance"], "rejected");
    let state = wait_for("wrong password named", Duration::from_secs(20), || {
        let s = recorder(&as_operator, &cwrong);
        match s["problem"].as_str() {
            Some(p) if p.contains("authentication failed (401)") => Ok(s),
            _ => Err(s.to_string()),
        }
    });
    assert_eq!(state["state"], "retrying", "{state}");
    assert_eq!(
        state["puller"]["last_error"]["kind"], "auth_failed",
        "{state}"
    );

    let s264 = wait_recording(&as_operator, &c264, 6.0);
    let s265 = wait_recording(&as_operator, &c265, 6.0);
    assert_eq!(s264["recorder"]["stream"]["width"], 1280);
    assert!(s265["recorder"]["stream"]["codec"]
        .as_str()
        .unwrap()
        .starts_with("hvc1"));
    let recorders = as_auditor
        .get("/api/v1/recorders?problems=true")
        .expect(200)
        .json();
    let troubled: Vec<&str> = recorders
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["camera"].as_str().unwrap())
        .collect();
    assert_eq!(troubled, [cwrong.as_str()], "{recorders}");

    // Recordings: one run, the time before it a gap.
    let since = ms(s264["recorder"]["since"].as_str().unwrap());
    let list = as_auditor
        .get(&format!(
            "/api/v1/cameras/{c264}/recordings?from={}",
            rfc3339(since - 60_000)
        ))
        .expect(200)
        .json();
    assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
    let run = &list["runs"][0];
    assert!(
        run["segments"].as_u64().unwrap() >= 2,
        "2 s segments: {list}"
    );
    assert_eq!(list["gaps"][0]["end"], run["start"], "{list}");
    assert!(list["recorded_ms"].as_i64().unwrap() >= 5000, "{list}");

    // Export: an auditor's evidence, checked by ffprobe.
    let run_start = ms(run["start"].as_str().unwrap());
    let (start, end) = (run_start + 1500, run_start + 4500);
    let export_path = format!(
        "/api/v1/cameras/{c264}/recording.mp4?start={}&end={}",
        rfc3339(start),
        rfc3339(end)
    );
    as_integrator.get(&export_path).problem(403);
    let full = as_auditor.get(&export_path).expect(200);
    assert_eq!(full.header("content-type"), Some("video/mp4"));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let first = ms(full.header("x-vigil-start").unwrap());
    let last = ms(full.header("x-vigil-end").unwrap());
    assert!(
        first <= start && start - first < GOP_MS + 100,
        "starts at the key frame at or before start: {first} vs {start}"
    );
    assert!(
        last >= end && last - end < GOP_MS + 100,
        "ends with the fragment holding end: {last} vs {end}"
    );
    let file = env.path("h264.mp4");
    std::fs::write(&file, &full.body).unwrap();
    let probe = ffprobe(&file);
    assert_eq!(probe.codec, "h264");
    assert_eq!((probe.width, probe.height), (1280, 720));
    let asked = (end - start) as f64 / 1000.0;
    assert!(
        probe.duration >= asked - 0.05 && probe.duration < asked + 2.0 * GOP_MS as f64 / 1000.0,
        "duration {} for {asked} s asked",
        probe.duration
    );
    let frames = full
        .header("x-vigil-frames")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(probe.frames, frames);
    assert!(
        (frames as f64 - probe.duration * 25.0).abs() <= 2.0,
        "{frames} frames in {} s",
        probe.duration
    );

    // Byte ranges of the same export are slices of the whole file.
    let len = full.body.len();
    let part = as_auditor.request_with("GET", &export_path, &[("Range", "bytes=100-1099")]);
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, full.body[100..1100]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-1099/{len}").as_str())
    );
    let tail = as_auditor.request_with("GET", &export_path, &[("Range", "bytes=-500")]);
    assert_eq!(tail.body, full.body[len - 500..]);
    let past = as_auditor.request_with("GET", &export_path, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    let etag = full.header("etag").unwrap().to_owned();
    let stale = as_auditor.request_with(
        "GET",
        &export_path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, len));
    let fresh = as_auditor.request_with(
        "GET",
        &export_path,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
    );
    assert_eq!((fresh.status, fresh.body.len()), (206, 10));

    // H.265 too, over 3 s of its own first run (its encoder, x265 on a busy 2-core machine,
    // may have started later than the H.264 one).
    let run265 = wait_for("4.5 s of H.265 recorded", Duration::from_secs(20), || {
        let list = as_operator
            .get(&format!(
                "/api/v1/cameras/{c265}/recordings?from={}",
                rfc3339(since - 60_000)
            ))
            .expect(200)
            .json();
        let run = &list["runs"][0];
        let (Some(start), Some(end)) = (run["start"].as_str(), run["end"].as_str()) else {
            return Err(list.to_string());
        };
        let (start, end) = (ms(start), ms(end));
        if end - start >= 4500 {
            Ok(start)
        } else {
            Err(list.to_string())
        }
    });
    let export265 = as_operator
        .get(&format!(
            "/api/v1/cameras/{c265}/recording.mp4?start={}&end={}",
            rfc3339(run265 + 1500),
            rfc3339(run265 + 4500)
        ))
        .expect(200);
    let file = env.path("h265.mp4");
    std::fs::write(&file, &export265.body).unwrap();
    let probe = ffprobe(&file);
    assert_eq!(probe.codec, "hevc");
    assert!(probe.frames >= 70, "{probe:?}");

    // Nothing recorded: 404; nonsense: 400.
    let p = as_auditor
        .get(&format!(
            "/api/v1/cameras/{c264}/recording.mp4?start=2020-01-01T00:00:00Z&end=2020-01-01T00:10:00Z"
        ))
        .problem(404);
    assert!(
        p["detail"].as_str().unwrap().contains("no recording"),
        "{p}"
    );
    as_auditor
        .get(&format!(
            "/api/v1/cameras/{c264}/recording.mp4?start=2020-01-01T00:00:00Z"
        ))
        .problem(400);

    // Live: fragmented MP4 starting at a key frame; operators only.
    let live = format!("/api/v1/cameras/{c264}/live.mp4");
    as_auditor.get(&live).problem(403);
    let (status, headers, body) =
        read_stream(&as_operator, &live, 400_000, Duration::from_secs(15));
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "video/mp4"));
    let file = env.path("live.mp4");
    std::fs::write(&file, &body).unwrap();
    let frames = first_frames(&file);
    assert!(frames.len() >= 25, "at least a GOP: {}", frames.len());
    assert!(frames[0], "the live stream starts with a key frame");

    // Snapshot: a JPEG of the latest key frame.
    let snap = as_operator
        .get(&format!("/api/v1/cameras/{c265}/snapshot.jpg"))
        .expect(200);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    assert_eq!(&snap.body[..3], &[0xff, 0xd8, 0xff]);
    let file = env.path("snapshot.jpg");
    std::fs::write(&file, &snap.body).unwrap();
    let probe = ffprobe(&file);
    assert_eq!(
        (probe.codec.as_str(), probe.width, probe.height),
        ("mjpeg", 1280, 720)
    );

    // Retention: operators mark key targets; never below the legal minimum.
    let r = as_operator
        .put_json(
            &format!("/api/v1/cameras/{c264}/retention"),
            &json!({"key_target": true}),
        )
        .expect(200)
        .json();
    assert_eq!(
        (
            r["effective_days"].as_u64(),
            r["legal_minimum_days"].as_u64()
        ),
        (Some(90), Some(90))
    );
    let p = as_operator
        .put_json(
            &format!("/api/v1/cameras/{c265}/retention"),
            &json!({"days": 10}),
        )
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "days");
    as_auditor
        .put_json(
            &format!("/api/v1/cameras/{c265}/retention"),
            &json!({"days": 60}),
        )
        .problem(403);

    // The camera's history shows what vigil observed.
    let history = as_auditor
        .get(&format!(
            "/api/v1/cameras/{c264}/history?from={}",
            rfc3339(since - 60_000)
        ))
        .expect(200)
        .json();
    for kind in ["online", "recording", "upload"] {
        assert!(
            history
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == kind && r["end"].is_null()),
            "{kind} open: {history}"
        );
    }

    // The password is in no answer and no log line.
    let mut seen = String::new();
    for path in [
        format!("/api/v1/cameras/{cwrong}"),
        format!("/api/v1/cameras/{c264}"),
        format!("/api/v1/cameras/{c264}/versions"),
        format!("/api/v1/cameras/{c264}/recorder"),
        format!("/api/v1/cameras/{c264}/access-test"),
        format!("/api/v1/cameras/{cwrong}/access-test"),
        format!("/api/v1/cameras/{cwrong}/recorder"),
        "/api/v1/recorders".to_owned(),
        "/api/v1/audit?limit=1000".to_owned(),
        "/api/v1/health".to_owned(),
    ] {
        seen.push_str(&as_admin.get(&path).expect(200).text());
    }
    assert!(seen.contains(&c264) && seen.contains("127.0.0.1"));
    for secret in [PASSWORD, "not-the-password"] {
        assert!(!seen.contains(secret), "{secret} in an API answer");
    }
    let log = daemon.log.clone();
    daemon.stop();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains("pulling camera"), "the log is the daemon's");
    for secret in [PASSWORD, "not-the-password"] {
        assert!(!logs.contains(secret), "{secret} in the log");
    }
}

/// Whether each of the first frames of `path` is a key frame (ffprobe).
fn first_frames(path: &std::path::Path) -> Vec<bool> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=key_frame", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<u8>().ok())
        .map(|k| k == 1)
        .collect()
}
