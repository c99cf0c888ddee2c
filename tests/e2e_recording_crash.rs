//! Crash test of the whole daemon: `kill -9` while it records six cameras (simulated, H.264 and
//! H.265, in this process), then:
//!
//! 1. as the crash left it (the daemon dead, its index opened here): every fragment the index
//!    had recorded is readable, every checksum intact;
//! 2. after a restart (which runs the store's recovery): everything the index had is still
//!    there, every fragment the daemon had reported durable before the kill is indexed
//!    (recovery indexed what the index had not caught up with), every file on disk is indexed
//!    at its exact length and verifies, the recording intervals the crash left open are
//!    closed no later than the recorded video, and recording continues.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use support::video::{
    catalogue, fast_recording, ms, recorder, rfc3339, segment_files, verify_segment, wait_recording,
};
use support::Env;
use tokio_util::sync::CancellationToken;
use vigil_core::id::GbId;
use vigil_index::SegmentState;
use vigil_sim::rtsp::{DemoClip, Fault, SimServer, Stream};

const CAMERAS: u32 = 6;

fn camera(n: u32) -> String {
    format!("370100000013200000{n:02}")
}

#[test]
fn kill_9_while_recording_loses_nothing_the_index_recorded() {
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
    let h264 = Arc::new(DemoClip::H264_720p.load().unwrap());
    let h265 = Arc::new(DemoClip::H265_720p.load().unwrap());
    let mut rows = String::from("id,effective_from,name,source,rtsp_url,grid\n");
    for n in 1..=CAMERAS {
        let clip = if n % 2 == 0 {
            h265.clone()
        } else {
            h264.clone()
        };
        let path = format!("/cam/{n}");
        sim.add_stream(
            &path,
            Stream {
                clip,
                fault: Fault::None,
            },
        );
        rows.push_str(&format!(
            "{},2024-01-01T00:00:00Z,cam {n},rtsp,{},v11\n",
            camera(n),
            sim.url(&path)
        ));
    }

    // The index flushes its (not individually fsynced) segment updates every 5 s instead of
    // 500 ms, and segments (whose creation fsyncs the index) last 20 s, so that the kill
    // finds the files ahead of the index: recovery has fragments to index.
    let env = Env::new(&format!(
        "[service]\nheartbeat_secs = 1\n\n[index]\nflush_every_ms = 5000\n\n{}",
        fast_recording(20)
    ));
    let root = env.data_dir().join("recordings");
    let index_dir = env.data_dir().join("index");
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    api.post(
        "/api/v1/imports/grids",
        "text/csv",
        support::dataset::GRIDS_CSV.as_bytes(),
    )
    .expect(200);
    api.post("/api/v1/imports/cameras", "text/csv", rows.as_bytes())
        .expect(200);
    for n in 1..=CAMERAS {
        wait_recording(&api, &camera(n), 3.0);
    }
    // What the daemon reports durable (fsynced) just before the kill: per camera, the segment
    // being written and its committed length.
    let mut reported: BTreeMap<(GbId, String), u64> = BTreeMap::new();
    for n in 1..=CAMERAS {
        let s = recorder(&api, &camera(n));
        let id = GbId::parse(&camera(n)).unwrap();
        if let Some(path) = s["recorder"]["segment"].as_str() {
            let rel = std::path::Path::new(path)
                .strip_prefix(root.join(id.as_str()))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let len = s["recorder"]["committed_len"].as_u64().unwrap();
            reported.insert((id, rel), len);
        }
    }
    assert!(reported.len() >= CAMERAS as usize / 2, "{reported:?}");
    let status = daemon.signal_and_wait(libc::SIGKILL);
    assert!(!status.success());

    // 1. As the crash left it.
    let left = catalogue(&index_dir);
    assert!(
        left.len() >= CAMERAS as usize,
        "{} segments indexed",
        left.len()
    );
    for ((cam, file), seg) in &left {
        let fragments = verify_segment(&root, cam, file, seg.len);
        assert_eq!(fragments, seg.fragments as usize, "{cam}/{file}");
    }
    let unfinished = left
        .values()
        .filter(|s| s.state == SegmentState::Writing)
        .count();
    assert!(unfinished > 0, "the crash left segments being written");
    let files = segment_files(&root);
    let unindexed_bytes: u64 = files
        .iter()
        .map(|(c, f, size)| size - left.get(&(*c, f.clone())).map_or(0, |s| s.len.min(*size)))
        .sum();
    eprintln!(
        "after the kill: {} segments indexed ({unfinished} unfinished), {} files, {unindexed_bytes} \
         bytes on disk beyond the index",
        left.len(),
        files.len()
    );

    // 2. Restart: recovery, then recording again.
    let daemon = env.start();
    let api = daemon.client(Some(&admin));
    let logs = daemon.logs();
    assert!(
        logs.contains("recording store recovered after an unclean stop"),
        "{logs}"
    );
    assert!(
        unindexed_bytes > 0 || unfinished > 0,
        "the kill left work for recovery"
    );
    assert!(
        logs.contains("the previous run did not stop cleanly"),
        "{logs}"
    );
    let mut resumed = BTreeMap::new();
    let mut crash_intervals = BTreeMap::new();
    for n in 1..=CAMERAS {
        let s = wait_recording(&api, &camera(n), 2.0);
        let since = ms(s["recorder"]["since"].as_str().unwrap());
        let history = api
            .get(&format!(
                "/api/v1/cameras/{}/history?kind=recording&from={}",
                camera(n),
                rfc3339(since - 600_000)
            ))
            .expect(200)
            .json();
        let intervals = history.as_array().unwrap();
        assert!(intervals.len() >= 2, "{history}");
        let crashed = &intervals[intervals.len() - 2];
        let closed = ms(crashed["end"].as_str().expect("closed"));
        resumed.insert(GbId::parse(&camera(n)).unwrap(), since);
        crash_intervals.insert(GbId::parse(&camera(n)).unwrap(), closed);
    }
    // The catalogue can be rebuilt from the files, but not under the running daemon.
    let out = env.cli(&["rebuild-index"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.stop();
    cancel.cancel();

    let after = catalogue(&index_dir);
    for ((cam, file), seg) in &left {
        let now = after
            .get(&(*cam, file.clone()))
            .unwrap_or_else(|| panic!("{cam}/{file} was indexed before the restart, not after"));
        assert!(
            now.len >= seg.len,
            "{cam}/{file}: {} < {}",
            now.len,
            seg.len
        );
    }
    for ((cam, file), len) in &reported {
        let now = after
            .get(&(*cam, file.clone()))
            .unwrap_or_else(|| panic!("{cam}/{file} was reported durable, is not indexed"));
        assert!(
            now.len >= *len,
            "{cam}/{file}: {} < reported {len}",
            now.len
        );
    }
    // The recording interval the crash left open ends exactly where the recovered video ends
    // (not at the last heartbeat).
    for (cam, closed) in &crash_intervals {
        let video_end = after
            .iter()
            .filter(|((c, _), seg)| c == cam && seg.start().as_millis() < resumed[cam])
            .map(|(_, seg)| seg.end().as_millis())
            .max()
            .expect("video before the crash");
        assert!(
            (closed - video_end).abs() <= 1,
            "{cam}: recording closed at {} but its video ends at {}",
            rfc3339(*closed),
            rfc3339(video_end)
        );
    }
    let files = segment_files(&root);
    assert_eq!(
        files.len(),
        after.len(),
        "every file is indexed, nothing else is"
    );
    for (cam, file, size) in &files {
        let seg = &after[&(*cam, file.clone())];
        assert_eq!(seg.len, *size, "{cam}/{file}");
        assert_eq!(seg.state, SegmentState::Complete, "{cam}/{file}");
        verify_segment(&root, cam, file, *size);
    }

    // `vigil rebuild-index` (offline) re-creates exactly this catalogue from the files alone.
    let out = env.cli(&["rebuild-index"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{CAMERAS} cameras, {} segments", files.len())),
        "{stdout}"
    );
    let rebuilt = catalogue(&index_dir);
    let shape = |c: &BTreeMap<(GbId, String), vigil_index::SegmentRecord>| {
        c.iter()
            .map(|(k, s)| (k.clone(), s.start_90k, s.end_90k, s.len, s.frames))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&rebuilt), shape(&after));
}
