//! Bulk import: validate everything first, report every bad item (index + field + reason), then
//! apply atomically — or, in [`ImportMode::ApplyValid`], apply the good items and report the
//! rest.
//!
//! Each import is one sled batch (atomic) followed by an fsync, then one short write lock on the
//! model. Typed calls (`import_grids`, …) number items from 0 in the order given; row calls
//! (`import_grid_rows`, …) take the shared row shapes of `vigil_core::import`, parse them, and
//! merge parse errors with validation errors, numbered by row. The `check_*_rows` calls run the
//! same parsing and validation against the current state and write nothing (a dry run).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use vigil_core::grid::Grid;
use vigil_core::id::{DomainCode, GbId, IdError};
use vigil_core::import::{
    CameraImport, CameraRow, DiagnosisRow, GridRow, IntervalRow, RowError, SiteRow,
};
use vigil_core::model::{CameraVersionInput, DiagnosisRecord, HistoryRecord, ModelError};
use vigil_core::site::KeySite;
use vigil_core::status::StatusKind;

use crate::catalog::encode_credentials;
use crate::error::IndexError;
use crate::{encode_json, keys, Index};

/// What to do when some items are bad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Apply nothing if any item is bad (the default).
    #[default]
    AllOrNothing,
    /// Apply the good items, report the bad ones.
    ApplyValid,
}

/// The outcome of an import that applied something (or had nothing to apply).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Items applied.
    pub applied: usize,
    /// Items not applied (only in [`ImportMode::ApplyValid`]), by item index and field.
    pub rejected: Vec<RowError>,
}

/// How to give IDs to RTSP camera rows that have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtspIdPolicy {
    /// The configured 10-digit domain (centre code + industry).
    pub domain: DomainCode,
    /// Network digit (14th digit).
    pub network: u8,
}

/// Whether an import writes or only validates (a dry run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Apply,
    DryRun,
}

/// Merges parse errors and validation errors (mapping item indices back to row numbers) and
/// applies the mode: in all-or-nothing mode any error rejects the import.
fn settle(
    mode: ImportMode,
    rows: Option<&[usize]>,
    mut errors: Vec<RowError>,
    rejected: Vec<(usize, ModelError)>,
) -> Result<Vec<RowError>, IndexError> {
    errors.extend(rejected.into_iter().map(|(i, e)| {
        let row = rows.and_then(|r| r.get(i).copied()).unwrap_or(i);
        RowError::new(row, e.field(), e)
    }));
    errors.sort_by_key(|e| e.row);
    if mode == ImportMode::AllOrNothing && !errors.is_empty() {
        return Err(IndexError::ImportRejected { errors });
    }
    Ok(errors)
}

/// Parses rows, keeping the row number of each parsed item.
fn parse_rows<R, T>(
    rows: &[R],
    mut parse: impl FnMut(usize, &R) -> Result<T, Vec<RowError>>,
) -> (Vec<T>, Vec<usize>, Vec<RowError>) {
    let mut items = Vec::with_capacity(rows.len());
    let mut numbers = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match parse(i, r) {
            Ok(t) => {
                items.push(t);
                numbers.push(i);
            }
            Err(e) => errors.extend(e),
        }
    }
    (items, numbers, errors)
}

/// Keeps the items whose index is in `accepted` (sorted), moving them.
fn keep<T>(items: Vec<T>, accepted: &[usize]) -> Vec<T> {
    let mut want = accepted.iter().peekable();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| {
            if want.peek() == Some(&&i) {
                want.next();
                Some(t)
            } else {
                None
            }
        })
        .collect()
}

impl Index {
    /// Imports grids (insert or update), in any order (parents may come after children).
    pub fn import_grids(
        &self,
        grids: Vec<Grid>,
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        self.import_grids_locked(grids, None, Vec::new(), mode, Effect::Apply)
    }

    /// Imports grid rows.
    pub fn import_grid_rows(
        &self,
        rows: &[GridRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.grid_rows(rows, mode, Effect::Apply)
    }

    /// Validates grid rows exactly as [`Index::import_grid_rows`] would, against the current
    /// state, and writes nothing (a dry run). `applied` counts the rows that would be applied.
    pub fn check_grid_rows(
        &self,
        rows: &[GridRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.grid_rows(rows, mode, Effect::DryRun)
    }

    fn grid_rows(
        &self,
        rows: &[GridRow],
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (items, numbers, errors) = parse_rows(rows, |i, r| r.to_grid(i));
        let _w = self.lock_writer()?;
        self.import_grids_locked(items, Some(&numbers), errors, mode, effect)
    }

    fn import_grids_locked(
        &self,
        grids: Vec<Grid>,
        rows: Option<&[usize]>,
        errors: Vec<RowError>,
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let merged = self.read()?.plan_grids(&grids);
        let rejected = merged
            .rejected
            .into_iter()
            .map(|(i, e)| (i, ModelError::Grid(e)))
            .collect();
        let errors = settle(mode, rows, errors, rejected)?;
        if effect == Effect::DryRun {
            return Ok(ImportReport {
                applied: merged.accepted.len(),
                rejected: errors,
            });
        }
        let mut batch = sled::Batch::default();
        for &i in &merged.accepted {
            let g = &grids[i];
            batch.insert(
                keys::grid_key(g.code.as_str()),
                encode_json(&format!("grid {}", g.code), g)?,
            );
        }
        let n = merged.accepted.len();
        if n > 0 {
            self.commit(batch, true, || format!("importing {n} grids"))?;
            self.write()?.apply_grids(merged.tree);
        }
        Ok(ImportReport {
            applied: n,
            rejected: errors,
        })
    }

    /// Imports key sites (insert or update); grids must exist.
    pub fn import_sites(
        &self,
        sites: Vec<KeySite>,
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        self.import_sites_locked(sites, None, Vec::new(), mode, Effect::Apply)
    }

    /// Imports site rows.
    pub fn import_site_rows(
        &self,
        rows: &[SiteRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.site_rows(rows, mode, Effect::Apply)
    }

    /// Validates site rows as [`Index::import_site_rows`] would, writing nothing (a dry run).
    pub fn check_site_rows(
        &self,
        rows: &[SiteRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.site_rows(rows, mode, Effect::DryRun)
    }

    fn site_rows(
        &self,
        rows: &[SiteRow],
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (items, numbers, errors) = parse_rows(rows, |i, r| r.to_site(i));
        let _w = self.lock_writer()?;
        self.import_sites_locked(items, Some(&numbers), errors, mode, effect)
    }

    fn import_sites_locked(
        &self,
        sites: Vec<KeySite>,
        rows: Option<&[usize]>,
        errors: Vec<RowError>,
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let plan = self.read()?.plan_sites(&sites);
        let errors = settle(mode, rows, errors, plan.rejected)?;
        if effect == Effect::DryRun {
            return Ok(ImportReport {
                applied: plan.accepted.len(),
                rejected: errors,
            });
        }
        let mut batch = sled::Batch::default();
        for &i in &plan.accepted {
            let s = &sites[i];
            batch.insert(
                keys::site_key(s.id.as_str()),
                encode_json(&format!("site {}", s.id), s)?,
            );
        }
        let n = plan.accepted.len();
        if n > 0 {
            self.commit(batch, true, || format!("importing {n} sites"))?;
            self.write()?.apply_sites(keep(sites, &plan.accepted));
        }
        Ok(ImportReport {
            applied: n,
            rejected: errors,
        })
    }

    /// Imports camera record versions (several per camera give its attribute history).
    pub fn import_cameras(
        &self,
        items: Vec<CameraImport>,
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        self.import_cameras_locked(items, None, Vec::new(), mode, Effect::Apply)
    }

    /// Imports camera rows; rows of RTSP cameras without an ID get one under `rtsp_ids` (lowest
    /// free serials, in row order). Without a policy such rows are rejected.
    pub fn import_camera_rows(
        &self,
        rows: &[CameraRow],
        mode: ImportMode,
        rtsp_ids: Option<RtspIdPolicy>,
    ) -> Result<ImportReport, IndexError> {
        self.camera_rows(rows, mode, rtsp_ids, Effect::Apply)
    }

    /// Validates camera rows as [`Index::import_camera_rows`] would (IDs are assigned the same
    /// way but not kept), writing nothing (a dry run).
    pub fn check_camera_rows(
        &self,
        rows: &[CameraRow],
        mode: ImportMode,
        rtsp_ids: Option<RtspIdPolicy>,
    ) -> Result<ImportReport, IndexError> {
        self.camera_rows(rows, mode, rtsp_ids, Effect::DryRun)
    }

    fn camera_rows(
        &self,
        rows: &[CameraRow],
        mode: ImportMode,
        rtsp_ids: Option<RtspIdPolicy>,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        let explicit: HashSet<GbId> = rows
            .iter()
            .filter_map(|r| r.id.as_deref().and_then(|t| GbId::parse(t.trim()).ok()))
            .collect();
        let (items, numbers, errors) = {
            let reg = self.read()?;
            let mut next_serial = 1u32;
            let mut assign = || -> Result<GbId, IdError> {
                let policy = rtsp_ids.ok_or(IdError::NoRtspDomain)?;
                let id =
                    GbId::next_free_rtsp_id(&policy.domain, policy.network, next_serial, |id| {
                        explicit.contains(id) || reg.camera(id).is_some()
                    })?;
                next_serial = id.serial() + 1;
                Ok(id)
            };
            parse_rows(rows, |i, r| r.to_import(i, &mut assign))
        };
        self.import_cameras_locked(items, Some(&numbers), errors, mode, effect)
    }

    fn import_cameras_locked(
        &self,
        items: Vec<CameraImport>,
        rows: Option<&[usize]>,
        errors: Vec<RowError>,
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (versions, credentials): (Vec<CameraVersionInput>, Vec<_>) = items
            .into_iter()
            .map(|i| (i.version, i.credentials))
            .unzip();
        let plan = self.read()?.plan_cameras(&versions);
        let errors = settle(mode, rows, errors, plan.rejected)?;
        if effect == Effect::DryRun {
            return Ok(ImportReport {
                applied: plan.accepted.len(),
                rejected: errors,
            });
        }
        let mut batch = sled::Batch::default();
        for &i in &plan.accepted {
            let v = &versions[i];
            let id = v.camera.id;
            batch.insert(
                keys::camera_key(&id, v.from),
                encode_json(&format!("camera {id}"), &v.camera)?,
            );
            if let Some(c) = &credentials[i] {
                batch.insert(keys::credentials_key(&id), encode_credentials(&id, c)?);
            }
        }
        let n = plan.accepted.len();
        if n > 0 {
            self.commit(batch, true, || format!("importing {n} camera records"))?;
            self.write()?.apply_cameras(keep(versions, &plan.accepted));
            self.cameras_changed();
        }
        Ok(ImportReport {
            applied: n,
            rejected: errors,
        })
    }

    /// Imports status history intervals (camera online/recording/upload, platform uplink).
    /// A reversed interval cannot be built; an interval overlapping the subject's existing
    /// history or an earlier item of the batch is rejected, naming both.
    pub fn import_history(
        &self,
        records: Vec<HistoryRecord>,
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        self.import_history_locked(&records, None, Vec::new(), mode, Effect::Apply)
    }

    /// Imports interval rows.
    pub fn import_interval_rows(
        &self,
        rows: &[IntervalRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.interval_rows(rows, mode, Effect::Apply)
    }

    /// Validates interval rows as [`Index::import_interval_rows`] would, writing nothing.
    pub fn check_interval_rows(
        &self,
        rows: &[IntervalRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.interval_rows(rows, mode, Effect::DryRun)
    }

    fn interval_rows(
        &self,
        rows: &[IntervalRow],
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (items, numbers, errors) = parse_rows(rows, |i, r| r.to_record(i));
        let _w = self.lock_writer()?;
        self.import_history_locked(&items, Some(&numbers), errors, mode, effect)
    }

    fn import_history_locked(
        &self,
        records: &[HistoryRecord],
        rows: Option<&[usize]>,
        errors: Vec<RowError>,
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (plan, old_camera, old_uplink) = {
            let reg = self.read()?;
            let plan = reg.plan_history(records);
            let old_camera: HashMap<(GbId, StatusKind), usize> = plan
                .camera
                .keys()
                .map(|&(id, k)| ((id, k), reg.camera(&id).map_or(0, |c| c.history(k).len())))
                .collect();
            let old_uplink: HashMap<GbId, usize> = plan
                .uplink
                .keys()
                .map(|id| (*id, reg.model().uplinks().get(id).map_or(0, |s| s.len())))
                .collect();
            (plan, old_camera, old_uplink)
        };
        let errors = settle(mode, rows, errors, plan.rows.rejected)?;
        let n = plan.rows.accepted.len();
        if n == 0 || effect == Effect::DryRun {
            return Ok(ImportReport {
                applied: n,
                rejected: errors,
            });
        }
        let mut batch = sled::Batch::default();
        for ((id, kind), set) in &plan.camera {
            let old = old_camera.get(&(*id, *kind)).copied().unwrap_or(0);
            keys::write_chunks(
                &mut batch,
                set.as_slice(),
                0,
                old,
                |k| keys::history_key(id, *kind, k),
                keys::encode_intervals,
            );
        }
        for (id, set) in &plan.uplink {
            let old = old_uplink.get(id).copied().unwrap_or(0);
            keys::write_chunks(
                &mut batch,
                set.as_slice(),
                0,
                old,
                |k| keys::uplink_key(id, k),
                keys::encode_intervals,
            );
        }
        self.commit(batch, true, || format!("importing {n} history intervals"))?;
        self.write()?.apply_history(plan.camera, plan.uplink);
        Ok(ImportReport {
            applied: n,
            rejected: errors,
        })
    }

    /// Imports quality-diagnosis results.
    pub fn import_diagnoses(
        &self,
        records: Vec<DiagnosisRecord>,
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        let _w = self.lock_writer()?;
        self.import_diagnoses_locked(&records, None, Vec::new(), mode, Effect::Apply)
    }

    /// Imports diagnosis rows.
    pub fn import_diagnosis_rows(
        &self,
        rows: &[DiagnosisRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.diagnosis_rows(rows, mode, Effect::Apply)
    }

    /// Validates diagnosis rows as [`Index::import_diagnosis_rows`] would, writing nothing.
    pub fn check_diagnosis_rows(
        &self,
        rows: &[DiagnosisRow],
        mode: ImportMode,
    ) -> Result<ImportReport, IndexError> {
        self.diagnosis_rows(rows, mode, Effect::DryRun)
    }

    fn diagnosis_rows(
        &self,
        rows: &[DiagnosisRow],
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (items, numbers, errors) = parse_rows(rows, |i, r| r.to_record(i));
        let _w = self.lock_writer()?;
        self.import_diagnoses_locked(&items, Some(&numbers), errors, mode, effect)
    }

    fn import_diagnoses_locked(
        &self,
        records: &[DiagnosisRecord],
        rows: Option<&[usize]>,
        errors: Vec<RowError>,
        mode: ImportMode,
        effect: Effect,
    ) -> Result<ImportReport, IndexError> {
        let (plan, old) = {
            let reg = self.read()?;
            let plan = reg.plan_diagnoses(records);
            let old: HashMap<GbId, usize> = plan
                .logs
                .keys()
                .map(|id| (*id, reg.camera(id).map_or(0, |c| c.diagnoses.len())))
                .collect();
            (plan, old)
        };
        let errors = settle(mode, rows, errors, plan.rows.rejected)?;
        let n = plan.rows.accepted.len();
        if n == 0 || effect == Effect::DryRun {
            return Ok(ImportReport {
                applied: n,
                rejected: errors,
            });
        }
        let mut batch = sled::Batch::default();
        for (id, log) in &plan.logs {
            keys::write_chunks(
                &mut batch,
                log.as_slice(),
                0,
                old.get(id).copied().unwrap_or(0),
                |k| keys::diagnosis_key(id, k),
                keys::encode_diagnoses,
            );
        }
        self.commit(batch, true, || format!("importing {n} diagnoses"))?;
        self.write()?.apply_diagnoses(plan.logs);
        Ok(ImportReport {
            applied: n,
            rejected: errors,
        })
    }
}
