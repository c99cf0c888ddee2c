//! Load harness for the full synthetic city: import times, reopen time, report latencies and
//! resident memory. Not a criterion bench (each step runs once or a few times on a 200 000-camera
//! dataset); it prints one line per measurement.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-core cargo bench -p vigil-index --bench coverage_load
//! VIGIL_BENCH_SCALE=0.1 … (scale grids/sites/cameras; default 1.0, 0.002 under `cargo test`)
//! VIGIL_BENCH_THREADS=1 …   (threads per report pass; default 0 = automatic)
//! VIGIL_BENCH_KEEP=/some/dir … (build the index there and keep it, e.g. for profiling the
//!                               `--reopen` step under perf)
//! ```
//!
//! Resident memory is measured in a child process (this binary re-run with `--reopen PATH`) that
//! only opens the finished index and runs reports, so the figure is what a daemon holding the
//! city needs, without the generator's and the import's transient allocations.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_core::compliance::{ComplianceOptions, ItemPage, RankRequest, ReportRequest};
use vigil_core::import::CameraImport;
use vigil_core::target::{FigureKind, Target};
use vigil_core::time::{DAY_MS, HOUR_MS};
use vigil_index::{ImportMode, Index};
use vigil_sim::city::{generate, City, CityParams};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!(
        "{label:<48} {:>10.3} s   (RSS {:.0} MiB)",
        t.elapsed().as_secs_f64(),
        mib(status_kib("VmRSS:"))
    );
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_reports(
    index: &Index,
    city_root: &str,
    town: &str,
    village: &str,
    leaf: &str,
    at: vigil_core::time::Timestamp,
) {
    let opts = ComplianceOptions {
        threads: std::env::var("VIGIL_BENCH_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        ..ComplianceOptions::default()
    };
    println!("report threads: {} (0 = automatic)", opts.threads);
    let run = |label: &str, req: &ReportRequest| {
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let r = index.report(&opts, req).expect("report");
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
        println!(
            "{label:<48} {:>10.2} ms (median of 7)",
            median(times).as_secs_f64() * 1e3
        );
    };
    let code = |s: &str| vigil_core::grid::GridCode::parse(s).expect("grid code");
    let mut root = ReportRequest::new(code(city_root), at);
    run("report city root, 24 h, first 100 items/figure", &root);
    root.items = ItemPage::none();
    root.children = false;
    run("report city root, 24 h, counts only", &root);
    let mut week = ReportRequest::new(code(city_root), at);
    week.window_ms = 7 * DAY_MS;
    week.trend_ms = Some(7 * DAY_MS);
    run("report city root, 7 d window + 7 d trend", &week);
    run(
        "report one town (depth 1)",
        &ReportRequest::new(code(town), at),
    );
    run(
        "report one village (depth 2)",
        &ReportRequest::new(code(village), at),
    );
    run(
        "report one base grid (depth 3)",
        &ReportRequest::new(code(leaf), at),
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = index
            .rank(
                &opts,
                &RankRequest {
                    within: code(city_root),
                    depth: 2,
                    at,
                    window_ms: DAY_MS,
                },
            )
            .expect("rank");
        times.push(t.elapsed());
        std::hint::black_box(r);
    }
    println!(
        "{:<48} {:>10.2} ms (median of 5)",
        "rank all villages (depth 2)",
        median(times).as_secs_f64() * 1e3
    );
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(index.snapshot().expect("snapshot"));
        times.push(t.elapsed());
    }
    println!(
        "{:<48} {:>10.2} ms (median of 20)",
        "snapshot (write-lock-free copy for reports)",
        median(times).as_secs_f64() * 1e3
    );
}

fn build(city: &City, path: &Path) -> Index {
    let index = Index::open(path).expect("open index");
    timed(&format!("import {} grids", city.grids.len()), || {
        index
            .import_grids(city.grids.clone(), ImportMode::AllOrNothing)
            .expect("grids")
    });
    timed(&format!("import {} sites", city.sites.len()), || {
        index
            .import_sites(city.sites.clone(), ImportMode::AllOrNothing)
            .expect("sites")
    });
    let items: Vec<CameraImport> = city
        .cameras
        .iter()
        .map(|v| CameraImport {
            version: v.clone(),
            credentials: None,
        })
        .collect();
    timed(
        &format!(
            "import {} cameras ({} record versions)",
            city.camera_count(),
            items.len()
        ),
        || {
            index
                .import_cameras(items, ImportMode::AllOrNothing)
                .expect("cameras")
        },
    );
    let mut intervals = 0usize;
    let mut diagnoses = 0usize;
    let t = Instant::now();
    index
        .import_history(city.uplink_records(), ImportMode::AllOrNothing)
        .expect("uplinks");
    let step = 10_000;
    let mut start = 0;
    while start < city.camera_count() {
        let end = (start + step).min(city.camera_count());
        let (hist, diag) = city.history_records(start..end);
        intervals += hist.len();
        diagnoses += diag.len();
        index
            .import_history(hist, ImportMode::AllOrNothing)
            .expect("history");
        index
            .import_diagnoses(diag, ImportMode::AllOrNothing)
            .expect("diagnoses");
        start = end;
    }
    println!(
        "{:<48} {:>10.3} s",
        format!(
            "import {} days history: {intervals} intervals, {diagnoses} diagnoses",
            city.params.days
        ),
        t.elapsed().as_secs_f64()
    );
    index
}

fn child(path: &str, root: &str, town: &str, village: &str, leaf: &str, at_ms: i64) {
    let before = status_kib("VmRSS:");
    let index = timed("reopen index (load model from disk)", || {
        Index::open(path).expect("reopen")
    });
    println!(
        "{:<48} {:>10.1} MiB",
        "RSS after reopen",
        mib(status_kib("VmRSS:"))
    );
    bench_reports(
        &index,
        root,
        town,
        village,
        leaf,
        vigil_core::time::Timestamp::from_millis(at_ms),
    );
    println!(
        "{:<48} {:>10.1} MiB (peak {:.1} MiB, process start {:.1} MiB)",
        "RSS after reports",
        mib(status_kib("VmRSS:")),
        mib(status_kib("VmHWM:")),
        mib(before)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--reopen") {
        let get = |i: usize| args.get(pos + i).cloned().unwrap_or_default();
        child(
            &get(1),
            &get(2),
            &get(3),
            &get(4),
            &get(5),
            get(6).parse().unwrap_or(0),
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` support: nothing to list individually.
        return;
    }
    // Full city under `cargo bench` (which passes `--bench`); a smoke test under `cargo test`.
    let scale: f64 = std::env::var("VIGIL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if args.iter().any(|a| a == "--bench") {
            1.0
        } else {
            0.002
        });
    let params = CityParams::scaled(scale);
    println!(
        "city: scale {scale}, {:?} grids per level, {} sites, {} cameras, {} days",
        params.grids_per_level, params.sites, params.cameras, params.days
    );
    let city = timed("generate city", || generate(&params).expect("generate"));
    let keep = std::env::var_os("VIGIL_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("vigil-coverage-load-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("index");
    let index = build(&city, &path);
    let at = city.params.end.sub_ms(HOUR_MS);
    let root = city.grids[0].code.to_string();
    let by_label = |label: &str| {
        city.grids
            .iter()
            .find(|g| g.level_label == label)
            .map(|g| g.code.to_string())
            .unwrap_or_else(|| root.clone())
    };
    let town = by_label("镇/街道");
    let village = by_label("村/居");
    let leaf = city
        .grids
        .last()
        .map(|g| g.code.to_string())
        .unwrap_or_else(|| root.clone());
    // Dated targets, so that the trend report computes deadline progress (a second pass).
    let mut targets = index.targets().expect("targets");
    for kind in [
        FigureKind::Coverage,
        FigureKind::NetworkingAll,
        FigureKind::Intact,
    ] {
        targets.set(
            kind,
            Target {
                ratio: targets.get(kind).ratio,
                due: Some(city.params.end.add_ms(90 * DAY_MS)),
            },
        );
    }
    index.set_targets(targets).expect("targets");
    timed("flush", || index.flush().expect("flush"));
    println!("-- reports in the importing process (memory laid out by the imports):");
    bench_reports(&index, &root, &town, &village, &leaf, at);
    println!(
        "{:<48} {:>10.1} MiB (includes generator and import buffers)",
        "RSS of the importing process",
        mib(status_kib("VmRSS:"))
    );
    drop(index);
    drop(city);
    let exe = std::env::current_exe().expect("current exe");
    println!("-- reports in a fresh process that reopened the index:");
    let status = Command::new(exe)
        .args([
            "--reopen",
            &path.to_string_lossy(),
            &root,
            &town,
            &village,
            &leaf,
            &at.as_millis().to_string(),
        ])
        .status()
        .expect("run child");
    let size: u64 = std::fs::read_dir(&path)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "{:<48} {:>10.1} MiB",
        "index size on disk (top-level files)",
        size as f64 / (1 << 20) as f64
    );
    match keep {
        Some(_) => {
            println!(
            "kept index; re-run the reports with: {} --reopen {} {root} {town} {village} {leaf} {}",
            std::env::current_exe().map(|e| e.display().to_string()).unwrap_or_default(),
            path.display(),
            at.as_millis()
        )
        }
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(status.success(), "child failed");
}
