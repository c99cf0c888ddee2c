//! Management grids (网格): a tree of any depth, each grid with a code, a name, a level label and
//! an optional polygon. Every figure rolls up this tree.
//!
//! The tree is arena-based: each grid lives in a slot that never changes while the grid exists,
//! so camera and site records can refer to grids by slot. After every change the tree recomputes
//! a pre-order numbering; a subtree is then one contiguous range of positions, which makes
//! "is this camera's grid inside the subtree?" a two-comparison test in the report hot loop.
//! Changes go through [`GridTree::merge`], which validates a whole batch (duplicates, unknown
//! parents, cycles) and reports every rejected row, so single edits and bulk imports share one
//! rule book.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geo::GeoPoint;
use crate::key::{key_problem, text_key_impls, KeyRules};
use crate::time::truncate_for_error;

/// A grid code: 1–64 characters from `A–Z a–z 0–9 - _ .`.
///
/// Deployments use civil codes with suffixes (`370112001-03`) or their own schemes, so only the
/// character set is fixed; it keeps codes safe in URLs, CSV and storage keys.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode(String);

impl GridCode {
    /// Validates a code.
    pub fn parse(text: &str) -> Result<GridCode, GridError> {
        const RULES: KeyRules = KeyRules {
            punctuation: b"-_.",
            described: "only A-Z, a-z, 0-9, '-', '_' and '.' are allowed",
        };
        match key_problem(text, &RULES) {
            Some(reason) => Err(GridError::InvalidCode {
                code: truncate_for_error(text),
                reason,
            }),
            None => Ok(GridCode(text.to_owned())),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_key_impls!(GridCode, GridError);

/// One management unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Unique code.
    pub code: GridCode,
    /// Display name, e.g. "福山镇" or "三号基础网格".
    pub name: String,
    /// Free-text level label ("区", "镇/街道", "村/居", "基础网格"): real deployments differ, so
    /// the depth in the tree, not this label, is what level queries use.
    pub level_label: String,
    /// The enclosing grid; `None` for a root.
    pub parent: Option<GridCode>,
    /// Boundary as (lat, lon) points, if known; at least three points.
    pub polygon: Option<Vec<GeoPoint>>,
}

impl Grid {
    /// Checks the fields that do not depend on other grids.
    pub fn validate(&self) -> Result<(), GridError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(GridError::BadName {
                code: self.code.clone(),
            });
        }
        if self.level_label.chars().count() > 64 {
            return Err(GridError::BadLevelLabel {
                code: self.code.clone(),
            });
        }
        if let Some(p) = &self.polygon {
            if p.len() < 3 {
                return Err(GridError::BadPolygon {
                    code: self.code.clone(),
                    points: p.len(),
                });
            }
        }
        if self.parent.as_ref() == Some(&self.code) {
            return Err(GridError::Cycle {
                code: self.code.clone(),
            });
        }
        Ok(())
    }
}

/// Why a grid was rejected or a tree operation failed; every variant names the grid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    /// The code has a bad form.
    #[error("grid code {code:?} is invalid: {reason}")]
    InvalidCode { code: String, reason: &'static str },
    /// Empty or over-long name.
    #[error("grid {code}: name must be 1-200 characters and not blank")]
    BadName { code: GridCode },
    /// Over-long level label.
    #[error("grid {code}: level label must be at most 64 characters")]
    BadLevelLabel { code: GridCode },
    /// A polygon with fewer than three points.
    #[error("grid {code}: polygon has {points} points, at least 3 are needed")]
    BadPolygon { code: GridCode, points: usize },
    /// The same code appears twice in one batch.
    #[error("grid {code} appears twice in the batch (first at item {first_item})")]
    Duplicate { code: GridCode, first_item: usize },
    /// The parent is neither in the tree nor in the batch.
    #[error("grid {code}: parent {parent} does not exist")]
    UnknownParent { code: GridCode, parent: GridCode },
    /// The parent is in the batch but was itself rejected.
    #[error("grid {code}: parent {parent} was rejected in the same batch")]
    ParentRejected { code: GridCode, parent: GridCode },
    /// Following parents from this grid comes back to it.
    #[error("grid {code}: its parent chain forms a cycle")]
    Cycle { code: GridCode },
    /// No grid with this code.
    #[error("grid {code} does not exist")]
    NotFound { code: GridCode },
    /// A grid with children cannot be removed.
    #[error("grid {code} has {children} child grid(s) and cannot be removed")]
    HasChildren { code: GridCode, children: usize },
}

impl GridError {
    /// The input field the error is about, for row-level import reports.
    pub fn field(&self) -> &'static str {
        match self {
            GridError::InvalidCode { .. } | GridError::Duplicate { .. } => "code",
            GridError::BadName { .. } => "name",
            GridError::BadLevelLabel { .. } => "level_label",
            GridError::BadPolygon { .. } => "polygon",
            GridError::UnknownParent { .. }
            | GridError::ParentRejected { .. }
            | GridError::Cycle { .. } => "parent",
            GridError::NotFound { .. } | GridError::HasChildren { .. } => "code",
        }
    }
}

/// A stable handle to a grid inside one [`GridTree`] (and trees derived from it by `merge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GridSlot(pub(crate) u32);

#[derive(Clone, Debug)]
struct Node {
    grid: Grid,
    parent: Option<u32>,
    children: Vec<u32>,
}

const NONE: u32 = u32::MAX;

/// The grid tree. Cloning copies every grid; the model keeps it behind an `Arc`.
#[derive(Clone, Debug, Default)]
pub struct GridTree {
    nodes: Vec<Option<Node>>,
    by_code: HashMap<GridCode, u32>,
    roots: Vec<u32>,
    /// Pre-order position → slot.
    preorder: Vec<u32>,
    /// Slot → pre-order position (`NONE` for empty slots).
    pos: Vec<u32>,
    /// Slot → one past the last pre-order position of its subtree.
    subtree_end: Vec<u32>,
    /// Pre-order position → parent's position (`NONE` for roots).
    parent_pos: Vec<u32>,
    /// Slot → depth (roots are 0).
    depth: Vec<u32>,
}

/// The outcome of [`GridTree::merge`]: the tree with the accepted rows applied, and the
/// rejected rows with their reasons (in input order).
#[derive(Debug)]
pub struct GridMerge {
    /// The tree with every accepted row applied.
    pub tree: GridTree,
    /// Indices (into the batch) of rows that were applied.
    pub accepted: Vec<usize>,
    /// Rows that were not applied, with the reason.
    pub rejected: Vec<(usize, GridError)>,
}

impl GridTree {
    /// An empty tree.
    pub fn new() -> Self {
        GridTree::default()
    }

    /// Builds a tree from grids given in any order; fails with every bad grid if any is bad.
    pub fn from_grids(grids: &[Grid]) -> Result<GridTree, Vec<(usize, GridError)>> {
        let merged = GridTree::new().merge(grids);
        if merged.rejected.is_empty() {
            Ok(merged.tree)
        } else {
            Err(merged.rejected)
        }
    }

    /// Applies a batch of inserts/updates (a row whose code exists replaces that grid, moving it
    /// if the parent changed). Rows are checked for form, duplicates within the batch, unknown
    /// parents and cycles; a row whose parent row was rejected is rejected too. Rejected rows
    /// leave the existing grid (if any) unchanged. `self` is not modified.
    pub fn merge(&self, rows: &[Grid]) -> GridMerge {
        let mut rejected: Vec<(usize, GridError)> = Vec::new();
        let mut accepted: Vec<usize> = Vec::new();
        let mut first_seen: HashMap<&GridCode, usize> = HashMap::new();
        for (i, g) in rows.iter().enumerate() {
            if let Err(e) = g.validate() {
                rejected.push((i, e));
            } else if let Some(&first) = first_seen.get(&g.code) {
                rejected.push((
                    i,
                    GridError::Duplicate {
                        code: g.code.clone(),
                        first_item: first,
                    },
                ));
            } else {
                first_seen.insert(&g.code, i);
                accepted.push(i);
            }
        }
        // A parent missing from the merged map but named by some batch row was rejected in
        // this batch: its children get `ParentRejected` rather than `UnknownParent`.
        let batch_codes: HashSet<&GridCode> = rows.iter().map(|g| &g.code).collect();
        loop {
            let mut parent_of: HashMap<&GridCode, Option<&GridCode>> = self
                .nodes
                .iter()
                .flatten()
                .map(|n| (&n.grid.code, n.grid.parent.as_ref()))
                .collect();
            for &i in &accepted {
                parent_of.insert(&rows[i].code, rows[i].parent.as_ref());
            }
            let mut drop: Vec<(usize, GridError)> = Vec::new();
            for &i in &accepted {
                if let Some(p) = &rows[i].parent {
                    if !parent_of.contains_key(p) {
                        let code = rows[i].code.clone();
                        let err = if batch_codes.contains(p) {
                            GridError::ParentRejected {
                                code,
                                parent: p.clone(),
                            }
                        } else {
                            GridError::UnknownParent {
                                code,
                                parent: p.clone(),
                            }
                        };
                        drop.push((i, err));
                    }
                }
            }
            if drop.is_empty() {
                let on_cycle = cycle_members(&parent_of);
                for &i in &accepted {
                    if on_cycle.contains(&rows[i].code) {
                        drop.push((
                            i,
                            GridError::Cycle {
                                code: rows[i].code.clone(),
                            },
                        ));
                    }
                }
            }
            if drop.is_empty() {
                break;
            }
            let dropped: HashSet<usize> = drop.iter().map(|(i, _)| *i).collect();
            accepted.retain(|i| !dropped.contains(i));
            rejected.extend(drop);
        }
        rejected.sort_by_key(|(i, _)| *i);

        let mut tree = self.clone();
        for &i in &accepted {
            let grid = rows[i].clone();
            match tree.by_code.get(&grid.code) {
                Some(&slot) => {
                    if let Some(node) = tree.nodes[slot as usize].as_mut() {
                        node.grid = grid;
                    }
                }
                None => {
                    let slot = tree.nodes.len() as u32;
                    tree.by_code.insert(grid.code.clone(), slot);
                    tree.nodes.push(Some(Node {
                        grid,
                        parent: None,
                        children: Vec::new(),
                    }));
                }
            }
        }
        tree.relink();
        GridMerge {
            tree,
            accepted,
            rejected,
        }
    }

    /// Removes a grid without children. Callers check that no camera or site refers to it.
    pub fn remove(&mut self, code: &GridCode) -> Result<Grid, GridError> {
        let slot = *self
            .by_code
            .get(code)
            .ok_or_else(|| GridError::NotFound { code: code.clone() })?;
        let children = self.node(slot).map_or(0, |n| n.children.len());
        if children > 0 {
            return Err(GridError::HasChildren {
                code: code.clone(),
                children,
            });
        }
        self.by_code.remove(code);
        let node = self.nodes[slot as usize]
            .take()
            .ok_or_else(|| GridError::NotFound { code: code.clone() })?;
        self.relink();
        Ok(node.grid)
    }

    fn node(&self, slot: u32) -> Option<&Node> {
        self.nodes.get(slot as usize).and_then(Option::as_ref)
    }

    /// Rebuilds parent/child links from the grids' parent codes, then the pre-order numbering.
    fn relink(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            node.children.clear();
            node.parent = None;
        }
        self.roots.clear();
        let links: Vec<(u32, Option<u32>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(slot, n)| {
                n.as_ref().map(|n| {
                    let parent = n
                        .grid
                        .parent
                        .as_ref()
                        .and_then(|p| self.by_code.get(p).copied());
                    (slot as u32, parent)
                })
            })
            .collect();
        for (slot, parent) in links {
            match parent {
                Some(p) => {
                    if let Some(n) = self.nodes[slot as usize].as_mut() {
                        n.parent = Some(p);
                    }
                    if let Some(pn) = self.nodes[p as usize].as_mut() {
                        pn.children.push(slot);
                    }
                }
                None => self.roots.push(slot),
            }
        }
        let nodes = &self.nodes;
        let code_of = |s: &u32| nodes[*s as usize].as_ref().map(|n| n.grid.code.clone());
        self.roots.sort_by_key(code_of);
        let mut sorted_children: Vec<(usize, Vec<u32>)> = Vec::new();
        for (slot, n) in self.nodes.iter().enumerate() {
            if let Some(n) = n {
                if n.children.len() > 1 {
                    let mut c = n.children.clone();
                    c.sort_by_key(code_of);
                    sorted_children.push((slot, c));
                }
            }
        }
        for (slot, c) in sorted_children {
            if let Some(n) = self.nodes[slot].as_mut() {
                n.children = c;
            }
        }
        self.reindex();
    }

    fn reindex(&mut self) {
        let n = self.nodes.len();
        self.preorder.clear();
        self.parent_pos.clear();
        self.pos = vec![NONE; n];
        self.subtree_end = vec![NONE; n];
        self.depth = vec![0; n];
        // Iterative DFS: (slot, depth, parent position, entered?)
        let mut stack: Vec<(u32, u32, u32, bool)> = self
            .roots
            .iter()
            .rev()
            .map(|&r| (r, 0, NONE, false))
            .collect();
        while let Some((slot, depth, ppos, entered)) = stack.pop() {
            if entered {
                self.subtree_end[slot as usize] = self.preorder.len() as u32;
                continue;
            }
            let pos = self.preorder.len() as u32;
            self.pos[slot as usize] = pos;
            self.depth[slot as usize] = depth;
            self.preorder.push(slot);
            self.parent_pos.push(ppos);
            stack.push((slot, depth, ppos, true));
            if let Some(node) = self.node(slot) {
                for &c in node.children.iter().rev() {
                    stack.push((c, depth + 1, pos, false));
                }
            }
        }
    }

    /// Number of grids.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether there are no grids.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The grid with this code.
    pub fn get(&self, code: &GridCode) -> Option<&Grid> {
        self.slot_of(code).and_then(|s| self.grid(s))
    }

    /// Whether a grid with this code exists.
    pub fn contains(&self, code: &GridCode) -> bool {
        self.by_code.contains_key(code)
    }

    /// The slot of the grid with this code.
    pub fn slot_of(&self, code: &GridCode) -> Option<GridSlot> {
        self.by_code.get(code).map(|&s| GridSlot(s))
    }

    /// The grid in a slot.
    pub fn grid(&self, slot: GridSlot) -> Option<&Grid> {
        self.node(slot.0).map(|n| &n.grid)
    }

    fn require(&self, code: &GridCode) -> Result<u32, GridError> {
        self.by_code
            .get(code)
            .copied()
            .ok_or_else(|| GridError::NotFound { code: code.clone() })
    }

    /// Root grids, ordered by code.
    pub fn roots(&self) -> impl Iterator<Item = &Grid> + '_ {
        self.roots
            .iter()
            .filter_map(|&s| self.node(s).map(|n| &n.grid))
    }

    /// All grids in pre-order (each parent before its children; siblings by code).
    pub fn iter(&self) -> impl Iterator<Item = &Grid> + '_ {
        self.preorder
            .iter()
            .filter_map(|&s| self.node(s).map(|n| &n.grid))
    }

    /// Direct children of a grid, ordered by code.
    pub fn children(&self, code: &GridCode) -> Result<Vec<&Grid>, GridError> {
        let slot = self.require(code)?;
        Ok(self
            .node(slot)
            .map(|n| {
                n.children
                    .iter()
                    .filter_map(|&c| self.node(c).map(|n| &n.grid))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Ancestors from the parent up to the root.
    pub fn ancestors(&self, code: &GridCode) -> Result<Vec<&Grid>, GridError> {
        let mut slot = self.require(code)?;
        let mut out = Vec::new();
        while let Some(p) = self.node(slot).and_then(|n| n.parent) {
            if let Some(n) = self.node(p) {
                out.push(&n.grid);
            }
            slot = p;
        }
        Ok(out)
    }

    /// The grid and all its descendants in pre-order.
    pub fn subtree(&self, code: &GridCode) -> Result<impl Iterator<Item = &Grid> + '_, GridError> {
        let slot = self.require(code)?;
        let range = self.range_of(slot);
        Ok(self.preorder[range.start as usize..range.end as usize]
            .iter()
            .filter_map(|&s| self.node(s).map(|n| &n.grid)))
    }

    /// Depth of a grid (roots are 0).
    pub fn depth(&self, code: &GridCode) -> Result<u32, GridError> {
        self.require(code).map(|s| self.depth[s as usize])
    }

    /// Grids at `depth` (roots are 0), optionally only inside the subtree of `within`.
    pub fn at_depth(&self, depth: u32, within: Option<&GridCode>) -> Result<Vec<&Grid>, GridError> {
        let range = match within {
            Some(code) => self.range_of(self.require(code)?),
            None => 0..self.preorder.len() as u32,
        };
        Ok(self.preorder[range.start as usize..range.end as usize]
            .iter()
            .filter(|&&s| self.depth[s as usize] == depth)
            .filter_map(|&s| self.node(s).map(|n| &n.grid))
            .collect())
    }

    /// The deepest level present plus one (0 for an empty tree).
    pub fn level_count(&self) -> u32 {
        self.preorder
            .iter()
            .map(|&s| self.depth[s as usize] + 1)
            .max()
            .unwrap_or(0)
    }

    /// Whether `code` is `ancestor` or lies below it.
    pub fn is_within(&self, code: &GridCode, ancestor: &GridCode) -> bool {
        match (self.slot_of(code), self.slot_of(ancestor)) {
            (Some(c), Some(a)) => self.range(a).contains(&self.pos(c)),
            _ => false,
        }
    }

    // ---- crate-internal helpers for the report hot loop ----

    fn range_of(&self, slot: u32) -> Range<u32> {
        self.pos[slot as usize]..self.subtree_end[slot as usize]
    }

    /// The pre-order positions of the slot's subtree.
    pub(crate) fn range(&self, slot: GridSlot) -> Range<u32> {
        self.range_of(slot.0)
    }

    /// Pre-order position of a slot.
    pub(crate) fn pos(&self, slot: GridSlot) -> u32 {
        self.pos.get(slot.0 as usize).copied().unwrap_or(NONE)
    }

    /// Parent position of a pre-order position.
    pub(crate) fn parent_pos(&self, pos: u32) -> Option<u32> {
        self.parent_pos
            .get(pos as usize)
            .copied()
            .filter(|&p| p != NONE)
    }

    /// The slot at a pre-order position.
    pub(crate) fn slot_at(&self, pos: u32) -> GridSlot {
        GridSlot(self.preorder[pos as usize])
    }

    /// Children slots of a slot.
    pub(crate) fn child_slots(&self, slot: GridSlot) -> &[u32] {
        self.node(slot.0).map_or(&[], |n| n.children.as_slice())
    }

    /// Depth of a slot.
    pub(crate) fn slot_depth(&self, slot: GridSlot) -> u32 {
        self.depth.get(slot.0 as usize).copied().unwrap_or(0)
    }
}

/// Members of parent-chain cycles in a code → parent map (existing trees are acyclic, so every
/// cycle found involves a batch row).
fn cycle_members<'a>(
    parent_of: &HashMap<&'a GridCode, Option<&'a GridCode>>,
) -> HashSet<&'a GridCode> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut mark: HashMap<&GridCode, Mark> = HashMap::with_capacity(parent_of.len());
    let mut on_cycle = HashSet::new();
    for &start in parent_of.keys() {
        if mark.contains_key(start) {
            continue;
        }
        let mut path: Vec<&GridCode> = Vec::new();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match mark.get(c) {
                Some(Mark::Done) => break,
                Some(Mark::OnPath) => {
                    if let Some(idx) = path.iter().position(|p| *p == c) {
                        for p in &path[idx..] {
                            on_cycle.insert(*p);
                        }
                    }
                    break;
                }
                None => {
                    mark.insert(c, Mark::OnPath);
                    path.push(c);
                    cur = parent_of.get(c).copied().flatten();
                }
            }
        }
        for p in path {
            mark.insert(p, Mark::Done);
        }
    }
    on_cycle
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn grid(code: &str, parent: Option<&str>) -> Grid {
        Grid {
            code: GridCode::parse(code).unwrap(),
            name: format!("grid {code}"),
            level_label: String::new(),
            parent: parent.map(|p| GridCode::parse(p).unwrap()),
            polygon: None,
        }
    }

    fn code(s: &str) -> GridCode {
        GridCode::parse(s).unwrap()
    }

    fn codes<'a>(it: impl IntoIterator<Item = &'a Grid>) -> Vec<&'a str> {
        it.into_iter().map(|g| g.code.as_str()).collect()
    }

    #[test]
    fn builds_from_any_order_and_walks() {
        let tree = GridTree::from_grids(&[
            grid("town-a-1", Some("town-a")),
            grid("city", None),
            grid("town-a", Some("city")),
            grid("town-b", Some("city")),
            grid("town-a-2", Some("town-a")),
            grid("town-a-1-x", Some("town-a-1")),
        ])
        .unwrap();
        assert_eq!(tree.len(), 6);
        assert_eq!(
            codes(tree.iter()),
            [
                "city",
                "town-a",
                "town-a-1",
                "town-a-1-x",
                "town-a-2",
                "town-b"
            ]
        );
        assert_eq!(
            codes(tree.subtree(&code("town-a")).unwrap()),
            ["town-a", "town-a-1", "town-a-1-x", "town-a-2"]
        );
        assert_eq!(
            codes(tree.children(&code("city")).unwrap()),
            ["town-a", "town-b"]
        );
        assert_eq!(
            codes(tree.ancestors(&code("town-a-1-x")).unwrap()),
            ["town-a-1", "town-a", "city"]
        );
        assert_eq!(
            codes(tree.at_depth(2, None).unwrap()),
            ["town-a-1", "town-a-2"]
        );
        assert_eq!(
            codes(tree.at_depth(1, Some(&code("town-a"))).unwrap()),
            ["town-a"]
        );
        assert_eq!(
            codes(tree.at_depth(2, Some(&code("town-b"))).unwrap()),
            Vec::<&str>::new()
        );
        assert_eq!(tree.depth(&code("town-a-1-x")).unwrap(), 3);
        assert_eq!(tree.level_count(), 4);
        assert!(tree.is_within(&code("town-a-1-x"), &code("town-a")));
        assert!(!tree.is_within(&code("town-b"), &code("town-a")));
    }

    #[test]
    fn rejects_unknown_parent_duplicate_and_cycle_naming_the_grid() {
        let errs = GridTree::from_grids(&[
            grid("a", None),
            grid("b", Some("nowhere")),
            grid("a", None),
            grid("c", Some("b")),
            grid("x", Some("y")),
            grid("y", Some("x")),
            grid("z", Some("z")),
        ])
        .unwrap_err();
        let by_item: Vec<(usize, String)> = errs.iter().map(|(i, e)| (*i, e.to_string())).collect();
        assert_eq!(errs.len(), 6, "{by_item:?}");
        assert!(
            matches!(&errs[0], (1, GridError::UnknownParent { parent, .. }) if parent.as_str() == "nowhere")
        );
        assert!(matches!(
            &errs[1],
            (2, GridError::Duplicate { first_item: 0, .. })
        ));
        assert!(matches!(&errs[2], (3, GridError::ParentRejected { .. })));
        assert!(matches!(&errs[3], (4, GridError::Cycle { .. })));
        assert!(matches!(&errs[4], (5, GridError::Cycle { .. })));
        assert!(matches!(&errs[5], (6, GridError::Cycle { .. })));
        assert_eq!(errs[0].1.field(), "parent");
    }

    #[test]
    fn moving_a_grid_under_its_own_descendant_is_a_cycle() {
        let tree = GridTree::from_grids(&[grid("a", None), grid("b", Some("a"))]).unwrap();
        let merged = tree.merge(&[grid("a", Some("b"))]);
        assert_eq!(merged.rejected.len(), 1);
        assert!(matches!(merged.rejected[0].1, GridError::Cycle { .. }));
        // The rejected update leaves the old tree intact.
        assert_eq!(merged.tree.depth(&code("b")).unwrap(), 1);
    }

    #[test]
    fn update_moves_subtree_and_keeps_slots() {
        let tree = GridTree::from_grids(&[
            grid("r", None),
            grid("p", Some("r")),
            grid("q", Some("r")),
            grid("leaf", Some("p")),
        ])
        .unwrap();
        let slot = tree.slot_of(&code("leaf")).unwrap();
        let merged = tree.merge(&[grid("p", Some("q"))]);
        assert!(merged.rejected.is_empty());
        let t = merged.tree;
        assert_eq!(t.slot_of(&code("leaf")).unwrap(), slot);
        assert_eq!(codes(t.ancestors(&code("leaf")).unwrap()), ["p", "q", "r"]);
        assert!(t
            .range(t.slot_of(&code("q")).unwrap())
            .contains(&t.pos(slot)));
    }

    #[test]
    fn remove_refuses_grids_with_children() {
        let mut tree = GridTree::from_grids(&[grid("r", None), grid("c", Some("r"))]).unwrap();
        assert!(matches!(
            tree.remove(&code("r")),
            Err(GridError::HasChildren { children: 1, .. })
        ));
        tree.remove(&code("c")).unwrap();
        tree.remove(&code("r")).unwrap();
        assert!(tree.is_empty());
        assert!(matches!(
            tree.remove(&code("r")),
            Err(GridError::NotFound { .. })
        ));
    }

    #[test]
    fn validates_code_and_fields() {
        assert!(GridCode::parse("370112001-03").is_ok());
        assert!(GridCode::parse("").is_err());
        assert!(GridCode::parse("a b").is_err());
        assert!(GridCode::parse("网格").is_err());
        let mut g = grid("a", None);
        g.name = "  ".into();
        assert!(matches!(g.validate(), Err(GridError::BadName { .. })));
        let mut g = grid("a", None);
        g.polygon = Some(vec![GeoPoint::new(1.0, 1.0).unwrap()]);
        assert!(matches!(
            g.validate(),
            Err(GridError::BadPolygon { points: 1, .. })
        ));
    }
}
