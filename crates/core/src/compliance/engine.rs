//! One pass over the model: per-camera and per-site facts as of `T`, added into per-grid
//! counters, then rolled up the subtree by summing counts.
//!
//! Which cameras are visited: for the whole tree, every camera; for a subtree, the cameras that
//! were ever in one of its grids plus those that ever watched one of its sites (the member lists
//! of the model) — a camera outside the subtree may still cover a site inside it. Each visited
//! camera costs a version lookup in its inline summary and a few binary searches in its own
//! histories; nothing else is read for it unless it fails a figure and its item is listed.

use crate::grid::GridSlot;
use crate::id::GbId;
use crate::model::{CameraEntry, Hot, Model, SiteHot, SiteSlot};
use crate::ratio::{Ratio, Rational};
use crate::site::SiteId;
use crate::status::DiagnosisOutcome;
use crate::target::FigureKind;
use crate::time::{Interval, Timestamp};

use super::items::{Collector, Detail, ItemId, ItemList, ItemPage, Reason};
use super::{ComplianceOptions, RecordingScope};

/// Counter indices of [`Acc`].
#[derive(Clone, Copy)]
#[repr(usize)]
pub(crate) enum C {
    SitesScope,
    SitesCovered,
    SitesPlanned,
    Class1Scope,
    Class2Scope,
    Class3Scope,
    Class1Covered,
    Class2Covered,
    Class3Covered,
    CamsNow,
    Networked,
    KeyCams,
    KeyNetworked,
    UploadRequired,
    Uploaded,
    SchedMs,
    OnlineMs,
    OnlineNow,
    Intact,
    PublicCams,
    PublicIntact,
    IndustryCams,
    IndustryIntact,
    RecSchedMs,
    RecMs,
    Complete,
    NoDiagnosis,
    CamsScheduled,
    SitesInGrid,
}

const N: usize = C::SitesInGrid as usize + 1;

/// Counts for one grid (own items first, then with its subtree added).
#[derive(Clone, Copy, Default)]
pub(crate) struct Acc([u64; N]);

impl Acc {
    #[inline]
    fn inc(&mut self, c: C) {
        self.0[c as usize] += 1;
    }
    #[inline]
    fn add_to(&mut self, c: C, v: u64) {
        self.0[c as usize] += v;
    }
    pub(crate) fn get(&self, c: C) -> u64 {
        self.0[c as usize]
    }
    fn add(&mut self, o: &Acc) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += *b;
        }
    }

    /// The exact ratio of a figure.
    pub(crate) fn ratio(&self, kind: FigureKind) -> Ratio {
        use FigureKind::*;
        let r = |n: C, d: C| Ratio::new(self.get(n), self.get(d));
        match kind {
            Coverage => r(C::SitesCovered, C::SitesScope),
            CoverageClass1 => r(C::Class1Covered, C::Class1Scope),
            CoverageClass2 => r(C::Class2Covered, C::Class2Scope),
            CoverageClass3 => r(C::Class3Covered, C::Class3Scope),
            PlannedCoverage => r(C::SitesPlanned, C::SitesScope),
            NetworkingAll => r(C::Networked, C::CamsNow),
            NetworkingKeySites => r(C::KeyNetworked, C::KeyCams),
            Upload => r(C::Uploaded, C::UploadRequired),
            OnlineTime => r(C::OnlineMs, C::SchedMs),
            OnlineNow => r(C::OnlineNow, C::CamsNow),
            Intact => r(C::Intact, C::CamsNow),
            IntactPublicAreas => r(C::PublicIntact, C::PublicCams),
            IntactKeyIndustries => r(C::IndustryIntact, C::IndustryCams),
            RecordingCompleteness => r(C::RecMs, C::RecSchedMs),
            Registration => r(C::Complete, C::CamsNow),
        }
    }
}

/// Per-report site marks (the static flags live in [`SiteHot`]).
const IN_SUB: u8 = 1;
const PLANNED: u8 = 16;
const COVERED: u8 = 32;
/// The bits of [`SiteHot::flags`] a camera's site mask uses.
const SITE_KIND: u8 = SiteHot::SCOPE | SiteHot::PUBLIC | SiteHot::INDUSTRY;

/// Failing-item collectors, one per figure.
pub(crate) struct Collectors {
    cams: Vec<Collector<GbId>>,
    sites: Vec<Collector<SiteId>>,
}

impl Collectors {
    fn new(page: &ItemPage) -> Self {
        let enabled = |k: FigureKind| page.figure.is_none_or(|f| f == k);
        Collectors {
            cams: FigureKind::ALL
                .iter()
                .map(|&k| Collector::new(page, enabled(k)))
                .collect(),
            sites: FigureKind::ALL
                .iter()
                .map(|&k| Collector::new(page, enabled(k)))
                .collect(),
        }
    }

    #[inline]
    fn cam(&mut self, k: FigureKind, id: &GbId, reason: Reason, detail: Detail) {
        self.cams[k as usize].offer(id, reason, detail);
    }

    #[inline]
    fn site(&mut self, k: FigureKind, id: &SiteId, reason: Reason) {
        self.sites[k as usize].offer(id, reason, Detail::None);
    }

    fn merge(&mut self, other: Collectors) {
        for (a, b) in self.cams.iter_mut().zip(other.cams) {
            a.merge(b);
        }
        for (a, b) in self.sites.iter_mut().zip(other.sites) {
            a.merge(b);
        }
    }

    /// The list for a figure (camera or site list, whichever it uses).
    pub(crate) fn finish(self) -> Vec<ItemList> {
        self.cams
            .into_iter()
            .zip(self.sites)
            .zip(FigureKind::ALL)
            .map(|((c, s), k)| match k.unit() {
                crate::target::Unit::Sites => s.finish(ItemId::Site),
                _ => c.finish(ItemId::Camera),
            })
            .collect()
    }
}

/// What one pass produced.
pub(crate) struct PassOutput {
    /// Pre-order position of the pass root.
    pub lo: u32,
    /// Rolled-up counters by `pos - lo`.
    pub acc: Vec<Acc>,
    /// Failing items of the root's subtree, if requested.
    pub items: Option<Collectors>,
    /// Whether any uplink was registered at T.
    pub uplink_alive: bool,
}

impl PassOutput {
    pub(crate) fn at_slot(&self, model: &Model, slot: GridSlot) -> Option<&Acc> {
        let pos = model.grids.pos(slot);
        pos.checked_sub(self.lo)
            .and_then(|i| self.acc.get(i as usize))
    }
}

/// `value / sched < target`, exactly.
fn below(value: i64, sched: i64, target: Rational) -> bool {
    (value as u128) * u128::from(target.den()) < u128::from(target.num()) * (sched as u128)
}

fn basis(value: i64, sched: i64) -> u64 {
    if sched <= 0 {
        return 0;
    }
    ((value as u128 * 10_000) / sched as u128) as u64
}

/// One instant (and window) to compute the figures for.
pub(crate) struct Frame<'p> {
    pub(crate) at: Timestamp,
    pub(crate) window: Interval,
    /// Failing items to collect, if any.
    pub(crate) page: Option<&'p ItemPage>,
}

/// Runs one pass per frame over the subtree of `root`, visiting each camera once for all
/// frames (a report and its trend share the cache misses).
pub(crate) fn run<const N: usize>(
    model: &Model,
    opts: &ComplianceOptions,
    root: GridSlot,
    frames: [Frame<'_>; N],
) -> [PassOutput; N] {
    let tree = &*model.grids;
    let range = tree.range(root);
    let whole = range.start == 0 && range.end as usize == tree.len();
    let members = &*model.members;
    let site_hot = &*model.site_hot;

    let grid_slots = || (range.start..range.end).map(|pos| tree.slot_at(pos).0 as usize);
    let sites_in: Vec<u32> = if whole {
        site_hot
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(s, _)| s as u32)
            .collect()
    } else {
        grid_slots()
            .flat_map(|g| members.grid_sites.get(g).into_iter().flatten().copied())
            .collect()
    };
    let mut marks = vec![0u8; site_hot.len()];
    for &s in &sites_in {
        marks[s as usize] |= IN_SUB;
    }
    let pages = frames.each_ref().map(|f| f.page);
    let mut passes: [Pass<'_>; N] = frames.map(|f| Pass {
        model,
        opts,
        range: range.clone(),
        at: f.at,
        window: f.window,
        acc: vec![Acc::default(); (range.end - range.start) as usize],
        marks: marks.clone(),
        items: f.page.map(Collectors::new),
        online_target: model.targets.get(FigureKind::OnlineTime).ratio,
        rec_target: model.targets.get(FigureKind::RecordingCompleteness).ratio,
        uplink_alive: model.uplinks.values().any(|s| s.contains(f.at)),
    });

    // Camera slots to visit: all of them for the whole tree, else the member lists' union.
    let candidates: Option<Vec<u32>> = if whole {
        None
    } else {
        let mut seen = vec![0u64; model.cameras.len().div_ceil(64)];
        let by_grid = grid_slots().flat_map(|g| members.grid_cameras.get(g).into_iter().flatten());
        let by_site = sites_in
            .iter()
            .flat_map(|&s| members.site_cameras.get(s as usize).into_iter().flatten());
        let mut list = Vec::new();
        for &c in by_grid.chain(by_site) {
            let (w, b) = (c as usize / 64, 1u64 << (c % 64));
            if seen[w] & b == 0 {
                seen[w] |= b;
                list.push(c);
            }
        }
        Some(list)
    };
    let count = candidates.as_ref().map_or(model.cameras.len(), Vec::len);
    let visit = |passes: &mut [Pass<'_>], part: std::ops::Range<usize>| {
        let slot = |i: usize| match &candidates {
            None => i,
            Some(list) => list.get(i).map_or(usize::MAX, |&c| c as usize),
        };
        let mut block: Vec<&CameraEntry> = Vec::with_capacity(WARM_BLOCK);
        let mut i = part.start;
        while i < part.end {
            let end = (i + WARM_BLOCK).min(part.end);
            block.clear();
            block.extend((i..end).filter_map(|j| model.cameras.get(slot(j))));
            // Touch each camera's entry and histories first: these loads are independent of
            // each other, so the CPU overlaps their cache misses; the per-camera work below
            // (chains of dependent loads in binary searches) then finds them in cache.
            std::hint::black_box(block.iter().fold(0u64, |x, e| x ^ warm(e)));
            for pass in passes.iter_mut() {
                for e in &block {
                    pass.camera(e);
                }
            }
            i = end;
        }
    };
    let threads = match opts.threads {
        0 if count >= PARALLEL_MIN_CAMERAS => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS),
        0 => 1,
        n => n.min(count.max(1)),
    };
    if threads <= 1 {
        visit(&mut passes, 0..count);
    } else {
        // Each thread gets a contiguous share of the cameras and its own counters, site marks
        // and item lists; they are merged below. Sites are counted after the merge.
        let per = count.div_ceil(threads);
        let shares: Vec<[Pass<'_>; N]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|t| {
                    let mut mine: [Pass<'_>; N] = std::array::from_fn(|i| passes[i].fork(pages[i]));
                    let visit = &visit;
                    scope.spawn(move || {
                        visit(&mut mine, (t * per).min(count)..((t + 1) * per).min(count));
                        mine
                    })
                })
                .collect();
            visit(&mut passes, 0..per.min(count));
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for share in shares {
            for (pass, part) in passes.iter_mut().zip(share) {
                pass.absorb(part);
            }
        }
    }

    passes.map(|mut pass| {
        for &s in &sites_in {
            pass.site(s);
        }
        // Roll up: children come after their parent in pre-order, so a reverse sweep adds
        // every grid's totals into its parent after the grid itself is complete.
        let lo = range.start;
        let mut acc = pass.acc;
        for pos in (range.start + 1..range.end).rev() {
            if let Some(parent) = tree.parent_pos(pos) {
                let child = acc[(pos - lo) as usize];
                acc[(parent - lo) as usize].add(&child);
            }
        }
        PassOutput {
            lo,
            acc,
            items: pass.items,
            uplink_alive: pass.uplink_alive,
        }
    })
}

/// Cameras whose data is touched together before they are processed (see `warm`).
const WARM_BLOCK: usize = 16;

/// Reads one word from the middle of each of a camera's histories and its diagnosis log (where
/// the binary searches start), pulling those cache lines in.
fn warm(e: &CameraEntry) -> u64 {
    let mid = |s: &[Interval]| {
        s.get(s.len() / 2)
            .map_or(0, |iv| iv.start().as_millis() as u64)
    };
    let d = e.diagnoses.as_slice();
    mid(e.online.as_slice())
        ^ mid(e.recording.as_slice())
        ^ mid(e.upload.as_slice())
        ^ d.get(d.len() / 2).map_or(0, |x| x.at.as_millis() as u64)
}

/// Below this many cameras to visit, a pass runs on the calling thread only.
const PARALLEL_MIN_CAMERAS: usize = 16_384;
/// At most this many threads per pass.
const MAX_THREADS: usize = 8;

/// The state of one pass (or of one thread's share of it).
struct Pass<'a> {
    model: &'a Model,
    opts: &'a ComplianceOptions,
    range: std::ops::Range<u32>,
    at: Timestamp,
    window: Interval,
    acc: Vec<Acc>,
    /// Per site slot: `IN_SUB`, `PLANNED`, `COVERED`.
    marks: Vec<u8>,
    items: Option<Collectors>,
    online_target: Rational,
    rec_target: Rational,
    uplink_alive: bool,
}

impl<'a> Pass<'a> {
    /// A pass over another share of the same cameras: same inputs, empty counters.
    fn fork(&self, page: Option<&ItemPage>) -> Pass<'a> {
        Pass {
            model: self.model,
            opts: self.opts,
            range: self.range.clone(),
            at: self.at,
            window: self.window,
            acc: vec![Acc::default(); self.acc.len()],
            marks: self.marks.clone(),
            items: page.map(Collectors::new),
            online_target: self.online_target,
            rec_target: self.rec_target,
            uplink_alive: self.uplink_alive,
        }
    }

    /// Adds a forked share's results into this pass.
    fn absorb(&mut self, other: Pass<'a>) {
        for (a, b) in self.acc.iter_mut().zip(&other.acc) {
            a.add(b);
        }
        for (a, b) in self.marks.iter_mut().zip(&other.marks) {
            *a |= *b;
        }
        if let (Some(mine), Some(theirs)) = (self.items.as_mut(), other.items) {
            mine.merge(theirs);
        }
    }

    fn camera(&mut self, entry: &CameraEntry) {
        let at = self.at;
        let Some((vidx, hot)) = entry.hot_at(at) else {
            return;
        };
        let site_hot = &*self.model.site_hot;
        let n_sites = usize::from(hot.n_sites);
        let inline = &hot.sites[..n_sites.min(Hot::INLINE)];
        let spilled = if n_sites > Hot::INLINE {
            entry.spilled_sites(vidx)
        } else {
            &[]
        };
        let sites = || inline.iter().copied().chain(spilled.iter().map(|s| s.0));
        let mut site_bits = 0u8;
        for s in sites() {
            let s = s as usize;
            site_bits |= site_hot.get(s).map_or(0, |h| h.flags & SITE_KIND)
                | self.marks.get(s).copied().unwrap_or(0);
        }
        let pos = self.model.grids.pos(hot.grid);
        let in_sub = self.range.contains(&pos);
        let in_service = hot.end > at;
        let watches_subtree_site = in_service && site_bits & IN_SUB != 0;
        if !(in_sub || watches_subtree_site) {
            return;
        }
        let (online_now, diagnosis) = if in_service {
            (entry.online.contains(at), entry.diagnoses.latest_at(at))
        } else {
            (false, DiagnosisOutcome::None)
        };
        let working = online_now && !matches!(diagnosis, DiagnosisOutcome::Failed(_));
        if watches_subtree_site {
            let mark = PLANNED | if working { COVERED } else { 0 };
            for s in sites() {
                if let Some(m) = self.marks.get_mut(s as usize) {
                    if *m & IN_SUB != 0 {
                        *m |= mark;
                    }
                }
            }
        }
        if !in_sub {
            return;
        }
        let lo = self.range.start;
        let a = &mut self.acc[(pos - lo) as usize];
        let items = &mut self.items;
        let key_site = site_bits & SiteHot::SCOPE != 0;
        let id = &entry.id;

        if in_service {
            a.inc(C::CamsNow);
            let shared = hot.flags & Hot::SHARED != 0;
            let networked = shared && self.uplink_alive;
            let net_reason = if shared {
                Reason::UplinkDown
            } else {
                Reason::NotSharedUpward
            };
            if networked {
                a.inc(C::Networked);
            } else if let Some(it) = items.as_mut() {
                it.cam(FigureKind::NetworkingAll, id, net_reason, Detail::None);
            }
            if key_site {
                a.inc(C::KeyCams);
                if networked {
                    a.inc(C::KeyNetworked);
                } else if let Some(it) = items.as_mut() {
                    it.cam(FigureKind::NetworkingKeySites, id, net_reason, Detail::None);
                }
            }
            let (intact_reason, intact_detail) = match diagnosis {
                DiagnosisOutcome::Failed(c) if online_now => {
                    (Reason::DiagnosisFailed, Detail::Check(c))
                }
                _ => (Reason::Offline, Detail::None),
            };
            if online_now {
                a.inc(C::OnlineNow);
            } else if let Some(it) = items.as_mut() {
                it.cam(FigureKind::OnlineNow, id, Reason::Offline, Detail::None);
            }
            if diagnosis == DiagnosisOutcome::None {
                a.inc(C::NoDiagnosis);
            }
            if working {
                a.inc(C::Intact);
            } else if let Some(it) = items.as_mut() {
                it.cam(FigureKind::Intact, id, intact_reason, intact_detail);
            }
            if site_bits & SiteHot::PUBLIC != 0 {
                a.inc(C::PublicCams);
                if working {
                    a.inc(C::PublicIntact);
                } else if let Some(it) = items.as_mut() {
                    it.cam(
                        FigureKind::IntactPublicAreas,
                        id,
                        intact_reason,
                        intact_detail,
                    );
                }
            }
            if site_bits & SiteHot::INDUSTRY != 0 {
                a.inc(C::IndustryCams);
                if working {
                    a.inc(C::IndustryIntact);
                } else if let Some(it) = items.as_mut() {
                    it.cam(
                        FigureKind::IntactKeyIndustries,
                        id,
                        intact_reason,
                        intact_detail,
                    );
                }
            }
            if hot.flags & Hot::COMPLETE != 0 {
                a.inc(C::Complete);
            } else if let Some(it) = items.as_mut() {
                // Cold path: read the full record only for incomplete cameras.
                let missing = entry
                    .versions()
                    .get(vidx)
                    .map(|v| v.camera.missing_fields())
                    .unwrap_or_default();
                it.cam(
                    FigureKind::Registration,
                    id,
                    Reason::IncompleteRecord,
                    Detail::Missing(missing),
                );
            }
        }

        // Window figures over the scheduled time: after registration, before decommissioning.
        let registered = entry.registered_at().unwrap_or(hot.from);
        let start = self.window.start().max(registered);
        let end = self.window.end().min(hot.end);
        let Ok(sched) = Interval::new(start, end) else {
            return;
        };
        let sched_ms = sched.len_ms();
        a.inc(C::CamsScheduled);
        a.add_to(C::SchedMs, sched_ms as u64);
        let online_ms = entry.online.overlap_ms(&sched);
        a.add_to(C::OnlineMs, online_ms as u64);
        if below(online_ms, sched_ms, self.online_target) {
            if let Some(it) = items.as_mut() {
                it.cam(
                    FigureKind::OnlineTime,
                    id,
                    Reason::OnlineBelowTarget,
                    Detail::Basis(basis(online_ms, sched_ms)),
                );
            }
        }
        let self_built = hot.flags & Hot::SELF_BUILT != 0;
        // Same rule as `Camera::required_to_upload`, read from the packed flags.
        if !self_built || key_site {
            a.inc(C::UploadRequired);
            if entry.upload.overlaps(&sched) {
                a.inc(C::Uploaded);
            } else if let Some(it) = items.as_mut() {
                it.cam(
                    FigureKind::Upload,
                    id,
                    Reason::NoVideoReceived,
                    Detail::None,
                );
            }
        }
        let rec_required = match self.opts.recording_scope {
            RecordingScope::AllCameras => true,
            RecordingScope::KeySiteCameras => key_site,
            RecordingScope::GovernmentPublic => hot.flags & Hot::GOVERNMENT != 0,
        };
        if rec_required {
            let rec_ms = entry.recording.overlap_ms(&sched);
            a.add_to(C::RecSchedMs, sched_ms as u64);
            a.add_to(C::RecMs, rec_ms as u64);
            if below(rec_ms, sched_ms, self.rec_target) {
                if let Some(it) = items.as_mut() {
                    it.cam(
                        FigureKind::RecordingCompleteness,
                        id,
                        Reason::RecordingBelowTarget,
                        Detail::Basis(basis(rec_ms, sched_ms)),
                    );
                }
            }
        }
    }

    /// Coverage and planned coverage of one site in the subtree, in the site's own grid.
    fn site(&mut self, slot: u32) {
        let Some(h) = self.model.site_hot.get(slot as usize).copied() else {
            return;
        };
        let pos = self.model.grids.pos(h.grid);
        let Some(a) = pos
            .checked_sub(self.range.start)
            .and_then(|i| self.acc.get_mut(i as usize))
        else {
            return;
        };
        a.inc(C::SitesInGrid);
        if h.flags & SiteHot::SCOPE == 0 {
            return;
        }
        let (scope_c, covered_c, class_fig) = match h.class_index() {
            0 => (C::Class1Scope, C::Class1Covered, FigureKind::CoverageClass1),
            1 => (C::Class2Scope, C::Class2Covered, FigureKind::CoverageClass2),
            _ => (C::Class3Scope, C::Class3Covered, FigureKind::CoverageClass3),
        };
        let m = self.marks[slot as usize];
        a.inc(C::SitesScope);
        a.inc(scope_c);
        if m & PLANNED != 0 {
            a.inc(C::SitesPlanned);
        }
        if m & COVERED != 0 {
            a.inc(C::SitesCovered);
            a.inc(covered_c);
        }
        let Some(it) = self.items.as_mut() else {
            return;
        };
        if m & COVERED == 0 {
            let Some(e) = self.model.site_entry(SiteSlot(slot)) else {
                return;
            };
            let reason = if m & PLANNED != 0 {
                Reason::NoWorkingCamera
            } else {
                Reason::NoCamera
            };
            if m & PLANNED == 0 {
                it.site(FigureKind::PlannedCoverage, &e.site.id, Reason::NoCamera);
            }
            it.site(FigureKind::Coverage, &e.site.id, reason);
            it.site(class_fig, &e.site.id, reason);
        }
    }
}
