//! vigil-store: export throughput from the page cache, writer cost per 4 Mbit/s stream
//! (fragment build + CRC + writev + fdatasync + index update), recovery/rebuild scan speed.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-store cargo bench -p vigil-store --bench store`
//!
//! Input: the 720p demo clip padded to 4 Mbit/s (key frames 5× the size of P frames, 1 s
//! GOPs, 25 fps), recorded through the real recorder into a store on the default temp
//! directory's file system.
//!
//! - `export/stream` and `export/read_blocking`: a 120 s export (≈ 60 MB in 3 segments of
//!   up to 60 s) read from the page cache, through the async stream (1 MiB chunks on the blocking
//!   pool) and synchronously. Throughput is reported in bytes/s.
//! - `writer/wall_10s_4mbit`: wall time to record 10 s of one stream as fast as it comes
//!   (dominated by 10 fdatasyncs).
//! - `writer/wall_x20_5s_4mbit`: wall time for 20 streams recording 5 s each concurrently.
//! - `writer/cpu_per_stream_second_x20`: 20 streams recorded concurrently, 15 s each; the
//!   measured value is process CPU time (user + system, from /proc/self/stat, 10 ms
//!   resolution) divided by the 300 stream-seconds recorded — i.e. CPU seconds per second of one stream. Streams per
//!   core ≈ 1 / that value.
//! - `recovery/rebuild_index`: rebuilding the catalogue of the 120 s store from its files;
//!   `recovery/scan_verify_all`: scanning one 60 s segment verifying every CRC (bytes/s);
//!   `recovery/rebuild_index_segments`: rebuilding a catalogue of 600 one-second segments
//!   (segments/s: the per-file cost of a rebuild).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use futures::StreamExt;
use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::Index;
use vigil_store::testing::{Clip, ClipFeed};
use vigil_store::{scan, Store, StoreConfig};

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const BITRATE: u64 = 4_000_000;

fn cam(n: u32) -> GbId {
    GbId::parse(&format!("3401000000132{n:07}")).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: Store,
    config: StoreConfig,
    clip: Clip,
}

fn fixture(segment_secs: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().join("store"));
    config.segment_duration = Duration::from_secs(segment_secs);
    let index = Arc::new(Index::open(dir.path().join("index")).unwrap());
    let (store, _) = Store::open(config.clone(), index).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Fixture {
        _dir: dir,
        rt,
        store,
        config,
        clip: Clip::h264_720p().padded_to(BITRATE),
    }
}

/// Records `secs` seconds for each of `cameras` cameras concurrently, starting at `start`.
async fn record(
    store: &Store,
    clip: &Clip,
    cameras: std::ops::Range<u32>,
    start: Timestamp,
    secs: usize,
) {
    let mut tasks = Vec::new();
    for n in cameras {
        let (tx, handle) = store.recorder_channel(cam(n), 64).unwrap();
        let clip = clip.clone();
        tasks.push(tokio::spawn(async move {
            let mut feed = ClipFeed::new(&clip, start, 0);
            for _ in 0..secs * 25 {
                tx.send(feed.next_event()).await.unwrap();
            }
            drop(tx);
            handle.join().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Process CPU time (user + system) so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux configuration we run on.
    Duration::from_millis(ticks * 10)
}

fn export(c: &mut Criterion) {
    let fx = fixture(60);
    fx.rt.block_on(record(&fx.store, &fx.clip, 1..2, T0, 120));
    let export = fx
        .rt
        .block_on(fx.store.export(&cam(1), T0, T0.add_ms(120_000)))
        .unwrap()
        .unwrap();
    let len = export.len();
    // Warm the page cache.
    black_box(export.read_blocking(0..len).unwrap());

    let mut g = c.benchmark_group("export");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(len));
    g.bench_function("stream", |b| {
        b.iter(|| {
            fx.rt.block_on(async {
                let mut s = std::pin::pin!(export.stream_all());
                let mut n = 0u64;
                while let Some(chunk) = s.next().await {
                    n += chunk.unwrap().len() as u64;
                }
                assert_eq!(n, len);
            })
        })
    });
    g.bench_function("read_blocking", |b| {
        b.iter(|| black_box(export.read_blocking(0..len).unwrap().len()))
    });
    g.finish();

    let mut g = c.benchmark_group("export_plan");
    g.sample_size(20);
    g.bench_function("plan_120s", |b| {
        b.iter(|| {
            black_box(
                fx.store
                    .export_blocking(&cam(1), T0, T0.add_ms(120_000))
                    .unwrap()
                    .unwrap()
                    .len(),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    let seg = fx
        .store
        .index()
        .segments(&cam(1), i64::MIN, i64::MAX, 10)
        .unwrap()
        .remove(0);
    let path = fx.config.root.join(cam(1).as_str()).join(&seg.file);
    g.throughput(Throughput::Bytes(seg.len));
    g.bench_function("scan_verify_all", |b| {
        b.iter(|| {
            let f = std::fs::File::open(&path).unwrap();
            let s = scan::scan(&f, seg.len, 0).unwrap();
            assert_eq!(s.valid_end, seg.len);
        })
    });
    let segments = fx
        .store
        .index()
        .segments(&cam(1), i64::MIN, i64::MAX, 100)
        .unwrap()
        .len();
    g.throughput(Throughput::Bytes(len));
    g.bench_function("rebuild_index", |b| {
        b.iter(|| {
            let r = vigil_store::rebuild_index(&fx.config, fx.store.index()).unwrap();
            assert_eq!(r.segments, segments);
        })
    });
    g.finish();
}

fn writer(c: &mut Criterion) {
    let fx = fixture(60);
    let mut g = c.benchmark_group("writer");
    // Each iteration writes real data (up to 50 MB): few, equal-sized samples.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(10));
    let mut round = 0i64;
    g.throughput(Throughput::Bytes(BITRATE / 8 * 10));
    g.bench_function("wall_10s_4mbit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let start = T0.add_ms(round * 20_000);
                let t = Instant::now();
                fx.rt.block_on(record(&fx.store, &fx.clip, 1..2, start, 10));
                total += t.elapsed();
            }
            total
        })
    });
    g.throughput(Throughput::Bytes(BITRATE / 8 * 5 * 20));
    g.bench_function("wall_x20_5s_4mbit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let start = T0.add_ms(round * 20_000);
                let t = Instant::now();
                fx.rt
                    .block_on(record(&fx.store, &fx.clip, 200..220, start, 5));
                total += t.elapsed();
            }
            total
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("cpu_per_stream_second_x20", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let start = T0.add_ms(round * 20_000);
                let before = cpu_time();
                // (Each round starts 20 s after the previous one; 15 s rounds never overlap.)
                fx.rt
                    .block_on(record(&fx.store, &fx.clip, 100..120, start, 5));
                // CPU seconds per stream-second: divide by 20 streams × 5 s.
                total += (cpu_time() - before) / 100;
            }
            total
        })
    });
    g.finish();
}

fn rebuild_many(c: &mut Criterion) {
    // 600 one-second segments of the 360p clip (the smallest segments the store cuts).
    let fx = fixture(1);
    let clip = Clip::h264_360p();
    fx.rt.block_on(record(&fx.store, &clip, 1..2, T0, 600));
    let segments = fx
        .store
        .index()
        .segments(&cam(1), i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .len();
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    g.throughput(Throughput::Elements(segments as u64));
    g.bench_function("rebuild_index_segments", |b| {
        b.iter(|| {
            let r = vigil_store::rebuild_index(&fx.config, fx.store.index()).unwrap();
            assert_eq!(r.segments, segments);
        })
    });
    g.finish();
}

criterion_group!(benches, export, writer, rebuild_many);
criterion_main!(benches);
