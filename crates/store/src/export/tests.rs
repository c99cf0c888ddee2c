//! Export tests: ffprobe accepts the result, it covers what was asked to within a GOP, byte
//! ranges concatenate to the whole, parameter changes and gaps, "nothing there".

use futures::StreamExt;

use crate::test_util::{cam, take, Harness, T0};
use crate::testing::{ffprobe, Clip, ClipFeed};
use crate::{boxes, StoreError};

async fn collect(export: &crate::Export, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = std::pin::pin!(export.stream(range));
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        assert!(!chunk.is_empty() && chunk.len() <= 1 << 20);
        out.extend_from_slice(&chunk);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_spans_segments_from_the_key_frame_before_start() {
    let h = Harness::new();
    let camera = cam(1);
    let mut feed = ClipFeed::new(&Clip::h264_720p(), T0, 5_000);
    h.record(camera, take(&mut feed, 500)).await; // 20 s, 1 s GOPs, 4 s segments
    assert!(h.segments(&camera).len() >= 5);

    let (start, end) = (T0.add_ms(3_500), T0.add_ms(13_200));
    let export = h.store.export(&camera, start, end).await.unwrap().unwrap();
    assert_eq!(
        export.start(),
        T0.add_ms(3_000),
        "the key frame at or before start"
    );
    assert_eq!(
        export.end(),
        T0.add_ms(14_000),
        "the fragment beginning before end, whole"
    );
    assert_eq!(export.frames(), 275);
    assert_eq!(export.stopped_at_change(), None);
    assert_eq!(export.content_type(), "video/mp4");

    let bytes = collect(&export, 0..export.len()).await;
    assert_eq!(bytes.len() as u64, export.len());
    let path = h.dir.path().join("export.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let p = ffprobe(&path);
    assert_eq!((p.codec.as_str(), p.width, p.height), ("h264", 1280, 720));
    assert_eq!(p.frames, 275);
    let asked = end.ms_since(start) as f64 / 1000.0;
    assert!((p.duration - 11.0).abs() < 0.01, "{}", p.duration);
    assert!(p.duration - asked <= 2.0, "within one GOP at each end");

    // The file carries the wall clock of its first fragment and a timeline from zero.
    let moof = bytes.windows(4).position(|w| w == b"moof").expect("a moof") - 4;
    let (wall, media) = boxes::parse_prft(&bytes[moof - boxes::PRFT_LEN..]).unwrap();
    assert_eq!((crate::time::timestamp(wall), media), (T0.add_ms(3_000), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_ranges_concatenate_to_the_whole_file() {
    let h = Harness::new();
    let camera = cam(2);
    let mut feed = ClipFeed::new(&Clip::h264_360p(), T0, 0);
    h.record(camera, take(&mut feed, 250)).await;
    let export = h
        .store
        .export_blocking(&camera, T0, T0.add_ms(10_000))
        .unwrap()
        .unwrap();
    let whole = export.read_blocking(0..export.len()).unwrap();
    assert_eq!(collect(&export, 0..export.len()).await, whole);
    // Ranges that start and end everywhere: inside the init, on box boundaries, in media.
    let len = export.len();
    let mut cuts: Vec<u64> = vec![0, 1, 7, 8, 31, 32, 33, len - 1, len];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        cuts.push(x % len);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut joined = Vec::new();
    for w in cuts.windows(2) {
        let part = collect(&export, w[0]..w[1]).await;
        assert_eq!(part.len() as u64, w[1] - w[0]);
        assert_eq!(
            part,
            whole[w[0] as usize..w[1] as usize],
            "range {}..{}",
            w[0],
            w[1]
        );
        joined.extend_from_slice(&part);
    }
    assert_eq!(joined, whole);
    // Out-of-range requests are clamped.
    assert!(collect(&export, len..len + 10).await.is_empty());
    assert_eq!(
        export.read_blocking(len - 3..len + 100).unwrap(),
        whole[len as usize - 3..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_stops_at_a_codec_change_and_keeps_gaps_in_its_timeline() {
    let h = Harness::new();
    let camera = cam(3);
    let a = Clip::h264_720p();
    let mut fa = ClipFeed::new(&a, T0, 0);
    let mut events = take(&mut fa, 100);
    events.push(crate::SourceEvent::Interrupted {
        at: fa.now(),
        reason: "test".into(),
    });
    fa.skip(6 * 90_000); // a 6 s gap
    events.extend(take(&mut fa, 100));
    let mut fb = ClipFeed::new(&Clip::h265_720p(), fa.now(), fa.pts);
    events.extend(take(&mut fb, 50));
    h.record(camera, events).await;

    let export = h
        .store
        .export(&camera, T0, T0.add_ms(20_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(export.stopped_at_change(), Some(T0.add_ms(14_000)));
    assert_eq!(export.frames(), 200);
    assert_eq!(export.end(), T0.add_ms(14_000));
    let path = h.dir.path().join("gap.mp4");
    std::fs::write(&path, collect(&export, 0..export.len()).await).unwrap();
    let p = ffprobe(&path);
    assert_eq!((p.codec.as_str(), p.frames), ("h264", 200));
    assert!(
        (p.duration - 14.0).abs() < 0.01,
        "the 6 s gap stays in the timeline: {}",
        p.duration
    );

    // From the change on, a separate export has the new codec.
    let rest = h
        .store
        .export(&camera, T0.add_ms(14_000), T0.add_ms(20_000))
        .await
        .unwrap()
        .unwrap();
    let path = h.dir.path().join("rest.mp4");
    std::fs::write(&path, rest.read_blocking(0..rest.len()).unwrap()).unwrap();
    assert_eq!(ffprobe(&path).codec, "hevc");

    // A start inside the gap begins at the next recording.
    let e = h
        .store
        .export(&camera, T0.add_ms(5_000), T0.add_ms(12_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.start(), T0.add_ms(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_recorded_is_none_and_bad_requests_are_errors() {
    let h = Harness::new();
    let camera = cam(4);
    assert!(h
        .store
        .export(&camera, T0, T0.add_ms(1000))
        .await
        .unwrap()
        .is_none());
    let mut feed = ClipFeed::new(&Clip::h264_360p(), T0, 0);
    h.record(camera, take(&mut feed, 50)).await;
    let before = h
        .store
        .export(&camera, T0.sub_ms(60_000), T0.sub_ms(1))
        .await
        .unwrap();
    assert!(before.is_none());
    for (a, b) in [
        (T0, T0),
        (T0, T0.sub_ms(1)),
        (T0, T0.add_ms(25 * 3600 * 1000)),
    ] {
        let err = h.store.export(&camera, a, b).await.unwrap_err();
        assert!(matches!(err, StoreError::BadExport { .. }), "{err}");
    }
}
