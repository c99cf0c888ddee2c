//! The in-memory model the figures are computed from, and the validated ways to change it.
//!
//! Two types:
//! - [`Model`] is what [`crate::compliance`] reads. Cameras and sites live in copy-on-write
//!   chunked storage and the indexes behind `Arc`s, so cloning a model (a *snapshot*) copies a
//!   few hundred pointers whatever the city size, and a report then runs on its own consistent
//!   snapshot while writers carry on.
//! - [`Registry`] owns the current model plus the ID → slot maps and is the only way to change
//!   it. Each change comes in two steps: a `plan_*`/`check_*` method that validates against the
//!   current state without changing it (so the caller can persist first), and an `apply_*`
//!   method that cannot fail. Writers copy-on-write only what they touch (`Arc::make_mut`), so a
//!   live snapshot costs a writer at most one copy of the camera it changes.
//!
//! Slots (indices into the camera and site arrays) are never reused while the registry lives;
//! deleted entries leave `None`. A reload from storage compacts them.
//!
//! For the report hot loop the model also keeps, per camera version, a small `Hot` summary
//! (grid, end of service, sharing/builder/completeness flags, first site slots) stored inline in
//! the camera entry for the usual single-version camera; per site a two-byte `SiteHot`; and
//! member lists (cameras ever in each grid, sites in each grid, cameras ever watching each
//! site) so a report for a small subtree visits only the cameras that can matter.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::camera::{Builder, Camera, CameraError};
use crate::chunked::Chunked;
use crate::grid::{Grid, GridCode, GridError, GridMerge, GridSlot, GridTree};
use crate::id::GbId;
use crate::site::{IntactClass, KeySite, SiteError, SiteId};
use crate::status::{Diagnosis, DiagnosisLog, HistoryKind, StatusKind};
use crate::target::Targets;
use crate::time::{Interval, IntervalSet, TimeError, Timestamp, Transition};

/// Why a change to the model was refused; each variant names the item and the reason.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// A grid rule was broken.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// A site field is invalid.
    #[error(transparent)]
    Site(#[from] SiteError),
    /// A camera field is invalid.
    #[error(transparent)]
    Camera(#[from] CameraError),
    /// A site refers to a grid that does not exist.
    #[error("site {site}: grid {grid} does not exist")]
    SiteGridUnknown { site: SiteId, grid: GridCode },
    /// A camera refers to a grid that does not exist.
    #[error("camera {camera}: grid {grid} does not exist")]
    CameraGridUnknown { camera: GbId, grid: GridCode },
    /// A camera refers to a site that does not exist.
    #[error("camera {camera}: key site {site} does not exist")]
    UnknownSite { camera: GbId, site: SiteId },
    /// No camera with this ID.
    #[error("camera {id} does not exist")]
    UnknownCamera { id: GbId },
    /// No site with this ID.
    #[error("key site {id} does not exist")]
    SiteNotFound { id: SiteId },
    /// The same key twice in one batch.
    #[error("{key} appears twice in the batch (first at item {first_item})")]
    DuplicateInBatch { key: String, first_item: usize },
    /// A grid still referenced by sites or camera records cannot be removed.
    #[error("grid {code} is still used by {sites} site(s) and {cameras} camera record(s)")]
    GridInUse {
        code: GridCode,
        sites: usize,
        cameras: usize,
    },
    /// A site still referenced by camera records cannot be removed.
    #[error("key site {id} is still watched by {cameras} camera record(s), e.g. {example}")]
    SiteInUse {
        id: SiteId,
        cameras: usize,
        example: GbId,
    },
    /// A change dated before the camera entered the register.
    #[error("camera {camera}: {at} is before its registration at {registered}")]
    BeforeRegistration {
        camera: GbId,
        at: Timestamp,
        registered: Timestamp,
    },
    /// A history interval conflicts with the subject's history.
    #[error("{kind} history of {subject}: {source}")]
    History {
        subject: GbId,
        kind: &'static str,
        source: TimeError,
    },
}

impl ModelError {
    /// The input field the error is about, for row-level import reports.
    pub fn field(&self) -> &'static str {
        match self {
            ModelError::Grid(e) => e.field(),
            ModelError::Site(SiteError::InvalidId { .. }) => "id",
            ModelError::Site(SiteError::UnknownCategory { .. }) => "category",
            ModelError::Site(SiteError::UnknownPointClass { .. }) => "point_class",
            ModelError::Site(SiteError::BadName { .. }) => "name",
            ModelError::Camera(CameraError::BadName { .. }) => "name",
            ModelError::Camera(CameraError::DuplicateSite { .. }) => "sites",
            ModelError::Camera(CameraError::BadRtspUrl { .. }) => "rtsp_url",
            ModelError::Camera(CameraError::UnknownValue { field, .. }) => field,
            ModelError::Camera(CameraError::BadHd { .. }) => "hd",
            ModelError::SiteGridUnknown { .. } | ModelError::CameraGridUnknown { .. } => "grid",
            ModelError::UnknownSite { .. } => "sites",
            ModelError::UnknownCamera { .. } => "camera",
            ModelError::BeforeRegistration { .. } => "at",
            ModelError::SiteNotFound { .. } => "id",
            ModelError::DuplicateInBatch { .. } => "id",
            ModelError::GridInUse { .. } => "code",
            ModelError::SiteInUse { .. } => "id",
            ModelError::History { source, .. } => match source {
                TimeError::Reversed { .. } => "end",
                _ => "start",
            },
        }
    }
}

/// A stable handle to a site in a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteSlot(pub(crate) u32);

/// A site with its grid resolved.
#[derive(Clone, Debug)]
pub struct SiteEntry {
    /// The record.
    pub site: KeySite,
    pub(crate) grid: GridSlot,
}

/// Per-site facts the report loop reads for every camera's sites, packed in two words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SiteHot {
    /// The site's grid (`u32::MAX` for an empty slot).
    pub(crate) grid: GridSlot,
    /// [`SiteHot::SCOPE`] | [`SiteHot::PUBLIC`] | [`SiteHot::INDUSTRY`], point class in bits 6–7.
    pub(crate) flags: u8,
}

impl SiteHot {
    /// In the coverage scope (`required_coverage`).
    pub(crate) const SCOPE: u8 = 2;
    /// In scope and a key public area.
    pub(crate) const PUBLIC: u8 = 4;
    /// In scope and a key industry.
    pub(crate) const INDUSTRY: u8 = 8;
    const EMPTY: SiteHot = SiteHot {
        grid: GridSlot(u32::MAX),
        flags: 0,
    };

    fn of(site: &KeySite, grid: GridSlot) -> SiteHot {
        let mut flags = (site.point_class.index() as u8) << 6;
        if site.required_coverage {
            flags |= SiteHot::SCOPE
                | match site.category.intact_class() {
                    IntactClass::KeyPublicArea => SiteHot::PUBLIC,
                    IntactClass::KeyIndustry => SiteHot::INDUSTRY,
                };
        }
        SiteHot { grid, flags }
    }

    /// Point class index (0–2).
    pub(crate) fn class_index(self) -> usize {
        usize::from(self.flags >> 6)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.grid.0 == u32::MAX
    }
}

/// The facts of one camera version the report loop needs, small enough to sit inline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) from: Timestamp,
    /// `decommissioned_at`, or `Timestamp::MAX`.
    pub(crate) end: Timestamp,
    pub(crate) grid: GridSlot,
    pub(crate) flags: u8,
    /// Number of sites; the first [`Hot::INLINE`] are in `sites`, the rest in the full version.
    pub(crate) n_sites: u16,
    pub(crate) sites: [u32; Hot::INLINE],
}

impl Hot {
    pub(crate) const INLINE: usize = 3;
    /// Shared upward.
    pub(crate) const SHARED: u8 = 1;
    /// Record complete (location, builder, point class).
    pub(crate) const COMPLETE: u8 = 2;
    /// Built by a unit for itself (uploads only if at a key site).
    pub(crate) const SELF_BUILT: u8 = 4;
    /// Government-built public camera.
    pub(crate) const GOVERNMENT: u8 = 8;

    fn of(v: &CameraVersion) -> Hot {
        let c = &v.camera;
        let mut flags = 0;
        if c.shared_upward {
            flags |= Hot::SHARED;
        }
        if c.missing_fields().is_complete() {
            flags |= Hot::COMPLETE;
        }
        match c.builder {
            Some(Builder::UnitSelfBuilt) => flags |= Hot::SELF_BUILT,
            Some(Builder::GovernmentPublic) => flags |= Hot::GOVERNMENT,
            None => {}
        }
        let mut sites = [0u32; Hot::INLINE];
        for (d, s) in sites.iter_mut().zip(&v.sites) {
            *d = s.0;
        }
        Hot {
            from: v.from,
            end: c.decommissioned_at.unwrap_or(Timestamp::MAX),
            grid: v.grid,
            flags,
            n_sites: v.sites.len().min(usize::from(u16::MAX)) as u16,
            sites,
        }
    }
}

/// One dated version of a camera record, with references resolved.
#[derive(Clone, Debug)]
pub struct CameraVersion {
    /// Effective from this instant until the next version.
    pub from: Timestamp,
    /// The record.
    pub camera: Camera,
    pub(crate) grid: GridSlot,
    pub(crate) sites: Vec<SiteSlot>,
}

/// Everything known about one camera: dated record versions and status histories.
#[derive(Clone, Debug)]
pub struct CameraEntry {
    /// The camera's ID.
    pub id: GbId,
    /// Hot summary of the first version (valid when `versions` is not empty).
    hot_first: Hot,
    /// Hot summaries of later versions (empty for most cameras, so no heap access).
    hot_rest: Vec<Hot>,
    versions: Vec<CameraVersion>,
    /// Online history.
    pub online: IntervalSet,
    /// Recording history.
    pub recording: IntervalSet,
    /// Video-received-at-centre history.
    pub upload: IntervalSet,
    /// Quality diagnoses.
    pub diagnoses: DiagnosisLog,
}

impl CameraEntry {
    fn new(id: GbId) -> Self {
        CameraEntry {
            id,
            hot_first: Hot {
                from: Timestamp::MAX,
                end: Timestamp::MAX,
                grid: GridSlot(u32::MAX),
                flags: 0,
                n_sites: 0,
                sites: [0; Hot::INLINE],
            },
            hot_rest: Vec::new(),
            versions: Vec::new(),
            online: IntervalSet::new(),
            recording: IntervalSet::new(),
            upload: IntervalSet::new(),
            diagnoses: DiagnosisLog::new(),
        }
    }

    /// All record versions in time order (never empty for a camera in a model).
    pub fn versions(&self) -> &[CameraVersion] {
        &self.versions
    }

    /// The latest version.
    pub fn current(&self) -> Option<&CameraVersion> {
        self.versions.last()
    }

    /// The version in effect at `t`; `None` before the camera was registered.
    pub fn version_at(&self, t: Timestamp) -> Option<&CameraVersion> {
        self.hot_at(t).and_then(|(i, _)| self.versions.get(i))
    }

    /// The hot summary in effect at `t` and its version index.
    #[inline]
    pub(crate) fn hot_at(&self, t: Timestamp) -> Option<(usize, &Hot)> {
        if self.hot_rest.is_empty() {
            return (self.hot_first.from <= t && !self.versions.is_empty())
                .then_some((0, &self.hot_first));
        }
        let idx = self.hot_rest.partition_point(|h| h.from <= t);
        match idx.checked_sub(1) {
            Some(i) => Some((i + 1, &self.hot_rest[i])),
            None => (self.hot_first.from <= t).then_some((0, &self.hot_first)),
        }
    }

    /// Site slots of version `idx` beyond the inline ones.
    pub(crate) fn spilled_sites(&self, idx: usize) -> &[SiteSlot] {
        self.versions
            .get(idx)
            .and_then(|v| v.sites.get(Hot::INLINE..))
            .unwrap_or(&[])
    }

    /// When the camera entered the register: the first version's effective time. Scheduled
    /// time starts here.
    pub fn registered_at(&self) -> Option<Timestamp> {
        // From the inline summary: no access to the (cold) version records.
        (!self.versions.is_empty()).then_some(self.hot_first.from)
    }

    /// A status history.
    pub fn history(&self, kind: StatusKind) -> &IntervalSet {
        match kind {
            StatusKind::Online => &self.online,
            StatusKind::Recording => &self.recording,
            StatusKind::Upload => &self.upload,
        }
    }

    fn history_mut(&mut self, kind: StatusKind) -> &mut IntervalSet {
        match kind {
            StatusKind::Online => &mut self.online,
            StatusKind::Recording => &mut self.recording,
            StatusKind::Upload => &mut self.upload,
        }
    }

    fn upsert_version(&mut self, v: CameraVersion) {
        let idx = self.versions.partition_point(|x| x.from < v.from);
        match self.versions.get_mut(idx) {
            Some(existing) if existing.from == v.from => *existing = v,
            _ => self.versions.insert(idx, v),
        }
        let mut hot = self.versions.iter().map(Hot::of);
        if let Some(first) = hot.next() {
            self.hot_first = first;
        }
        self.hot_rest = hot.collect();
    }
}

/// A camera record effective from an instant: one row of a camera import or one edit.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraVersionInput {
    /// Effective from (for the first version: when the camera entered the register).
    pub from: Timestamp,
    /// The record.
    pub camera: Camera,
}

/// One interval of status history, for bulk import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The camera (or, for [`HistoryKind::Uplink`], the upper platform).
    pub subject: GbId,
    /// Which history.
    pub kind: HistoryKind,
    /// The interval (may be open only if it is the subject's last).
    pub interval: Interval,
}

/// One diagnosis result for a camera, for bulk import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosisRecord {
    /// The camera.
    pub camera: GbId,
    /// The result.
    pub diagnosis: Diagnosis,
}

/// Which cameras and sites belong (or belonged) to each grid, and which cameras ever watched
/// each site. Lists only grow while a camera exists (history is kept); deleting a camera removes
/// it everywhere.
#[derive(Clone, Debug, Default)]
pub(crate) struct Members {
    /// By grid slot: cameras with any version in the grid.
    pub(crate) grid_cameras: Vec<Vec<u32>>,
    /// By grid slot: sites currently in the grid.
    pub(crate) grid_sites: Vec<Vec<u32>>,
    /// By site slot: cameras with any version watching the site.
    pub(crate) site_cameras: Vec<Vec<u32>>,
}

fn list_at(lists: &mut Vec<Vec<u32>>, i: usize) -> &mut Vec<u32> {
    if lists.len() <= i {
        lists.resize_with(i + 1, Vec::new);
    }
    &mut lists[i]
}

/// The state the figures are computed from; cheap to clone (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub(crate) grids: Arc<GridTree>,
    pub(crate) sites: Chunked<SiteEntry>,
    pub(crate) site_hot: Arc<Vec<SiteHot>>,
    pub(crate) cameras: Chunked<CameraEntry>,
    pub(crate) members: Arc<Members>,
    pub(crate) uplinks: Arc<BTreeMap<GbId, IntervalSet>>,
    pub(crate) targets: Arc<Targets>,
}

impl Model {
    /// The grid tree.
    pub fn grids(&self) -> &GridTree {
        &self.grids
    }

    /// Targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Uplink histories by upper-platform ID.
    pub fn uplinks(&self) -> &BTreeMap<GbId, IntervalSet> {
        &self.uplinks
    }

    /// Every camera, in slot order.
    pub fn cameras(&self) -> impl Iterator<Item = &CameraEntry> + '_ {
        self.cameras.iter().map(|(_, e)| e)
    }

    /// Every site, in slot order.
    pub fn sites(&self) -> impl Iterator<Item = &SiteEntry> + '_ {
        self.sites.iter().map(|(_, e)| e)
    }

    pub(crate) fn site_entry(&self, slot: SiteSlot) -> Option<&SiteEntry> {
        self.sites.get(slot.0 as usize)
    }

    /// A filter for "inside the subtree of `code`", or `None` if the grid does not exist.
    pub fn subtree(&self, code: &GridCode) -> Option<SubtreeFilter<'_>> {
        let slot = self.grids.slot_of(code)?;
        Some(SubtreeFilter {
            tree: &self.grids,
            range: self.grids.range(slot),
        })
    }

    /// The site IDs a camera version watches.
    pub fn site_ids<'a>(&'a self, v: &'a CameraVersion) -> impl Iterator<Item = &'a SiteId> + 'a {
        v.sites
            .iter()
            .filter_map(|&s| self.site_entry(s).map(|e| &e.site.id))
    }
}

/// Tests membership in one grid's subtree in O(1) (pre-order range check).
#[derive(Clone, Debug)]
pub struct SubtreeFilter<'a> {
    tree: &'a GridTree,
    range: std::ops::Range<u32>,
}

impl SubtreeFilter<'_> {
    /// Whether the camera version's grid lies in the subtree.
    pub fn contains_camera(&self, v: &CameraVersion) -> bool {
        self.range.contains(&self.tree.pos(v.grid))
    }

    /// Whether the site's grid lies in the subtree.
    pub fn contains_site(&self, s: &SiteEntry) -> bool {
        self.range.contains(&self.tree.pos(s.grid))
    }
}

/// Rows accepted and rejected by a `plan_*` call.
#[derive(Debug, Default)]
pub struct Plan {
    /// Indices of rows that can be applied.
    pub accepted: Vec<usize>,
    /// Rows that cannot, with the reason.
    pub rejected: Vec<(usize, ModelError)>,
}

/// The result of planning a history import: the new histories to install.
#[derive(Debug, Default)]
pub struct HistoryPlan {
    /// Accepted / rejected rows.
    pub rows: Plan,
    /// New camera histories after applying the accepted rows.
    pub camera: HashMap<(GbId, StatusKind), IntervalSet>,
    /// New uplink histories after applying the accepted rows.
    pub uplink: HashMap<GbId, IntervalSet>,
}

/// The result of planning a diagnosis import.
#[derive(Debug, Default)]
pub struct DiagnosisPlan {
    /// Accepted / rejected rows.
    pub rows: Plan,
    /// New diagnosis logs after applying the accepted rows.
    pub logs: HashMap<GbId, DiagnosisLog>,
}

/// The owner of the current model: ID maps and validated changes (see the module docs).
#[derive(Debug, Default)]
pub struct Registry {
    model: Model,
    camera_slots: BTreeMap<GbId, u32>,
    site_slots: BTreeMap<SiteId, u32>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// A consistent, cheap copy of the current model for reports.
    pub fn snapshot(&self) -> Model {
        self.model.clone()
    }

    /// The current model (borrowed).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Number of cameras.
    pub fn camera_count(&self) -> usize {
        self.camera_slots.len()
    }

    /// Number of sites.
    pub fn site_count(&self) -> usize {
        self.site_slots.len()
    }

    /// A camera by ID.
    pub fn camera(&self, id: &GbId) -> Option<&CameraEntry> {
        let slot = *self.camera_slots.get(id)?;
        self.model.cameras.get(slot as usize)
    }

    /// Cameras in ID order starting after `after` (exclusive), for cursor pagination.
    pub fn cameras_from<'a>(
        &'a self,
        after: Option<&GbId>,
    ) -> impl Iterator<Item = &'a CameraEntry> + 'a {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(*a),
            None => Bound::Unbounded,
        };
        self.camera_slots
            .range((lower, Bound::Unbounded))
            .filter_map(|(_, &s)| self.model.cameras.get(s as usize))
    }

    /// A site by ID.
    pub fn site(&self, id: &SiteId) -> Option<&SiteEntry> {
        let slot = *self.site_slots.get(id)?;
        self.model.sites.get(slot as usize)
    }

    /// Sites in ID order starting after `after` (exclusive).
    pub fn sites_from<'a>(
        &'a self,
        after: Option<&SiteId>,
    ) -> impl Iterator<Item = &'a SiteEntry> + 'a {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(a.clone()),
            None => Bound::Unbounded,
        };
        self.site_slots
            .range((lower, Bound::Unbounded))
            .filter_map(|(_, &s)| self.model.sites.get(s as usize))
    }

    // ---------------------------------------------------------------- grids

    /// Validates grid upserts against the current tree (see [`GridTree::merge`]).
    pub fn plan_grids(&self, rows: &[Grid]) -> GridMerge {
        self.model.grids.merge(rows)
    }

    /// Installs a tree produced by [`Registry::plan_grids`] or [`Registry::check_remove_grid`]
    /// from this registry's current tree (slots of existing grids are unchanged by both).
    pub fn apply_grids(&mut self, tree: GridTree) {
        self.model.grids = Arc::new(tree);
    }

    /// Checks that a grid can be removed (exists, no children, no site and no camera version
    /// refers to it) and returns the tree without it.
    pub fn check_remove_grid(&self, code: &GridCode) -> Result<GridTree, ModelError> {
        let slot = self
            .model
            .grids
            .slot_of(code)
            .ok_or_else(|| GridError::NotFound { code: code.clone() })?;
        let members = &self.model.members;
        let sites = members.grid_sites.get(slot.0 as usize).map_or(0, Vec::len);
        let cameras = members
            .grid_cameras
            .get(slot.0 as usize)
            .map_or(0, Vec::len);
        if sites > 0 || cameras > 0 {
            return Err(ModelError::GridInUse {
                code: code.clone(),
                sites,
                cameras,
            });
        }
        let mut tree = (*self.model.grids).clone();
        tree.remove(code)?;
        Ok(tree)
    }

    // ---------------------------------------------------------------- sites

    /// Validates site upserts: fields, duplicates within the batch, known grid.
    pub fn plan_sites(&self, rows: &[KeySite]) -> Plan {
        let mut plan = Plan::default();
        let mut seen: HashMap<&SiteId, usize> = HashMap::new();
        for (i, s) in rows.iter().enumerate() {
            let res = s.validate().map_err(ModelError::from).and_then(|()| {
                if let Some(&first) = seen.get(&s.id) {
                    return Err(ModelError::DuplicateInBatch {
                        key: format!("key site {}", s.id),
                        first_item: first,
                    });
                }
                if !self.model.grids.contains(&s.grid) {
                    return Err(ModelError::SiteGridUnknown {
                        site: s.id.clone(),
                        grid: s.grid.clone(),
                    });
                }
                Ok(())
            });
            match res {
                Ok(()) => {
                    seen.insert(&s.id, i);
                    plan.accepted.push(i);
                }
                Err(e) => plan.rejected.push((i, e)),
            }
        }
        plan
    }

    /// Installs sites that passed [`Registry::plan_sites`]; a site whose grid vanished in between
    /// (impossible while the caller serialises writers) is skipped.
    pub fn apply_sites(&mut self, sites: Vec<KeySite>) {
        let members = Arc::make_mut(&mut self.model.members);
        let hot = Arc::make_mut(&mut self.model.site_hot);
        for site in sites {
            let Some(grid) = self.model.grids.slot_of(&site.grid) else {
                continue;
            };
            let id = site.id.clone();
            let site_hot = SiteHot::of(&site, grid);
            let entry = SiteEntry { site, grid };
            let slot = match self.site_slots.get(&id) {
                Some(&slot) => {
                    if let Some(old) = self.model.sites.set(slot as usize, Some(entry)) {
                        list_at(&mut members.grid_sites, old.grid.0 as usize)
                            .retain(|&s| s != slot);
                    }
                    slot
                }
                None => {
                    let slot = self.model.sites.push(entry) as u32;
                    self.site_slots.insert(id, slot);
                    slot
                }
            };
            list_at(&mut members.grid_sites, grid.0 as usize).push(slot);
            if hot.len() <= slot as usize {
                hot.resize(slot as usize + 1, SiteHot::EMPTY);
            }
            hot[slot as usize] = site_hot;
        }
    }

    /// Checks that a site exists and no camera version refers to it.
    pub fn check_remove_site(&self, id: &SiteId) -> Result<(), ModelError> {
        let slot = *self
            .site_slots
            .get(id)
            .ok_or_else(|| ModelError::SiteNotFound { id: id.clone() })?;
        let users = self
            .model
            .members
            .site_cameras
            .get(slot as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(first) = users
            .first()
            .and_then(|&c| self.model.cameras.get(c as usize))
        {
            return Err(ModelError::SiteInUse {
                id: id.clone(),
                cameras: users.len(),
                example: first.id,
            });
        }
        Ok(())
    }

    /// Removes a site (after [`Registry::check_remove_site`]).
    pub fn remove_site(&mut self, id: &SiteId) -> Option<KeySite> {
        let slot = self.site_slots.remove(id)?;
        let old = self.model.sites.set(slot as usize, None)?;
        let members = Arc::make_mut(&mut self.model.members);
        list_at(&mut members.grid_sites, old.grid.0 as usize).retain(|&s| s != slot);
        if let Some(h) = Arc::make_mut(&mut self.model.site_hot).get_mut(slot as usize) {
            *h = SiteHot::EMPTY;
        }
        Some(old.site.clone())
    }

    // ---------------------------------------------------------------- cameras

    /// Validates camera versions: fields, known grid and sites, no (ID, effective time) twice
    /// in the batch. A version at an existing (ID, time) replaces it.
    pub fn plan_cameras(&self, rows: &[CameraVersionInput]) -> Plan {
        let mut plan = Plan::default();
        let mut seen: HashMap<(GbId, Timestamp), usize> = HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match self.check_camera(row, &seen) {
                Ok(()) => {
                    seen.insert((row.camera.id, row.from), i);
                    plan.accepted.push(i);
                }
                Err(e) => plan.rejected.push((i, e)),
            }
        }
        plan
    }

    fn check_camera(
        &self,
        row: &CameraVersionInput,
        seen: &HashMap<(GbId, Timestamp), usize>,
    ) -> Result<(), ModelError> {
        let c = &row.camera;
        c.validate()?;
        if let Some(&first) = seen.get(&(c.id, row.from)) {
            return Err(ModelError::DuplicateInBatch {
                key: format!("camera {} effective {}", c.id, row.from),
                first_item: first,
            });
        }
        if !self.model.grids.contains(&c.grid) {
            return Err(ModelError::CameraGridUnknown {
                camera: c.id,
                grid: c.grid.clone(),
            });
        }
        if let Some(site) = c.sites.iter().find(|s| !self.site_slots.contains_key(*s)) {
            return Err(ModelError::UnknownSite {
                camera: c.id,
                site: site.clone(),
            });
        }
        Ok(())
    }

    /// Installs camera versions that passed [`Registry::plan_cameras`].
    pub fn apply_cameras(&mut self, rows: Vec<CameraVersionInput>) {
        let mut members = std::mem::take(Arc::make_mut(&mut self.model.members));
        for row in rows {
            let Some(grid) = self.model.grids.slot_of(&row.camera.grid) else {
                continue;
            };
            let sites: Vec<SiteSlot> = row
                .camera
                .sites
                .iter()
                .filter_map(|s| self.site_slots.get(s).map(|&x| SiteSlot(x)))
                .collect();
            let id = row.camera.id;
            let slot = self.camera_slot_or_insert(id);
            let Some(entry) = self.model.cameras.get_mut(slot) else {
                continue;
            };
            // Member lists record each (camera, grid) and (camera, site) pair once.
            if !entry.versions.iter().any(|v| v.grid == grid) {
                list_at(&mut members.grid_cameras, grid.0 as usize).push(slot as u32);
            }
            for s in &sites {
                if !entry.versions.iter().any(|v| v.sites.contains(s)) {
                    list_at(&mut members.site_cameras, s.0 as usize).push(slot as u32);
                }
            }
            entry.upsert_version(CameraVersion {
                from: row.from,
                camera: row.camera,
                grid,
                sites,
            });
        }
        self.model.members = Arc::new(members);
    }

    fn camera_slot_or_insert(&mut self, id: GbId) -> usize {
        if let Some(&s) = self.camera_slots.get(&id) {
            return s as usize;
        }
        let slot = self.model.cameras.push(CameraEntry::new(id));
        self.camera_slots.insert(id, slot as u32);
        slot
    }

    /// Removes a camera with all its versions and history.
    pub fn remove_camera(&mut self, id: &GbId) -> Option<Arc<CameraEntry>> {
        let slot = self.camera_slots.remove(id)?;
        let old = self.model.cameras.set(slot as usize, None)?;
        let members = Arc::make_mut(&mut self.model.members);
        for v in &old.versions {
            list_at(&mut members.grid_cameras, v.grid.0 as usize).retain(|&c| c != slot);
            for s in &v.sites {
                list_at(&mut members.site_cameras, s.0 as usize).retain(|&c| c != slot);
            }
        }
        Some(old)
    }

    // ---------------------------------------------------------------- status

    fn camera_mut(&mut self, id: &GbId) -> Option<&mut CameraEntry> {
        let slot = *self.camera_slots.get(id)?;
        self.model.cameras.get_mut(slot as usize)
    }

    /// Applies a live transition (`up` = the state began, `!up` = it ended) to a camera
    /// history. Deterministic: applying the same call to a copy of the history's tail gives the
    /// same result, which is how the index computes what to persist before applying.
    pub fn apply_transition(
        &mut self,
        id: &GbId,
        kind: StatusKind,
        at: Timestamp,
        up: bool,
    ) -> Result<Transition, ModelError> {
        let entry = self
            .camera_mut(id)
            .ok_or(ModelError::UnknownCamera { id: *id })?;
        transition(entry.history_mut(kind), at, up).map_err(|source| ModelError::History {
            subject: *id,
            kind: kind.code(),
            source,
        })
    }

    /// Applies a live uplink transition for an upper platform.
    pub fn apply_uplink_transition(
        &mut self,
        platform: &GbId,
        at: Timestamp,
        up: bool,
    ) -> Result<Transition, ModelError> {
        let uplinks = Arc::make_mut(&mut self.model.uplinks);
        let set = uplinks.entry(*platform).or_default();
        transition(set, at, up).map_err(|source| ModelError::History {
            subject: *platform,
            kind: "uplink",
            source,
        })
    }

    /// Validates history rows in input order: the camera must exist (uplinks may name any
    /// platform), and a row that overlaps the existing history or an earlier accepted row of the
    /// same subject and kind is rejected, naming both intervals.
    pub fn plan_history(&self, rows: &[HistoryRecord]) -> HistoryPlan {
        let mut plan = HistoryPlan::default();
        for (i, row) in rows.iter().enumerate() {
            let res = match row.kind {
                HistoryKind::Camera(kind) => match self.camera(&row.subject) {
                    None => Err(ModelError::UnknownCamera { id: row.subject }),
                    Some(entry) => plan
                        .camera
                        .entry((row.subject, kind))
                        .or_insert_with(|| entry.history(kind).clone())
                        .insert(row.interval)
                        .map_err(|source| ModelError::History {
                            subject: row.subject,
                            kind: kind.code(),
                            source,
                        }),
                },
                HistoryKind::Uplink => plan
                    .uplink
                    .entry(row.subject)
                    .or_insert_with(|| {
                        self.model
                            .uplinks
                            .get(&row.subject)
                            .cloned()
                            .unwrap_or_default()
                    })
                    .insert(row.interval)
                    .map_err(|source| ModelError::History {
                        subject: row.subject,
                        kind: "uplink",
                        source,
                    }),
            };
            match res {
                Ok(_) => plan.rows.accepted.push(i),
                Err(e) => plan.rows.rejected.push((i, e)),
            }
        }
        plan
    }

    /// Installs histories from [`Registry::plan_history`].
    pub fn apply_history(
        &mut self,
        camera: HashMap<(GbId, StatusKind), IntervalSet>,
        uplink: HashMap<GbId, IntervalSet>,
    ) {
        for ((id, kind), set) in camera {
            if let Some(entry) = self.camera_mut(&id) {
                *entry.history_mut(kind) = set;
            }
        }
        if !uplink.is_empty() {
            let uplinks = Arc::make_mut(&mut self.model.uplinks);
            for (id, set) in uplink {
                uplinks.insert(id, set);
            }
        }
    }

    /// Validates diagnosis rows (the camera must exist) and merges them into copies of the logs.
    pub fn plan_diagnoses(&self, rows: &[DiagnosisRecord]) -> DiagnosisPlan {
        let mut plan = DiagnosisPlan::default();
        for (i, row) in rows.iter().enumerate() {
            match self.camera(&row.camera) {
                None => plan
                    .rows
                    .rejected
                    .push((i, ModelError::UnknownCamera { id: row.camera })),
                Some(entry) => {
                    plan.logs
                        .entry(row.camera)
                        .or_insert_with(|| entry.diagnoses.clone())
                        .insert(row.diagnosis);
                    plan.rows.accepted.push(i);
                }
            }
        }
        plan
    }

    /// Installs diagnosis logs from [`Registry::plan_diagnoses`].
    pub fn apply_diagnoses(&mut self, logs: HashMap<GbId, DiagnosisLog>) {
        for (id, log) in logs {
            if let Some(entry) = self.camera_mut(&id) {
                entry.diagnoses = log;
            }
        }
    }

    /// Records one diagnosis result; returns its position in the camera's log.
    pub fn apply_diagnosis(&mut self, id: &GbId, d: Diagnosis) -> Result<usize, ModelError> {
        let entry = self
            .camera_mut(id)
            .ok_or(ModelError::UnknownCamera { id: *id })?;
        Ok(entry.diagnoses.insert(d))
    }

    // ---------------------------------------------------------------- loading

    /// Installs a camera's full state at load time (versions must reference existing grids and
    /// sites; unknown references are reported, not silently dropped).
    pub fn load_camera(
        &mut self,
        versions: Vec<CameraVersionInput>,
        histories: [IntervalSet; 3],
        diagnoses: DiagnosisLog,
    ) -> Result<(), ModelError> {
        let plan = self.plan_cameras(&versions);
        if let Some((_, e)) = plan.rejected.into_iter().next() {
            return Err(e);
        }
        let Some(id) = versions.first().map(|v| v.camera.id) else {
            return Ok(());
        };
        self.apply_cameras(versions);
        if let Some(entry) = self.camera_mut(&id) {
            let [online, recording, upload] = histories;
            entry.online = online;
            entry.recording = recording;
            entry.upload = upload;
            entry.diagnoses = diagnoses;
        }
        Ok(())
    }

    /// Installs an uplink history at load time.
    pub fn load_uplink(&mut self, platform: GbId, set: IntervalSet) {
        Arc::make_mut(&mut self.model.uplinks).insert(platform, set);
    }

    /// Replaces the targets.
    pub fn set_targets(&mut self, targets: Targets) {
        self.model.targets = Arc::new(targets);
    }
}

fn transition(set: &mut IntervalSet, at: Timestamp, up: bool) -> Result<Transition, TimeError> {
    if up {
        set.open_at(at)
    } else {
        set.close_at(at)
    }
}

/// Applies a live transition to a history; shared by the registry and the index's preview of
/// what it will persist.
pub fn apply_transition_to(
    set: &mut IntervalSet,
    at: Timestamp,
    up: bool,
) -> Result<Transition, TimeError> {
    transition(set, at, up)
}
