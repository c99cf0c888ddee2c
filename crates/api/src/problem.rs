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
///
/// Kept under 128 bytes (`type` and `title` are static text) so that `Result<T, Problem>` stays
/// cheap to return through every layer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (relative to the API's documentation), e.g.
    /// `/problems/invalid-input`. Held as the last path segment; serialised with its prefix.
    #[serde(rename = "type", serialize_with = "problem_type")]
    #[schema(value_type = String, example = "/problems/invalid-input")]
    pub kind: &'static str,
    /// A short, fixed summary of the problem type.
    pub title: &'static str,
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
    pub total_errors: Option<u32>,
}

fn problem_type<S: serde::Serializer>(kind: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("/problems/{kind}"))
}

/// At most this many field errors are sent back; `total_errors` says how many there were.
pub const MAX_ERRORS_IN_BODY: usize = 1000;

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Self {
        Problem {
            kind,
            title,
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
            self.total_errors = Some(u32::try_from(errors.len()).unwrap_or(u32::MAX));
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

    /// No route matches the path (as opposed to [`Problem::not_found`]: the route exists, the
    /// resource does not).
    pub fn no_route(path: &str) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "no-route", "No such endpoint")
            .detail(format!("no endpoint at {path}; see /api/v1/openapi.json"))
    }

    /// The route exists but not with this method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
        .detail(format!(
            "{method} is not allowed on {path}; see /api/v1/openapi.json"
        ))
    }

    /// The body could not be decoded as text in any supported encoding.
    pub fn bad_encoding(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-encoding",
            "The body is not valid UTF-8 or GB18030",
        )
        .errors(vec![FieldError::new(detail.clone()).field("body")])
        .detail(detail)
    }

    /// A single bad field or query parameter (400).
    pub fn bad_param(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Problem::bad_request(format!("{field}: {reason}"))
            .errors(vec![FieldError::new(reason).field(field)])
    }

    /// Adds one error to the list.
    pub fn with_error(mut self, error: FieldError) -> Self {
        self.errors.push(error);
        self
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
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this role",
        )
        .detail(detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
        )
        .detail(format!(
            "the limit is {limit} bytes (see http.max_body_bytes)"
        ))
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail(detail)
    }

    /// The service cannot answer this now: a subsystem it needs is not running, or what the
    /// request waits for (a camera's video) did not come (503).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
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

impl std::fmt::Display for Problem {
    /// `title: detail`, then one line per field error (as the CLI prints it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        for e in &self.errors {
            f.write_str("\n  ")?;
            if let Some(r) = e.row {
                write!(f, "row {r}, ")?;
            }
            if let Some(field) = &e.field {
                write!(f, "{field}: ")?;
            }
            f.write_str(&e.reason)?;
        }
        if let Some(n) = self.total_errors {
            write!(f, "\n  … {n} errors in all")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        response
    }
}

/// What handlers return on failure.
pub type ApiResult<T> = Result<T, Problem>;

/// The error answers of every endpoint, for the OpenAPI document (`responses(..., Problems)`).
/// Only documents; handlers return [`Problem`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Problems {
    /// Refused: a bad parameter or body names the row/field (400, 413, 415, 422), a missing or
    /// invalid token (401), a role without the permission (403), an unknown resource (404), a
    /// conflict with stored data (409).
    #[response(status = "4XX", content_type = "application/problem+json")]
    Client(Problem),
    /// Our side failed; the cause is logged, not sent.
    #[response(status = "5XX", content_type = "application/problem+json")]
    Server(Problem),
}

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
    fn unauthorized_names_the_scheme() {
        let response = Problem::unauthorized("no token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"vigil\""
        );
    }

    #[test]
    fn response_has_problem_media_type() {
        let response = Problem::bad_request("x").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
