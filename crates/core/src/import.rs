//! Import-file row shapes shared by the generator (`vigil-sim`), the index's bulk import and the
//! API's CSV/JSON upload, with conversions that report *every* bad field of a row.
//!
//! Rows are flat (CSV-compatible) serde structs. Text columns that need domain parsing (IDs,
//! timestamps, enums) are strings here so that a bad value is reported as "row N, field F:
//! reason" by [`RowError`] rather than as a generic deserialisation failure. Empty CSV cells are
//! `None`. Timestamps are RFC 3339; lists are `;`-separated.
//!
//! | file | columns |
//! |---|---|
//! | grids | `code, name, level_label, parent, polygon` — `polygon` is `lat lon;lat lon;…` (≥ 3) |
//! | sites | `id, name, category, point_class, grid, lat, lon, address, required_coverage` |
//! | cameras | `id, effective_from, name, source, rtsp_url, gb_device_id, gb_channel_id, lat, lon, address, grid, sites, builder, point_class, install_date, registration, acceptance, width, height, codec, fps, shared_upward, decommissioned_at` |
//! | intervals | `subject, kind, start, end` — `kind` ∈ online, recording, upload, uplink; empty `end` = still open |
//! | diagnoses | `camera, at, check, passed` |
//!
//! Camera rows: one row per record *version*; several rows with the same `id` and different
//! `effective_from` give the camera's attribute history (grid moves, sharing changes,
//! decommissioning). `source` is `rtsp` (with `rtsp_url`, credentials in the URL are split off
//! and stored apart) or `gb` (with `gb_device_id`, `gb_channel_id`). An empty `id` is allowed
//! for RTSP cameras: the importer assigns one. Enum columns take the codes of
//! [`SiteCategory`], [`PointClass`], [`Builder`], [`RegistrationState`], [`AcceptanceState`],
//! [`VideoCodec`], [`QualityCheck`] (Chinese labels are accepted too).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::camera::{
    AcceptanceState, Builder, Camera, CameraSource, HdCapability, RegistrationState,
    RtspCredentials, RtspUrl, VideoCodec,
};
use crate::geo::GeoPoint;
use crate::grid::{Grid, GridCode};
use crate::id::{GbId, IdError};
use crate::model::{CameraVersionInput, DiagnosisRecord, HistoryRecord};
use crate::site::{KeySite, PointClass, SiteCategory, SiteId};
use crate::status::{Diagnosis, HistoryKind, QualityCheck};
use crate::time::{Date, Interval, Timestamp};

/// One problem with one row of an import: which row (0-based item index), which field, why.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("item {row}, field {field}: {reason}")]
pub struct RowError {
    /// 0-based index of the item in the batch (the API adds header/line offsets for CSV).
    pub row: usize,
    /// The column / field name.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl RowError {
    /// Builds an error.
    pub fn new(row: usize, field: &str, reason: impl fmt::Display) -> Self {
        RowError {
            row,
            field: field.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Collects field errors of one row.
struct Check {
    row: usize,
    errors: Vec<RowError>,
}

impl Check {
    fn new(row: usize) -> Self {
        Check {
            row,
            errors: Vec::new(),
        }
    }

    fn ok<T, E: fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(RowError::new(self.row, field, e));
                None
            }
        }
    }

    fn opt<T, E: fmt::Display>(
        &mut self,
        field: &str,
        text: &Option<String>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<Option<T>> {
        match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => Some(None),
            Some(t) => self.ok(field, parse(t)).map(Some),
        }
    }

    fn fail(&mut self, field: &str, reason: impl fmt::Display) {
        self.errors.push(RowError::new(self.row, field, reason));
    }

    fn point(&mut self, lat: Option<f64>, lon: Option<f64>) -> Option<Option<GeoPoint>> {
        match (lat, lon) {
            (None, None) => Some(None),
            (Some(lat), Some(lon)) => self.ok("lat", GeoPoint::new(lat, lon)).map(Some),
            _ => {
                self.fail("lat", "lat and lon must be given together");
                None
            }
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<RowError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(self.errors),
        }
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// A row of the grids file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GridRow {
    /// Grid code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Level label (free text).
    #[serde(default)]
    pub level_label: String,
    /// Parent code; empty for a root.
    pub parent: Option<String>,
    /// `lat lon;lat lon;…`.
    pub polygon: Option<String>,
}

impl GridRow {
    /// Converts to a grid, reporting every bad field.
    pub fn to_grid(&self, row: usize) -> Result<Grid, Vec<RowError>> {
        let mut c = Check::new(row);
        let code = c.ok("code", GridCode::parse(self.code.trim()));
        let parent = c.opt("parent", &self.parent, GridCode::parse);
        let polygon = c.opt("polygon", &self.polygon, parse_polygon);
        let grid = match (code, parent, polygon) {
            (Some(code), Some(parent), Some(polygon)) => {
                let g = Grid {
                    code,
                    name: self.name.trim().to_owned(),
                    level_label: self.level_label.trim().to_owned(),
                    parent,
                    polygon,
                };
                match g.validate() {
                    Ok(()) => Some(g),
                    Err(e) => {
                        c.fail(e.field(), e);
                        None
                    }
                }
            }
            _ => None,
        };
        c.finish(grid)
    }

    /// The row for a grid.
    pub fn from_grid(g: &Grid) -> GridRow {
        GridRow {
            code: g.code.to_string(),
            name: g.name.clone(),
            level_label: g.level_label.clone(),
            parent: g.parent.as_ref().map(ToString::to_string),
            polygon: g.polygon.as_ref().map(|p| {
                p.iter()
                    .map(|pt| format!("{} {}", pt.lat(), pt.lon()))
                    .collect::<Vec<_>>()
                    .join(";")
            }),
        }
    }
}

fn parse_polygon(text: &str) -> Result<Vec<GeoPoint>, String> {
    text.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut it = p.split_whitespace();
            let (Some(lat), Some(lon), None) = (it.next(), it.next(), it.next()) else {
                return Err(format!("point {p:?} is not \"lat lon\""));
            };
            let lat: f64 = lat.parse().map_err(|_| format!("bad latitude {lat:?}"))?;
            let lon: f64 = lon.parse().map_err(|_| format!("bad longitude {lon:?}"))?;
            GeoPoint::new(lat, lon).map_err(|e| e.to_string())
        })
        .collect()
}

/// A row of the sites file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SiteRow {
    /// Site ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Category code (e.g. `school`) or Chinese label.
    pub category: String,
    /// `1`/`2`/`3`, `class1`…, `一类`….
    pub point_class: String,
    /// Grid code.
    pub grid: String,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Address.
    pub address: Option<String>,
    /// In the coverage scope; empty = true.
    pub required_coverage: Option<bool>,
}

impl SiteRow {
    /// Converts to a site, reporting every bad field.
    pub fn to_site(&self, row: usize) -> Result<KeySite, Vec<RowError>> {
        let mut c = Check::new(row);
        let id = c.ok("id", SiteId::parse(self.id.trim()));
        let category = c.ok("category", self.category.parse::<SiteCategory>());
        let point_class = c.ok("point_class", self.point_class.parse::<PointClass>());
        let grid = c.ok("grid", GridCode::parse(self.grid.trim()));
        let location = c.point(self.lat, self.lon);
        let site = match (id, category, point_class, grid, location) {
            (Some(id), Some(category), Some(point_class), Some(grid), Some(location)) => {
                let s = KeySite {
                    id,
                    name: self.name.trim().to_owned(),
                    category,
                    point_class,
                    grid,
                    location,
                    address: non_empty(&self.address),
                    required_coverage: self.required_coverage.unwrap_or(true),
                };
                match s.validate() {
                    Ok(()) => Some(s),
                    Err(e) => {
                        c.fail("name", e);
                        None
                    }
                }
            }
            _ => None,
        };
        c.finish(site)
    }

    /// The row for a site.
    pub fn from_site(s: &KeySite) -> SiteRow {
        SiteRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            category: s.category.code().to_owned(),
            point_class: s.point_class.code().to_owned(),
            grid: s.grid.to_string(),
            lat: s.location.map(|p| p.lat()),
            lon: s.location.map(|p| p.lon()),
            address: s.address.clone(),
            required_coverage: Some(s.required_coverage),
        }
    }
}

/// A row of the cameras file: one record version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CameraRow {
    /// 20-digit GB/T 28181 ID; may be empty for RTSP cameras (assigned on import).
    pub id: Option<String>,
    /// RFC 3339: when this version takes effect (first version: registration time).
    pub effective_from: String,
    /// Name.
    pub name: String,
    /// `rtsp` or `gb`.
    pub source: String,
    /// For `rtsp`: the URL (credentials in it are split off).
    pub rtsp_url: Option<String>,
    /// For `gb`: device ID.
    pub gb_device_id: Option<String>,
    /// For `gb`: channel ID.
    pub gb_channel_id: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Address.
    pub address: Option<String>,
    /// Grid code.
    pub grid: String,
    /// `;`-separated site IDs.
    pub sites: Option<String>,
    /// `government_public` / `unit_self_built`.
    pub builder: Option<String>,
    /// Point class.
    pub point_class: Option<String>,
    /// `YYYY-MM-DD`.
    pub install_date: Option<String>,
    /// `not_filed` (default) / `filed`.
    pub registration: Option<String>,
    /// `pending` (default) / `access_tested` / `accepted` / `rejected`.
    pub acceptance: Option<String>,
    /// Width in pixels (HD capability needs width, height, codec and fps together).
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Codec code.
    pub codec: Option<String>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Shared upward; empty = false.
    pub shared_upward: Option<bool>,
    /// RFC 3339 decommissioning time.
    pub decommissioned_at: Option<String>,
}

/// A parsed camera row: the version to import and any credentials split off the URL.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraImport {
    /// The record version.
    pub version: CameraVersionInput,
    /// RTSP credentials found in the URL (stored apart from the record).
    pub credentials: Option<RtspCredentials>,
}

impl CameraRow {
    /// Converts to a camera version, reporting every bad field. `assign_id` is called when the
    /// row has no ID and is an RTSP camera.
    pub fn to_import(
        &self,
        row: usize,
        assign_id: &mut dyn FnMut() -> Result<GbId, IdError>,
    ) -> Result<CameraImport, Vec<RowError>> {
        let mut c = Check::new(row);
        let from = c.ok(
            "effective_from",
            Timestamp::parse_rfc3339(self.effective_from.trim()),
        );
        let mut credentials = None;
        let source = match self.source.trim() {
            "rtsp" => match non_empty(&self.rtsp_url) {
                None => {
                    c.fail("rtsp_url", "required when source is rtsp");
                    None
                }
                Some(u) => c.ok("rtsp_url", RtspUrl::parse(&u)).map(|(url, cr)| {
                    credentials = cr;
                    CameraSource::Rtsp { url }
                }),
            },
            "gb" => {
                let dev = c.opt("gb_device_id", &self.gb_device_id, GbId::parse);
                let ch = c.opt("gb_channel_id", &self.gb_channel_id, GbId::parse);
                match (dev, ch) {
                    (Some(Some(device_id)), Some(Some(channel_id))) => Some(CameraSource::Gb {
                        device_id,
                        channel_id,
                    }),
                    (Some(None), _) => {
                        c.fail("gb_device_id", "required when source is gb");
                        None
                    }
                    (_, Some(None)) => {
                        c.fail("gb_channel_id", "required when source is gb");
                        None
                    }
                    _ => None,
                }
            }
            other => {
                c.fail("source", format!("{other:?} is not rtsp or gb"));
                None
            }
        };
        let id = match non_empty(&self.id) {
            Some(t) => c.ok("id", GbId::parse(&t)),
            None if matches!(source, Some(CameraSource::Rtsp { .. })) => c.ok("id", assign_id()),
            None => {
                c.fail("id", "required for GB/T 28181 cameras");
                None
            }
        };
        let location = c.point(self.lat, self.lon);
        let grid = c.ok("grid", GridCode::parse(self.grid.trim()));
        let sites: Option<Vec<SiteId>> = {
            let mut out = Vec::new();
            let mut ok = true;
            for s in self
                .sites
                .as_deref()
                .unwrap_or("")
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                match c.ok("sites", SiteId::parse(s)) {
                    Some(id) => out.push(id),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        };
        let builder = c.opt("builder", &self.builder, str::parse::<Builder>);
        let point_class = c.opt("point_class", &self.point_class, str::parse::<PointClass>);
        let install_date = c.opt("install_date", &self.install_date, Date::parse);
        let registration = c
            .opt(
                "registration",
                &self.registration,
                str::parse::<RegistrationState>,
            )
            .map(|r| r.unwrap_or(RegistrationState::NotFiled));
        let acceptance = c
            .opt(
                "acceptance",
                &self.acceptance,
                str::parse::<AcceptanceState>,
            )
            .map(|a| a.unwrap_or(AcceptanceState::Pending));
        let codec = c.opt("codec", &self.codec, str::parse::<VideoCodec>);
        let hd = match (self.width, self.height, codec, self.fps) {
            (None, None, Some(None), None) => Some(None),
            (Some(width), Some(height), Some(Some(codec)), Some(fps)) => Some(Some(HdCapability {
                width,
                height,
                codec,
                fps,
            })),
            (_, _, None, _) => None,
            _ => {
                c.fail(
                    "width",
                    "width, height, codec and fps must be given together",
                );
                None
            }
        };
        let decommissioned_at = c.opt(
            "decommissioned_at",
            &self.decommissioned_at,
            Timestamp::parse_rfc3339,
        );
        let camera = (|| {
            Some(Camera {
                id: id?,
                name: self.name.trim().to_owned(),
                source: source?,
                location: location?,
                address: non_empty(&self.address),
                grid: grid?,
                sites: sites?,
                builder: builder?,
                point_class: point_class?,
                install_date: install_date?,
                registration: registration?,
                acceptance: acceptance?,
                hd: hd?,
                shared_upward: self.shared_upward.unwrap_or(false),
                decommissioned_at: decommissioned_at?,
            })
        })();
        let import = match (camera, from) {
            (Some(camera), Some(from)) => match camera.validate() {
                Ok(()) => Some(CameraImport {
                    version: CameraVersionInput { from, camera },
                    credentials,
                }),
                Err(e) => {
                    c.fail(crate::model::ModelError::from(e).field(), "invalid");
                    None
                }
            },
            _ => None,
        };
        c.finish(import)
    }

    /// The row for a camera version (credentials are never written back).
    pub fn from_version(v: &CameraVersionInput) -> CameraRow {
        let cam = &v.camera;
        let (source, rtsp_url, gb_device_id, gb_channel_id) = match &cam.source {
            CameraSource::Rtsp { url } => ("rtsp", Some(url.to_string()), None, None),
            CameraSource::Gb {
                device_id,
                channel_id,
            } => (
                "gb",
                None,
                Some(device_id.to_string()),
                Some(channel_id.to_string()),
            ),
        };
        CameraRow {
            id: Some(cam.id.to_string()),
            effective_from: v.from.to_string(),
            name: cam.name.clone(),
            source: source.to_owned(),
            rtsp_url,
            gb_device_id,
            gb_channel_id,
            lat: cam.location.map(|p| p.lat()),
            lon: cam.location.map(|p| p.lon()),
            address: cam.address.clone(),
            grid: cam.grid.to_string(),
            sites: (!cam.sites.is_empty()).then(|| {
                cam.sites
                    .iter()
                    .map(SiteId::as_str)
                    .collect::<Vec<_>>()
                    .join(";")
            }),
            builder: cam.builder.map(|b| b.code().to_owned()),
            point_class: cam.point_class.map(|p| p.code().to_owned()),
            install_date: cam.install_date.map(|d| d.to_string()),
            registration: Some(cam.registration.code().to_owned()),
            acceptance: Some(cam.acceptance.code().to_owned()),
            width: cam.hd.map(|h| h.width),
            height: cam.hd.map(|h| h.height),
            codec: cam.hd.map(|h| h.codec.code().to_owned()),
            fps: cam.hd.map(|h| h.fps),
            shared_upward: Some(cam.shared_upward),
            decommissioned_at: cam.decommissioned_at.map(|t| t.to_string()),
        }
    }
}

// The closure above returns Option<Camera>; the `?` on Option<Option<T>> fields unwraps the
// "parsed OK" layer and keeps the inner optional value.

/// A row of the intervals file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntervalRow {
    /// Camera ID (or upper-platform ID for `uplink`).
    pub subject: String,
    /// `online`, `recording`, `upload` or `uplink`.
    pub kind: String,
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end; empty = still open.
    pub end: Option<String>,
}

impl IntervalRow {
    /// Converts to a history record; a reversed or empty interval is rejected here.
    pub fn to_record(&self, row: usize) -> Result<HistoryRecord, Vec<RowError>> {
        let mut c = Check::new(row);
        let subject = c.ok("subject", GbId::parse(self.subject.trim()));
        let kind = c.ok("kind", self.kind.parse::<HistoryKind>());
        let start = c.ok("start", Timestamp::parse_rfc3339(self.start.trim()));
        let end = c.opt("end", &self.end, Timestamp::parse_rfc3339);
        let interval = match (start, end) {
            (Some(s), Some(None)) => Some(Interval::open(s)),
            (Some(s), Some(Some(e))) => c.ok("end", Interval::new(s, e)),
            _ => None,
        };
        let rec = match (subject, kind, interval) {
            (Some(subject), Some(kind), Some(interval)) => Some(HistoryRecord {
                subject,
                kind,
                interval,
            }),
            _ => None,
        };
        c.finish(rec)
    }

    /// The row for a history record.
    pub fn from_record(r: &HistoryRecord) -> IntervalRow {
        IntervalRow {
            subject: r.subject.to_string(),
            kind: r.kind.code().to_owned(),
            start: r.interval.start().to_string(),
            end: r.interval.end_if_closed().map(|t| t.to_string()),
        }
    }
}

/// A row of the diagnoses file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiagnosisRow {
    /// Camera ID.
    pub camera: String,
    /// RFC 3339 time of the check.
    pub at: String,
    /// Check code.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
}

impl DiagnosisRow {
    /// Converts to a diagnosis record.
    pub fn to_record(&self, row: usize) -> Result<DiagnosisRecord, Vec<RowError>> {
        let mut c = Check::new(row);
        let camera = c.ok("camera", GbId::parse(self.camera.trim()));
        let at = c.ok("at", Timestamp::parse_rfc3339(self.at.trim()));
        let check = c.ok("check", self.check.parse::<QualityCheck>());
        let rec = match (camera, at, check) {
            (Some(camera), Some(at), Some(check)) => Some(DiagnosisRecord {
                camera,
                diagnosis: Diagnosis {
                    at,
                    check,
                    passed: self.passed,
                },
            }),
            _ => None,
        };
        c.finish(rec)
    }

    /// The row for a diagnosis record.
    pub fn from_record(r: &DiagnosisRecord) -> DiagnosisRow {
        DiagnosisRow {
            camera: r.camera.to_string(),
            at: r.diagnosis.at.to_string(),
            check: r.diagnosis.check.code().to_owned(),
            passed: r.diagnosis.passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_assign() -> impl FnMut() -> Result<GbId, IdError> {
        || Err(IdError::SerialOutOfRange { serial: 0 })
    }

    fn cam_row() -> CameraRow {
        CameraRow {
            id: Some("34020000001320000001".into()),
            effective_from: "2024-01-01T00:00:00Z".into(),
            name: "东门".into(),
            source: "rtsp".into(),
            rtsp_url: Some("rtsp://admin:pw@10.1.1.1/live".into()),
            grid: "g1".into(),
            sites: Some("s1; s2".into()),
            builder: Some("government_public".into()),
            point_class: Some("一类".into()),
            lat: Some(31.0),
            lon: Some(121.0),
            width: Some(1920),
            height: Some(1080),
            codec: Some("h264".into()),
            fps: Some(25.0),
            shared_upward: Some(true),
            ..CameraRow::default()
        }
    }

    #[test]
    fn camera_row_round_trips_without_credentials() {
        let imp = cam_row().to_import(0, &mut no_assign()).unwrap();
        assert_eq!(imp.credentials.as_ref().unwrap().username, "admin");
        let cam = &imp.version.camera;
        assert_eq!(cam.sites.len(), 2);
        assert_eq!(cam.point_class, Some(PointClass::Class1));
        assert_eq!(cam.registration, RegistrationState::NotFiled);
        let back = CameraRow::from_version(&imp.version);
        assert_eq!(back.rtsp_url.as_deref(), Some("rtsp://10.1.1.1/live"));
        let again = back.to_import(0, &mut no_assign()).unwrap();
        assert_eq!(again.version, imp.version);
        assert!(again.credentials.is_none());
    }

    #[test]
    fn camera_row_reports_every_bad_field() {
        let mut r = cam_row();
        r.id = Some("123".into());
        r.effective_from = "yesterday".into();
        r.builder = Some("someone".into());
        r.lat = Some(100.0);
        r.fps = None;
        let errs = r.to_import(7, &mut no_assign()).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["effective_from", "id", "lat", "builder", "width"],
            "{errs:?}"
        );
        assert!(errs.iter().all(|e| e.row == 7));
    }

    #[test]
    fn missing_id_is_assigned_for_rtsp_only() {
        let mut r = cam_row();
        r.id = None;
        let assigned = GbId::parse("34020000001320000099").unwrap();
        let imp = r.to_import(0, &mut || Ok(assigned)).unwrap();
        assert_eq!(imp.version.camera.id, assigned);
        r.source = "gb".into();
        r.gb_device_id = Some("34020000001110000001".into());
        let errs = r.to_import(0, &mut || Ok(assigned)).unwrap_err();
        assert_eq!(errs[0].field, "gb_channel_id");
        assert_eq!(errs[1].field, "id");
    }

    #[test]
    fn interval_rows_reject_reversed() {
        let row = IntervalRow {
            subject: "34020000001320000001".into(),
            kind: "online".into(),
            start: "2024-01-02T00:00:00Z".into(),
            end: Some("2024-01-01T00:00:00Z".into()),
        };
        let errs = row.to_record(3).unwrap_err();
        assert_eq!(errs[0].field, "end");
        assert_eq!(errs[0].row, 3);
        let open = IntervalRow { end: None, ..row };
        let rec = open.to_record(0).unwrap();
        assert!(rec.interval.is_open());
        assert_eq!(IntervalRow::from_record(&rec).to_record(0).unwrap(), rec);
    }

    #[test]
    fn grid_and_site_rows() {
        let g = GridRow {
            code: "g1".into(),
            name: "一号网格".into(),
            level_label: "基础网格".into(),
            parent: Some("".into()),
            polygon: Some("31 121;31.1 121;31.1 121.1".into()),
        };
        let grid = g.to_grid(0).unwrap();
        assert_eq!(grid.parent, None);
        assert_eq!(grid.polygon.as_ref().unwrap().len(), 3);
        let bad = GridRow {
            code: "g 1".into(),
            polygon: Some("31 121".into()),
            ..g.clone()
        };
        let errs = bad.to_grid(1).unwrap_err();
        assert_eq!(errs[0].field, "code");
        let s = SiteRow {
            id: "s1".into(),
            name: "实验小学".into(),
            category: "school".into(),
            point_class: "1".into(),
            grid: "g1".into(),
            lat: Some(31.0),
            lon: None,
            ..SiteRow::default()
        };
        let errs = s.to_site(2).unwrap_err();
        assert_eq!(errs[0].field, "lat");
        let s = SiteRow {
            lon: Some(121.0),
            ..s
        };
        let site = s.to_site(2).unwrap();
        assert!(site.required_coverage);
        assert_eq!(SiteRow::from_site(&site).to_site(0).unwrap(), site);
    }
}
