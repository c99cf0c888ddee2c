//! Disk faults for real, with small file systems mounted for the test (the tests run as root,
//! where `chmod` cannot make a directory read-only, so we use mounts instead):
//!
//! - a camera directory on a 512 KiB tmpfs fills up (ENOSPC) while another camera records on
//!   the normal disk;
//! - a camera directory bind-mounted read-only (EROFS) between two runs, then writable again;
//! - a store whose root is a 2 MiB tmpfs, where retention frees space after ENOSPC and
//!   recording carries on.
//!
//! These need `mount`/`umount` and CAP_SYS_ADMIN; without them they fail with a message
//! saying so (they do not skip).

#[path = "../../../tests/support/mount.rs"]
#[allow(dead_code)] // shared with the daemon's fault test, which uses the rest
mod mount;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::{Index, SegmentRecord, SegmentState};
use vigil_store::testing::{ffprobe, Clip, ClipFeed};
use vigil_store::{scan, RecorderStatus, SourceEvent, Store, StoreConfig};

use mount::Mount;

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn cam(n: u32) -> GbId {
    GbId::parse(&format!("3401000000132{n:07}")).unwrap()
}

fn open_store(dir: &Path, f: impl FnOnce(&mut StoreConfig)) -> Store {
    let mut config = StoreConfig::new(dir.join("store"));
    config.segment_duration = Duration::from_secs(2);
    f(&mut config);
    let index = Arc::new(Index::open(dir.join("index")).unwrap());
    Store::open(config, index).unwrap().0
}

fn segments(store: &Store, camera: &GbId) -> Vec<SegmentRecord> {
    store
        .index()
        .segments(camera, i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
}

/// Every indexed segment of `camera` is complete, verifies and plays.
fn assert_intact(store: &Store, camera: &GbId) {
    for s in segments(store, camera) {
        let path = store.config().root.join(camera.as_str()).join(&s.file);
        let f = std::fs::File::open(&path).unwrap();
        assert_eq!(f.metadata().unwrap().len(), s.len, "{}", path.display());
        let scanned = scan::scan(&f, s.len, 0).unwrap();
        assert_eq!(
            (scanned.problem, scanned.valid_end),
            (None, s.len),
            "{}",
            path.display()
        );
        assert_eq!(
            ffprobe(&path).frames,
            u64::from(s.frames),
            "{}",
            path.display()
        );
    }
}

async fn feed(tx: &tokio::sync::mpsc::Sender<SourceEvent>, f: &mut ClipFeed, n: usize) {
    for _ in 0..n {
        tx.send(f.next_event()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_camera_disk_is_an_error_for_that_camera_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), |_| {});
    let (full, fine) = (cam(1), cam(2));
    let _mount = Mount::tmpfs(&store.config().root.join(full.as_str()), "512k");
    let clip = Clip::h264_720p();
    let (tx_a, ha) = store.recorder_channel(full, 16).unwrap();
    let (tx_b, hb) = store.recorder_channel(fine, 16).unwrap();
    let (mut fa, mut fb) = (ClipFeed::new(&clip, T0, 0), ClipFeed::new(&clip, T0, 0));
    // 20 s each (about 1 MB), interleaved.
    for _ in 0..20 {
        feed(&tx_a, &mut fa, 25).await;
        feed(&tx_b, &mut fb, 25).await;
    }
    let mut wa = store.watch_recorder(&full);
    let state = wa.wait_for(|s| s.write_errors > 0).await.unwrap().clone();
    drop((tx_a, tx_b));
    ha.join().await;
    hb.join().await;

    let (_, reason) = state.last_error.clone().unwrap();
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(
        reason.contains(full.as_str()),
        "the error names the file: {reason}"
    );
    let a = store.recorder_state(&full);
    assert!(
        a.frames_recorded > 0 && a.frames_recorded < 500,
        "{}",
        a.frames_recorded
    );
    let b = store.recorder_state(&fine);
    assert_eq!(
        (b.frames_recorded, b.write_errors),
        (500, 0),
        "the other camera is unaffected"
    );
    assert!(segments(&store, &full)
        .iter()
        .all(|s| s.state == SegmentState::Complete));
    assert_intact(&store, &full);
    assert_intact(&store, &fine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_camera_directory_is_an_error_until_it_is_writable_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), |_| {});
    let camera = cam(3);
    let mount = Mount::bind(&store.config().root.join(camera.as_str()));
    let clip = Clip::h264_360p();
    let mut f = ClipFeed::new(&clip, T0, 0);
    let (tx, handle) = store.recorder_channel(camera, 16).unwrap();
    let mut watch = store.watch_recorder(&camera);
    feed(&tx, &mut f, 100).await;
    tx.send(SourceEvent::Interrupted {
        at: f.now(),
        reason: "test: stream paused".into(),
    })
    .await
    .unwrap();
    watch
        .wait_for(|s| matches!(s.status, RecorderStatus::Idle { .. }) && s.frames_recorded == 100)
        .await
        .unwrap();
    let before = segments(&store, &camera);

    mount.set_read_only(true);
    feed(&tx, &mut f, 50).await;
    let s = watch
        .wait_for(|s| matches!(s.status, RecorderStatus::Error { .. }))
        .await
        .unwrap()
        .clone();
    let RecorderStatus::Error { reason } = &s.status else {
        unreachable!()
    };
    assert!(reason.contains("Read-only file system"), "{reason}");
    assert!(reason.contains(camera.as_str()), "{reason}");

    mount.set_read_only(false);
    feed(&tx, &mut f, 100).await;
    watch
        .wait_for(|s| {
            s.status == RecorderStatus::Recording && s.fragments_written > before.len() as u64 * 2
        })
        .await
        .unwrap();
    drop(tx);
    handle.join().await;
    let after = segments(&store, &camera);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier segments untouched"
    );
    assert!(after.len() > before.len());
    assert_intact(&store, &camera);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_frees_a_full_store_and_recording_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let _mount = Mount::tmpfs(&root, "2m");
    let store = open_store(dir.path(), |c| {
        c.min_free_bytes = 512 << 10;
        c.min_free_fraction = 0.0;
        c.retention_interval = Duration::from_millis(200);
    });
    let maintenance = store.spawn_maintenance();
    let camera = cam(4);
    let clip = Clip::h264_720p();
    let mut f = ClipFeed::new(&clip, T0, 0);
    let (tx, handle) = store.recorder_channel(camera, 16).unwrap();
    // 60 s of video (about 3.3 MB) into a 2 MiB file system, a little faster than real time.
    for _ in 0..60 {
        feed(&tx, &mut f, 25).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tx);
    handle.join().await;
    maintenance.abort();
    let state = store.recorder_state(&camera);
    let segs = segments(&store, &camera);
    let kept: u64 = segs.iter().map(|s| s.len).sum();
    assert!(kept < 2 << 20);
    assert!(
        state.frames_recorded > 1000,
        "recording carried on after the disk filled: {state:?}"
    );
    assert!(segs[0].start() > T0, "the oldest footage was deleted");
    assert!(
        segs.last().unwrap().end() >= T0.add_ms(55_000),
        "the newest footage is there"
    );
    assert_intact(&store, &camera);
}
