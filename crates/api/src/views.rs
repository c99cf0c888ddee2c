//! Response bodies that are the API's own (pages, camera status, import outcomes). Records
//! themselves are sent in the row shapes of `vigil_core::import`, so what a client reads is what
//! it can send back or import.

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::import::{CameraRow, DiagnosisRow, GridRow, SiteRow};
use vigil_core::model::CameraVersionInput;
use vigil_core::time::Timestamp;

use crate::problem::FieldError;

/// A page of key sites.
#[derive(Debug, Serialize, ToSchema)]
pub struct SitePage {
    /// The sites, by ID.
    pub items: Vec<SiteRow>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
    /// Sites matching the filter in all.
    pub total: usize,
}

/// A page of cameras.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraPage {
    /// The cameras, by ID.
    pub items: Vec<CameraView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
    /// Cameras matching the filter in all.
    pub total: usize,
}

/// A camera: its current record and its status at `at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraView {
    /// The latest record version, as a cameras import row (never with credentials).
    pub record: CameraRow,
    /// When the camera entered the register.
    pub registered_at: Timestamp,
    /// Number of record versions.
    pub versions: usize,
    /// The instant the status fields describe.
    pub at: Timestamp,
    /// Online at `at`.
    pub online: bool,
    /// Recording at `at`.
    pub recording: bool,
    /// Video reaching the centre at `at`.
    pub uploading: bool,
    /// The latest quality diagnosis at or before `at`.
    pub last_diagnosis: Option<DiagnosisRow>,
}

impl CameraView {
    /// From the index's view of a camera.
    pub fn from_index(v: vigil_index::CameraView, at: Timestamp) -> CameraView {
        let id = v.camera.id;
        CameraView {
            record: CameraRow::from_version(&CameraVersionInput {
                from: v.effective_from,
                camera: v.camera,
            }),
            registered_at: v.registered_at,
            versions: v.versions,
            at,
            online: v.online_now,
            recording: v.recording_now,
            uploading: v.uploading_now,
            last_diagnosis: v.last_diagnosis.map(|diagnosis| {
                DiagnosisRow::from_record(&vigil_core::model::DiagnosisRecord {
                    camera: id,
                    diagnosis,
                })
            }),
        }
    }
}

/// The grids answer of `GET /grids`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridList {
    /// The grids, in tree order.
    pub items: Vec<GridRow>,
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOutcome {
    /// Which import (`grids`, `sites`, `cameras`, `intervals`, `diagnoses`).
    pub kind: String,
    /// `all_or_nothing` or `apply_valid`.
    pub mode: String,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Rows read from the file.
    pub rows: usize,
    /// Rows applied (for a dry run: that would be applied).
    pub applied: usize,
    /// Rows not applied, with row number, field and reason (only in `apply_valid` mode).
    pub rejected: Vec<FieldError>,
    /// How the text was decoded: `utf-8` or `gb18030`.
    pub encoding: String,
    /// SHA-256 of the uploaded bytes (also in the audit log).
    pub sha256: String,
}
