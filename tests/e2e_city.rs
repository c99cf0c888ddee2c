//! A generated town (`vigil_sim::city`, 1 200 cameras, 7 days of history) written as the
//! integrators' files — grids and cameras as GB18030 CSV, sites and diagnoses as JSON, status
//! history as UTF-8 CSV — imported through the daemon's API, gives exactly the reports that
//! `vigil_core::compliance` computes in process from the generator's records.

mod support;

use vigil_core::compliance::{ComplianceOptions, ItemPage, RankRequest, ReportRequest};
use vigil_core::import::CameraImport;
use vigil_core::time::DAY_MS;
use vigil_index::{ImportMode, Index};
use vigil_sim::city::{generate, City, CityParams};

use support::{gb18030, read, Env};

fn reference(city: &City) -> Index {
    let index = Index::temporary().unwrap();
    index
        .import_grids(city.grids.clone(), ImportMode::AllOrNothing)
        .unwrap();
    index
        .import_sites(city.sites.clone(), ImportMode::AllOrNothing)
        .unwrap();
    index
        .import_cameras(
            city.cameras
                .iter()
                .map(|v| CameraImport {
                    version: v.clone(),
                    credentials: None,
                })
                .collect(),
            ImportMode::AllOrNothing,
        )
        .unwrap();
    let (mut history, diagnoses) = city.history_records(0..city.camera_count());
    history.extend(city.uplink_records());
    index
        .import_history(history, ImportMode::AllOrNothing)
        .unwrap();
    index
        .import_diagnoses(diagnoses, ImportMode::AllOrNothing)
        .unwrap();
    index
}

#[test]
fn a_generated_town_imported_as_files_reports_like_the_engine() {
    let params = CityParams::small();
    let city = generate(&params).unwrap();
    let env = Env::new("");
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    city.write_csv(&files).unwrap();
    city.write_json(&files).unwrap();
    let admin = env.token("admin", "e2e admin");
    let daemon = env.start();
    let api = daemon.client(Some(&admin));

    let utf8 = |name: &str| String::from_utf8(read(&files.join(name))).unwrap();
    let uploads: [(&str, &str, Vec<u8>, usize); 5] = [
        (
            "grids",
            "text/csv",
            gb18030(&utf8("grids.csv")),
            city.grids.len(),
        ),
        (
            "sites",
            "application/json",
            read(&files.join("sites.json")),
            city.sites.len(),
        ),
        (
            "cameras",
            "text/csv",
            gb18030(&utf8("cameras.csv")),
            city.cameras.len(),
        ),
        (
            "intervals",
            "text/csv",
            read(&files.join("intervals.csv")),
            0,
        ),
        (
            "diagnoses",
            "application/json",
            read(&files.join("diagnoses.json")),
            0,
        ),
    ];
    for (kind, media, body, expected) in uploads {
        let r = api
            .post(&format!("/api/v1/imports/{kind}"), media, &body)
            .expect(200)
            .json();
        assert_eq!(
            r["rejected"].as_array().map(Vec::len),
            Some(0),
            "{kind}: {r}"
        );
        assert_eq!(r["applied"], r["rows"], "{kind}: {r}");
        if expected > 0 {
            assert_eq!(r["applied"], expected, "{kind}");
        }
    }

    let index = reference(&city);
    let root = city.grids[0].code.clone();
    let at = params.end;
    let opts = ComplianceOptions::default();
    let mut req = ReportRequest::new(root.clone(), at);
    req.items = ItemPage {
        offset: 0,
        limit: 25,
        figure: None,
    };
    let expected = serde_json::to_value(index.report(&opts, &req).unwrap()).unwrap();
    let got = api
        .get(&format!(
            "/api/v1/reports/figures?grid={root}&at={at}&window=24h&limit=25"
        ))
        .expect(200)
        .json();
    assert_eq!(got, expected);
    assert!(got["cameras_in_service"].as_u64().unwrap() > 1000);

    // A town one level down, over a week.
    let town = city.grids[1].code.clone();
    let mut req = ReportRequest::new(town.clone(), at);
    req.window_ms = 7 * DAY_MS;
    let expected = serde_json::to_value(index.report(&opts, &req).unwrap()).unwrap();
    let got = api
        .get(&format!(
            "/api/v1/reports/figures?grid={town}&at={at}&window=7d"
        ))
        .expect(200)
        .json();
    assert_eq!(got, expected);

    // The villages ranked.
    let ranked = index
        .rank(
            &opts,
            &RankRequest {
                within: root.clone(),
                depth: 2,
                at,
                window_ms: DAY_MS,
            },
        )
        .unwrap();
    let got = api
        .get(&format!(
            "/api/v1/reports/ranking?grid={root}&depth=2&at={at}&window=24h"
        ))
        .expect(200)
        .json();
    // Scores are floating point, and serde_json parses floats to within one ulp by default:
    // compare them with a tolerance and everything else exactly.
    let expected = serde_json::to_value(&ranked).unwrap();
    let (got, expected) = (
        got["grids"].as_array().unwrap(),
        expected.as_array().unwrap(),
    );
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        let (mut g, mut e) = (g.clone(), e.clone());
        let gs = g["score"].take().as_f64().unwrap();
        let es = e["score"].take().as_f64().unwrap();
        assert!(
            (gs - es).abs() < 1e-9,
            "score of {}: {gs} vs {es}",
            e["grid"]
        );
        assert_eq!(g, e, "ranked grid {}", e["grid"]);
    }
    assert_eq!(ranked.len(), params.grids_per_level[1]);
    daemon.stop();
}
