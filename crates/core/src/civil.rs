//! Mapping CivilCodes to grids: **the one place** where vigil decides which grid an
//! administrative area belongs to.
//!
//! GB/T 28181 catalog items carry a `CivilCode` (2, 4, 6 or 8 digits: province, city,
//! district, grass-roots unit) naming the administrative area a channel is in. A monitoring
//! centre's grid tree has its own codes, so the operator gives a table from CivilCodes to grid
//! codes (the daemon reads it from `[gb28181.civil_codes]`). A channel's code is looked up by
//! **longest prefix**: `37011201` uses the entry for `37011201` if there is one, else `370112`,
//! else `3701`, else `37`. A code with no entry on that path is *unmapped*; the daemon reports
//! unmapped codes (with the channels that carry them) rather than guessing.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::grid::GridCode;
use crate::id::CivilCode;

/// Why a mapping table was refused; names the entry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CivilMapError {
    /// The key is not a CivilCode.
    #[error("CivilCode {code:?}: {reason}")]
    BadCode {
        /// The key as written.
        code: String,
        /// Why.
        reason: String,
    },
    /// The value is not a grid code.
    #[error("CivilCode {code}: grid {grid:?}: {reason}")]
    BadGrid {
        /// The CivilCode.
        code: String,
        /// The value as written.
        grid: String,
        /// Why.
        reason: String,
    },
}

/// Where a CivilCode led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CivilMatch<'a> {
    /// The table entry that matched (the code itself or an enclosing area).
    pub matched: CivilCode,
    /// Its grid.
    pub grid: &'a GridCode,
}

/// A CivilCode → grid table (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CivilCodeMap {
    entries: BTreeMap<CivilCode, GridCode>,
}

impl CivilCodeMap {
    /// A table from parsed entries (a later entry for the same code replaces an earlier one).
    pub fn new(entries: impl IntoIterator<Item = (CivilCode, GridCode)>) -> CivilCodeMap {
        CivilCodeMap {
            entries: entries.into_iter().collect(),
        }
    }

    /// Parses a table as written in a configuration file; every bad entry is reported.
    pub fn parse(table: &BTreeMap<String, String>) -> Result<CivilCodeMap, Vec<CivilMapError>> {
        let mut entries = BTreeMap::new();
        let mut errors = Vec::new();
        for (code, grid) in table {
            let c = CivilCode::parse(code.trim()).map_err(|e| CivilMapError::BadCode {
                code: code.clone(),
                reason: e.to_string(),
            });
            let g = GridCode::parse(grid.trim()).map_err(|e| CivilMapError::BadGrid {
                code: code.clone(),
                grid: grid.clone(),
                reason: e.to_string(),
            });
            match (c, g) {
                (Ok(c), Ok(g)) => {
                    entries.insert(c, g);
                }
                (c, g) => errors.extend(c.err().into_iter().chain(g.err())),
            }
        }
        if errors.is_empty() {
            Ok(CivilCodeMap { entries })
        } else {
            Err(errors)
        }
    }

    /// The grid of `code` by longest prefix (see the module docs), or `None` when unmapped.
    pub fn lookup(&self, code: &CivilCode) -> Option<CivilMatch<'_>> {
        let mut at = Some(*code);
        while let Some(c) = at {
            if let Some(grid) = self.entries.get(&c) {
                return Some(CivilMatch { matched: c, grid });
            }
            at = c.parent();
        }
        None
    }

    /// Every entry, in code order.
    pub fn entries(&self) -> impl Iterator<Item = (&CivilCode, &GridCode)> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The CivilCodes whose entry is `grid` (e.g. to name a grid's area in a catalog sent
    /// upward), shortest first.
    pub fn codes_of(&self, grid: &GridCode) -> Vec<CivilCode> {
        let mut v: Vec<CivilCode> = self
            .entries
            .iter()
            .filter(|(_, g)| *g == grid)
            .map(|(c, _)| *c)
            .collect();
        v.sort_by_key(|c| (c.as_str().len(), *c));
        v
    }
}

impl fmt::Display for CivilMatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → grid {}", self.matched, self.grid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(c, g)| ((*c).to_owned(), (*g).to_owned()))
            .collect()
    }

    fn cc(s: &str) -> CivilCode {
        CivilCode::parse(s).unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let m = CivilCodeMap::parse(&table(&[
            ("3701", "city"),
            ("370112", "district"),
            ("37011201", "town-1"),
        ]))
        .unwrap();
        let grid = |c: &str| m.lookup(&cc(c)).map(|x| x.grid.as_str().to_owned());
        assert_eq!(grid("37011201").as_deref(), Some("town-1"));
        assert_eq!(grid("37011202").as_deref(), Some("district"));
        assert_eq!(grid("370113").as_deref(), Some("city"));
        assert_eq!(grid("3701").as_deref(), Some("city"));
        assert_eq!(
            grid("37").as_deref(),
            None,
            "a province is not inside its city"
        );
        assert_eq!(grid("44010101"), None);
        let hit = m.lookup(&cc("37011299")).unwrap();
        assert_eq!(hit.matched, cc("370112"));
        assert_eq!(hit.to_string(), "370112 → grid district");
        assert_eq!(
            m.codes_of(&GridCode::parse("district").unwrap()),
            [cc("370112")]
        );
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn every_bad_entry_is_named() {
        let e = CivilCodeMap::parse(&table(&[
            ("370", "g"),
            ("3701", "bad grid with spaces"),
            ("37x1", ""),
            ("3702", "ok"),
        ]))
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        let text: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("\"370\"")), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("bad grid with spaces")),
            "{text:?}"
        );
        assert!(CivilCodeMap::parse(&BTreeMap::new()).unwrap().is_empty());
    }
}
