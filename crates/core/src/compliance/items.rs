//! Failing-item lists that stay bounded for a city root.
//!
//! A root report over 200 000 cameras can have tens of thousands of failing cameras per figure.
//! Each figure's list keeps the total count plus only the `offset + limit` smallest IDs (a
//! max-heap of that size), so a page costs O(n log k) time and O(k) memory, items are ordered by
//! ID (stable across calls for pagination), and `limit = usize::MAX` returns every item.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::camera::MissingFields;
use crate::id::GbId;
use crate::site::SiteId;
use crate::status::QualityCheck;

/// Which page of failing items a report returns for each figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemPage {
    /// Items to skip (in ID order).
    pub offset: usize,
    /// Items to return at most; `usize::MAX` for all.
    pub limit: usize,
    /// Only list items for this figure (others report counts only), to page through one list.
    pub figure: Option<crate::target::FigureKind>,
}

impl Default for ItemPage {
    /// The first 100 items of every figure.
    fn default() -> Self {
        ItemPage {
            offset: 0,
            limit: 100,
            figure: None,
        }
    }
}

impl ItemPage {
    /// No items at all (counts only).
    pub fn none() -> Self {
        ItemPage {
            offset: 0,
            limit: 0,
            figure: None,
        }
    }

    /// Every item of one figure.
    pub fn all_of(figure: crate::target::FigureKind) -> Self {
        ItemPage {
            offset: 0,
            limit: usize::MAX,
            figure: Some(figure),
        }
    }
}

/// The item a failure is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemId {
    /// A camera.
    Camera(GbId),
    /// A key site.
    Site(SiteId),
}

/// Short reason code for a failing item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Site: no camera in service covers it (a blind spot, 盲区盲点).
    NoCamera,
    /// Site: cameras cover it, but none is working at T.
    NoWorkingCamera,
    /// Camera: not shared upward.
    NotSharedUpward,
    /// Camera: shared, but no uplink to an upper platform is registered at T.
    UplinkDown,
    /// Camera: required to upload, no video received in the window.
    NoVideoReceived,
    /// Camera: offline at T.
    Offline,
    /// Camera: online, but its latest quality diagnosis failed (detail: the check).
    DiagnosisFailed,
    /// Camera: its own time-weighted online rate is below target (detail: its rate).
    OnlineBelowTarget,
    /// Camera: its own recording completeness is below target (detail: its rate).
    RecordingBelowTarget,
    /// Camera: record lacks location, builder or point class (detail: which).
    IncompleteRecord,
}

/// One failing item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingItem {
    /// The camera or site.
    pub id: ItemId,
    /// Why it fails.
    pub reason: Reason,
    /// Extra detail (a rate, a check name, missing fields).
    pub detail: Option<String>,
}

/// A bounded, ID-ordered page of failing items plus the total count.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemList {
    /// How many items fail in total.
    pub total: u64,
    /// The offset this page starts at.
    pub offset: usize,
    /// The page.
    pub items: Vec<FailingItem>,
}

/// Compact per-item detail, rendered to text only for the items kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    /// A rate in basis points (1/100 of a percent).
    Basis(u64),
    Check(QualityCheck),
    Missing(MissingFields),
}

impl Detail {
    fn render(self) -> Option<String> {
        match self {
            Detail::None => None,
            Detail::Basis(b) => Some(format!("{}.{:02}%", b / 100, b % 100)),
            Detail::Check(c) => Some(c.code().to_owned()),
            Detail::Missing(m) => Some(m.names()),
        }
    }
}

struct Entry<K> {
    key: K,
    reason: Reason,
    detail: Detail,
}

impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord> Ord for Entry<K> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// Keeps the total and the `cap` smallest keys offered.
pub(crate) struct Collector<K> {
    cap: usize,
    offset: usize,
    limit: usize,
    total: u64,
    heap: BinaryHeap<Entry<K>>,
}

impl<K: Ord + Clone> Collector<K> {
    pub(crate) fn new(page: &ItemPage, enabled: bool) -> Self {
        let (offset, limit) = if enabled {
            (page.offset, page.limit)
        } else {
            (0, 0)
        };
        Collector {
            cap: offset.saturating_add(limit),
            offset,
            limit,
            total: 0,
            heap: BinaryHeap::new(),
        }
    }

    /// Counts a failing item and keeps it if it is among the `cap` smallest so far. `key` is
    /// borrowed so a site ID is cloned only when it is kept.
    pub(crate) fn offer(&mut self, key: &K, reason: Reason, detail: Detail) {
        self.total += 1;
        if self.cap == 0 {
            return;
        }
        if self.heap.len() >= self.cap {
            match self.heap.peek() {
                Some(top) if *key < top.key => {
                    self.heap.pop();
                }
                _ => return,
            }
        }
        self.heap.push(Entry {
            key: key.clone(),
            reason,
            detail,
        });
    }

    /// Adds another collector's count and kept items (from a parallel part of the same pass).
    pub(crate) fn merge(&mut self, other: Collector<K>) {
        self.total += other.total;
        for e in other.heap {
            if self.heap.len() >= self.cap {
                match self.heap.peek() {
                    Some(top) if e.key < top.key => {
                        self.heap.pop();
                    }
                    _ => continue,
                }
            }
            self.heap.push(e);
        }
    }

    pub(crate) fn finish(self, wrap: impl Fn(K) -> ItemId) -> ItemList {
        let items = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|e| FailingItem {
                id: wrap(e.key),
                reason: e.reason,
                detail: e.detail.render(),
            })
            .collect();
        ItemList {
            total: self.total,
            offset: self.offset,
            items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &ItemList) -> Vec<String> {
        list.items
            .iter()
            .map(|i| match &i.id {
                ItemId::Site(s) => s.to_string(),
                ItemId::Camera(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn keeps_smallest_keys_in_order_and_pages() {
        let ids: Vec<SiteId> = ["s5", "s1", "s9", "s3", "s7", "s2"]
            .iter()
            .map(|s| SiteId::parse(s).unwrap())
            .collect();
        let page = |offset, limit| ItemPage {
            offset,
            limit,
            figure: None,
        };
        let run = |p: ItemPage| {
            let mut c = Collector::new(&p, true);
            for id in &ids {
                c.offer(id, Reason::NoCamera, Detail::None);
            }
            c.finish(ItemId::Site)
        };
        let first = run(page(0, 2));
        assert_eq!(first.total, 6);
        assert_eq!(keys(&first), ["s1", "s2"]);
        assert_eq!(keys(&run(page(2, 2))), ["s3", "s5"]);
        assert_eq!(keys(&run(page(4, 10))), ["s7", "s9"]);
        assert_eq!(run(page(0, usize::MAX)).items.len(), 6);
        let mut a = Collector::new(&page(0, 3), true);
        let mut b = Collector::new(&page(0, 3), true);
        for (i, id) in ids.iter().enumerate() {
            let c = if i % 2 == 0 { &mut a } else { &mut b };
            c.offer(id, Reason::NoCamera, Detail::None);
        }
        a.merge(b);
        let merged = a.finish(ItemId::Site);
        assert_eq!(merged.total, 6);
        assert_eq!(keys(&merged), ["s1", "s2", "s3"]);
        let mut disabled = Collector::new(&page(0, 10), false);
        disabled.offer(&ids[0], Reason::NoCamera, Detail::None);
        let d = disabled.finish(ItemId::Site);
        assert_eq!((d.total, d.items.len()), (1, 0));
    }

    #[test]
    fn renders_details() {
        assert_eq!(Detail::Basis(9_512).render().unwrap(), "95.12%");
        assert_eq!(Detail::Basis(5).render().unwrap(), "0.05%");
        assert_eq!(Detail::Check(QualityCheck::Blur).render().unwrap(), "blur");
    }
}
