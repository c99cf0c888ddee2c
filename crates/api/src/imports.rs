//! Bulk imports as the API and `vigil import` run them: read a file ([`crate::ingest`]), apply
//! it through the index (all-or-nothing by default, or apply the valid rows; or only validate,
//! a dry run), and report every bad row by the row number the client sees.
//!
//! In all-or-nothing mode a file with unreadable rows is refused without writing anything, but
//! the readable rows are still validated, so one answer names every bad row of the file.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_core::import::{CameraRow, DiagnosisRow, GridRow, IntervalRow, RowError, SiteRow};
use vigil_index::{ImportMode, ImportReport, Index, IndexError, RtspIdPolicy};

use crate::audit::Change;
use crate::error::row_error;
use crate::ingest::{self, FileFormat, Parsed};
use crate::policy::Permission;
use crate::problem::{FieldError, Problem};
use crate::text::DetectedEncoding;
use crate::views::ImportOutcome;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// Grids (`GridRow`).
    Grids,
    /// Key sites (`SiteRow`).
    Sites,
    /// Camera record versions (`CameraRow`).
    Cameras,
    /// Status history intervals (`IntervalRow`).
    Intervals,
    /// Quality diagnoses (`DiagnosisRow`).
    Diagnoses,
}

impl ImportKind {
    /// Every kind, in the order a full import runs (grids before the sites and cameras that
    /// refer to them, cameras before their history).
    pub const ALL: [ImportKind; 5] = [
        ImportKind::Grids,
        ImportKind::Sites,
        ImportKind::Cameras,
        ImportKind::Intervals,
        ImportKind::Diagnoses,
    ];

    /// Stable code (`grids`, …).
    pub fn code(self) -> &'static str {
        match self {
            ImportKind::Grids => "grids",
            ImportKind::Sites => "sites",
            ImportKind::Cameras => "cameras",
            ImportKind::Intervals => "intervals",
            ImportKind::Diagnoses => "diagnoses",
        }
    }

    /// The audit-log action of an import of this kind.
    pub fn audit_action(self) -> &'static str {
        match self {
            ImportKind::Grids => "import.grids",
            ImportKind::Sites => "import.sites",
            ImportKind::Cameras => "import.cameras",
            ImportKind::Intervals => "import.intervals",
            ImportKind::Diagnoses => "import.diagnoses",
        }
    }

    /// The permission an import of this kind needs.
    pub fn permission(self) -> Permission {
        match self {
            ImportKind::Grids => Permission::WriteGrids,
            ImportKind::Sites => Permission::WriteSites,
            ImportKind::Cameras => Permission::RegisterCameras,
            ImportKind::Intervals | ImportKind::Diagnoses => Permission::ImportHistory,
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for ImportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ImportKind::ALL
            .into_iter()
            .find(|k| k.code() == s.trim())
            .ok_or_else(|| {
                format!("{s:?} is not one of grids, sites, cameras, intervals, diagnoses")
            })
    }
}

/// Parses an import mode: `all_or_nothing` or `apply_valid` (`-` for `_` accepted).
pub fn parse_mode(text: &str) -> Result<ImportMode, &'static str> {
    match text.trim() {
        "all_or_nothing" | "all-or-nothing" => Ok(ImportMode::AllOrNothing),
        "apply_valid" | "apply-valid" => Ok(ImportMode::ApplyValid),
        _ => Err("expected all_or_nothing or apply_valid"),
    }
}

/// The code of an import mode.
pub fn mode_code(mode: ImportMode) -> &'static str {
    match mode {
        ImportMode::AllOrNothing => "all_or_nothing",
        ImportMode::ApplyValid => "apply_valid",
    }
}

/// How to run an import.
#[derive(Clone, Copy, Debug)]
pub struct ImportRequest {
    /// What the file holds.
    pub kind: ImportKind,
    /// All-or-nothing (default) or apply the valid rows.
    pub mode: ImportMode,
    /// Validate only; write nothing.
    pub dry_run: bool,
    /// How to give IDs to RTSP camera rows without one.
    pub rtsp_ids: Option<RtspIdPolicy>,
}

/// What an import did (or would do).
#[derive(Clone, Debug)]
pub struct ImportResult {
    /// Rows in the file.
    pub rows: usize,
    /// Rows applied (dry run: that would be applied).
    pub applied: usize,
    /// Rows not applied, by row number (apply-valid mode only).
    pub rejected: Vec<FieldError>,
    /// How the text was decoded.
    pub encoding: DetectedEncoding,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

impl ImportResult {
    /// The answer to the client.
    pub fn outcome(self, req: &ImportRequest) -> ImportOutcome {
        ImportOutcome {
            kind: req.kind.code().to_owned(),
            mode: mode_code(req.mode).to_owned(),
            dry_run: req.dry_run,
            rows: self.rows,
            applied: self.applied,
            rejected: self.rejected,
            encoding: self.encoding.code().to_owned(),
            sha256: self.sha256,
        }
    }
}

/// The audit entry of an import that wrote something (a summary with the file's SHA-256; the
/// rows themselves are in the file).
pub fn audit_change(actor: String, kind: ImportKind, outcome: &ImportOutcome) -> Change {
    Change {
        actor,
        action: kind.audit_action(),
        target: kind.code().to_owned(),
        before: None,
        after: Some(serde_json::json!({
            "rows": outcome.rows,
            "applied": outcome.applied,
            "rejected": outcome.rejected.len(),
            "mode": outcome.mode,
            "encoding": outcome.encoding,
            "sha256": outcome.sha256,
        })),
    }
}

/// The SHA-256 of a file, hex (recorded in the audit log so an imported file can be identified).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decodes, parses and applies a file. `progress` gets (bytes parsed, bytes in all); parsing is
/// done when they are equal, and the rows are then applied.
pub fn run(
    index: &Index,
    req: &ImportRequest,
    bytes: &[u8],
    charset: Option<&str>,
    format: FileFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportResult, Problem> {
    let sha256 = sha256_hex(bytes);
    let (text, encoding) = crate::text::decode(bytes, charset).map_err(|e| match e {
        crate::text::TextError::UnknownCharset(_) => Problem::unsupported_media_type(e.to_string()),
        crate::text::TextError::Undecodable { .. } => Problem::bad_encoding(e.to_string()),
    })?;
    let (rows, applied, rejected) = match req.kind {
        ImportKind::Grids => apply::<GridRow>(index, req, &text, format, progress)?,
        ImportKind::Sites => apply::<SiteRow>(index, req, &text, format, progress)?,
        ImportKind::Cameras => apply::<CameraRow>(index, req, &text, format, progress)?,
        ImportKind::Intervals => apply::<IntervalRow>(index, req, &text, format, progress)?,
        ImportKind::Diagnoses => apply::<DiagnosisRow>(index, req, &text, format, progress)?,
    };
    Ok(ImportResult {
        rows,
        applied,
        rejected,
        encoding,
        sha256,
    })
}

/// A row shape the index can import.
trait Importable: DeserializeOwned + Serialize + Default {
    fn import(
        index: &Index,
        rows: &[Self],
        mode: ImportMode,
        dry_run: bool,
        rtsp_ids: Option<RtspIdPolicy>,
    ) -> Result<ImportReport, IndexError>;
}

macro_rules! importable {
    ($row:ty, $apply:ident, $check:ident) => {
        impl Importable for $row {
            fn import(
                index: &Index,
                rows: &[Self],
                mode: ImportMode,
                dry_run: bool,
                _: Option<RtspIdPolicy>,
            ) -> Result<ImportReport, IndexError> {
                if dry_run {
                    index.$check(rows, mode)
                } else {
                    index.$apply(rows, mode)
                }
            }
        }
    };
}

importable!(GridRow, import_grid_rows, check_grid_rows);
importable!(SiteRow, import_site_rows, check_site_rows);
importable!(IntervalRow, import_interval_rows, check_interval_rows);
importable!(DiagnosisRow, import_diagnosis_rows, check_diagnosis_rows);

impl Importable for CameraRow {
    fn import(
        index: &Index,
        rows: &[Self],
        mode: ImportMode,
        dry_run: bool,
        rtsp_ids: Option<RtspIdPolicy>,
    ) -> Result<ImportReport, IndexError> {
        if dry_run {
            index.check_camera_rows(rows, mode, rtsp_ids)
        } else {
            index.import_camera_rows(rows, mode, rtsp_ids)
        }
    }
}

fn apply<R: Importable>(
    index: &Index,
    req: &ImportRequest,
    text: &str,
    format: FileFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(usize, usize, Vec<FieldError>), Problem> {
    let parsed: Parsed<R> = ingest::parse(text, format, progress)?;
    let total = parsed.seen();
    let renumber = |e: &RowError| row_error(e, |i| parsed.number(i));
    if !parsed.errors.is_empty() && req.mode == ImportMode::AllOrNothing {
        // Nothing will be written; validate the readable rows anyway to name every bad row.
        let check = R::import(
            index,
            &parsed.rows,
            ImportMode::ApplyValid,
            true,
            req.rtsp_ids,
        )?;
        let mut all = parsed.errors.clone();
        all.extend(check.rejected.iter().map(renumber));
        return Err(rejected(all));
    }
    match R::import(index, &parsed.rows, req.mode, req.dry_run, req.rtsp_ids) {
        Ok(report) => {
            let mut all = parsed.errors.clone();
            all.extend(report.rejected.iter().map(renumber));
            sort(&mut all);
            Ok((total, report.applied, all))
        }
        Err(IndexError::ImportRejected { errors }) => {
            Err(rejected(errors.iter().map(renumber).collect()))
        }
        Err(e) => Err(e.into()),
    }
}

fn sort(errors: &mut [FieldError]) {
    errors.sort_by_key(|e| e.row.unwrap_or(0));
}

fn rejected(mut errors: Vec<FieldError>) -> Problem {
    sort(&mut errors);
    let rows: std::collections::BTreeSet<u64> = errors.iter().filter_map(|e| e.row).collect();
    let first = errors
        .first()
        .map(|e| {
            format!(
                "row {}, field {}: {}",
                e.row.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                e.field.as_deref().unwrap_or("-"),
                e.reason
            )
        })
        .unwrap_or_default();
    Problem::invalid(
        format!(
            "import rejected, nothing applied: {} bad row(s); first: {first}",
            rows.len()
        ),
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn req(kind: ImportKind, mode: ImportMode, dry_run: bool) -> ImportRequest {
        ImportRequest {
            kind,
            mode,
            dry_run,
            rtsp_ids: None,
        }
    }

    const GRIDS: &str = "code,name,parent\nr,Root,\na,A,r\nb,B,nowhere\nc,C,r,extra\nd,D,r\n";

    #[test]
    fn all_or_nothing_names_unreadable_and_invalid_rows_and_writes_nothing() {
        let index = Index::temporary().unwrap();
        let p = run(
            &index,
            &req(ImportKind::Grids, ImportMode::AllOrNothing, false),
            GRIDS.as_bytes(),
            None,
            FileFormat::Csv,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert_eq!(p.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let rows: Vec<(Option<u64>, Option<&str>)> = p
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_deref()))
            .collect();
        assert_eq!(rows, [(Some(4), Some("parent")), (Some(5), None)]);
        assert!(p.detail.unwrap_or_default().contains("2 bad row(s)"));
        assert_eq!(index.grid_count().unwrap(), 0);
    }

    #[test]
    fn apply_valid_and_dry_run() {
        let index = Index::temporary().unwrap();
        let dry = run(
            &index,
            &req(ImportKind::Grids, ImportMode::ApplyValid, true),
            GRIDS.as_bytes(),
            None,
            FileFormat::Csv,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((dry.rows, dry.applied, dry.rejected.len()), (5, 3, 2));
        assert_eq!(index.grid_count().unwrap(), 0);
        let done = run(
            &index,
            &req(ImportKind::Grids, ImportMode::ApplyValid, false),
            GRIDS.as_bytes(),
            None,
            FileFormat::Csv,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(done.applied, 3);
        assert_eq!(index.grid_count().unwrap(), 3);
        assert_eq!(done.sha256, sha256_hex(GRIDS.as_bytes()));
    }

    #[test]
    fn gb18030_files_are_read() {
        let index = Index::temporary().unwrap();
        let (bytes, _, _) =
            encoding_rs::GB18030.encode("code,name,level_label\nr,福山镇,镇/街道\n");
        let done = run(
            &index,
            &req(ImportKind::Grids, ImportMode::AllOrNothing, false),
            &bytes,
            None,
            FileFormat::Csv,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(done.encoding, DetectedEncoding::Gb18030);
        let grid = index
            .grid(&vigil_core::grid::GridCode::parse("r").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(grid.name, "福山镇");
    }
}
