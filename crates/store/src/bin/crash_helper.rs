//! Crash-test helper: records simulated cameras (the demo clips, looped) into a real index and
//! store until it is killed. The crash test (`tests/crash.rs`) kills it with SIGKILL at
//! various points and checks what survived.
//!
//! ```text
//! vigil-store-crash-helper <store-root> <index-dir> <cameras> [--segment-ms N] [--fragment-ms N] [--paced]
//! ```
//!
//! Prints `READY` once the store is open (after recovery), then one line per durable commit
//! it observes: `COMMIT <camera> <segment-path> <committed-len>`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use vigil_core::id::GbId;
use vigil_core::time::Timestamp;
use vigil_index::Index;
use vigil_store::testing::{Clip, ClipFeed};
use vigil_store::{Store, StoreConfig};

struct Args {
    root: String,
    index: String,
    cameras: u32,
    segment_ms: u64,
    fragment_ms: u64,
    paced: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let usage = "usage: vigil-store-crash-helper <store-root> <index-dir> <cameras> [--segment-ms N] [--fragment-ms N] [--paced]";
    let root = it.next().ok_or(usage)?;
    let index = it.next().ok_or(usage)?;
    let cameras = it
        .next()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("cameras: {e}"))?;
    let mut args = Args {
        root,
        index,
        cameras,
        segment_ms: 2_000,
        fragment_ms: 4_000,
        paced: false,
    };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--segment-ms" => args.segment_ms = value("--segment-ms")?,
            "--fragment-ms" => args.fragment_ms = value("--fragment-ms")?,
            "--paced" => args.paced = true,
            other => return Err(format!("unknown argument {other}; {usage}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("crash helper failed: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let index = Arc::new(Index::open(&args.index)?);
    let mut config = StoreConfig::new(&args.root);
    config.segment_duration = Duration::from_millis(args.segment_ms);
    config.max_fragment_duration = Duration::from_millis(args.fragment_ms);
    let (store, report) = tokio::task::spawn_blocking(move || Store::open(config, index)).await??;
    eprintln!("recovery: {report:?}");
    println!("READY");
    std::io::stdout().flush()?;

    let clips = [Clip::h264_720p(), Clip::h264_360p(), Clip::h265_720p()];
    let mut tasks = Vec::new();
    for n in 0..args.cameras {
        let camera = GbId::parse(&format!("3401000000132{:07}", n + 1))?;
        let (tx, handle) = store.recorder_channel(camera, 64)?;
        let mut watch = store.watch_recorder(&camera);
        tasks.push(tokio::spawn(async move {
            let mut last = (None, 0);
            while watch.changed().await.is_ok() {
                let (seg, len) = {
                    let s = watch.borrow_and_update();
                    (s.segment.clone(), s.committed_len)
                };
                if let Some(path) = &seg {
                    if (seg.clone(), len) != last && len > 0 {
                        println!("COMMIT {camera} {} {len}", path.display());
                        let _ = std::io::stdout().flush();
                    }
                }
                last = (seg, len);
            }
        }));
        let clip = clips[n as usize % clips.len()].clone();
        let paced = args.paced;
        tasks.push(tokio::spawn(async move {
            // Start where the previous run (if any) left off would be ideal; the store keeps
            // time monotonic anyway.
            let start = Timestamp::from_system_time(std::time::SystemTime::now());
            let mut feed = ClipFeed::new(&clip, start, 1_000 * (i64::from(n) + 1));
            loop {
                if tx.send(feed.next_event()).await.is_err() {
                    break;
                }
                if paced {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            }
            drop(handle);
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}
