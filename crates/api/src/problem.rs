//! Errors as RFC 9457 problem documents (`application/problem+json`).
//!
//! Every error the API returns names what was wrong: the resource, the row and field of an
//! import, the query parameter. Clients (integrators' import scripts especially) act on
//! `errors[]`, so its shape is part of the API contract and documented in the OpenAPI document.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One thing wrong with the input: which item, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// 1-based row (CSV: counting the header as row 1; JSON: array index + 1) when the input
    /// has rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The field, column or parameter name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The offending value, when it is short enough to echo back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it was rejected, in plain words.
    pub reason: String,
}

impl FieldError {
    pub fn new(reason: impl Into<String>) -> Self {
        FieldError {
            row: None,
            field: None,
            value: None,
            reason: reason.into(),
        }
    }

    pub fn row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Self {
        let value: String = value.into();
        // Echo short values only: a problem document must stay small even for a 200k-row import.
        const MAX_ECHO: usize = 120;
        self.value = Some(if value.chars().count() > MAX_ECHO {
            let cut: String = value.chars().take(MAX_ECHO).collect();
            format!("{cut}…")
        } else {
            value
        });
        self
    }
}

/// A problem document. Build one with the constructors, add details, return it from a handler.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (relative to the API's documentation).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The individual errors (rows, fields) behind this problem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many errors there were in all, when `errors` was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_errors: Option<usize>,
}

/// At most this many field errors are sent back; `total_errors` says how many there were.
pub const MAX_ERRORS_IN_BODY: usize = 1000;

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Vec::new(),
            total_errors: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    pub fn errors(mut self, mut errors: Vec<FieldError>) -> Self {
        if errors.len() > MAX_ERRORS_IN_BODY {
            self.total_errors = Some(errors.len());
            errors.truncate(MAX_ERRORS_IN_BODY);
        }
        self.errors = errors;
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").detail(detail)
    }

    /// The input was understood but is not valid: the usual answer to bad rows and fields.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "The input is not valid",
        )
        .detail(detail)
        .errors(errors)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(what)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        )
        .detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed for this role").detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
        )
        .detail(format!("the limit is {limit} bytes (see http.max_body_bytes)"))
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail(detail)
    }

    /// An error on our side. The detail is logged, not sent: it may name paths or internals.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error while serving a request");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
        .detail("the server logged the cause")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_JSON),
        );
        response
    }
}

/// What handlers return on failure.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_lists_are_cut_and_counted() {
        let errors = (0..1500)
            .map(|i| FieldError::new("bad").row(i))
            .collect::<Vec<_>>();
        let problem = Problem::invalid("import rejected", errors);
        assert_eq!(problem.errors.len(), MAX_ERRORS_IN_BODY);
        assert_eq!(problem.total_errors, Some(1500));
    }

    #[test]
    fn long_values_are_not_echoed_in_full() {
        let error = FieldError::new("bad").value("x".repeat(500));
        let echoed = error.value.unwrap_or_default();
        assert!(echoed.chars().count() <= 121, "{}", echoed.len());
    }

    #[test]
    fn serialises_with_rfc9457_member_names() {
        let problem = Problem::not_found("camera 34020000001320000001");
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], "/problems/not-found");
        assert_eq!(json["status"], 404);
        assert_eq!(json["detail"], "camera 34020000001320000001");
        assert!(json.get("errors").is_none());
    }

    #[test]
    fn response_has_problem_media_type() {
        let response = Problem::bad_request("x").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
