//! Bad cameras and a bad disk, against the real daemon: simulated cameras (`vigil_sim::rtsp`,
//! in this process) that refuse connections, never send a key frame, send truncated NAL units
//! or an SPS that does not parse, stall, or step their clock back by a minute; one camera's
//! directory on a tiny file system that fills up, another's made read-only while it records
//! (and writable again later).
//! Each camera's state says what is wrong, the healthy cameras record on without a gap, and
//! afterwards every segment the index knows is intact (every fragment's checksum verified).
//!
//! The disk faults use mounts (tmpfs, read-only bind mounts): the test needs root, as the
//! store's own fault tests do; without it it fails saying so.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::mount::Mount;
use support::video::{
    catalogue, fast_recording, ms, recorder, rfc3339, segment_files, verify_segment, wait_for,
};
use support::{Client, Env};
use tokio_util::sync::CancellationToken;
use vigil_sim::rtsp::{DemoClip, Fault, SimServer, Stream};

/// The cameras: ID, name, what the camera does, and what its state must say.
struct Case {
    id: &'static str,
    path: &'static str,
    clip: DemoClip,
    fault: Fault,
}

const OK_H264: &str = "37010000001320000001";
const OK_H265: &str = "37010000001320000002";
const NO_KEY: &str = "37010000001320000003";
const TRUNCATED: &str = "37010000001320000004";
const BAD_SPS: &str = "37010000001320000005";
const STALL: &str = "37010000001320000006";
const BACKWARDS: &str = "37010000001320000007";
const REFUSED: &str = "37010000001320000008";
const FULL: &str = "37010000001320000009";
const READ_ONLY: &str = "37010000001320000010";

fn cases() -> Vec<Case> {
    let c = |id, path, clip, fault| Case {
        id,
        path,
        clip,
        fault,
    };
    let s = Duration::from_secs;
    vec![
        c(OK_H264, "/ok-h264", DemoClip::H264_720p, Fault::None),
        c(OK_H265, "/ok-h265", DemoClip::H265_720p, Fault::None),
        c(NO_KEY, "/no-key", DemoClip::H264_720p, Fault::NoKeyFrames),
        c(
            TRUNCATED,
            "/truncated",
            DemoClip::H265_720p,
            Fault::TruncatedNalsAfter(s(1)),
        ),
        c(BAD_SPS, "/bad-sps", DemoClip::H264_720p, Fault::BadSps),
        c(
            STALL,
            "/stall",
            DemoClip::H264_360p,
            Fault::StallAfter(s(1)),
        ),
        c(
            BACKWARDS,
            "/backwards",
            DemoClip::H264_720p,
            Fault::ClockJumpAfter {
                after: s(2),
                ticks: -60 * 90_000,
            },
        ),
        c(FULL, "/full", DemoClip::H264_720p, Fault::None),
        c(READ_ONLY, "/read-only", DemoClip::H264_360p, Fault::None),
    ]
}

/// Waits until the camera's state has `state` and a problem containing `words`.
fn wait_problem(api: &Client, camera: &str, state: &str, words: &str) -> serde_json::Value {
    wait_for(
        &format!("camera {camera}: {state} with a problem saying {words:?}"),
        Duration::from_secs(30),
        || {
            let s = recorder(api, camera);
            let said = s["problem"].as_str().is_some_and(|p| p.contains(words));
            if s["state"] == state && said {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
}

#[test]
fn each_camera_says_what_is_wrong_and_the_others_keep_recording() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let sim = runtime
        .block_on(SimServer::start(
            "127.0.0.1:0".parse().unwrap(),
            cancel.clone(),
        ))
        .unwrap();
    for case in cases() {
        let clip = Arc::new(case.clip.load().unwrap());
        sim.add_stream(
            case.path,
            Stream {
                clip,
                fault: case.fault,
            },
        );
    }
    // A port nothing listens on.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("rtsp://{}/nothing", refused.local_addr().unwrap());
    drop(refused);

    let env = Env::new(&fast_recording(2));
    let root = env.data_dir().join("recordings");
    let _full = Mount::tmpfs(&root.join(FULL), "160k");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    api.post(
        "/api/v1/imports/grids",
        "text/csv",
        support::dataset::GRIDS_CSV.as_bytes(),
    )
    .expect(200);
    let mut rows = String::from("id,effective_from,name,source,rtsp_url,grid\n");
    for case in cases() {
        rows.push_str(&format!(
            "{},2024-01-01T00:00:00Z,{},rtsp,{},v11\n",
            case.id,
            case.path,
            sim.url(case.path)
        ));
    }
    rows.push_str(&format!(
        "{REFUSED},2024-01-01T00:00:00Z,refused,rtsp,{refused_url},v11\n"
    ));
    api.post("/api/v1/imports/cameras", "text/csv", rows.as_bytes())
        .expect(200);

    // The healthy ones record; the read-only camera records until its directory turns
    // read-only.
    for camera in [OK_H264, OK_H265, READ_ONLY] {
        support::video::wait_recording(&api, camera, 2.0);
    }
    let read_only = Mount::read_only_over(&root.join(READ_ONLY));

    let s = wait_problem(&api, NO_KEY, "retrying", "no key frame within 2 s");
    assert_eq!(s["puller"]["last_error"]["kind"], "no_key_frame", "{s}");
    let s = wait_problem(&api, TRUNCATED, "retrying", "bad data from the camera");
    assert!(s["problem"].as_str().unwrap().contains("FU"), "{s}");
    let s = wait_problem(&api, BAD_SPS, "retrying", "SPS");
    assert_eq!(s["puller"]["last_error"]["kind"], "bad_data", "{s}");
    wait_problem(&api, STALL, "retrying", "stalled: no video frame for 2 s");
    wait_problem(&api, REFUSED, "retrying", "connection refused");
    let s = wait_problem(&api, FULL, "error", "No space left on device");
    assert!(
        s["problem"].as_str().unwrap().contains(FULL),
        "names the file: {s}"
    );
    let s = wait_problem(&api, READ_ONLY, "error", "Read-only file system");
    let read_only_recorded = s["recorder"]["bytes_written"].as_u64().unwrap();
    assert!(read_only_recorded > 0, "{s}");
    let s = wait_for(
        "the clock step back is noticed",
        Duration::from_secs(20),
        || {
            let s = recorder(&api, BACKWARDS);
            let noticed = s["recorder"]["clock_discontinuities"].as_u64() >= Some(1)
                || s["puller"]["clock_jumps"].as_u64() >= Some(1);
            if noticed && s["state"] == "recording" {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    assert!(!s["warnings"].as_array().unwrap().is_empty(), "{s}");

    // Meanwhile the healthy cameras recorded without a gap, and are not listed as problems.
    let troubled = api
        .get("/api/v1/recorders?problems=true")
        .expect(200)
        .json();
    let troubled: Vec<&str> = troubled
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["camera"].as_str().unwrap())
        .collect();
    for camera in [OK_H264, OK_H265] {
        assert!(!troubled.contains(&camera), "{camera} in {troubled:?}");
        let s = recorder(&api, camera);
        assert_eq!(s["state"], "recording", "{s}");
        assert_eq!(s["recorder"]["write_errors"], 0, "{s}");
        let since = ms(s["recorder"]["since"].as_str().unwrap());
        let list = api
            .get(&format!(
                "/api/v1/cameras/{camera}/recordings?from={}",
                rfc3339(since)
            ))
            .expect(200)
            .json();
        assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
    }
    for camera in [FULL, READ_ONLY, NO_KEY, BAD_SPS, REFUSED] {
        assert!(troubled.contains(&camera), "{camera} not in {troubled:?}");
    }
    let health = api.get("/api/v1/health").expect(200).json();
    assert_eq!(
        health["status"], "degraded",
        "write errors are ours: {health}"
    );

    // The directory becomes writable again: recording resumes there.
    drop(read_only);
    wait_for("recording resumes", Duration::from_secs(90), || {
        let s = recorder(&api, READ_ONLY);
        let more = s["recorder"]["bytes_written"].as_u64().unwrap_or(0) > read_only_recorded;
        if s["state"] == "recording" && more {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    daemon.stop();
    cancel.cancel();

    // Every segment the index knows is intact, the full camera's early ones included, and
    // every file on disk is in the index at its exact length.
    let indexed = catalogue(&env.data_dir().join("index"));
    let files = segment_files(&root);
    assert!(
        indexed.keys().any(|(c, _)| c.as_str() == FULL),
        "the full camera kept its first segments"
    );
    assert!(indexed.keys().any(|(c, _)| c.as_str() == READ_ONLY));
    for ((camera, file), seg) in &indexed {
        let fragments = verify_segment(&root, camera, file, seg.len);
        assert_eq!(fragments, seg.fragments as usize, "{camera}/{file}");
    }
    for (camera, file, size) in &files {
        let seg = indexed
            .get(&(*camera, file.clone()))
            .unwrap_or_else(|| panic!("{camera}/{file} is not indexed"));
        assert_eq!(seg.len, *size, "{camera}/{file}");
    }
}
