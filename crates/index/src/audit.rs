//! The append-only audit log: who changed what, when, with the record before and after.
//!
//! Entries are keyed by (time, sequence), so a time range is one key-range scan and pages
//! resume from a cursor. The sequence comes from sled's persistent ID generator: unique and
//! increasing across restarts, possibly with gaps after a crash. There is no update or delete
//! API. Each append is fsynced before it returns.

use serde::{Deserialize, Serialize};
use vigil_core::time::{Interval, Timestamp};

use crate::error::IndexError;
use crate::{encode_json, keys, Index};

/// What the caller supplies for an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// Who (token ID or user).
    pub actor: String,
    /// What (e.g. `camera.update`).
    pub action: String,
    /// On what (e.g. a camera ID).
    pub target: String,
    /// The record before, if any.
    pub before: Option<serde_json::Value>,
    /// The record after, if any.
    pub after: Option<serde_json::Value>,
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unique, increasing sequence number.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Before.
    pub before: Option<serde_json::Value>,
    /// After.
    pub after: Option<serde_json::Value>,
}

/// Where the next page starts (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCursor {
    /// Time of the last entry returned.
    pub at: Timestamp,
    /// Sequence of the last entry returned.
    pub seq: u64,
}

/// A page of entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Entries in (time, sequence) order.
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next page, if there may be more.
    pub next: Option<AuditCursor>,
}

impl Index {
    /// Appends an entry at `at`; fsynced before returning.
    pub fn append_audit(&self, at: Timestamp, draft: AuditDraft) -> Result<AuditEntry, IndexError> {
        let seq = self
            .db
            .generate_id()
            .map_err(|e| IndexError::storage("numbering an audit entry", e))?;
        let entry = AuditEntry {
            seq,
            at,
            actor: draft.actor,
            action: draft.action,
            target: draft.target,
            before: draft.before,
            after: draft.after,
        };
        let value = encode_json("audit entry", &entry)?;
        self.db
            .insert(keys::audit_key(at, seq), value)
            .map_err(|e| IndexError::storage("appending an audit entry", e))?;
        self.flush()?;
        Ok(entry)
    }

    /// Entries with `range.start ≤ at < range.end`, after `cursor`, at most `limit`.
    pub fn audit_range(
        &self,
        range: &Interval,
        cursor: Option<AuditCursor>,
        limit: usize,
    ) -> Result<AuditPage, IndexError> {
        let lo = match cursor {
            Some(c) => {
                let mut k = keys::audit_key(c.at, c.seq);
                k.push(0);
                k
            }
            None => keys::audit_key(range.start(), 0),
        };
        let hi = keys::audit_key(range.end(), 0);
        let mut entries = Vec::new();
        let mut next = None;
        if lo < hi {
            for kv in self.db.range(lo..hi) {
                let (k, v) = kv.map_err(|e| IndexError::storage("reading the audit log", e))?;
                if entries.len() == limit {
                    next = entries.last().map(|e: &AuditEntry| AuditCursor {
                        at: e.at,
                        seq: e.seq,
                    });
                    break;
                }
                entries.push(serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&k, e))?);
            }
        }
        Ok(AuditPage { entries, next })
    }
}
