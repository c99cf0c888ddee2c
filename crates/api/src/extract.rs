//! Request extractors whose every rejection is a problem document (axum's own extractors
//! answer in plain text).
//!
//! Query structs hold text (`Option<String>`) and handlers parse each parameter with
//! [`crate::params`], so a bad value is reported with the parameter's name.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};
use crate::state::AppState;
use crate::text::{self, DetectedEncoding, TextError};

/// The query string, deserialised into `T`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| Problem::bad_request(format!("query string: {}", e.body_text())))
    }
}

/// One path parameter as text (handlers parse it into an ID).
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathParam(p.0))
            .map_err(|e| Problem::bad_request(format!("path: {}", e.body_text())))
    }
}

/// The media type of a request body, lower-cased, without parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// e.g. `text/csv`.
    pub essence: String,
    /// The `charset` parameter, if given.
    pub charset: Option<String>,
}

impl MediaType {
    /// Parses a `Content-Type` header.
    pub fn from_headers(headers: &HeaderMap) -> Option<MediaType> {
        let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let mut parts = value.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let charset = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_owned())
        });
        Some(MediaType { essence, charset })
    }
}

/// A raw request body within the configured size limit, with its media type.
pub struct Upload {
    /// The bytes.
    pub bytes: Bytes,
    /// The declared media type, if any.
    pub media_type: Option<MediaType>,
}

impl Upload {
    /// The body as text (see [`crate::text`] for the encoding rule).
    pub fn text(&self) -> Result<(String, DetectedEncoding), Problem> {
        let charset = self.media_type.as_ref().and_then(|m| m.charset.as_deref());
        text::decode(&self.bytes, charset).map_err(|e| match e {
            TextError::UnknownCharset(_) => Problem::unsupported_media_type(e.to_string()),
            TextError::Undecodable { .. } => Problem::bad_encoding(e.to_string()),
        })
    }
}

impl FromRequest<AppState> for Upload {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let limit = state.config().max_body_bytes;
        // Refuse a declared oversize body before reading it, so a client that sent
        // `Expect: 100-continue` never has to send it.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(Problem::payload_too_large(limit));
        }
        let media_type = MediaType::from_headers(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::payload_too_large(limit)
            } else {
                Problem::bad_request(format!("reading the body: {}", e.body_text()))
            }
        })?;
        Ok(Upload { bytes, media_type })
    }
}

/// A JSON body deserialised into `T`, in UTF-8 or (declared or detected) GB18030.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let upload = Upload::from_request(req, state).await?;
        if let Some(m) = &upload.media_type {
            if m.essence != "application/json" {
                return Err(Problem::unsupported_media_type(format!(
                    "expected application/json, got {}",
                    m.essence
                )));
            }
        }
        let (text, _) = upload.text()?;
        parse_json(&text).map(JsonBody)
    }
}

/// Parses JSON text; an error names the line and column and the path of the field
/// (e.g. `code`, `coverage.due`).
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let mut p = json_problem(e.inner());
        if path != "." {
            if let Some(first) = p.errors.first_mut() {
                first.field.get_or_insert(path);
            }
        }
        p
    })?;
    de.end().map_err(|e| json_problem(&e))?;
    Ok(value)
}

/// A record body for `PUT /<resource>/{key}`: the key field may be left out or empty (the path
/// gives it); if given, it must match the path.
pub fn keyed_record<T: DeserializeOwned>(
    mut body: serde_json::Value,
    key: &str,
    path: &str,
) -> Result<T, Problem> {
    let Some(object) = body.as_object_mut() else {
        return Err(Problem::invalid(
            "the body must be a JSON object",
            vec![FieldError::new("expected a JSON object")],
        ));
    };
    match object.get(key).and_then(|v| v.as_str()).map(str::trim) {
        None | Some("") => {
            object.insert(key.to_owned(), serde_json::Value::String(path.to_owned()));
        }
        Some(given) if given != path => {
            let reason = format!("{given:?} does not match {path:?} in the path");
            return Err(Problem::invalid(
                reason.clone(),
                vec![FieldError::new(reason).field(key)],
            ));
        }
        Some(_) => {}
    }
    parse_value(body)
}

/// Deserialises a JSON value, naming the path of a bad field.
pub fn parse_value<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let mut p = json_problem(e.inner());
        if path != "." {
            if let Some(first) = p.errors.first_mut() {
                first.field.get_or_insert(path);
            }
        }
        p
    })
}

pub(crate) fn json_problem(e: &serde_json::Error) -> Problem {
    let reason = e.to_string();
    let error = FieldError::new(reason.clone());
    let error = match json_field(&reason) {
        Some(f) => error.field(f),
        None => error,
    };
    match e.classify() {
        serde_json::error::Category::Data => {
            Problem::invalid("the JSON body is not valid", vec![error])
        }
        _ => Problem::bad_request(format!("the body is not JSON: {reason}")).with_error(error),
    }
}

/// The field a serde message names (``missing field `x` ``, ``unknown field `x` ``).
pub(crate) fn json_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    let field = &message[start..start + len];
    (message.contains("missing field") || message.contains("unknown field")).then_some(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn media_type_and_charset() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Text/CSV; Charset=\"GB18030\""),
        );
        assert_eq!(
            MediaType::from_headers(&h),
            Some(MediaType {
                essence: "text/csv".into(),
                charset: Some("GB18030".into())
            })
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            name: String,
        }
        let p = parse_json::<T>("{}").unwrap_err();
        assert_eq!(p.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.errors[0].field.as_deref(), Some("name"));
        let p = parse_json::<T>("{\"name\": 7}").unwrap_err();
        assert_eq!(p.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.errors[0].field.as_deref(), Some("name"));
        let p = parse_json::<T>("{").unwrap_err();
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
        let p = parse_json::<T>("{\"name\": \"x\"} trailing").unwrap_err();
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
    }
}
