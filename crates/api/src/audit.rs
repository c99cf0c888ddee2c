//! Writing the audit log from handlers and the CLI: every change to the register, targets and
//! tokens appends who did it, when, on what, and the record before and after.
//!
//! The entry is appended right after the change is stored, inside the same write section of
//! [`crate::state::AppState::write_lock`], so the before/after it records is exactly what the
//! change did. The index stores a change and its audit entry in two fsynced writes; if the
//! second fails the change stays applied, the request answers 500 and the failure is logged as
//! an error naming the change, so an operator can see the gap.

use serde::Serialize;
use vigil_core::time::Timestamp;
use vigil_index::{AuditDraft, Index};

use crate::problem::Problem;

/// One change to record.
#[derive(Debug)]
pub struct Change {
    /// Who (`token:<id>` for API callers, `cli:<user>` for the command line).
    pub actor: String,
    /// What, `<resource>.<verb>` (e.g. `camera.update`, `import.cameras`).
    pub action: &'static str,
    /// On what (a grid code, site ID, camera ID, token ID or import kind).
    pub target: String,
    /// The record before, if there was one.
    pub before: Option<serde_json::Value>,
    /// The record after, if there is one.
    pub after: Option<serde_json::Value>,
}

/// Serialises a record for the log (`None` if it cannot be, which only a bug can cause; the
/// entry is still written).
pub fn json<T: Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// An insert-or-update (`PUT` of a whole record): `create` when there was no record before,
/// `update` otherwise, each with its own action (`grid.create` / `grid.update`).
pub struct Upsert<'a, T> {
    pub actor: String,
    pub create: &'static str,
    pub update: &'static str,
    pub target: String,
    pub before: Option<&'a T>,
    pub after: &'a T,
}

impl<T: Serialize> Upsert<'_, T> {
    /// Appends the entry at `at`; returns whether the record was created.
    pub fn append(self, index: &Index, at: Timestamp) -> Result<bool, Problem> {
        let created = self.before.is_none();
        append(
            index,
            at,
            Change {
                actor: self.actor,
                action: if created { self.create } else { self.update },
                target: self.target,
                before: self.before.and_then(json),
                after: json(self.after),
            },
        )?;
        Ok(created)
    }
}

/// Appends `change` at `at`.
pub fn append(index: &Index, at: Timestamp, change: Change) -> Result<(), Problem> {
    let Change {
        actor,
        action,
        target,
        before,
        after,
    } = change;
    index
        .append_audit(
            at,
            AuditDraft {
                actor: actor.clone(),
                action: action.to_owned(),
                target: target.clone(),
                before,
                after,
            },
        )
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(
                error = %e,
                %actor,
                action,
                %target,
                "a change was stored but its audit entry could not be written"
            );
            Problem::internal(&e)
        })
}
