//! Recovery tests: truncation at every byte, power-loss garbage, interrupted deletions,
//! orphans, vanished files, status history, identity checks, and rebuilding the catalogue.

use std::sync::Arc;
use std::time::Duration;

use vigil_core::status::StatusKind;
use vigil_core::time::Interval;
use vigil_index::{Index, SegmentRecord, SegmentState};

use super::{catalogue_file, Durability, FileOutcome, Verify};
use crate::layout::Layout;
use crate::test_util::{cam, register, take, Harness, T0};
use crate::testing::{ffprobe, filler_frame, Clip, ClipFeed};
use crate::{scan, time, SourceEvent, Store, StoreConfig, StoreError};

/// Records a tiny segment (3 fragments of 4 small frames) and returns the harness, its
/// record and the file bytes.
async fn tiny_segment() -> (Harness, SegmentRecord, Vec<u8>) {
    let h = Harness::with(|c| c.segment_duration = Duration::from_secs(60));
    let camera = cam(1);
    let params = Clip::h264_360p().params;
    let events = (0..12)
        .map(|i| SourceEvent::Frame {
            params: params.clone(),
            frame: filler_frame(i * 3600, i % 4 == 0, 30 + i as usize),
            received_at: time::timestamp(time::ticks(T0) + i * 3600),
        })
        .collect();
    h.record(camera, events).await;
    let segs = h.segments(&camera);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].fragments, 3);
    let bytes = std::fs::read(h.path_of(&segs[0])).unwrap();
    (h, segs[0].clone(), bytes)
}

/// Fragment boundaries of a file: init end, then the end of each fragment.
fn boundaries(bytes: &[u8]) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, bytes).unwrap();
    let f = std::fs::File::open(&p).unwrap();
    let s = scan::scan(&f, bytes.len() as u64, 0).unwrap();
    assert_eq!(s.problem, None);
    let mut b = vec![s.init.unwrap().end];
    b.extend(s.fragments.iter().map(|f| f.end));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_at_every_byte_keeps_exactly_the_complete_fragments() {
    let (h, record, bytes) = tiny_segment().await;
    let bounds = boundaries(&bytes);
    assert_eq!(*bounds.last().unwrap(), bytes.len() as u64);
    let layout = Layout::new(h.dir.path().join("cut"));
    let camera = record.camera;
    let path = layout.segment_path(&camera, &record.file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    for p in 0..=bytes.len() {
        std::fs::write(&path, &bytes[..p]).unwrap();
        let complete = bounds[1..].iter().filter(|&&b| b <= p as u64).count();
        // The index may have confirmed any fragment boundary up to the cut.
        let confirmed = bounds
            .iter()
            .copied()
            .rfind(|&b| b <= p as u64)
            .unwrap_or(0);
        for verify in [
            Verify::From(confirmed),
            Verify::From(0),
            Verify::LastFragment,
        ] {
            let outcome =
                catalogue_file(&layout, &camera, &record.file, verify, Durability::Fsync).unwrap();
            match outcome {
                FileOutcome::Removed { .. } => {
                    assert_eq!(
                        complete, 0,
                        "cut at {p}: removed a file with {complete} fragments"
                    );
                    assert!(!path.exists());
                    std::fs::write(&path, &bytes[..p]).unwrap();
                }
                FileOutcome::Indexed {
                    record: r,
                    truncated,
                } => {
                    assert!(
                        complete > 0,
                        "cut at {p}: indexed without a complete fragment"
                    );
                    let end = bounds[complete];
                    assert_eq!(r.len, end, "cut at {p}");
                    assert_eq!(truncated, p as u64 - end);
                    assert_eq!(r.fragments as usize, complete);
                    assert_eq!(r.frames as usize, complete * 4);
                    assert_eq!(r.start_90k, record.start_90k);
                    assert_eq!(r.end_90k, record.start_90k + complete as i64 * 4 * 3600);
                    assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
                    assert_eq!(std::fs::read(&path).unwrap(), &bytes[..end as usize]);
                    std::fs::write(&path, &bytes[..p]).unwrap();
                }
                FileOutcome::Skipped { reason } => panic!("cut at {p}: skipped: {reason}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_the_index_closes_a_cut_segment_at_every_fragment_boundary() {
    let (_h, record, bytes) = tiny_segment().await;
    let bounds = boundaries(&bytes);
    // Positions: inside the init, inside each fragment, on each boundary.
    let mut cuts: Vec<usize> = bounds.iter().map(|&b| b as usize).collect();
    cuts.extend(bounds.windows(2).map(|w| ((w[0] + w[1]) / 2) as usize));
    cuts.push(bounds[0] as usize / 2);
    for p in cuts {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::new(dir.path().join("store"));
        let index = Arc::new(Index::open(dir.path().join("index")).unwrap());
        // A store that knew the segment as `Writing` with its first fragment confirmed.
        let (store, _) = Store::open(config.clone(), index.clone()).unwrap();
        drop(store);
        let path = config.root.join(record.camera.as_str()).join(&record.file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes[..p]).unwrap();
        let confirmed = SegmentRecord {
            state: SegmentState::Writing,
            len: bounds[1].min(p as u64),
            ..record.clone()
        };
        index.put_segment(&confirmed).unwrap();
        let (store, report) = Store::open(config, index.clone()).unwrap();
        let complete = bounds[1..].iter().filter(|&&b| b <= p as u64).count();
        let segs = store
            .index()
            .segments(&record.camera, i64::MIN, i64::MAX, 10)
            .unwrap();
        if complete == 0 {
            assert_eq!(report.files_removed, 1, "cut at {p}");
            assert!(segs.is_empty());
            assert!(!path.exists());
        } else {
            assert_eq!(report.segments_closed, 1, "cut at {p}");
            assert_eq!(segs.len(), 1);
            assert_eq!(segs[0].state, SegmentState::Complete);
            assert_eq!(segs[0].len, bounds[complete]);
            assert_eq!(segs[0].fragments as usize, complete);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), bounds[complete]);
            assert!(store
                .index()
                .segments_in_state(SegmentState::Writing)
                .unwrap()
                .is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_garbage_and_bad_checksums_are_cut_but_confirmed_bytes_are_trusted() {
    let (h, record, bytes) = tiny_segment().await;
    let bounds = boundaries(&bytes);
    let layout = Layout::new(h.root());
    let path = h.path_of(&record);
    let camera = record.camera;

    // Zeros after the last fragment (a size update that reached the disk before the data).
    let mut zeros = bytes.clone();
    zeros.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(&path, &zeros).unwrap();
    let FileOutcome::Indexed {
        record: r,
        truncated,
    } = catalogue_file(
        &layout,
        &camera,
        &record.file,
        Verify::From(bounds[1]),
        Durability::Fsync,
    )
    .unwrap()
    else {
        panic!("expected the file to be kept");
    };
    assert_eq!((r.len, truncated), (bytes.len() as u64, 4096));

    // A flipped byte in the media data of the last, unconfirmed fragment: CRC mismatch.
    let mut flipped = bytes.clone();
    let at = bytes.len() - 30;
    flipped[at] ^= 0x40;
    for verify in [Verify::From(bounds[2]), Verify::LastFragment] {
        std::fs::write(&path, &flipped).unwrap();
        let FileOutcome::Indexed { record: r, .. } =
            catalogue_file(&layout, &camera, &record.file, verify, Durability::Fsync).unwrap()
        else {
            panic!("expected the file to be kept");
        };
        assert_eq!(r.len, bounds[2], "the damaged last fragment is dropped");
    }
    // The same damage inside the part the index confirmed is not re-read (it was fsynced
    // before it was confirmed), so the file is kept whole.
    std::fs::write(&path, &flipped).unwrap();
    let FileOutcome::Indexed { record: r, .. } = catalogue_file(
        &layout,
        &camera,
        &record.file,
        Verify::From(bytes.len() as u64),
        Durability::Fsync,
    )
    .unwrap() else {
        panic!("expected the file to be kept");
    };
    assert_eq!(r.len, bytes.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_recording_is_recovered_with_status_history_and_orphans() {
    let h = Harness::with(|c| c.segment_duration = Duration::from_secs(2));
    let camera = cam(2);
    register(h.index(), camera);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    let (tx, handle) = h.store.recorder_channel(camera, 16).unwrap();
    let mut watch = h.store.watch_recorder(&camera);
    // 5.4 s: cuts at every second, segments rotate every 2 s; the last 10 frames stay in the
    // fragment builder (lost in the crash, as documented).
    for ev in take(&mut feed, 135) {
        tx.send(ev).await.unwrap();
    }
    watch.wait_for(|s| s.fragments_written == 5).await.unwrap();
    // Let the recorder go idle on its channel, then kill it without cleanup.
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.abort().await;
    let before = h.segments(&camera);
    let last = before.last().unwrap().clone();
    assert_eq!(last.end_90k, time::ticks(T0) + 125 * 3600);
    assert!(h.history(&camera, StatusKind::Recording)[0].is_open());
    // The index lost the last segment's record (it had not been flushed).
    h.index().remove_segments(&[last.key()]).unwrap();
    // And a deletion was in progress for the first segment.
    let first = before[0].clone();
    h.index()
        .put_segments_durable(&[SegmentRecord {
            state: SegmentState::Deleting,
            ..first.clone()
        }])
        .unwrap();
    let first_path = h.path_of(&first);
    drop(tx);

    let (h, report) = h.reopen();
    assert_eq!(report.deletions_finished, 1);
    assert_eq!(report.orphans_indexed, 1);
    assert!(!first_path.exists());
    let after = h.segments(&camera);
    assert_eq!(after.len(), before.len() - 1);
    let recovered = after.last().unwrap();
    assert_eq!(recovered.file, last.file);
    assert_eq!(recovered.state, SegmentState::Complete);
    assert_eq!(recovered.end_90k, time::ticks(T0) + 125 * 3600);
    assert_eq!(
        ffprobe(&h.path_of(recovered)).frames,
        u64::from(recovered.frames)
    );
    // The open intervals were closed at the end of the last good fragment.
    let end = time::timestamp(recovered.end_90k);
    assert_eq!(
        h.history(&camera, StatusKind::Recording),
        vec![Interval::new(T0, end).unwrap()]
    );
    assert_eq!(
        h.history(&camera, StatusKind::Upload),
        vec![Interval::new(T0, end).unwrap()]
    );
    // A new recording continues after the recovered one, never overlapping it.
    let mut feed = ClipFeed::new(&clip, T0.add_ms(1000), 0);
    h.record(camera, take(&mut feed, 30)).await;
    let segs = h.segments(&camera);
    assert_eq!(segs.last().unwrap().start_90k, recovered.end_90k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_two_segments_closes_recording_at_the_end_of_the_video() {
    let h = Harness::with(|c| c.segment_duration = Duration::from_secs(2));
    let camera = cam(5);
    register(h.index(), camera);
    let clip = Clip::h264_360p();
    let mut feed = ClipFeed::new(&clip, T0, 0);
    let (tx, handle) = h.store.recorder_channel(camera, 16).unwrap();
    let mut watch = h.store.watch_recorder(&camera);
    // 2.4 s: the first segment is cut and complete at the key frame at 2 s; the frames after
    // it are still in the next segment's first fragment, which is never written.
    for ev in take(&mut feed, 60) {
        tx.send(ev).await.unwrap();
    }
    watch
        .wait_for(|s| s.fragments_written == 2 && s.segment.is_none())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.abort().await;
    let segments = h.segments(&camera);
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].state, SegmentState::Complete);
    assert!(h.history(&camera, StatusKind::Recording)[0].is_open());
    drop(tx);

    let (h, report) = h.reopen();
    assert_eq!(
        report,
        super::RecoveryReport::default(),
        "no file needed work"
    );
    let end = time::timestamp(segments[0].end_90k);
    assert_eq!(end, T0.add_ms(2000));
    assert_eq!(
        h.history(&camera, StatusKind::Recording),
        vec![Interval::new(T0, end).unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_segment_whose_file_vanished_is_forgotten() {
    let (h, record, _) = tiny_segment().await;
    h.index()
        .put_segment(&SegmentRecord {
            state: SegmentState::Writing,
            ..record.clone()
        })
        .unwrap();
    std::fs::remove_file(h.path_of(&record)).unwrap();
    let (h, report) = h.reopen();
    assert_eq!(report.files_missing, 1);
    assert!(h.segments(&record.camera).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_and_an_index_that_do_not_belong_together_are_refused() {
    let (h, _, _) = tiny_segment().await;
    let config = h.config.clone();
    let dir = h.dir;
    drop(h.store);
    // Another index (e.g. restored from another machine) with its own identity.
    let other = tempfile::tempdir().unwrap();
    let other_index = Arc::new(Index::open(other.path().join("index")).unwrap());
    other_index
        .set_store_id("vigil-store-somewhere-else")
        .unwrap();
    let err = Store::open(config.clone(), other_index).unwrap_err();
    assert!(matches!(err, StoreError::IdentityMismatch { .. }), "{err}");
    // The disk is not mounted: the root is an empty directory.
    let index = Arc::new(Index::open(dir.path().join("index")).unwrap());
    let empty = StoreConfig::new(dir.path().join("empty-mount-point"));
    let err = Store::open(empty, index).unwrap_err();
    assert!(err.to_string().contains("is the disk mounted"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_is_rebuilt_from_the_files_alone() {
    let h = Harness::new();
    let (a, b) = (cam(3), cam(4));
    let mut fa = ClipFeed::new(&Clip::h264_720p(), T0, 0);
    h.record(a, take(&mut fa, 300)).await;
    let mut fb = ClipFeed::new(&Clip::h265_720p(), T0.add_ms(500), 77);
    h.record(b, take(&mut fb, 120)).await;
    let (sa, sb) = (h.segments(&a), h.segments(&b));
    let config = h.config.clone();
    let dir = h.dir;
    drop(h.store);

    // A brand-new index knows nothing: opening the store rebuilds the catalogue.
    let fresh = Arc::new(Index::open(dir.path().join("fresh-index")).unwrap());
    register(&fresh, a);
    let (store, report) = Store::open(config.clone(), fresh.clone()).unwrap();
    let rebuilt = report.rebuilt.expect("a rebuild");
    assert_eq!(rebuilt.cameras, 2);
    assert_eq!(rebuilt.segments, sa.len() + sb.len());
    let all = |c| {
        store
            .index()
            .segments(&c, i64::MIN, i64::MAX, 1000)
            .unwrap()
    };
    assert_eq!(all(a), sa);
    assert_eq!(all(b), sb);
    // A registered camera without recording history gets the intervals the files show.
    assert_eq!(
        store
            .index()
            .status_history(&a, StatusKind::Recording, &Interval::open(T0.sub_ms(1)))
            .unwrap(),
        vec![Interval::new(T0, time::timestamp(sa.last().unwrap().end_90k)).unwrap()]
    );
    drop(store);

    // The explicit command gives the same result and replaces the old catalogue.
    let report = crate::rebuild_index(&config, &fresh).unwrap();
    assert_eq!(report.records_replaced, sa.len() + sb.len());
    assert_eq!(fresh.segments(&a, i64::MIN, i64::MAX, 1000).unwrap(), sa);
}
