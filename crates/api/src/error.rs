//! How index errors become problem documents: the one mapping from domain refusals to HTTP
//! status codes.
//!
//! - the resource in the path does not exist → 404;
//! - the change conflicts with what is stored (in use, has children, exists) → 409;
//! - the input breaks a domain rule (bad field, unknown reference, cycle, overlap) → 422 naming
//!   the field;
//! - a bad report parameter → 400 naming the parameter;
//! - anything on our side (storage, corrupt record, poisoned lock) → 500, logged, not echoed.

use vigil_core::compliance::ComplianceError;
use vigil_core::grid::GridError;
use vigil_core::import::RowError;
use vigil_core::model::ModelError;
use vigil_index::IndexError;

use crate::problem::{FieldError, Problem};

impl From<IndexError> for Problem {
    fn from(e: IndexError) -> Problem {
        match e {
            IndexError::Invalid(m) => model_problem(m),
            IndexError::ImportRejected { errors } => Problem::invalid(
                "import rejected, nothing applied",
                errors
                    .iter()
                    .map(|e| row_error(e, |i| i as u64 + 1))
                    .collect(),
            ),
            IndexError::Report(r) => report_problem(r),
            IndexError::Id(e) => Problem::invalid(
                e.to_string(),
                vec![FieldError::new(e.to_string()).field("id")],
            ),
            IndexError::TokenExists { id } => {
                Problem::conflict(format!("API token {id} already exists"))
            }
            IndexError::UnknownToken { id } => {
                Problem::not_found(format!("API token {id} does not exist"))
            }
            e @ IndexError::BadTokenId { .. } => Problem::invalid(
                e.to_string(),
                vec![FieldError::new(e.to_string()).field("id")],
            ),
            e => Problem::internal(&e),
        }
    }
}

fn model_problem(m: ModelError) -> Problem {
    let field = m.field();
    let reason = m.to_string();
    match m {
        ModelError::UnknownCamera { .. }
        | ModelError::SiteNotFound { .. }
        | ModelError::Grid(GridError::NotFound { .. }) => {
            Problem::not_found(reason.clone()).with_error(FieldError::new(reason).field(field))
        }
        ModelError::GridInUse { .. }
        | ModelError::SiteInUse { .. }
        | ModelError::Grid(GridError::HasChildren { .. }) => {
            Problem::conflict(reason.clone()).with_error(FieldError::new(reason).field(field))
        }
        _ => Problem::invalid(reason.clone(), vec![FieldError::new(reason).field(field)]),
    }
}

fn report_problem(r: ComplianceError) -> Problem {
    let reason = r.to_string();
    match r {
        ComplianceError::UnknownGrid { .. } => {
            Problem::not_found(reason.clone()).with_error(FieldError::new(reason).field("grid"))
        }
        ComplianceError::BadWindow { .. } => Problem::bad_param("window", reason),
        ComplianceError::BadTrend { .. } => Problem::bad_param("trend", reason),
    }
}

/// A single record (a request body) whose fields are invalid: 422 naming each field.
pub fn record_problem(errors: Vec<RowError>) -> Problem {
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Problem::invalid(
        detail,
        errors
            .into_iter()
            .map(|e| FieldError::new(e.reason).field(e.field))
            .collect(),
    )
}

/// A row error of an import as a field error, with the row renumbered by `row_of` (index item
/// index → the row number the client sees).
pub fn row_error(e: &RowError, row_of: impl Fn(usize) -> u64) -> FieldError {
    FieldError::new(e.reason.clone())
        .row(row_of(e.row))
        .field(e.field.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use vigil_core::grid::GridCode;
    use vigil_core::id::GbId;

    fn code(s: &str) -> GridCode {
        GridCode::parse(s).unwrap()
    }

    #[test]
    fn statuses_follow_the_rule_book() {
        let id = GbId::parse("37010000001320000001").unwrap();
        let cases: Vec<(IndexError, StatusCode, &str)> = vec![
            (
                ModelError::UnknownCamera { id }.into(),
                StatusCode::NOT_FOUND,
                "camera",
            ),
            (
                ModelError::GridInUse {
                    code: code("g"),
                    sites: 1,
                    cameras: 0,
                }
                .into(),
                StatusCode::CONFLICT,
                "code",
            ),
            (
                ModelError::CameraGridUnknown {
                    camera: id,
                    grid: code("x"),
                }
                .into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "grid",
            ),
            (
                ModelError::Grid(GridError::Cycle { code: code("a") }).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "parent",
            ),
            (
                IndexError::Report(ComplianceError::UnknownGrid { code: code("x") }),
                StatusCode::NOT_FOUND,
                "grid",
            ),
            (
                IndexError::Report(ComplianceError::BadWindow { window_ms: 0 }),
                StatusCode::BAD_REQUEST,
                "window",
            ),
        ];
        for (e, status, field) in cases {
            let text = e.to_string();
            let p = Problem::from(e);
            assert_eq!(p.status(), status, "{text}");
            assert_eq!(p.errors[0].field.as_deref(), Some(field), "{text}");
        }
    }

    #[test]
    fn rejected_imports_number_rows_from_one() {
        let e = IndexError::ImportRejected {
            errors: vec![RowError::new(0, "grid", "grid x does not exist")],
        };
        let p = Problem::from(e);
        assert_eq!(p.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.errors[0].row, Some(1));
    }

    #[test]
    fn storage_details_are_not_echoed() {
        let e = IndexError::Corrupt {
            key: "c:secret-path".into(),
            reason: "bad".into(),
        };
        let p = Problem::from(e);
        assert_eq!(p.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!serde_json::to_string(&p).unwrap().contains("secret-path"));
    }
}
