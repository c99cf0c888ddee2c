//! A deterministic synthetic city for demos, tests and benchmarks: a grid tree, key sites,
//! cameras with attribute history, and status history with realistic flapping.
//!
//! The default ([`CityParams::city`]) is a prefecture-size city: 20 000 grids in 4 levels
//! (city → 20 towns → 400 villages → 19 579 base grids), 50 000 key sites, 200 000 cameras and
//! 30 days of history. [`CityParams::small`] is a demo-size town. Everything is a pure function
//! of the parameters (seed included): the same parameters give byte-identical output on every
//! machine, because the generator uses its own SplitMix64 stream rather than a library RNG whose
//! algorithm may change between versions.
//!
//! History is generated per camera on demand ([`City::camera_history`]) from a per-camera seed,
//! so a caller can stream 200 000 cameras' history into an index or a file without holding it
//! all in memory.
//!
//! What the history looks like (shares of cameras):
//! - 80% healthy: online with ~3 short outages (mean 20 min) per 30 days;
//! - 12% flaky: ~2 outages a day (mean 1 h);
//! - 5% one long outage of 1–10 days;
//! - 3% dead: went offline in the first days of the window and never came back.
//!
//! Recording follows online, except 3% never record and 3% record only the first half of each
//! online spell. Upload (video received) follows online, except 4% never upload. 95% of cameras
//! get a daily quality diagnosis; 2% fail persistently, the rest fail 1% of checks. Two upper
//! platforms have uplink history with a few outages. 1% of cameras move to another grid, 0.5%
//! change their sharing flag and 0.4% are decommissioned during the window.
//!
//! Import files ([`City::write_csv`], [`City::write_json`]) use the row shapes of
//! `vigil_core::import` (columns documented there): `grids`, `sites`, `cameras`, `intervals`,
//! `diagnoses` (`.csv` with a header line, or `.json` arrays).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use vigil_core::camera::{
    AcceptanceState, Builder, Camera, CameraSource, HdCapability, RegistrationState, RtspUrl,
    VideoCodec,
};
use vigil_core::geo::GeoPoint;
use vigil_core::grid::{Grid, GridCode};
use vigil_core::id::{DeviceType, DomainCode, GbId};
use vigil_core::import::{CameraRow, DiagnosisRow, GridRow, IntervalRow, SiteRow};
use vigil_core::model::{CameraVersionInput, DiagnosisRecord, HistoryRecord};
use vigil_core::site::{KeySite, PointClass, SiteCategory, SiteId};
use vigil_core::status::{Diagnosis, HistoryKind, QualityCheck, StatusKind};
use vigil_core::time::{Interval, Timestamp, DAY_MS, HOUR_MS, MINUTE_MS};

/// Errors writing import files; each names the file.
#[derive(Debug, Error)]
pub enum CityError {
    /// Creating or writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing a CSV record failed.
    #[error("writing CSV {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV error.
        source: csv::Error,
    },
    /// Writing a JSON record failed.
    #[error("writing JSON {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The parameters cannot produce a valid city.
    #[error("city parameters are invalid: {0}")]
    Params(&'static str),
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct CityParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of grids at depth 1, 2, … below the single root (the last level holds the base
    /// grids that sites and cameras are placed in).
    pub grids_per_level: Vec<usize>,
    /// Number of key sites.
    pub sites: usize,
    /// Number of cameras (at most 999 999: one IPC serial each).
    pub cameras: usize,
    /// Days of status history before `end`.
    pub days: u32,
    /// End of the history (the "now" of the city).
    pub end: Timestamp,
    /// The 10-digit domain all IDs are issued under.
    pub domain: DomainCode,
}

/// 2024-06-01T00:00:00+08:00 — a fixed "now" so that output does not depend on the clock.
pub const DEFAULT_END: Timestamp = Timestamp::from_millis(1_717_171_200_000);

impl CityParams {
    /// The full city: 20 000 grids in 4 levels, 50 000 sites, 200 000 cameras, 30 days.
    pub fn city() -> Self {
        CityParams {
            seed: 2013,
            grids_per_level: vec![20, 400, 19_579],
            sites: 50_000,
            cameras: 200_000,
            days: 30,
            end: DEFAULT_END,
            domain: default_domain(),
        }
    }

    /// A demo town: 1 + 3 + 12 + 60 grids, 300 sites, 1 200 cameras, 7 days.
    pub fn small() -> Self {
        CityParams {
            seed: 2013,
            grids_per_level: vec![3, 12, 60],
            sites: 300,
            cameras: 1_200,
            days: 7,
            end: DEFAULT_END,
            domain: default_domain(),
        }
    }

    /// The full city scaled by `factor` (grids, sites and cameras; at least one of each level).
    pub fn scaled(factor: f64) -> Self {
        let full = CityParams::city();
        let s = |n: usize| ((n as f64 * factor).round() as usize).max(1);
        CityParams {
            grids_per_level: full.grids_per_level.iter().map(|&n| s(n)).collect(),
            sites: s(full.sites),
            cameras: s(full.cameras),
            ..full
        }
    }

    fn check(&self) -> Result<(), CityError> {
        if self.grids_per_level.is_empty() || self.grids_per_level.contains(&0) {
            return Err(CityError::Params(
                "every grid level needs at least one grid",
            ));
        }
        if self.grids_per_level.windows(2).any(|w| w[1] < w[0]) {
            return Err(CityError::Params(
                "a level cannot have fewer grids than the one above",
            ));
        }
        if self.cameras > 999_999 {
            return Err(CityError::Params(
                "at most 999 999 cameras (one IPC serial each)",
            ));
        }
        if self.days == 0 {
            return Err(CityError::Params("days must be at least 1"));
        }
        Ok(())
    }
}

fn default_domain() -> DomainCode {
    // 370100 = Jinan; industry 00. A constant that parses by construction.
    DomainCode::parse("3701000000").unwrap_or_else(|_| unreachable!("constant domain parses"))
}

/// A small, fixed pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64, index: u64) -> Rng {
        let mut r = Rng(seed
            ^ stream.wrapping_mul(0xA076_1D64_78BD_642F)
            ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB));
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Uniform instant in [a, b).
    fn between(&mut self, a: Timestamp, b: Timestamp) -> Timestamp {
        let span = b.ms_since(a).max(1);
        a.add_ms((self.unit() * span as f64) as i64)
    }
}

/// How a camera behaves over the history window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Online with rare short outages.
    Healthy,
    /// Frequent outages.
    Flaky,
    /// One outage of days.
    LongOutage,
    /// Went offline early and stayed offline.
    Dead,
}

/// Per-camera facts the history generator needs.
#[derive(Clone, Debug)]
struct CamMeta {
    id: GbId,
    registered: Timestamp,
    decommissioned: Option<Timestamp>,
    profile: Profile,
    never_records: bool,
    half_records: bool,
    never_uploads: bool,
    diagnosed: bool,
    always_fails: bool,
}

/// One camera's generated history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CameraHistory {
    /// Online intervals (the last may be open).
    pub online: Vec<Interval>,
    /// Recording intervals.
    pub recording: Vec<Interval>,
    /// Upload (video received at the centre) intervals.
    pub upload: Vec<Interval>,
    /// Quality diagnoses, in time order.
    pub diagnoses: Vec<Diagnosis>,
}

/// A generated city.
#[derive(Clone, Debug)]
pub struct City {
    /// The parameters it was generated from.
    pub params: CityParams,
    /// Grids, parents before children.
    pub grids: Vec<Grid>,
    /// Key sites.
    pub sites: Vec<KeySite>,
    /// Camera record versions (several for cameras with attribute history), by camera then time.
    pub cameras: Vec<CameraVersionInput>,
    /// IDs of the upper platforms with uplink history.
    pub platforms: Vec<GbId>,
    meta: Vec<CamMeta>,
}

const LEVEL_LABELS: [&str; 4] = ["市", "镇/街道", "村/居", "基础网格"];

/// Category weights: roads, compounds and public places dominate a real site register.
const CATEGORY_WEIGHTS: &[(SiteCategory, u32)] = &[
    (SiteCategory::PartyGovernment, 3),
    (SiteCategory::Utility, 2),
    (SiteCategory::BroadcastTelecom, 1),
    (SiteCategory::KeyEnterprise, 3),
    (SiteCategory::School, 5),
    (SiteCategory::Finance, 4),
    (SiteCategory::Hospital, 2),
    (SiteCategory::MallSupermarket, 5),
    (SiteCategory::InternetCafe, 2),
    (SiteCategory::CarPark, 4),
    (SiteCategory::Hotel, 3),
    (SiteCategory::ProvincialRoad, 4),
    (SiteCategory::ResidentialCompound, 20),
    (SiteCategory::VillageMainRoad, 12),
    (SiteCategory::MainStreet, 12),
    (SiteCategory::Square, 3),
    (SiteCategory::SportsGround, 2),
    (SiteCategory::BusyArea, 5),
    (SiteCategory::ComplexPublicOrder, 3),
    (SiteCategory::HighCaseArea, 2),
    (SiteCategory::PoliceDesignated, 3),
];

fn pick_category(rng: &mut Rng) -> SiteCategory {
    let total: u32 = CATEGORY_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total as usize) as u32;
    for (c, w) in CATEGORY_WEIGHTS {
        if x < *w {
            return *c;
        }
        x -= w;
    }
    SiteCategory::PoliceDesignated
}

fn grid_code(text: String) -> GridCode {
    // Codes are built from digits and '.', which GridCode always accepts.
    GridCode::parse(&text).unwrap_or_else(|e| unreachable!("generated grid code {text}: {e}"))
}

fn site_id(n: usize) -> SiteId {
    SiteId::parse(&format!("S{n:06}")).unwrap_or_else(|e| unreachable!("generated site id: {e}"))
}

fn point(rng: &mut Rng) -> Option<GeoPoint> {
    // Around Jinan: 36.4–36.9 N, 116.7–117.4 E.
    GeoPoint::new(36.4 + rng.unit() * 0.5, 116.7 + rng.unit() * 0.7).ok()
}

/// Generates the city (grids, sites, cameras); history is generated on demand.
pub fn generate(params: &CityParams) -> Result<City, CityError> {
    params.check()?;
    let mut rng = Rng::new(params.seed, 1, 0);
    let start = params.end.sub_ms(i64::from(params.days) * DAY_MS);

    // Grids: each level's grids are spread evenly over the previous level's.
    let root_code = grid_code(params.domain.as_str()[..6].to_owned());
    let mut grids = vec![Grid {
        code: root_code.clone(),
        name: "济南市".to_owned(),
        level_label: LEVEL_LABELS[0].to_owned(),
        parent: None,
        polygon: None,
    }];
    let mut level: Vec<GridCode> = vec![root_code];
    for (depth, &n) in params.grids_per_level.iter().enumerate() {
        let mut next = Vec::with_capacity(n);
        // Children of one parent are consecutive; number them 1, 2, … within the parent.
        let width = (n / level.len() + 1).to_string().len();
        let (mut last_parent, mut ordinal) = (usize::MAX, 0usize);
        for i in 0..n {
            let p = (i * level.len()) / n;
            if p != last_parent {
                (last_parent, ordinal) = (p, 0);
            }
            ordinal += 1;
            let parent = &level[p];
            let code = grid_code(format!("{parent}.{ordinal:0width$}"));
            let label = LEVEL_LABELS.get(depth + 1).copied().unwrap_or("网格");
            let name = match depth {
                0 => format!("第{}街道", i + 1),
                1 => format!("{}村", i + 1),
                _ => format!("{}号网格", i + 1),
            };
            grids.push(Grid {
                code: code.clone(),
                name,
                level_label: label.to_owned(),
                parent: Some(parent.clone()),
                polygon: None,
            });
            next.push(code);
        }
        level = next;
    }
    let leaves = level;

    // Sites in base grids.
    let mut sites = Vec::with_capacity(params.sites);
    let mut sites_by_leaf: Vec<Vec<usize>> = vec![Vec::new(); leaves.len()];
    for n in 0..params.sites {
        let leaf = rng.below(leaves.len());
        let category = pick_category(&mut rng);
        let point_class = match rng.below(10) {
            0 | 1 => PointClass::Class1,
            2..=5 => PointClass::Class2,
            _ => PointClass::Class3,
        };
        sites_by_leaf[leaf].push(n);
        sites.push(KeySite {
            id: site_id(n + 1),
            name: format!("{}{}", category.label_zh(), n + 1),
            category,
            point_class,
            grid: leaves[leaf].clone(),
            location: point(&mut rng),
            address: Some(format!("{}路{}号", leaf + 1, n % 300 + 1)),
            required_coverage: !rng.chance(0.03),
        });
    }

    // Cameras.
    let mut cameras = Vec::with_capacity(params.cameras + params.cameras / 50);
    let mut meta = Vec::with_capacity(params.cameras);
    for n in 0..params.cameras {
        let serial = n as u32 + 1;
        let id = GbId::for_rtsp_camera(&params.domain, 0, serial)
            .map_err(|_| CityError::Params("camera serial out of range"))?;
        let leaf = rng.below(leaves.len());
        let local = &sites_by_leaf[leaf];
        let mut watched: Vec<SiteId> = Vec::new();
        let roll = rng.unit();
        if roll < 0.70 && !sites.is_empty() {
            let s = if !local.is_empty() && rng.chance(0.9) {
                local[rng.below(local.len())]
            } else {
                rng.below(sites.len())
            };
            watched.push(sites[s].id.clone());
            if roll < 0.10 {
                let s2 = rng.below(sites.len());
                if sites[s2].id != watched[0] {
                    watched.push(sites[s2].id.clone());
                }
            }
        }
        let source = if rng.chance(0.7) {
            let nvr = GbId::compose(&params.domain, DeviceType::Nvr, 0, serial.div_ceil(64))
                .map_err(|_| CityError::Params("NVR serial out of range"))?;
            CameraSource::Gb {
                device_id: nvr,
                channel_id: id,
            }
        } else {
            let url = format!(
                "rtsp://10.{}.{}.{}:554/Streaming/Channels/101",
                serial >> 16 & 255,
                serial >> 8 & 255,
                serial & 255
            );
            CameraSource::Rtsp {
                url: RtspUrl::parse(&url)
                    .map_err(|_| CityError::Params("generated RTSP URL"))?
                    .0,
            }
        };
        let hd = if rng.chance(0.85) {
            HdCapability {
                width: 1920,
                height: 1080,
                codec: if rng.chance(0.6) {
                    VideoCodec::H265
                } else {
                    VideoCodec::H264
                },
                fps: 25.0,
            }
        } else {
            HdCapability {
                width: 704,
                height: 576,
                codec: VideoCodec::H264,
                fps: 25.0,
            }
        };
        let registered = if rng.chance(0.03) {
            rng.between(start, params.end)
        } else {
            rng.between(start.sub_ms(3 * 365 * DAY_MS), start)
        };
        let camera = Camera {
            id,
            name: match watched.first() {
                Some(s) => format!("{}-{}号机", s, n % 8 + 1),
                None => format!("{}路口{}", leaf + 1, n % 16 + 1),
            },
            source,
            location: if rng.chance(0.98) {
                point(&mut rng)
            } else {
                None
            },
            address: Some(format!("{}路{}号", leaf + 1, n % 500 + 1)),
            grid: leaves[leaf].clone(),
            sites: watched,
            builder: match rng.below(100) {
                0 => None,
                1..=64 => Some(Builder::GovernmentPublic),
                _ => Some(Builder::UnitSelfBuilt),
            },
            point_class: if rng.chance(0.97) {
                Some(PointClass::ALL[rng.below(3)])
            } else {
                None
            },
            install_date: Some(registered.sub_ms(DAY_MS * rng.below(60) as i64).date()),
            registration: if rng.chance(0.9) {
                RegistrationState::Filed
            } else {
                RegistrationState::NotFiled
            },
            acceptance: match rng.below(20) {
                0 => AcceptanceState::Pending,
                1 => AcceptanceState::AccessTested,
                2 => AcceptanceState::Rejected,
                _ => AcceptanceState::Accepted,
            },
            hd: Some(hd),
            shared_upward: rng.chance(0.88),
            decommissioned_at: None,
        };
        let first_change = registered.max(start).add_ms(HOUR_MS);
        let mut versions = vec![CameraVersionInput {
            from: registered,
            camera: camera.clone(),
        }];
        let change = rng.unit();
        let mut decommissioned = None;
        if first_change < params.end {
            if change < 0.01 {
                let mut moved = camera.clone();
                moved.grid = leaves[rng.below(leaves.len())].clone();
                versions.push(CameraVersionInput {
                    from: rng.between(first_change, params.end),
                    camera: moved,
                });
            } else if change < 0.015 {
                let mut toggled = camera.clone();
                toggled.shared_upward = !toggled.shared_upward;
                versions.push(CameraVersionInput {
                    from: rng.between(first_change, params.end),
                    camera: toggled,
                });
            } else if change < 0.019 {
                let at = rng.between(first_change, params.end);
                let mut gone = camera.clone();
                gone.decommissioned_at = Some(at);
                decommissioned = Some(at);
                versions.push(CameraVersionInput {
                    from: at,
                    camera: gone,
                });
            }
        }
        cameras.extend(versions);
        let profile = match rng.below(100) {
            0..=79 => Profile::Healthy,
            80..=91 => Profile::Flaky,
            92..=96 => Profile::LongOutage,
            _ => Profile::Dead,
        };
        let rec = rng.below(100);
        meta.push(CamMeta {
            id,
            registered,
            decommissioned,
            profile,
            never_records: rec < 3,
            half_records: (3..6).contains(&rec),
            never_uploads: rng.chance(0.04),
            diagnosed: rng.chance(0.95),
            always_fails: rng.chance(0.02),
        });
    }

    let platforms = vec![
        GbId::compose(&params.domain, DeviceType::Platform, 0, 1)
            .map_err(|_| CityError::Params("platform ID"))?,
        GbId::compose(&params.domain, DeviceType::Platform, 0, 2)
            .map_err(|_| CityError::Params("platform ID"))?,
    ];
    Ok(City {
        params: params.clone(),
        grids,
        sites,
        cameras,
        platforms,
        meta,
    })
}

/// Alternating up/down spells in `[a, b)`: up spells exponential with mean `mean_up`, down
/// spells with mean `mean_down`. A spell reaching `end_open` is left open.
fn flapping(
    rng: &mut Rng,
    a: Timestamp,
    b: Timestamp,
    mean_up: f64,
    mean_down: f64,
    end_open: bool,
) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut t = a;
    let mut up = !rng.chance(0.02);
    while t < b {
        let mean = if up { mean_up } else { mean_down };
        let len = (rng.exp(mean) as i64).max(MINUTE_MS);
        let next = t.add_ms(len).min(b);
        if up {
            push_spell(&mut out, t, next, b, end_open);
        }
        t = next;
        up = !up;
    }
    out
}

fn push_spell(out: &mut Vec<Interval>, s: Timestamp, e: Timestamp, b: Timestamp, end_open: bool) {
    let iv = if e >= b && end_open {
        Some(Interval::open(s))
    } else {
        Interval::new(s, e).ok()
    };
    out.extend(iv);
}

impl City {
    /// Number of cameras.
    pub fn camera_count(&self) -> usize {
        self.meta.len()
    }

    /// The behaviour profile of camera `index`.
    pub fn profile(&self, index: usize) -> Option<Profile> {
        self.meta.get(index).map(|m| m.profile)
    }

    /// The history window `[end − days, end)`.
    pub fn window(&self) -> Interval {
        let end = self.params.end;
        Interval::new(end.sub_ms(i64::from(self.params.days) * DAY_MS), end)
            .unwrap_or_else(|_| Interval::open(end))
    }

    /// The history of camera `index` (deterministic; empty for an unknown index).
    pub fn camera_history(&self, index: usize) -> CameraHistory {
        let Some(m) = self.meta.get(index) else {
            return CameraHistory::default();
        };
        let mut rng = Rng::new(self.params.seed, 2, index as u64);
        let window = self.window();
        let a = window.start().max(m.registered);
        let b = m.decommissioned.unwrap_or(window.end()).min(window.end());
        if a >= b {
            return CameraHistory::default();
        }
        let open = m.decommissioned.is_none();
        let day = DAY_MS as f64;
        let online = match m.profile {
            Profile::Healthy => flapping(&mut rng, a, b, 10.0 * day, 20.0 * MINUTE_MS as f64, open),
            Profile::Flaky => flapping(&mut rng, a, b, day / 2.0, HOUR_MS as f64, open),
            Profile::LongOutage => {
                let down_from = rng.between(a, b);
                let down_to = down_from
                    .add_ms(DAY_MS + rng.below(9) as i64 * DAY_MS)
                    .min(b);
                let mut v = flapping(
                    &mut rng,
                    a,
                    down_from,
                    10.0 * day,
                    20.0 * MINUTE_MS as f64,
                    false,
                );
                v.extend(flapping(
                    &mut rng,
                    down_to,
                    b,
                    10.0 * day,
                    20.0 * MINUTE_MS as f64,
                    open,
                ));
                v
            }
            Profile::Dead => {
                let died = a
                    .add_ms(rng.below(5) as i64 * DAY_MS + rng.below(DAY_MS as usize) as i64)
                    .min(b);
                Interval::new(a, died).into_iter().collect()
            }
        };
        let recording = if m.never_records {
            Vec::new()
        } else if m.half_records {
            online
                .iter()
                .filter_map(|iv| {
                    let len = if iv.is_open() {
                        b.ms_since(iv.start())
                    } else {
                        iv.len_ms()
                    };
                    Interval::new(iv.start(), iv.start().add_ms(len / 2)).ok()
                })
                .collect()
        } else {
            online.clone()
        };
        let upload = if m.never_uploads {
            Vec::new()
        } else {
            online.clone()
        };
        let mut diagnoses = Vec::new();
        if m.diagnosed {
            let mut at = a.add_ms(rng.below(DAY_MS as usize) as i64);
            let checks = QualityCheck::ALL;
            while at < b {
                let passed = !m.always_fails && !rng.chance(0.01);
                let check = if passed {
                    QualityCheck::Overall
                } else {
                    checks[rng.below(checks.len() - 1)]
                };
                diagnoses.push(Diagnosis { at, check, passed });
                at = at.add_ms(DAY_MS);
            }
        }
        CameraHistory {
            online,
            recording,
            upload,
            diagnoses,
        }
    }

    /// History and diagnosis records of cameras `range` (for chunked bulk import).
    pub fn history_records(
        &self,
        range: std::ops::Range<usize>,
    ) -> (Vec<HistoryRecord>, Vec<DiagnosisRecord>) {
        let mut hist = Vec::new();
        let mut diag = Vec::new();
        for i in range {
            let Some(m) = self.meta.get(i) else { break };
            let h = self.camera_history(i);
            for (kind, list) in [
                (StatusKind::Online, &h.online),
                (StatusKind::Recording, &h.recording),
                (StatusKind::Upload, &h.upload),
            ] {
                hist.extend(list.iter().map(|&interval| HistoryRecord {
                    subject: m.id,
                    kind: HistoryKind::Camera(kind),
                    interval,
                }));
            }
            diag.extend(h.diagnoses.iter().map(|&diagnosis| DiagnosisRecord {
                camera: m.id,
                diagnosis,
            }));
        }
        (hist, diag)
    }

    /// Uplink history of the upper platforms: the first has a few short outages, the second a
    /// long one.
    pub fn uplink_records(&self) -> Vec<HistoryRecord> {
        let mut rng = Rng::new(self.params.seed, 3, 0);
        let w = self.window();
        let mut out = Vec::new();
        for (i, p) in self.platforms.iter().enumerate() {
            let spells = if i == 0 {
                flapping(
                    &mut rng,
                    w.start(),
                    w.end(),
                    8.0 * DAY_MS as f64,
                    2.0 * HOUR_MS as f64,
                    true,
                )
            } else {
                let down = rng.between(w.start(), w.end());
                let up_again = down.add_ms(3 * DAY_MS).min(w.end());
                let mut v: Vec<Interval> = Interval::new(w.start(), down).into_iter().collect();
                if up_again < w.end() {
                    v.push(Interval::open(up_again));
                }
                v
            };
            out.extend(spells.into_iter().map(|interval| HistoryRecord {
                subject: *p,
                kind: HistoryKind::Uplink,
                interval,
            }));
        }
        out
    }

    /// Writes `grids.csv`, `sites.csv`, `cameras.csv`, `intervals.csv` and `diagnoses.csv` into
    /// `dir` (which must exist), streaming history camera by camera.
    pub fn write_csv(&self, dir: &Path) -> Result<(), CityError> {
        fn open(dir: &Path, name: &str) -> Result<(csv::Writer<File>, PathBuf), CityError> {
            let path = dir.join(name);
            let w = csv::Writer::from_path(&path).map_err(|source| CityError::Csv {
                path: path.clone(),
                source,
            })?;
            Ok((w, path))
        }
        fn put<T: serde::Serialize>(
            w: &mut csv::Writer<File>,
            path: &Path,
            row: &T,
        ) -> Result<(), CityError> {
            w.serialize(row).map_err(|source| CityError::Csv {
                path: path.to_owned(),
                source,
            })
        }
        fn done(mut w: csv::Writer<File>, path: &Path) -> Result<(), CityError> {
            w.flush().map_err(|source| CityError::Io {
                path: path.to_owned(),
                source,
            })
        }
        let (mut w, p) = open(dir, "grids.csv")?;
        for g in &self.grids {
            put(&mut w, &p, &GridRow::from_grid(g))?;
        }
        done(w, &p)?;
        let (mut w, p) = open(dir, "sites.csv")?;
        for s in &self.sites {
            put(&mut w, &p, &SiteRow::from_site(s))?;
        }
        done(w, &p)?;
        let (mut w, p) = open(dir, "cameras.csv")?;
        for c in &self.cameras {
            put(&mut w, &p, &CameraRow::from_version(c))?;
        }
        done(w, &p)?;
        let (mut wi, pi) = open(dir, "intervals.csv")?;
        let (mut wd, pd) = open(dir, "diagnoses.csv")?;
        for r in self.uplink_records() {
            put(&mut wi, &pi, &IntervalRow::from_record(&r))?;
        }
        for i in 0..self.meta.len() {
            let (hist, diag) = self.history_records(i..i + 1);
            for r in &hist {
                put(&mut wi, &pi, &IntervalRow::from_record(r))?;
            }
            for r in &diag {
                put(&mut wd, &pd, &DiagnosisRow::from_record(r))?;
            }
        }
        done(wi, &pi)?;
        done(wd, &pd)
    }

    /// Writes the same five files as JSON arrays (`grids.json`, …) into `dir`.
    pub fn write_json(&self, dir: &Path) -> Result<(), CityError> {
        let mut grids = JsonArray::create(dir.join("grids.json"))?;
        for g in &self.grids {
            grids.push(&GridRow::from_grid(g))?;
        }
        grids.finish()?;
        let mut sites = JsonArray::create(dir.join("sites.json"))?;
        for s in &self.sites {
            sites.push(&SiteRow::from_site(s))?;
        }
        sites.finish()?;
        let mut cams = JsonArray::create(dir.join("cameras.json"))?;
        for c in &self.cameras {
            cams.push(&CameraRow::from_version(c))?;
        }
        cams.finish()?;
        let mut ints = JsonArray::create(dir.join("intervals.json"))?;
        let mut diags = JsonArray::create(dir.join("diagnoses.json"))?;
        for r in self.uplink_records() {
            ints.push(&IntervalRow::from_record(&r))?;
        }
        for i in 0..self.meta.len() {
            let (hist, diag) = self.history_records(i..i + 1);
            for r in &hist {
                ints.push(&IntervalRow::from_record(r))?;
            }
            for r in &diag {
                diags.push(&DiagnosisRow::from_record(r))?;
            }
        }
        ints.finish()?;
        diags.finish()
    }
}

/// Streams a JSON array, one element per line.
struct JsonArray {
    w: BufWriter<File>,
    path: PathBuf,
    first: bool,
}

impl JsonArray {
    fn create(path: PathBuf) -> Result<Self, CityError> {
        let f = File::create(&path).map_err(|source| CityError::Io {
            path: path.clone(),
            source,
        })?;
        let mut a = JsonArray {
            w: BufWriter::new(f),
            path,
            first: true,
        };
        a.raw(b"[")?;
        Ok(a)
    }

    fn raw(&mut self, b: &[u8]) -> Result<(), CityError> {
        self.w.write_all(b).map_err(|source| CityError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn push<T: serde::Serialize>(&mut self, v: &T) -> Result<(), CityError> {
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.raw(sep)?;
        serde_json::to_writer(&mut self.w, v).map_err(|source| CityError::Json {
            path: self.path.clone(),
            source,
        })
    }

    fn finish(mut self) -> Result<(), CityError> {
        self.raw(b"\n]\n")?;
        self.w.flush().map_err(|source| CityError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::grid::GridTree;
    use vigil_core::import::CameraRow;
    use vigil_core::model::Registry;
    use vigil_core::time::IntervalSet;

    fn tiny() -> CityParams {
        CityParams {
            grids_per_level: vec![2, 4, 10],
            sites: 40,
            cameras: 200,
            days: 5,
            ..CityParams::small()
        }
    }

    #[test]
    fn same_seed_same_city_other_seed_other_city() {
        let a = generate(&tiny()).unwrap();
        let b = generate(&tiny()).unwrap();
        assert_eq!(a.cameras, b.cameras);
        assert_eq!(a.camera_history(17), b.camera_history(17));
        let c = generate(&CityParams { seed: 7, ..tiny() }).unwrap();
        assert_ne!(a.cameras, c.cameras);
    }

    #[test]
    fn grid_levels_and_counts_match_the_parameters() {
        let city = generate(&tiny()).unwrap();
        assert_eq!(city.grids.len(), 1 + 2 + 4 + 10);
        let tree = GridTree::from_grids(&city.grids).unwrap();
        assert_eq!(tree.level_count(), 4);
        assert_eq!(tree.at_depth(3, None).unwrap().len(), 10);
        assert_eq!(city.sites.len(), 40);
        assert_eq!(city.camera_count(), 200);
        assert!(CityParams::city().grids_per_level.iter().sum::<usize>() + 1 == 20_000);
        assert!(generate(&CityParams {
            grids_per_level: vec![3, 2],
            ..tiny()
        })
        .is_err());
    }

    #[test]
    fn the_whole_city_is_valid_for_the_core_model() {
        let city = generate(&tiny()).unwrap();
        let mut reg = Registry::new();
        let merged = reg.plan_grids(&city.grids);
        assert!(merged.rejected.is_empty());
        reg.apply_grids(merged.tree);
        assert!(reg.plan_sites(&city.sites).rejected.is_empty());
        reg.apply_sites(city.sites.clone());
        let plan = reg.plan_cameras(&city.cameras);
        assert!(plan.rejected.is_empty(), "{:?}", plan.rejected.first());
        reg.apply_cameras(city.cameras.clone());
        let (hist, diag) = city.history_records(0..city.camera_count());
        let mut all = hist;
        all.extend(city.uplink_records());
        let plan = reg.plan_history(&all);
        assert!(
            plan.rows.rejected.is_empty(),
            "{:?}",
            plan.rows.rejected.first()
        );
        assert!(reg.plan_diagnoses(&diag).rows.rejected.is_empty());
    }

    #[test]
    fn history_is_mostly_online_with_outages() {
        let city = generate(&CityParams {
            cameras: 2_000,
            days: 30,
            ..tiny()
        })
        .unwrap();
        let w = city.window();
        let mut online = 0i64;
        let mut dead_online = 0i64;
        let mut deads = 0;
        for i in 0..city.camera_count() {
            let h = city.camera_history(i);
            let set = IntervalSet::from_sorted(h.online.clone()).unwrap();
            online += set.overlap_ms(&w);
            if city.profile(i) == Some(Profile::Dead) {
                deads += 1;
                dead_online += set.overlap_ms(&w);
                assert!(!set.is_open());
            }
            IntervalSet::from_sorted(h.recording).unwrap();
        }
        let share = online as f64 / (w.len_ms() as f64 * city.camera_count() as f64);
        assert!((0.80..0.98).contains(&share), "online share {share}");
        assert!(deads > 0);
        assert!((dead_online as f64) < 0.2 * deads as f64 * w.len_ms() as f64);
    }

    #[test]
    fn csv_and_json_files_round_trip_through_the_row_shapes() {
        let city = generate(&CityParams {
            cameras: 30,
            sites: 10,
            ..tiny()
        })
        .unwrap();
        let dir = std::env::temp_dir().join(format!("vigil-city-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        city.write_csv(&dir).unwrap();
        city.write_json(&dir).unwrap();
        let mut rdr = csv::Reader::from_path(dir.join("cameras.csv")).unwrap();
        let rows: Vec<CameraRow> = rdr.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), city.cameras.len());
        let mut no_id = || Err(vigil_core::id::IdError::NoRtspDomain);
        for (row, v) in rows.iter().zip(&city.cameras) {
            assert_eq!(&row.to_import(0, &mut no_id).unwrap().version, v);
        }
        let json: Vec<IntervalRow> =
            serde_json::from_reader(File::open(dir.join("intervals.json")).unwrap()).unwrap();
        let mut rdr = csv::Reader::from_path(dir.join("intervals.csv")).unwrap();
        let csv_rows: Vec<IntervalRow> = rdr.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(json, csv_rows);
        assert!(json.iter().any(|r| r.kind == "uplink"));
        assert!(json.iter().all(|r| r.to_record(0).is_ok()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
