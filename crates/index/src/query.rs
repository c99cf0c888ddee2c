//! Read queries the HTTP API needs: filtered, cursor-paginated lists of cameras and sites, grid
//! navigation, one camera's record versions. All run on the in-memory model under the read lock;
//! a full camera scan of a 200 000-camera city takes tens of milliseconds.
//!
//! Pagination is by cursor (the last ID of the previous page), in ID order, so pages stay stable
//! while cameras are added. `total` counts every match (the scan is needed anyway to fill pages
//! behind the filter).

use serde::{Deserialize, Serialize};
use vigil_core::camera::{AcceptanceState, Builder, Camera, RegistrationState};
use vigil_core::grid::{Grid, GridCode, GridError};
use vigil_core::id::GbId;
use vigil_core::model::{CameraEntry, ModelError};
use vigil_core::site::{CategoryGroup, KeySite, PointClass, SiteCategory, SiteId};
use vigil_core::status::Diagnosis;
use vigil_core::time::Timestamp;

use crate::error::IndexError;
use crate::Index;

/// Filters for [`Index::list_cameras`]; all set fields must match (on the current record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraFilter {
    /// Camera's current grid lies in this grid's subtree.
    pub grid: Option<GridCode>,
    /// Online (or not) at the query's `now`.
    pub online: Option<bool>,
    /// Builder.
    pub builder: Option<Builder>,
    /// Point class.
    pub point_class: Option<PointClass>,
    /// Watches this key site.
    pub site: Option<SiteId>,
    /// Filing state.
    pub registration: Option<RegistrationState>,
    /// Acceptance state.
    pub acceptance: Option<AcceptanceState>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Include decommissioned cameras (default: only cameras in service at `now`).
    pub include_decommissioned: bool,
}

/// Filters for [`Index::list_sites`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFilter {
    /// Site lies in this grid's subtree.
    pub grid: Option<GridCode>,
    /// Exact category.
    pub category: Option<SiteCategory>,
    /// Category group (seed 001 三.2 (1)–(6)).
    pub group: Option<CategoryGroup>,
    /// Point class.
    pub point_class: Option<PointClass>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T, C> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page (`None` on the last page).
    pub next: Option<C>,
    /// Matches in total.
    pub total: usize,
}

/// A camera as the API shows it: current record plus status at `now`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraView {
    /// The latest record version.
    pub camera: Camera,
    /// When that version took effect.
    pub effective_from: Timestamp,
    /// When the camera entered the register.
    pub registered_at: Timestamp,
    /// Number of record versions.
    pub versions: usize,
    /// Online at `now`.
    pub online_now: bool,
    /// Recording at `now`.
    pub recording_now: bool,
    /// Video reaching the centre at `now`.
    pub uploading_now: bool,
    /// Latest diagnosis at or before `now`.
    pub last_diagnosis: Option<Diagnosis>,
}

fn view(entry: &CameraEntry, now: Timestamp) -> Option<CameraView> {
    let current = entry.current()?;
    let diags = entry.diagnoses.as_slice();
    let idx = diags.partition_point(|d| d.at <= now);
    Some(CameraView {
        camera: current.camera.clone(),
        effective_from: current.from,
        registered_at: entry.registered_at().unwrap_or(current.from),
        versions: entry.versions().len(),
        online_now: entry.online.contains(now),
        recording_now: entry.recording.contains(now),
        uploading_now: entry.upload.contains(now),
        last_diagnosis: idx.checked_sub(1).map(|i| diags[i]),
    })
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

fn unknown_grid(code: &GridCode) -> IndexError {
    IndexError::Invalid(ModelError::Grid(GridError::NotFound { code: code.clone() }))
}

impl Index {
    /// Cameras matching `filter`, in ID order, after the cursor `after`, at most `limit`.
    pub fn list_cameras(
        &self,
        filter: &CameraFilter,
        now: Timestamp,
        after: Option<&GbId>,
        limit: usize,
    ) -> Result<Page<CameraView, GbId>, IndexError> {
        let reg = self.read()?;
        let model = reg.model();
        let subtree = match &filter.grid {
            Some(code) => Some(model.subtree(code).ok_or_else(|| unknown_grid(code))?),
            None => None,
        };
        let needle = filter.name_contains.as_ref().map(|n| n.to_lowercase());
        let matches = |e: &CameraEntry| -> bool {
            let Some(v) = e.current() else { return false };
            let c = &v.camera;
            (filter.include_decommissioned || c.in_service_at(now))
                && subtree.as_ref().is_none_or(|s| s.contains_camera(v))
                && filter.online.is_none_or(|o| e.online.contains(now) == o)
                && filter.builder.is_none_or(|b| c.builder == Some(b))
                && filter.point_class.is_none_or(|p| c.point_class == Some(p))
                && filter.site.as_ref().is_none_or(|s| c.sites.contains(s))
                && filter.registration.is_none_or(|r| c.registration == r)
                && filter.acceptance.is_none_or(|a| c.acceptance == a)
                && needle.as_deref().is_none_or(|n| contains_ci(&c.name, n))
        };
        let total = reg.cameras_from(None).filter(|e| matches(e)).count();
        let mut items = Vec::new();
        let mut next = None;
        for e in reg.cameras_from(after).filter(|e| matches(e)) {
            if items.len() == limit {
                next = items.last().map(|v: &CameraView| v.camera.id);
                break;
            }
            if let Some(v) = view(e, now) {
                items.push(v);
            }
        }
        Ok(Page { items, next, total })
    }

    /// One camera as of `now`.
    pub fn camera(&self, id: &GbId, now: Timestamp) -> Result<Option<CameraView>, IndexError> {
        Ok(self.read()?.camera(id).and_then(|e| view(e, now)))
    }

    /// Every record version of a camera, oldest first, with its effective time.
    pub fn camera_versions(&self, id: &GbId) -> Result<Vec<(Timestamp, Camera)>, IndexError> {
        let reg = self.read()?;
        let entry = reg
            .camera(id)
            .ok_or(ModelError::UnknownCamera { id: *id })?;
        Ok(entry
            .versions()
            .iter()
            .map(|v| (v.from, v.camera.clone()))
            .collect())
    }

    /// Number of cameras (including decommissioned ones).
    pub fn camera_count(&self) -> Result<usize, IndexError> {
        Ok(self.read()?.camera_count())
    }

    /// Sites matching `filter`, in ID order, after the cursor `after`, at most `limit`.
    pub fn list_sites(
        &self,
        filter: &SiteFilter,
        after: Option<&SiteId>,
        limit: usize,
    ) -> Result<Page<KeySite, SiteId>, IndexError> {
        let reg = self.read()?;
        let model = reg.model();
        let subtree = match &filter.grid {
            Some(code) => Some(model.subtree(code).ok_or_else(|| unknown_grid(code))?),
            None => None,
        };
        let needle = filter.name_contains.as_ref().map(|n| n.to_lowercase());
        let matches = |e: &vigil_core::model::SiteEntry| -> bool {
            let s = &e.site;
            subtree.as_ref().is_none_or(|t| t.contains_site(e))
                && filter.category.is_none_or(|c| s.category == c)
                && filter.group.is_none_or(|g| s.category.group() == g)
                && filter.point_class.is_none_or(|p| s.point_class == p)
                && needle.as_deref().is_none_or(|n| contains_ci(&s.name, n))
        };
        let total = reg.sites_from(None).filter(|e| matches(e)).count();
        let mut items: Vec<KeySite> = Vec::new();
        let mut next = None;
        for e in reg.sites_from(after).filter(|e| matches(e)) {
            if items.len() == limit {
                next = items.last().map(|s| s.id.clone());
                break;
            }
            items.push(e.site.clone());
        }
        Ok(Page { items, next, total })
    }

    /// One site.
    pub fn site(&self, id: &SiteId) -> Result<Option<KeySite>, IndexError> {
        Ok(self.read()?.site(id).map(|e| e.site.clone()))
    }

    /// One grid.
    pub fn grid(&self, code: &GridCode) -> Result<Option<Grid>, IndexError> {
        Ok(self.read()?.model().grids().get(code).cloned())
    }

    /// Root grids.
    pub fn grid_roots(&self) -> Result<Vec<Grid>, IndexError> {
        Ok(self.read()?.model().grids().roots().cloned().collect())
    }

    /// Direct children of a grid.
    pub fn grid_children(&self, code: &GridCode) -> Result<Vec<Grid>, IndexError> {
        let reg = self.read()?;
        let children = reg
            .model()
            .grids()
            .children(code)
            .map_err(|e| IndexError::Invalid(e.into()))?;
        Ok(children.into_iter().cloned().collect())
    }

    /// Ancestors of a grid, parent first.
    pub fn grid_ancestors(&self, code: &GridCode) -> Result<Vec<Grid>, IndexError> {
        let reg = self.read()?;
        let up = reg
            .model()
            .grids()
            .ancestors(code)
            .map_err(|e| IndexError::Invalid(e.into()))?;
        Ok(up.into_iter().cloned().collect())
    }

    /// Grids at `depth` (roots are 0), optionally inside `within`'s subtree.
    pub fn grids_at_depth(
        &self,
        depth: u32,
        within: Option<&GridCode>,
    ) -> Result<Vec<Grid>, IndexError> {
        let reg = self.read()?;
        let level = reg
            .model()
            .grids()
            .at_depth(depth, within)
            .map_err(|e| IndexError::Invalid(e.into()))?;
        Ok(level.into_iter().cloned().collect())
    }

    /// Number of grids.
    pub fn grid_count(&self) -> Result<usize, IndexError> {
        Ok(self.read()?.model().grids().len())
    }
}
