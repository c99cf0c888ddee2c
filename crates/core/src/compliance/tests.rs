//! Small hand-computed cases for every figure and the edge cases of `domain.md`.

use super::*;
use crate::camera::tests::camera;
use crate::camera::{Builder, Camera};
use crate::grid::tests::grid;
use crate::id::GbId;
use crate::model::{CameraVersionInput, DiagnosisRecord, HistoryRecord, Registry};
use crate::ratio::Verdict;
use crate::site::{KeySite, PointClass, SiteCategory, SiteId};
use crate::status::{Diagnosis, HistoryKind, QualityCheck, StatusKind};
use crate::target::{DeadlineStatus, Target, Targets};
use crate::time::{Interval, IntervalSet, Timestamp, HOUR_MS};

const T: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const H: i64 = HOUR_MS;

fn t(offset_h: i64) -> Timestamp {
    T.add_ms(offset_h * H)
}

fn code(s: &str) -> GridCode {
    GridCode::parse(s).unwrap()
}

fn cam_id(n: u32) -> GbId {
    GbId::parse(&format!("340200000013200{n:05}")).unwrap()
}

fn platform() -> GbId {
    GbId::parse("34020000002000000001").unwrap()
}

fn site(id: &str, grid: &str, category: SiteCategory, class: PointClass) -> KeySite {
    KeySite {
        id: SiteId::parse(id).unwrap(),
        name: format!("site {id}"),
        category,
        point_class: class,
        grid: code(grid),
        location: None,
        address: None,
        required_coverage: true,
    }
}

/// city ─┬─ town-a ── village-a1
///       └─ town-b
/// plus an empty grid "empty" under city.
struct Fixture {
    reg: Registry,
}

impl Fixture {
    fn new() -> Self {
        let mut reg = Registry::new();
        let merged = reg.plan_grids(&[
            grid("city", None),
            grid("town-a", Some("city")),
            grid("village-a1", Some("town-a")),
            grid("town-b", Some("city")),
            grid("empty", Some("city")),
        ]);
        assert!(merged.rejected.is_empty());
        reg.apply_grids(merged.tree);
        Fixture { reg }
    }

    fn sites(&mut self, sites: Vec<KeySite>) -> &mut Self {
        let plan = self.reg.plan_sites(&sites);
        assert!(plan.rejected.is_empty(), "{:?}", plan.rejected);
        self.reg.apply_sites(sites);
        self
    }

    fn camera(&mut self, from: Timestamp, cam: Camera) -> &mut Self {
        let rows = vec![CameraVersionInput { from, camera: cam }];
        let plan = self.reg.plan_cameras(&rows);
        assert!(plan.rejected.is_empty(), "{:?}", plan.rejected);
        self.reg.apply_cameras(rows);
        self
    }

    fn history(&mut self, id: GbId, kind: StatusKind, spans: &[(i64, Option<i64>)]) -> &mut Self {
        let rows: Vec<HistoryRecord> = spans
            .iter()
            .map(|&(s, e)| HistoryRecord {
                subject: id,
                kind: HistoryKind::Camera(kind),
                interval: match e {
                    Some(e) => Interval::new(t(s), t(e)).unwrap(),
                    None => Interval::open(t(s)),
                },
            })
            .collect();
        let plan = self.reg.plan_history(&rows);
        assert!(plan.rows.rejected.is_empty(), "{:?}", plan.rows.rejected);
        self.reg.apply_history(plan.camera, plan.uplink);
        self
    }

    fn diagnosis(&mut self, id: GbId, at_h: i64, passed: bool) -> &mut Self {
        let plan = self.reg.plan_diagnoses(&[DiagnosisRecord {
            camera: id,
            diagnosis: Diagnosis {
                at: t(at_h),
                check: QualityCheck::Frozen,
                passed,
            },
        }]);
        self.reg.apply_diagnoses(plan.logs);
        self
    }

    fn uplink(&mut self, spans: &[(i64, Option<i64>)]) -> &mut Self {
        let set = IntervalSet::from_sorted(
            spans
                .iter()
                .map(|&(s, e)| match e {
                    Some(e) => Interval::new(t(s), t(e)).unwrap(),
                    None => Interval::open(t(s)),
                })
                .collect(),
        )
        .unwrap();
        self.reg.load_uplink(platform(), set);
        self
    }

    fn report(&self, grid: &str) -> GridReport {
        self.report_at(grid, T)
    }

    fn report_at(&self, grid: &str, at: Timestamp) -> GridReport {
        let mut req = ReportRequest::new(code(grid), at);
        req.items.limit = usize::MAX;
        report(&self.reg.snapshot(), &ComplianceOptions::default(), &req).unwrap()
    }
}

fn cam_in(n: u32, grid: &str) -> Camera {
    camera(&cam_id(n).to_string(), grid)
}

fn ratio(r: &GridReport, k: FigureKind) -> (u64, u64) {
    let f = r.figure(k);
    (f.ratio.numerator, f.ratio.denominator)
}

fn failing_ids(r: &GridReport, k: FigureKind) -> Vec<String> {
    r.figure(k)
        .failing
        .items
        .iter()
        .map(|i| match &i.id {
            ItemId::Camera(c) => c.to_string(),
            ItemId::Site(s) => s.to_string(),
        })
        .collect()
}

#[test]
fn empty_grid_is_not_applicable_everywhere() {
    let f = Fixture::new();
    let r = f.report("empty");
    for fig in &r.figures {
        assert_eq!(fig.ratio, Ratio::new(0, 0), "{:?}", fig.kind);
        assert!(
            matches!(&fig.verdict, Verdict::NotApplicable { reason } if !reason.is_empty()),
            "{:?}",
            fig.kind
        );
        assert_eq!(fig.failing.total, 0);
    }
    assert_eq!(r.cameras_in_service, 0);
    assert!(r.children.is_empty());
}

#[test]
fn unknown_grid_and_bad_window_are_errors() {
    let f = Fixture::new();
    let model = f.reg.snapshot();
    let mut req = ReportRequest::new(code("nowhere"), T);
    assert!(matches!(
        report(&model, &ComplianceOptions::default(), &req),
        Err(ComplianceError::UnknownGrid { .. })
    ));
    req.grid = code("city");
    req.window_ms = 0;
    assert!(matches!(
        report(&model, &ComplianceOptions::default(), &req),
        Err(ComplianceError::BadWindow { .. })
    ));
}

#[test]
fn interval_spanning_the_window_edges_counts_only_the_overlap() {
    let mut f = Fixture::new();
    f.camera(t(-30 * 24), cam_in(1, "town-b"))
        // [T-30h, T-20h) overlaps W=[T-24h, T) by 4h; [T-2h, open) by 2h.
        .history(
            cam_id(1),
            StatusKind::Online,
            &[(-30, Some(-20)), (-2, None)],
        )
        // Recording [T-25h, T+1h) (closed after T in the imported log): 24h inside W.
        .history(cam_id(1), StatusKind::Recording, &[(-25, Some(1))]);
    let r = f.report("town-b");
    assert_eq!(
        ratio(&r, FigureKind::OnlineTime),
        ((6 * H) as u64, (24 * H) as u64)
    );
    assert_eq!(
        ratio(&r, FigureKind::RecordingCompleteness),
        ((24 * H) as u64, (24 * H) as u64)
    );
    assert_eq!(ratio(&r, FigureKind::OnlineNow), (1, 1));
    assert_eq!(r.figure(FigureKind::OnlineTime).verdict, Verdict::Fail);
    let item = &r.figure(FigureKind::OnlineTime).failing.items[0];
    assert_eq!(item.reason, Reason::OnlineBelowTarget);
    assert_eq!(item.detail.as_deref(), Some("25.00%"));
    // The instant T itself is outside W (half-open): an interval starting at T adds nothing.
    let mut g = Fixture::new();
    g.camera(t(-48), cam_in(2, "town-b"))
        .history(cam_id(2), StatusKind::Online, &[(0, None)]);
    let r = g.report("town-b");
    assert_eq!(ratio(&r, FigureKind::OnlineTime), (0, (24 * H) as u64));
    assert_eq!(ratio(&r, FigureKind::OnlineNow), (1, 1));
}

#[test]
fn camera_registered_mid_window_is_scheduled_from_registration() {
    let mut f = Fixture::new();
    f.camera(t(-6), cam_in(1, "town-b"))
        // Imported log starts before registration: only [T-6h, T-3h) is scheduled.
        .history(cam_id(1), StatusKind::Online, &[(-10, Some(-3))]);
    let r = f.report("town-b");
    assert_eq!(
        ratio(&r, FigureKind::OnlineTime),
        ((3 * H) as u64, (6 * H) as u64)
    );
    assert_eq!(r.cameras_scheduled, 1);
    // Before registration the camera does not exist.
    let before = f.report_at("town-b", t(-7));
    assert_eq!(before.cameras_in_service, 0);
    assert_eq!(ratio(&before, FigureKind::OnlineTime), (0, 0));
}

#[test]
fn camera_moved_mid_window_belongs_to_its_grid_at_t() {
    let mut f = Fixture::new();
    let mut moved = cam_in(1, "village-a1");
    f.camera(t(-30 * 24), moved.clone());
    moved.grid = code("town-b");
    f.camera(t(-12), moved)
        .history(cam_id(1), StatusKind::Online, &[(-48, None)]);
    let a = f.report("town-a");
    let b = f.report("town-b");
    assert_eq!(a.cameras_in_service, 0);
    assert_eq!(ratio(&a, FigureKind::OnlineTime), (0, 0));
    assert_eq!(b.cameras_in_service, 1);
    // All of W counts in town-b, including the 12 h spent in village-a1.
    assert_eq!(
        ratio(&b, FigureKind::OnlineTime),
        ((24 * H) as u64, (24 * H) as u64)
    );
    // As of T-13h the camera was still in village-a1, which rolls up into town-a.
    let earlier = f.report_at("town-a", t(-13));
    assert_eq!(earlier.cameras_in_service, 1);
    let city = f.report("city");
    assert_eq!(city.cameras_in_service, 1);
}

#[test]
fn decommissioned_camera_leaves_instant_figures_and_keeps_its_scheduled_time() {
    let mut f = Fixture::new();
    let mut cam = cam_in(1, "town-b");
    f.camera(t(-30 * 24), cam.clone());
    cam.decommissioned_at = Some(t(-12));
    f.camera(t(-12), cam)
        .history(cam_id(1), StatusKind::Online, &[(-48, Some(-18))]);
    // A second camera decommissioned before the window: in no figure at all.
    let mut old = cam_in(2, "town-b");
    old.decommissioned_at = Some(t(-100));
    f.camera(t(-200), old);
    let r = f.report("town-b");
    assert_eq!(r.cameras_in_service, 0);
    assert_eq!(ratio(&r, FigureKind::OnlineNow), (0, 0));
    assert_eq!(ratio(&r, FigureKind::Registration), (0, 0));
    // Scheduled [T-24h, T-12h); online [.., T-18h) → 6h of 12h.
    assert_eq!(
        ratio(&r, FigureKind::OnlineTime),
        ((6 * H) as u64, (12 * H) as u64)
    );
    assert_eq!(r.cameras_scheduled, 1);
    // Still required to upload for its scheduled part, and nothing arrived.
    assert_eq!(ratio(&r, FigureKind::Upload), (0, 1));
}

#[test]
fn coverage_planned_coverage_and_blind_spots() {
    let mut f = Fixture::new();
    f.sites(vec![
        site(
            "s-covered",
            "village-a1",
            SiteCategory::School,
            PointClass::Class1,
        ),
        site(
            "s-offline",
            "village-a1",
            SiteCategory::Square,
            PointClass::Class2,
        ),
        site(
            "s-blind",
            "town-a",
            SiteCategory::Hospital,
            PointClass::Class2,
        ),
        site(
            "s-diag",
            "town-a",
            SiteCategory::MainStreet,
            PointClass::Class3,
        ),
        KeySite {
            required_coverage: false,
            ..site(
                "s-reference",
                "town-a",
                SiteCategory::Hotel,
                PointClass::Class3,
            )
        },
    ]);
    // Camera 1 sits in town-b but watches a site in village-a1; online.
    let mut c1 = cam_in(1, "town-b");
    c1.sites = vec![SiteId::parse("s-covered").unwrap()];
    // Camera 2 watches s-offline; offline at T.
    let mut c2 = cam_in(2, "village-a1");
    c2.sites = vec![SiteId::parse("s-offline").unwrap()];
    // Camera 3 watches s-diag; online, but its latest diagnosis failed.
    let mut c3 = cam_in(3, "town-a");
    c3.sites = vec![SiteId::parse("s-diag").unwrap()];
    f.camera(t(-100), c1)
        .camera(t(-100), c2)
        .camera(t(-100), c3)
        .history(cam_id(1), StatusKind::Online, &[(-100, None)])
        .history(cam_id(2), StatusKind::Online, &[(-100, Some(-1))])
        .history(cam_id(3), StatusKind::Online, &[(-100, None)])
        .diagnosis(cam_id(3), -50, true)
        .diagnosis(cam_id(3), -5, false)
        // A later passing diagnosis after T does not count.
        .diagnosis(cam_id(3), 1, true);
    let r = f.report("town-a");
    assert_eq!(r.sites, 5);
    assert_eq!(ratio(&r, FigureKind::Coverage), (1, 4));
    assert_eq!(ratio(&r, FigureKind::PlannedCoverage), (3, 4));
    assert_eq!(ratio(&r, FigureKind::CoverageClass1), (1, 1));
    assert_eq!(ratio(&r, FigureKind::CoverageClass2), (0, 2));
    assert_eq!(ratio(&r, FigureKind::CoverageClass3), (0, 1));
    assert_eq!(
        failing_ids(&r, FigureKind::Coverage),
        ["s-blind", "s-diag", "s-offline"]
    );
    let reasons: Vec<Reason> = r
        .figure(FigureKind::Coverage)
        .failing
        .items
        .iter()
        .map(|i| i.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            Reason::NoCamera,
            Reason::NoWorkingCamera,
            Reason::NoWorkingCamera
        ]
    );
    assert_eq!(failing_ids(&r, FigureKind::PlannedCoverage), ["s-blind"]);
    assert_eq!(r.blind_spots().total, 1);
    // Intact over cameras in town-a's subtree (cameras 2 and 3; camera 1 is in town-b).
    assert_eq!(ratio(&r, FigureKind::Intact), (0, 2));
    let intact = &r.figure(FigureKind::Intact).failing.items;
    assert_eq!(intact[0].reason, Reason::Offline);
    assert_eq!(intact[1].reason, Reason::DiagnosisFailed);
    assert_eq!(intact[1].detail.as_deref(), Some("frozen"));
    // s-offline is a square (public area), s-diag a main street (public area).
    assert_eq!(ratio(&r, FigureKind::IntactPublicAreas), (0, 2));
    assert_eq!(ratio(&r, FigureKind::IntactKeyIndustries), (0, 0));
    assert_eq!(r.cameras_without_diagnosis, 1);
    // Camera 1 is counted in town-b, and the school makes it a key-industry camera there.
    let b = f.report("town-b");
    assert_eq!(ratio(&b, FigureKind::IntactKeyIndustries), (1, 1));
    assert_eq!(ratio(&b, FigureKind::Coverage), (0, 0));
}

#[test]
fn networking_needs_sharing_and_a_registered_uplink() {
    let mut f = Fixture::new();
    f.sites(vec![site(
        "s1",
        "town-b",
        SiteCategory::Finance,
        PointClass::Class1,
    )]);
    let mut shared_key = cam_in(1, "town-b");
    shared_key.sites = vec![SiteId::parse("s1").unwrap()];
    let mut unshared_key = cam_in(2, "town-b");
    unshared_key.sites = vec![SiteId::parse("s1").unwrap()];
    unshared_key.shared_upward = false;
    let plain = cam_in(3, "town-b");
    f.camera(t(-100), shared_key)
        .camera(t(-100), unshared_key)
        .camera(t(-100), plain)
        .uplink(&[(-100, Some(-10)), (-2, None)]);
    let r = f.report("town-b");
    assert!(r.uplink_registered);
    assert_eq!(ratio(&r, FigureKind::NetworkingAll), (2, 3));
    assert_eq!(ratio(&r, FigureKind::NetworkingKeySites), (1, 2));
    assert_eq!(r.figure(FigureKind::NetworkingAll).verdict, Verdict::Fail); // 66.7% < 80%
    assert_eq!(
        r.figure(FigureKind::NetworkingKeySites).failing.items[0].reason,
        Reason::NotSharedUpward
    );
    // While the uplink was down nobody is networked.
    let down = f.report_at("town-b", t(-5));
    assert!(!down.uplink_registered);
    assert_eq!(ratio(&down, FigureKind::NetworkingAll), (0, 3));
    assert_eq!(
        down.figure(FigureKind::NetworkingAll).failing.items[0].reason,
        Reason::UplinkDown
    );
}

#[test]
fn upload_requirement_depends_on_builder_and_key_sites() {
    let mut f = Fixture::new();
    f.sites(vec![site(
        "s1",
        "town-b",
        SiteCategory::InternetCafe,
        PointClass::Class2,
    )]);
    let gov = cam_in(1, "town-b");
    let mut self_key = cam_in(2, "town-b");
    self_key.builder = Some(Builder::UnitSelfBuilt);
    self_key.sites = vec![SiteId::parse("s1").unwrap()];
    let mut self_plain = cam_in(3, "town-b");
    self_plain.builder = Some(Builder::UnitSelfBuilt);
    let mut unknown = cam_in(4, "town-b");
    unknown.builder = None;
    f.camera(t(-100), gov)
        .camera(t(-100), self_key)
        .camera(t(-100), self_plain)
        .camera(t(-100), unknown)
        // One received second inside W is enough; video before W is not.
        .history(cam_id(1), StatusKind::Upload, &[(-1, Some(0))])
        .history(cam_id(2), StatusKind::Upload, &[(-30, Some(-25))])
        .history(cam_id(3), StatusKind::Upload, &[(-3, Some(-2))]);
    let r = f.report("town-b");
    assert_eq!(ratio(&r, FigureKind::Upload), (1, 3));
    assert_eq!(
        failing_ids(&r, FigureKind::Upload),
        [cam_id(2).to_string(), cam_id(4).to_string()]
    );
    // Unknown builder is also an incomplete record.
    assert_eq!(ratio(&r, FigureKind::Registration), (3, 4));
    let reg = &r.figure(FigureKind::Registration).failing.items[0];
    assert_eq!(reg.reason, Reason::IncompleteRecord);
    assert_eq!(reg.detail.as_deref(), Some("builder"));
}

#[test]
fn subtree_rollup_sums_counts_instead_of_averaging() {
    let mut f = Fixture::new();
    // town-a: 1 camera, online all window (100%); town-b: 3 cameras, one online half the window.
    f.camera(t(-100), cam_in(1, "village-a1")).history(
        cam_id(1),
        StatusKind::Online,
        &[(-100, None)],
    );
    for n in 2..=4 {
        f.camera(t(-100), cam_in(n, "town-b"));
    }
    f.history(cam_id(2), StatusKind::Online, &[(-12, None)]);
    let city = f.report("city");
    // (24 + 12) / (4 × 24) = 37.5% — the average of 100% and 16.7% would be 58.3%.
    assert_eq!(
        ratio(&city, FigureKind::OnlineTime),
        ((36 * H) as u64, (96 * H) as u64)
    );
    assert_eq!(ratio(&city, FigureKind::OnlineNow), (2, 4));
    let kids: Vec<(&str, u64)> = city
        .children
        .iter()
        .map(|c| {
            (
                c.grid.as_str(),
                c.figures[FigureKind::OnlineNow as usize].ratio.denominator,
            )
        })
        .collect();
    assert_eq!(kids, [("empty", 0), ("town-a", 1), ("town-b", 3)]);
}

#[test]
fn exact_target_boundary_and_pagination() {
    let mut f = Fixture::new();
    // 50 cameras, 49 online: exactly 98%.
    for n in 1..=50 {
        f.camera(t(-100), cam_in(n, "town-b"));
        if n != 17 {
            f.history(cam_id(n), StatusKind::Online, &[(-100, None)]);
        }
    }
    let mut targets = Targets::default();
    targets.set(FigureKind::OnlineNow, Target::percent(98));
    f.reg.set_targets(targets);
    let r = f.report("town-b");
    assert_eq!(ratio(&r, FigureKind::OnlineNow), (49, 50));
    assert_eq!(r.figure(FigureKind::OnlineNow).verdict, Verdict::Pass);

    // Pages of the registration list: make 5 records incomplete.
    let mut g = Fixture::new();
    for n in 1..=5 {
        let mut c = cam_in(n, "town-b");
        c.location = None;
        g.camera(t(-100), c);
    }
    let model = g.reg.snapshot();
    let mut req = ReportRequest::new(code("city"), T);
    req.items = ItemPage {
        offset: 2,
        limit: 2,
        figure: Some(FigureKind::Registration),
    };
    let r = report(&model, &ComplianceOptions::default(), &req).unwrap();
    let reg = &r.figure(FigureKind::Registration).failing;
    assert_eq!(reg.total, 5);
    assert_eq!(reg.offset, 2);
    assert_eq!(
        failing_ids(&r, FigureKind::Registration),
        [cam_id(3).to_string(), cam_id(4).to_string()]
    );
    // Other figures report counts only.
    assert_eq!(r.figure(FigureKind::OnlineNow).failing.total, 5);
    assert!(r.figure(FigureKind::OnlineNow).failing.items.is_empty());
}

#[test]
fn ranking_orders_by_weighted_attainment() {
    let mut f = Fixture::new();
    f.camera(t(-100), cam_in(1, "village-a1"))
        .history(cam_id(1), StatusKind::Online, &[(-100, None)])
        .history(cam_id(1), StatusKind::Recording, &[(-100, None)])
        .history(cam_id(1), StatusKind::Upload, &[(-100, None)])
        .uplink(&[(-100, None)]);
    f.camera(t(-100), cam_in(2, "town-b"));
    let model = f.reg.snapshot();
    let ranked = rank(
        &model,
        &ComplianceOptions::default(),
        &RankRequest {
            within: code("city"),
            depth: 1,
            at: T,
            window_ms: 24 * H,
        },
    )
    .unwrap();
    let order: Vec<(&str, Option<u64>)> = ranked
        .iter()
        .map(|r| (r.grid.as_str(), r.score.map(|s| s.round() as u64)))
        .collect();
    // town-a: everything applicable is met → 100. town-b's camera is shared (uplink alive) and
    // its record is complete, but it is offline and never recorded or uploaded. Applicable
    // weights: networking all 10, upload 10, online 10, intact 15, recording 10, registration 10
    // (coverage and networking-at-key-sites have no denominator) = 65; met: networking +
    // registration = 20 → 100 × 20 / 65 ≈ 31.
    assert_eq!(
        order,
        [("town-a", Some(100)), ("town-b", Some(31)), ("empty", None)]
    );
    assert_eq!(ranked[2].rank, 3);
}

#[test]
fn deadline_progress_uses_the_trend() {
    let mut f = Fixture::new();
    // 4 cameras; 1 online a week ago, 3 online now.
    for n in 1..=4 {
        f.camera(t(-1000), cam_in(n, "town-b"));
    }
    f.history(cam_id(1), StatusKind::Online, &[(-1000, None)]);
    f.history(cam_id(2), StatusKind::Online, &[(-24, None)]);
    f.history(cam_id(3), StatusKind::Online, &[(-24, None)]);
    let mut targets = Targets::default();
    targets.set(
        FigureKind::OnlineNow,
        Target {
            ratio: Rational::percent(100),
            due: Some(t(7 * 24)),
        },
    );
    f.reg.set_targets(targets);
    let mut req = ReportRequest::new(code("town-b"), T);
    req.trend_ms = Some(7 * 24 * H);
    let r = report(&f.reg.snapshot(), &ComplianceOptions::default(), &req).unwrap();
    assert_eq!(r.deadlines.len(), 1);
    let d = &r.deadlines[0];
    assert_eq!(d.current, Ratio::new(3, 4));
    assert_eq!(d.previous, Some(Ratio::new(1, 4)));
    // +50 points per week, one week left → projected 125% → on track.
    assert_eq!(d.status, DeadlineStatus::OnTrack);
    req.trend_ms = None;
    let r = report(&f.reg.snapshot(), &ComplianceOptions::default(), &req).unwrap();
    assert_eq!(r.deadlines[0].status, DeadlineStatus::Behind);
}

#[test]
fn recording_scope_option_changes_the_denominator() {
    let mut f = Fixture::new();
    f.sites(vec![site(
        "s1",
        "town-b",
        SiteCategory::Square,
        PointClass::Class1,
    )]);
    let mut key = cam_in(1, "town-b");
    key.sites = vec![SiteId::parse("s1").unwrap()];
    f.camera(t(-100), key)
        .camera(t(-100), cam_in(2, "town-b"))
        .history(cam_id(1), StatusKind::Recording, &[(-100, None)]);
    let model = f.reg.snapshot();
    let req = ReportRequest::new(code("town-b"), T);
    let all = report(&model, &ComplianceOptions::default(), &req).unwrap();
    assert_eq!(
        ratio(&all, FigureKind::RecordingCompleteness),
        ((24 * H) as u64, (48 * H) as u64)
    );
    let opts = ComplianceOptions {
        recording_scope: RecordingScope::KeySiteCameras,
        ..ComplianceOptions::default()
    };
    let key_only = report(&model, &opts, &req).unwrap();
    assert_eq!(
        ratio(&key_only, FigureKind::RecordingCompleteness),
        ((24 * H) as u64, (24 * H) as u64)
    );
}

#[test]
fn subtree_reports_agree_with_the_whole_tree_pass_for_every_grid() {
    // A tangled fixture: cameras watching sites in other grids, moves, decommissioning,
    // cameras with more sites than fit inline, sites out of scope.
    let mut f = Fixture::new();
    let grids = ["village-a1", "town-a", "town-b", "empty"];
    let mut sites = Vec::new();
    for n in 0..12 {
        let mut s = site(
            &format!("s{n:02}"),
            grids[n % 3],
            SiteCategory::ALL[n % SiteCategory::ALL.len()],
            PointClass::ALL[n % 3],
        );
        s.required_coverage = n % 5 != 4;
        sites.push(s);
    }
    f.sites(sites);
    for n in 1..=30u32 {
        let mut c = cam_in(n, grids[(n as usize * 7) % 4]);
        c.sites = (0..(n as usize % 6))
            .map(|k| SiteId::parse(&format!("s{:02}", (n as usize * 3 + k * 5) % 12)).unwrap())
            .collect();
        c.shared_upward = n % 4 != 0;
        if n % 9 == 0 {
            c.builder = Some(Builder::UnitSelfBuilt);
        }
        f.camera(t(-200 + i64::from(n)), c.clone());
        if n % 7 == 0 {
            c.grid = code(grids[(n as usize + 1) % 4]);
            f.camera(t(-10), c.clone());
        }
        if n % 11 == 0 {
            c.decommissioned_at = Some(t(-3));
            f.camera(t(-3), c);
        }
        f.history(
            cam_id(n),
            StatusKind::Online,
            &[
                (-300, Some(-(i64::from(n) % 5))),
                (-(i64::from(n) % 5) + 1, None),
            ],
        );
        if n % 3 != 0 {
            f.history(cam_id(n), StatusKind::Upload, &[(-2, Some(-1))]);
        }
        f.diagnosis(cam_id(n), -4, n % 8 != 0);
    }
    f.uplink(&[(-100, None)]);
    let model = f.reg.snapshot();
    let opts = ComplianceOptions::default();
    for depth in 0..3 {
        let ranked = rank(
            &model,
            &opts,
            &RankRequest {
                within: code("city"),
                depth,
                at: T,
                window_ms: 24 * H,
            },
        )
        .unwrap();
        for r in ranked {
            let mut req = ReportRequest::new(r.grid.clone(), T);
            req.items = ItemPage::none();
            let direct = report(&model, &opts, &req).unwrap();
            for (a, b) in direct.figures.iter().zip(&r.figures) {
                assert_eq!(a.ratio, b.ratio, "grid {} figure {:?}", r.grid, a.kind);
            }
        }
    }
    // The parallel pass gives the same figures and the same item pages.
    for grid in ["city", "town-a", "town-b"] {
        let mut req = ReportRequest::new(code(grid), T);
        req.items.limit = 4;
        let one = report(
            &model,
            &ComplianceOptions {
                threads: 1,
                ..opts.clone()
            },
            &req,
        )
        .unwrap();
        let three = report(
            &model,
            &ComplianceOptions {
                threads: 3,
                ..opts.clone()
            },
            &req,
        )
        .unwrap();
        assert_eq!(one, three, "{grid}");
    }
    // And the root report's items are consistent with its counts.
    let root = f.report("city");
    for fig in &root.figures {
        if fig.unit != crate::target::Unit::Milliseconds {
            assert_eq!(
                fig.failing.total,
                fig.ratio.denominator - fig.ratio.numerator,
                "{:?}",
                fig.kind
            );
            assert_eq!(fig.failing.items.len() as u64, fig.failing.total);
        }
    }
}
