//! The audit log (append-only; read by admins and auditors).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::time::{Interval, Timestamp};
use vigil_index::{AuditCursor, AuditEntry};

use crate::auth::Caller;
use crate::extract::Query;
use crate::params;
use crate::policy::Permission;
use crate::problem::{ApiResult, Problem, Problems};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

/// One change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Unique, increasing sequence number.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Who: `token:<id>` or `cli:<user>`.
    pub actor: String,
    /// What, e.g. `camera.update`, `import.cameras`, `targets.update`.
    pub action: String,
    /// On what.
    pub target: String,
    /// The record before.
    pub before: Option<serde_json::Value>,
    /// The record after.
    pub after: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            before: e.before,
            after: e.after,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageView {
    /// Entries in time order.
    pub entries: Vec<AuditView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next: Option<String>,
}

/// Range and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From (RFC 3339); default: the beginning.
    from: Option<String>,
    /// To, exclusive (RFC 3339); default: now.
    to: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Page size; default 100.
    limit: Option<String>,
}

fn parse_cursor(text: &str) -> Result<AuditCursor, &'static str> {
    let (at, seq) = text.split_once('.').ok_or("expected <ms>.<seq>")?;
    Ok(AuditCursor {
        at: Timestamp::from_millis(at.parse().map_err(|_| "bad time part")?),
        seq: seq.parse().map_err(|_| "bad sequence part")?,
    })
}

fn format_cursor(c: AuditCursor) -> String {
    format!("{}.{}", c.at.as_millis(), c.seq)
}

/// Who changed what, when, with the record before and after, in time order.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPageView), Problems), security(("bearer" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPageView>> {
    caller.require(Permission::ReadAudit)?;
    let to = params::time("to", q.to.as_deref(), state.now().add_ms(1))?;
    let from = params::time("from", q.from.as_deref(), Timestamp::EPOCH)?;
    let range = Interval::new(from, to).map_err(|e| Problem::bad_param("from", e.to_string()))?;
    let cursor = params::optional("cursor", q.cursor.as_deref(), parse_cursor)?;
    let limit = state.page_size(params::opt_usize("limit", q.limit.as_deref())?);
    let page = state
        .blocking(move |index| Ok(index.audit_range(&range, cursor, limit)?))
        .await?;
    Ok(Json(AuditPageView {
        entries: page.entries.into_iter().map(AuditView::from).collect(),
        next: page.next.map(format_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = AuditCursor {
            at: Timestamp::from_millis(1_700_000_000_123),
            seq: 42,
        };
        assert_eq!(parse_cursor(&format_cursor(c)), Ok(c));
        assert!(parse_cursor("x").is_err());
    }
}
