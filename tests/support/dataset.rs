//! A small hand-made dataset whose figures are computed by hand below.
//!
//! Report instant `T` = 2024-06-01T00:00:00Z, window 24 h: `W` = [2024-05-31T00:00Z, T).
//!
//! ```text
//! city 测试市 ─ t1 一镇 ─ v11 一村   sites S1 school (class 1), S2 residential_compound (class 2)
//!             │        └ v12 二村   site  S3 square (class 3)
//!             └ t2 二镇 ─ v21 三村   sites S4 hospital (class 1), S5 main_street (class 2,
//!                                          out of scope), S6 finance (class 1, no camera)
//! ```
//!
//! | camera | grid | sites | builder | class | location | shared | registered | notes |
//! |---|---|---|---|---|---|---|---|---|
//! | C1 …01 | v11 | S1 | government | 1 | yes | yes | 2024-01-01 | |
//! | C2 …02 | v11 | S2 | self-built | 2 | yes | yes | 2024-01-01 | |
//! | C3 …03 | v12 | S3 | government | 2 | **no** | no | 2024-01-01 | diagnosis failed (blur) |
//! | C4 …04 | v21 | S4 | self-built | 1 | yes | yes | 2024-05-31T12:00Z | |
//! | C5 …05 | v21 | — | self-built | 3 | yes | yes | 2024-01-01 | |
//! | C6 …06 | v12 | S3 | government | 2 | yes | yes | 2024-01-01 | decommissioned 2024-05-31T06:00Z |
//!
//! Hours in `W` (scheduled / online / recorded; upload = any video received in `W`):
//! C1 24/24/18 upload; C2 24/12/12 no upload; C3 24/18/0 no upload; C4 12/12/12 upload;
//! C5 24/0/0; C6 6/6/6 upload. Online at `T`: C1, C3, C4. Diagnoses: C1 passed, C3 failed
//! (blur), C4 passed; C2 and C5 none. Uplink to 37010000002000000001 registered at `T`.
//!
//! Figures of `city` at `T`: in service C1–C5 (C6 decommissioned); working C1, C4.
//! - coverage 2/5 (S1, S4; S2 offline camera, S3 failed diagnosis, S6 no camera);
//!   class 1 2/3, class 2 0/1, class 3 0/1; planned 4/5 (blind spot S6);
//! - networking all 4/5 (C3 not shared) → passes 80%; key sites 3/4 (C1–C4; C3) → fails;
//! - upload 3/5 (required C1, C2, C3, C4, C6; received C1, C4, C6);
//! - online time 72 h / 114 h; online now 3/5; intact 2/5; public areas 0/2 (C2, C3);
//!   key industries 2/2 (C1, C4); recording 48 h / 114 h; registration 4/5 (C3 no location).
//!
//! Children: t1 coverage 1/3, t2 coverage 1/2. Ranking of the towns (default weights):
//! t2 67.41, t1 53.22 (worked out in `RANKING`).

/// `T`.
pub const AT: &str = "2024-06-01T00:00:00Z";

/// Grids, as an integrator's spreadsheet saves them (to be encoded as GB18030).
pub const GRIDS_CSV: &str = "\
code,name,level_label,parent
city,测试市,市,
t1,一镇,镇/街道,city
t2,二镇,镇/街道,city
v11,一村,村/居,t1
v12,二村,村/居,t1
v21,三村,村/居,t2
";

/// Key sites (JSON).
pub const SITES_JSON: &str = r#"[
  {"id": "S1", "name": "实验小学", "category": "school", "point_class": "1", "grid": "v11", "lat": 36.60, "lon": 117.00},
  {"id": "S2", "name": "幸福小区", "category": "residential_compound", "point_class": "2", "grid": "v11", "lat": 36.61, "lon": 117.01},
  {"id": "S3", "name": "人民广场", "category": "square", "point_class": "3", "grid": "v12", "lat": 36.62, "lon": 117.02},
  {"id": "S4", "name": "中心医院", "category": "hospital", "point_class": "1", "grid": "v21", "lat": 36.63, "lon": 117.03},
  {"id": "S5", "name": "解放路", "category": "main_street", "point_class": "2", "grid": "v21", "required_coverage": false},
  {"id": "S6", "name": "工商银行", "category": "finance", "point_class": "一类", "grid": "v21", "address": "解放路1号"}
]"#;

/// Cameras (to be encoded as GB18030), Chinese labels for builder and class where integrators
/// use them.
pub const CAMERAS_CSV: &str = "\
id,effective_from,name,source,rtsp_url,gb_device_id,gb_channel_id,lat,lon,address,grid,sites,builder,point_class,install_date,registration,acceptance,width,height,codec,fps,shared_upward,decommissioned_at
37010000001320000001,2024-01-01T00:00:00Z,东门,rtsp,rtsp://admin:secret@10.0.0.1/live,,,36.60,117.00,东门1号,v11,S1,政府建设,一类,2023-12-01,filed,accepted,1920,1080,h264,25,true,
37010000001320000002,2024-01-01T00:00:00Z,小区北门,rtsp,rtsp://10.0.0.2/live,,,36.61,117.01,,v11,S2,单位自建,2,,filed,accepted,,,,,true,
37010000001320000003,2024-01-01T00:00:00Z,广场西,gb,,37010000001180000001,37010000001320000003,,,,v12,S3,government_public,class2,,not_filed,pending,,,,,false,
37010000001320000004,2024-05-31T12:00:00Z,医院大门,rtsp,rtsp://10.0.0.4/live,,,36.63,117.03,,v21,S4,unit_self_built,1,,filed,accepted,,,,,true,
37010000001320000005,2024-01-01T00:00:00Z,仓库,rtsp,rtsp://10.0.0.5/live,,,36.64,117.04,,v21,,unit_self_built,3,,filed,accepted,,,,,true,
37010000001320000006,2024-01-01T00:00:00Z,广场东,rtsp,rtsp://10.0.0.6/live,,,36.62,117.02,,v12,S3,government_public,2,,filed,accepted,,,,,true,2024-05-31T06:00:00Z
";

/// Status history (CSV, UTF-8).
pub const INTERVALS_CSV: &str = "\
subject,kind,start,end
37010000002000000001,uplink,2024-05-01T00:00:00Z,
37010000001320000001,online,2024-05-30T00:00:00Z,
37010000001320000002,online,2024-05-31T00:00:00Z,2024-05-31T12:00:00Z
37010000001320000003,online,2024-05-31T06:00:00Z,
37010000001320000004,online,2024-05-31T12:00:00Z,
37010000001320000006,online,2024-05-31T00:00:00Z,2024-05-31T06:00:00Z
37010000001320000001,recording,2024-05-31T00:00:00Z,2024-05-31T18:00:00Z
37010000001320000002,recording,2024-05-31T00:00:00Z,2024-05-31T12:00:00Z
37010000001320000004,recording,2024-05-31T12:00:00Z,
37010000001320000006,recording,2024-05-31T00:00:00Z,2024-05-31T06:00:00Z
37010000001320000001,upload,2024-05-31T01:00:00Z,2024-05-31T02:00:00Z
37010000001320000004,upload,2024-05-31T13:00:00Z,2024-05-31T14:00:00Z
37010000001320000006,upload,2024-05-31T01:00:00Z,2024-05-31T02:00:00Z
";

/// Quality diagnoses (JSON).
pub const DIAGNOSES_JSON: &str = r#"[
  {"camera": "37010000001320000001", "at": "2024-05-31T10:00:00Z", "check": "overall", "passed": true},
  {"camera": "37010000001320000003", "at": "2024-05-31T20:00:00Z", "check": "blur", "passed": false},
  {"camera": "37010000001320000004", "at": "2024-05-31T20:00:00Z", "check": "overall", "passed": true}
]"#;

const H: u64 = 3_600_000;

/// Expected (numerator, denominator, verdict) of every figure of `city` at `T`.
pub const CITY_FIGURES: &[(&str, u64, u64, &str)] = &[
    ("coverage", 2, 5, "fail"),
    ("coverage_class1", 2, 3, "fail"),
    ("coverage_class2", 0, 1, "fail"),
    ("coverage_class3", 0, 1, "fail"),
    ("planned_coverage", 4, 5, "fail"),
    ("networking_all", 4, 5, "pass"),
    ("networking_key_sites", 3, 4, "fail"),
    ("upload", 3, 5, "fail"),
    ("online_time", 72 * H, 114 * H, "fail"),
    ("online_now", 3, 5, "fail"),
    ("intact", 2, 5, "fail"),
    ("intact_public_areas", 0, 2, "fail"),
    ("intact_key_industries", 2, 2, "pass"),
    ("recording", 48 * H, 114 * H, "fail"),
    ("registration", 4, 5, "fail"),
];

/// Expected ranking of the towns: (rank, grid, score).
pub const RANKING: &[(u64, &str, f64)] = &[
    // t2: 25·0.5 + 15·(0.5/0.95) + 10·(1 + 1 + 1 + (12/36)/0.95 + (12/36)/0.95 + 1)
    (1, "t2", 67.412_280_701_754_38),
    // t1: 25·(1/3) + 15·((1/3)/0.95) + 10·(min(1, (2/3)/0.8) + 2/3 + 1/2 + (60/78)/0.95
    //     + (36/78)/0.95 + 2/3)
    (2, "t1", 53.218_623_481_781_37),
];
