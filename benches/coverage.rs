//! Criterion benches of the compliance reports and the camera import on the synthetic city.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-core cargo bench -p vigil-index --bench coverage
//! VIGIL_BENCH_SCALE=0.1 …   scale the city (default 1.0: 20 000 grids, 50 000 sites,
//!                           200 000 cameras, 30 days of history; 0.002 under `cargo test`)
//! VIGIL_BENCH_IMPORT=0 …    skip the (slow) 200 000-camera import group
//! ```
//!
//! Goals: full roll-up for the city root ≤ 200 ms, one grid ≤ 10 ms, importing 200 000 cameras
//! ≤ 30 s. Memory is measured by the `coverage_load` harness.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use vigil_core::compliance::{ComplianceOptions, ItemPage, RankRequest, ReportRequest};
use vigil_core::grid::GridCode;
use vigil_core::import::CameraImport;
use vigil_core::ratio::Rational;
use vigil_core::target::{FigureKind, Target};
use vigil_core::time::{DAY_MS, HOUR_MS};
use vigil_index::{ImportMode, Index};
use vigil_sim::city::{generate, City, CityParams};

/// `VIGIL_BENCH_SCALE`, else the full city under `cargo bench` (which passes `--bench`) and a
/// tiny one under `cargo test --benches`, where criterion only smoke-tests each bench once.
fn scale() -> f64 {
    std::env::var("VIGIL_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            1.0
        } else {
            0.002
        })
}

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| generate(&CityParams::scaled(scale())).expect("generate city"))
}

fn camera_items(city: &City) -> Vec<CameraImport> {
    city.cameras
        .iter()
        .map(|v| CameraImport {
            version: v.clone(),
            credentials: None,
        })
        .collect()
}

/// An index holding the whole city with its history, and dated targets so that reports with
/// a trend compute deadline progress.
fn loaded() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let city = city();
        let index = Index::temporary().expect("temporary index");
        index
            .import_grids(city.grids.clone(), ImportMode::AllOrNothing)
            .expect("grids");
        index
            .import_sites(city.sites.clone(), ImportMode::AllOrNothing)
            .expect("sites");
        index
            .import_cameras(camera_items(city), ImportMode::AllOrNothing)
            .expect("cameras");
        index
            .import_history(city.uplink_records(), ImportMode::AllOrNothing)
            .expect("uplinks");
        let mut start = 0;
        while start < city.camera_count() {
            let end = (start + 10_000).min(city.camera_count());
            let (hist, diag) = city.history_records(start..end);
            index
                .import_history(hist, ImportMode::AllOrNothing)
                .expect("history");
            index
                .import_diagnoses(diag, ImportMode::AllOrNothing)
                .expect("diagnoses");
            start = end;
        }
        let mut targets = index.targets().expect("targets");
        for kind in [
            FigureKind::Coverage,
            FigureKind::NetworkingAll,
            FigureKind::Upload,
        ] {
            targets.set(
                kind,
                Target {
                    ratio: targets.get(kind).ratio,
                    due: Some(city.params.end.add_ms(90 * DAY_MS)),
                },
            );
        }
        targets.set(
            FigureKind::Intact,
            Target {
                ratio: Rational::percent(98),
                due: Some(city.params.end.add_ms(30 * DAY_MS)),
            },
        );
        index.set_targets(targets).expect("set targets");
        index
    })
}

fn code(s: &str) -> GridCode {
    GridCode::parse(s).expect("grid code")
}

fn reports(c: &mut Criterion) {
    let city = city();
    let index = loaded();
    let opts = ComplianceOptions::default();
    let at = city.params.end.sub_ms(HOUR_MS);
    let root = city.grids[0].code.clone();
    let by_label = |label: &str| {
        city.grids
            .iter()
            .find(|g| g.level_label == label)
            .map_or_else(|| root.clone(), |g| g.code.clone())
    };
    let town = by_label("镇/街道");
    let village = by_label("村/居");
    let leaf = city
        .grids
        .last()
        .map_or_else(|| root.clone(), |g| g.code.clone());

    let mut g = c.benchmark_group("report");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    let with_items = ReportRequest::new(root.clone(), at);
    g.bench_function("city_root_24h_first_100_items", |b| {
        b.iter(|| black_box(index.report(&opts, &with_items).expect("report")))
    });
    let mut counts = ReportRequest::new(root.clone(), at);
    counts.items = ItemPage::none();
    counts.children = false;
    g.bench_function("city_root_24h_counts_only", |b| {
        b.iter(|| black_box(index.report(&opts, &counts).expect("report")))
    });
    let mut trend = ReportRequest::new(root.clone(), at);
    trend.window_ms = 7 * DAY_MS;
    trend.trend_ms = Some(7 * DAY_MS);
    g.bench_function("city_root_7d_with_7d_trend", |b| {
        b.iter(|| black_box(index.report(&opts, &trend).expect("report")))
    });
    let single = ComplianceOptions {
        threads: 1,
        ..opts.clone()
    };
    g.bench_function("city_root_24h_single_thread", |b| {
        b.iter(|| black_box(index.report(&single, &with_items).expect("report")))
    });
    let t = ReportRequest::new(town, at);
    g.bench_function("one_town", |b| {
        b.iter(|| black_box(index.report(&opts, &t).expect("report")))
    });
    let v = ReportRequest::new(village, at);
    g.bench_function("one_village", |b| {
        b.iter(|| black_box(index.report(&opts, &v).expect("report")))
    });
    let l = ReportRequest::new(leaf, at);
    g.bench_function("one_base_grid", |b| {
        b.iter(|| black_box(index.report(&opts, &l).expect("report")))
    });
    let rank = RankRequest {
        within: code(root.as_str()),
        depth: 2,
        at,
        window_ms: DAY_MS,
    };
    g.bench_function("rank_all_villages", |b| {
        b.iter(|| black_box(index.rank(&opts, &rank).expect("rank")))
    });
    g.bench_function("snapshot", |b| {
        b.iter(|| black_box(index.snapshot().expect("snapshot")))
    });
    g.finish();
}

fn import(c: &mut Criterion) {
    if std::env::var("VIGIL_BENCH_IMPORT").is_ok_and(|v| v == "0") {
        return;
    }
    let city = city();
    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    g.bench_function(format!("{}_cameras", city.camera_count()), |b| {
        b.iter_batched(
            || {
                let index = Index::temporary().expect("temporary index");
                index
                    .import_grids(city.grids.clone(), ImportMode::AllOrNothing)
                    .expect("grids");
                index
                    .import_sites(city.sites.clone(), ImportMode::AllOrNothing)
                    .expect("sites");
                (index, camera_items(city))
            },
            |(index, items)| {
                index
                    .import_cameras(items, ImportMode::AllOrNothing)
                    .expect("cameras");
                index
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, reports, import);
criterion_main!(benches);
