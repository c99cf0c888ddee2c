//! Index tests: schema guard, persistence round trips, validation, imports, live history,
//! queries, tokens and the audit log.

use vigil_core::compliance::{ComplianceOptions, ReportRequest};
use vigil_core::grid::GridError;
use vigil_core::id::{DomainCode, GbId};
use vigil_core::import::{CameraRow, IntervalRow};
use vigil_core::model::{DiagnosisRecord, HistoryRecord, ModelError};
use vigil_core::role::Role;
use vigil_core::site::SiteId;
use vigil_core::status::{Diagnosis, HistoryKind, QualityCheck, StatusKind};
use vigil_core::target::{FigureKind, Target, Targets};
use vigil_core::time::{Interval, Timestamp, Transition, HOUR_MS};

use crate::testutil::*;
use crate::*;

const T: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn t(h: i64) -> Timestamp {
    T.add_ms(h * HOUR_MS)
}

fn iv(a: i64, b: Option<i64>) -> Interval {
    match b {
        Some(b) => Interval::new(t(a), t(b)).unwrap(),
        None => Interval::open(t(a)),
    }
}

fn everything() -> Interval {
    Interval::new(Timestamp::MIN, Timestamp::MAX).unwrap()
}

/// Grids r ─ a ─ a1, r ─ b; site s1 in a1; cameras 1 (a1, watches s1) and 2 (b).
fn populated(index: &Index) {
    index
        .import_grids(
            vec![
                grid("a1", Some("a")),
                grid("r", None),
                grid("a", Some("r")),
                grid("b", Some("r")),
            ],
            ImportMode::AllOrNothing,
        )
        .unwrap();
    index.put_site(site("s1", "a1")).unwrap();
    let mut c1 = camera(1, "a1");
    c1.sites = vec![SiteId::parse("s1").unwrap()];
    index
        .import_cameras(
            vec![import(t(-100), c1), import(t(-100), camera(2, "b"))],
            ImportMode::AllOrNothing,
        )
        .unwrap();
}

fn full_report(index: &Index, grid: &str) -> vigil_core::compliance::GridReport {
    let mut req = ReportRequest::new(code(grid), T);
    req.items.limit = usize::MAX;
    index.report(&ComplianceOptions::default(), &req).unwrap()
}

#[test]
fn schema_version_is_written_and_newer_versions_are_refused() {
    let dir = TempDir::new();
    let path = dir.path().join("db");
    drop(Index::open(&path).unwrap());
    {
        let db = sled::open(&path).unwrap();
        assert_eq!(
            db.get(keys::SCHEMA_KEY).unwrap().unwrap().as_ref(),
            SCHEMA_VERSION.to_be_bytes()
        );
        db.insert(keys::SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match Index::open(&path) {
        Err(IndexError::SchemaTooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    {
        let db = sled::open(&path).unwrap();
        db.insert(keys::SCHEMA_KEY, &[1u8, 2]).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Index::open(&path),
        Err(IndexError::SchemaUnknown { .. })
    ));
    let other = dir.path().join("other");
    {
        let db = sled::open(&other).unwrap();
        db.insert(b"foreign", b"data").unwrap();
        db.flush().unwrap();
    }
    let err = Index::open(&other).unwrap_err();
    assert!(matches!(err, IndexError::SchemaUnknown { .. }), "{err}");
}

#[test]
fn everything_survives_a_reopen() {
    let dir = TempDir::new();
    let path = dir.path().join("db");
    let before;
    {
        let index = Index::open(&path).unwrap();
        populated(&index);
        // Live transitions across a chunk boundary (more than CHUNK intervals).
        for i in 0..(keys::CHUNK as i64 + 10) {
            index
                .set_status(
                    &cam_id(1),
                    StatusKind::Online,
                    t(-99).add_ms(i * 1000),
                    true,
                )
                .unwrap();
            index
                .set_status(
                    &cam_id(1),
                    StatusKind::Online,
                    t(-99).add_ms(i * 1000 + 500),
                    false,
                )
                .unwrap();
        }
        index
            .set_status(&cam_id(1), StatusKind::Online, t(-50), true)
            .unwrap();
        index
            .set_status(&cam_id(2), StatusKind::Recording, t(-30), true)
            .unwrap();
        index
            .set_uplink(&GbId::parse("37010000002000000001").unwrap(), t(-60), true)
            .unwrap();
        index
            .import_history(
                vec![HistoryRecord {
                    subject: cam_id(2),
                    kind: HistoryKind::Camera(StatusKind::Upload),
                    interval: iv(-20, Some(-10)),
                }],
                ImportMode::AllOrNothing,
            )
            .unwrap();
        // Diagnoses inserted out of order across a chunk boundary.
        for i in (0..(keys::CHUNK as i64 + 5)).rev() {
            index
                .record_diagnosis(
                    &cam_id(1),
                    Diagnosis {
                        at: t(-90).add_ms(i),
                        check: QualityCheck::Blur,
                        passed: i % 7 != 0,
                    },
                )
                .unwrap();
        }
        let mut targets = Targets::default();
        targets.set(
            FigureKind::Coverage,
            Target {
                ratio: vigil_core::ratio::Rational::percent(90),
                due: Some(t(1000)),
            },
        );
        index.set_targets(targets).unwrap();
        before = full_report(&index, "r");
        assert_eq!(
            index
                .status_history(&cam_id(1), StatusKind::Online, &everything())
                .unwrap()
                .len(),
            keys::CHUNK + 11
        );
        index.flush().unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(full_report(&index, "r"), before);
    let online = index
        .status_history(&cam_id(1), StatusKind::Online, &everything())
        .unwrap();
    assert_eq!(online.len(), keys::CHUNK + 11);
    assert!(online.last().unwrap().is_open());
    let diags = index.diagnoses(&cam_id(1), &everything()).unwrap();
    assert_eq!(diags.len(), keys::CHUNK + 5);
    assert!(diags.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        index
            .targets()
            .unwrap()
            .get(FigureKind::Coverage)
            .ratio
            .num(),
        90
    );
    assert_eq!(index.uplink_platforms().unwrap().len(), 1);
    assert_eq!(index.grid_count().unwrap(), 4);
}

#[test]
fn closing_an_interval_at_its_start_drops_it_on_disk_too() {
    let dir = TempDir::new();
    let path = dir.path().join("db");
    {
        let index = Index::open(&path).unwrap();
        populated(&index);
        // Exactly CHUNK intervals, then open+discard one: the new chunk must disappear.
        for i in 0..keys::CHUNK as i64 {
            index
                .set_status(&cam_id(2), StatusKind::Online, t(-90).add_ms(i * 10), true)
                .unwrap();
            index
                .set_status(
                    &cam_id(2),
                    StatusKind::Online,
                    t(-90).add_ms(i * 10 + 5),
                    false,
                )
                .unwrap();
        }
        assert_eq!(
            index
                .set_status(&cam_id(2), StatusKind::Online, t(-1), true)
                .unwrap(),
            Transition::Opened
        );
        assert_eq!(
            index
                .set_status(&cam_id(2), StatusKind::Online, t(-1), false)
                .unwrap(),
            Transition::Discarded
        );
        assert_eq!(
            index
                .set_status(&cam_id(2), StatusKind::Online, t(-1), false)
                .unwrap(),
            Transition::Unchanged
        );
        let err = index
            .set_status(&cam_id(2), StatusKind::Online, t(-95), true)
            .unwrap_err();
        assert!(
            matches!(err, IndexError::Invalid(ModelError::History { .. })),
            "{err}"
        );
        index.flush().unwrap();
    }
    let index = Index::open(&path).unwrap();
    let h = index
        .status_history(&cam_id(2), StatusKind::Online, &everything())
        .unwrap();
    assert_eq!(h.len(), keys::CHUNK);
    assert!(!h.last().unwrap().is_open());
}

#[test]
fn close_open_intervals_after_a_crash() {
    let index = Index::temporary().unwrap();
    populated(&index);
    let platform = GbId::parse("37010000002000000001").unwrap();
    index
        .set_status(&cam_id(1), StatusKind::Online, t(-10), true)
        .unwrap();
    index
        .set_status(&cam_id(1), StatusKind::Recording, t(-1), true)
        .unwrap();
    index.set_uplink(&platform, t(-5), true).unwrap();
    assert_eq!(index.close_open_intervals(t(-2)).unwrap(), 3);
    assert_eq!(
        index
            .status_history(&cam_id(1), StatusKind::Online, &everything())
            .unwrap(),
        vec![iv(-10, Some(-2))]
    );
    // Started after the known-alive instant: dropped.
    assert!(index
        .status_history(&cam_id(1), StatusKind::Recording, &everything())
        .unwrap()
        .is_empty());
    assert_eq!(
        index.uplink_history(&platform, &everything()).unwrap(),
        vec![iv(-5, Some(-2))]
    );
    assert_eq!(index.close_open_intervals(t(0)).unwrap(), 0);
}

#[test]
fn crud_validation_names_the_item() {
    let index = Index::temporary().unwrap();
    populated(&index);
    let err = index.put_grid(grid("x", Some("nowhere"))).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Invalid(ModelError::Grid(GridError::UnknownParent { .. }))
        ),
        "{err}"
    );
    let err = index.put_grid(grid("a", Some("a1"))).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Invalid(ModelError::Grid(GridError::Cycle { .. }))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("grid a"));
    let err = index.put_site(site("s2", "nowhere")).unwrap_err();
    assert!(err.to_string().contains("site s2"), "{err}");
    let mut c = camera(3, "a1");
    c.sites = vec![SiteId::parse("ghost").unwrap()];
    let err = index.put_camera(import(t(0), c)).unwrap_err();
    assert!(
        matches!(err, IndexError::Invalid(ModelError::UnknownSite { .. })),
        "{err}"
    );
    let err = index.delete_grid(&code("a1")).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Invalid(ModelError::GridInUse {
                sites: 1,
                cameras: 1,
                ..
            })
        ),
        "{err}"
    );
    let err = index
        .delete_site(&SiteId::parse("s1").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, IndexError::Invalid(ModelError::SiteInUse { .. })),
        "{err}"
    );
    // Moving a grid is an update.
    index.put_grid(grid("a1", Some("b"))).unwrap();
    assert_eq!(
        index.grid_ancestors(&code("a1")).unwrap()[0].code.as_str(),
        "b"
    );
    index.put_grid(grid("leaf", Some("b"))).unwrap();
    assert_eq!(
        index.delete_grid(&code("leaf")).unwrap().code.as_str(),
        "leaf"
    );
    assert!(index.grid(&code("leaf")).unwrap().is_none());
}

#[test]
fn bulk_import_is_all_or_nothing_and_lists_every_bad_item() {
    let index = Index::temporary().unwrap();
    populated(&index);
    let mut bad_site = camera(11, "a1");
    bad_site.sites = vec![SiteId::parse("ghost").unwrap()];
    let items = vec![
        import(t(0), camera(10, "a1")),
        import(t(0), camera(11, "nowhere")),
        import(t(0), bad_site),
        import(t(0), camera(10, "b")),
        import(t(1), camera(10, "b")),
    ];
    let err = index
        .import_cameras(items.clone(), ImportMode::AllOrNothing)
        .unwrap_err();
    let IndexError::ImportRejected { errors } = err else {
        panic!("{err}")
    };
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(got, [(1, "grid"), (2, "sites"), (3, "id")]);
    assert_eq!(index.camera_count().unwrap(), 2);
    let report = index.import_cameras(items, ImportMode::ApplyValid).unwrap();
    assert_eq!(report.applied, 2);
    assert_eq!(report.rejected.len(), 3);
    assert_eq!(index.camera_count().unwrap(), 3);
    assert_eq!(index.camera_versions(&cam_id(10)).unwrap().len(), 2);
}

#[test]
fn history_import_rejects_overlaps_and_reversed_rows_by_row() {
    let index = Index::temporary().unwrap();
    populated(&index);
    index
        .set_status(&cam_id(1), StatusKind::Online, t(-5), true)
        .unwrap();
    let row = |subject: &str, kind: &str, start: i64, end: Option<i64>| IntervalRow {
        subject: subject.into(),
        kind: kind.into(),
        start: t(start).to_string(),
        end: end.map(|e| t(e).to_string()),
    };
    let c1 = cam_id(1).to_string();
    let rows = vec![
        row(&c1, "online", -20, Some(-10)),
        row(&c1, "online", -15, Some(-12)), // overlaps row 0
        row(&c1, "online", -8, Some(-9)),   // reversed
        row(&c1, "online", -6, Some(-4)),   // overlaps the live open interval
        row(&c1, "recording", -15, Some(-12)),
        row(&cam_id(99).to_string(), "online", -3, Some(-2)), // unknown camera
        row("37010000002000000001", "uplink", -50, None),
    ];
    let err = index
        .import_interval_rows(&rows, ImportMode::AllOrNothing)
        .unwrap_err();
    let IndexError::ImportRejected { errors } = err else {
        panic!("{err}")
    };
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(got, [(1, "start"), (2, "end"), (3, "start"), (5, "camera")]);
    assert!(errors[0].reason.contains("overlaps"), "{}", errors[0]);
    assert!(index
        .status_history(&cam_id(1), StatusKind::Recording, &everything())
        .unwrap()
        .is_empty());
    let ok = index
        .import_interval_rows(&rows, ImportMode::ApplyValid)
        .unwrap();
    assert_eq!(ok.applied, 3);
    assert_eq!(
        index
            .status_history(&cam_id(1), StatusKind::Online, &everything())
            .unwrap()
            .len(),
        2
    );
    assert_eq!(index.uplink_platforms().unwrap().len(), 1);
}

#[test]
fn dry_runs_report_what_an_import_would_do_and_write_nothing() {
    let index = Index::temporary().unwrap();
    populated(&index);
    let row = |subject: &str, start: i64, end: i64| IntervalRow {
        subject: subject.into(),
        kind: "online".into(),
        start: t(start).to_string(),
        end: Some(t(end).to_string()),
    };
    let c1 = cam_id(1).to_string();
    let rows = vec![row(&c1, -20, -10), row(&c1, -15, -12), row(&c1, -9, -8)];
    let err = index
        .check_interval_rows(&rows, ImportMode::AllOrNothing)
        .unwrap_err();
    let IndexError::ImportRejected { errors } = err else {
        panic!("{err}")
    };
    assert_eq!(errors.iter().map(|e| e.row).collect::<Vec<_>>(), [1]);
    let would = index
        .check_interval_rows(&rows, ImportMode::ApplyValid)
        .unwrap();
    assert_eq!((would.applied, would.rejected.len()), (2, 1));
    assert!(index
        .status_history(&cam_id(1), StatusKind::Online, &everything())
        .unwrap()
        .is_empty());

    let cam = CameraRow {
        id: Some(cam_id(7).to_string()),
        effective_from: t(0).to_string(),
        name: "西门".into(),
        source: "rtsp".into(),
        rtsp_url: Some("rtsp://10.0.0.7/live".into()),
        grid: "a1".into(),
        ..CameraRow::default()
    };
    let r = index
        .check_camera_rows(&[cam], ImportMode::AllOrNothing, None)
        .unwrap();
    assert_eq!(r.applied, 1);
    assert_eq!(index.camera_count().unwrap(), 2);
    let g = vigil_core::import::GridRow {
        code: "c".into(),
        name: "c".into(),
        parent: Some("r".into()),
        ..Default::default()
    };
    assert_eq!(
        index
            .check_grid_rows(&[g], ImportMode::AllOrNothing)
            .unwrap()
            .applied,
        1
    );
    assert!(index.grid(&code("c")).unwrap().is_none());
    let d = vigil_core::import::DiagnosisRow {
        camera: c1.clone(),
        at: t(0).to_string(),
        check: "blur".into(),
        passed: false,
    };
    assert_eq!(
        index
            .check_diagnosis_rows(&[d], ImportMode::AllOrNothing)
            .unwrap()
            .applied,
        1
    );
    assert!(index
        .diagnoses(&cam_id(1), &everything())
        .unwrap()
        .is_empty());
    let s = vigil_core::import::SiteRow {
        id: "s9".into(),
        name: "s9".into(),
        category: "school".into(),
        point_class: "1".into(),
        grid: "nowhere".into(),
        ..Default::default()
    };
    assert!(index
        .check_site_rows(&[s], ImportMode::AllOrNothing)
        .is_err());
}

#[test]
fn camera_rows_get_rtsp_ids_and_keep_credentials_apart() {
    let index = Index::temporary().unwrap();
    populated(&index);
    let base = CameraRow {
        id: None,
        effective_from: t(0).to_string(),
        name: "北门".into(),
        source: "rtsp".into(),
        rtsp_url: Some("rtsp://admin:secret@10.9.9.9/ch1".into()),
        grid: "a1".into(),
        ..CameraRow::default()
    };
    let explicit = CameraRow {
        id: Some("37010000001320000001".into()),
        ..base.clone()
    };
    let rows = vec![base.clone(), explicit, base.clone()];
    let policy = RtspIdPolicy {
        domain: DomainCode::parse("3701000000").unwrap(),
        network: 0,
    };
    assert!(index
        .import_camera_rows(&rows, ImportMode::AllOrNothing, None)
        .is_err());
    let r = index
        .import_camera_rows(&rows, ImportMode::AllOrNothing, Some(policy))
        .unwrap();
    assert_eq!(r.applied, 3);
    // Serials 1 and 2 belong to existing cameras (serial 1 is also the explicit row, which adds
    // a version to camera 1), so the two rows without an ID get serials 3 and 4.
    let page = index
        .list_cameras(&CameraFilter::default(), t(1), None, 100)
        .unwrap();
    let ids: Vec<String> = page.items.iter().map(|v| v.camera.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "37010000001320000001",
            "37010000001320000002",
            "37010000001320000003",
            "37010000001320000004"
        ]
    );
    let creds = index
        .rtsp_credentials(&GbId::parse("37010000001320000003").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (creds.username.as_str(), creds.password.as_str()),
        ("admin", "secret")
    );
    let json = serde_json::to_string(&page).unwrap();
    assert!(!json.contains("secret"));
    assert_eq!(index.next_rtsp_id(&policy).unwrap().serial(), 5);
    index.set_rtsp_credentials(&cam_id(3), None).unwrap();
    assert!(index.rtsp_credentials(&cam_id(3)).unwrap().is_none());
}

#[test]
fn list_filters_and_cursor_pagination() {
    let index = Index::temporary().unwrap();
    populated(&index);
    for n in 3..=12 {
        let mut c = camera(n, if n % 2 == 0 { "a1" } else { "b" });
        if n == 5 {
            c.name = "Bus Station West".into();
        }
        index.put_camera(import(t(-10), c)).unwrap();
    }
    index
        .set_status(&cam_id(4), StatusKind::Online, t(-1), true)
        .unwrap();
    index.decommission_camera(&cam_id(6), t(-2)).unwrap();
    let err = index.decommission_camera(&cam_id(7), t(-11)).unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Invalid(ModelError::BeforeRegistration { .. })
        ),
        "{err}"
    );
    let f = CameraFilter {
        grid: Some(code("a")),
        ..CameraFilter::default()
    };
    let p1 = index.list_cameras(&f, T, None, 3).unwrap();
    // a-subtree: cameras 1, 4, 8, 10, 12 in service (6 decommissioned).
    assert_eq!(p1.total, 5);
    assert_eq!(p1.items.len(), 3);
    let p2 = index.list_cameras(&f, T, p1.next.as_ref(), 3).unwrap();
    assert_eq!(p2.items.len(), 2);
    assert!(p2.next.is_none());
    let with_old = CameraFilter {
        include_decommissioned: true,
        ..f.clone()
    };
    assert_eq!(
        index.list_cameras(&with_old, T, None, 100).unwrap().total,
        6
    );
    let online = CameraFilter {
        online: Some(true),
        ..CameraFilter::default()
    };
    let p = index.list_cameras(&online, T, None, 100).unwrap();
    assert_eq!(
        p.items.iter().map(|v| v.camera.id).collect::<Vec<_>>(),
        vec![cam_id(4)]
    );
    assert!(p.items[0].online_now);
    let by_name = CameraFilter {
        name_contains: Some("bus station".into()),
        ..CameraFilter::default()
    };
    assert_eq!(index.list_cameras(&by_name, T, None, 100).unwrap().total, 1);
    let by_site = CameraFilter {
        site: Some(SiteId::parse("s1").unwrap()),
        ..CameraFilter::default()
    };
    assert_eq!(index.list_cameras(&by_site, T, None, 100).unwrap().total, 1);
    let unknown = CameraFilter {
        grid: Some(code("zz")),
        ..CameraFilter::default()
    };
    assert!(index.list_cameras(&unknown, T, None, 1).is_err());
    let sites = index
        .list_sites(
            &SiteFilter {
                grid: Some(code("b")),
                ..SiteFilter::default()
            },
            None,
            10,
        )
        .unwrap();
    assert_eq!(sites.total, 0);
    let sites = index.list_sites(&SiteFilter::default(), None, 10).unwrap();
    assert_eq!(sites.total, 1);
    assert_eq!(index.grids_at_depth(1, None).unwrap().len(), 2);
    assert_eq!(index.grid_children(&code("r")).unwrap().len(), 2);
}

#[test]
fn delete_camera_removes_its_history_for_good() {
    let dir = TempDir::new();
    let path = dir.path().join("db");
    {
        let index = Index::open(&path).unwrap();
        populated(&index);
        index
            .set_status(&cam_id(2), StatusKind::Online, t(-3), true)
            .unwrap();
        index
            .import_diagnoses(
                vec![DiagnosisRecord {
                    camera: cam_id(2),
                    diagnosis: Diagnosis {
                        at: t(-1),
                        check: QualityCheck::Frozen,
                        passed: false,
                    },
                }],
                ImportMode::AllOrNothing,
            )
            .unwrap();
        index.delete_camera(&cam_id(2)).unwrap();
        assert!(index.delete_camera(&cam_id(2)).is_err());
        // Re-adding the same ID starts with an empty history.
        index.put_camera(import(t(0), camera(2, "b"))).unwrap();
        index.flush().unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert!(index
        .status_history(&cam_id(2), StatusKind::Online, &everything())
        .unwrap()
        .is_empty());
    assert!(index
        .diagnoses(&cam_id(2), &everything())
        .unwrap()
        .is_empty());
    assert_eq!(index.camera_count().unwrap(), 2);
}

#[test]
fn reports_run_on_a_snapshot_that_writers_do_not_disturb() {
    let index = Index::temporary().unwrap();
    populated(&index);
    index
        .set_status(&cam_id(1), StatusKind::Online, t(-30), true)
        .unwrap();
    let snap = index.snapshot().unwrap();
    index
        .set_status(&cam_id(1), StatusKind::Online, t(-1), false)
        .unwrap();
    let req = ReportRequest::new(code("r"), T);
    let old = vigil_core::compliance::report(&snap, &ComplianceOptions::default(), &req).unwrap();
    let new = index.report(&ComplianceOptions::default(), &req).unwrap();
    assert_eq!(old.figure(FigureKind::OnlineNow).ratio.numerator, 1);
    assert_eq!(new.figure(FigureKind::OnlineNow).ratio.numerator, 0);
    // Concurrent readers and a writer.
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            for i in 0..200 {
                index
                    .set_status(&cam_id(2), StatusKind::Online, t(0).add_ms(i), i % 2 == 0)
                    .unwrap();
            }
        });
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    let r = full_report(&index, "r");
                    assert_eq!(r.cameras_in_service, 2);
                }
            });
        }
        w.join().unwrap();
    });
}

#[test]
fn tokens_and_audit_log() {
    let dir = TempDir::new();
    let path = dir.path().join("db");
    {
        let index = Index::open(&path).unwrap();
        let tok = TokenRecord {
            id: "ops-1".into(),
            role: Role::Operator,
            name: "night shift".into(),
            secret_hash: vec![0xde, 0xad, 0xbe, 0xef],
            created_at: t(0),
            revoked_at: None,
        };
        index.create_token(&tok).unwrap();
        assert!(matches!(
            index.create_token(&tok),
            Err(IndexError::TokenExists { .. })
        ));
        let bad = TokenRecord {
            id: "bad id".into(),
            ..tok.clone()
        };
        assert!(matches!(
            index.create_token(&bad),
            Err(IndexError::BadTokenId { .. })
        ));
        assert!(!format!("{tok:?}").contains("222"));
        index.revoke_token("ops-1", t(5)).unwrap();
        assert_eq!(
            index.revoke_token("ops-1", t(9)).unwrap().revoked_at,
            Some(t(5))
        );
        assert!(matches!(
            index.revoke_token("nope", t(1)),
            Err(IndexError::UnknownToken { .. })
        ));
        for i in 0..5 {
            index
                .append_audit(
                    t(i),
                    AuditDraft {
                        actor: "ops-1".into(),
                        action: "camera.update".into(),
                        target: cam_id(1).to_string(),
                        before: Some(serde_json::json!({"n": i})),
                        after: None,
                    },
                )
                .unwrap();
        }
    }
    let index = Index::open(&path).unwrap();
    let tok = index.token("ops-1").unwrap().unwrap();
    assert_eq!(tok.secret_hash, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(tok.revoked_at, Some(t(5)));
    assert_eq!(index.tokens().unwrap().len(), 1);
    let range = Interval::new(t(1), t(4)).unwrap();
    let p1 = index.audit_range(&range, None, 2).unwrap();
    assert_eq!(
        p1.entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![t(1), t(2)]
    );
    let p2 = index.audit_range(&range, p1.next, 2).unwrap();
    assert_eq!(
        p2.entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![t(3)]
    );
    assert!(p2.next.is_none());
    assert!(p1.entries[0].seq < p1.entries[1].seq);
}

#[test]
fn camera_changes_bump_the_generation_and_access_tests_are_kept_per_camera() {
    let index = Index::temporary().unwrap();
    let g0 = index.camera_generation();
    populated(&index);
    let g1 = index.camera_generation();
    assert!(g1 > g0, "an import changes the generation");
    // Status and other records do not.
    index
        .set_status(&cam_id(1), StatusKind::Online, t(-1), true)
        .unwrap();
    index.put_site(site("s2", "a1")).unwrap();
    assert_eq!(index.camera_generation(), g1);
    index.put_camera(import(t(-50), camera(3, "b"))).unwrap();
    let g2 = index.camera_generation();
    assert!(g2 > g1);
    index.set_rtsp_credentials(&cam_id(3), None).unwrap();
    let g3 = index.camera_generation();
    assert!(g3 > g2);

    assert_eq!(index.access_test(&cam_id(3)).unwrap(), None);
    let report = serde_json::json!({"meets_hd": true, "width": 1280});
    index.set_access_test(&cam_id(3), &report).unwrap();
    assert_eq!(index.access_test(&cam_id(3)).unwrap(), Some(report));
    assert!(index
        .set_access_test(&cam_id(99), &serde_json::json!({}))
        .is_err());
    index.delete_camera(&cam_id(3)).unwrap();
    assert!(index.camera_generation() > g3);
    assert_eq!(index.access_test(&cam_id(3)).unwrap(), None);
}
