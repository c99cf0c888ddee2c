//! Parsing query and path parameters, each error naming the parameter.
//!
//! IDs, codes and times are parsed by their owners in `vigil_core`; this module only attaches
//! the parameter name. Durations (`window`, `trend`) are written `<n><unit>` with unit `ms`,
//! `s`, `m`, `h`, `d` or `w` — `24h`, `7d`, `30d` — and are shared with the CLI.

use std::str::FromStr;

use serde::Deserialize;
use utoipa::ToSchema;
use vigil_core::grid::GridCode;
use vigil_core::id::GbId;
use vigil_core::site::SiteId;
use vigil_core::time::{Timestamp, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};

use crate::problem::Problem;

/// The longest accepted duration: ten years.
pub const MAX_DURATION_MS: i64 = 3650 * DAY_MS;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration like 24h, 7d or 30d: {reason}")]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Parses `<n><unit>` (`ms`, `s`, `m`, `h`, `d`, `w`) into milliseconds; positive, at most
/// ten years.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let t = text.trim();
    let err = |reason| DurationError {
        text: t.chars().take(40).collect(),
        reason,
    };
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| err("a unit (ms, s, m, h, d, w) is required"))?;
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(err("it must start with a number"));
    }
    let n: i64 = digits.parse().map_err(|_| err("the number is too large"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => SECOND_MS,
        "m" | "min" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return Err(err("the unit must be ms, s, m, h, d or w")),
    };
    let ms = n
        .checked_mul(scale)
        .filter(|ms| *ms <= MAX_DURATION_MS)
        .ok_or_else(|| err("longer than ten years"))?;
    if ms <= 0 {
        return Err(err("it must be positive"));
    }
    Ok(ms)
}

/// Writes milliseconds in the largest unit that divides them (`86400000` → `1d`).
pub fn format_duration(ms: i64) -> String {
    for (unit, scale) in [
        ("w", 7 * DAY_MS),
        ("d", DAY_MS),
        ("h", HOUR_MS),
        ("m", MINUTE_MS),
        ("s", SECOND_MS),
    ] {
        if ms % scale == 0 && ms != 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

fn parse_with<T, E: std::fmt::Display>(
    field: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, Problem> {
    parse(text.trim()).map_err(|e| Problem::bad_param(field, e.to_string()))
}

/// An RFC 3339 instant, or `default` when absent.
pub fn time(field: &str, text: Option<&str>, default: Timestamp) -> Result<Timestamp, Problem> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default),
        Some(t) => parse_with(field, t, Timestamp::parse_rfc3339),
    }
}

/// A duration, or `default_ms` when absent.
pub fn duration(field: &str, text: Option<&str>, default_ms: i64) -> Result<i64, Problem> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(default_ms),
        Some(t) => parse_with(field, t, parse_duration),
    }
}

/// A required grid code.
pub fn grid_code(field: &str, text: Option<&str>) -> Result<GridCode, Problem> {
    let text = required(field, text)?;
    parse_with(field, text, GridCode::parse)
}

/// An optional grid code.
pub fn opt_grid_code(field: &str, text: Option<&str>) -> Result<Option<GridCode>, Problem> {
    optional(field, text, GridCode::parse)
}

/// A GB/T 28181 ID (path parameter or query).
pub fn gb_id(field: &str, text: &str) -> Result<GbId, Problem> {
    parse_with(field, text, GbId::parse)
}

/// A key-site ID.
pub fn site_id(field: &str, text: &str) -> Result<SiteId, Problem> {
    parse_with(field, text, SiteId::parse)
}

/// Any optional value with a `FromStr`.
pub fn optional<T, E: std::fmt::Display>(
    field: &str,
    text: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, Problem> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => parse_with(field, t, parse).map(Some),
    }
}

/// An optional value parsed with `FromStr`.
pub fn opt_from_str<T: FromStr>(field: &str, text: Option<&str>) -> Result<Option<T>, Problem>
where
    T::Err: std::fmt::Display,
{
    optional(field, text, str::parse::<T>)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
pub fn opt_bool(field: &str, text: Option<&str>) -> Result<Option<bool>, Problem> {
    optional(field, text, |t| match t.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("expected true or false"),
    })
}

/// A non-negative integer.
pub fn opt_usize(field: &str, text: Option<&str>) -> Result<Option<usize>, Problem> {
    optional(field, text, |t| {
        t.parse::<usize>()
            .map_err(|_| "expected a non-negative integer")
    })
}

fn required<'a>(field: &str, text: Option<&'a str>) -> Result<&'a str, Problem> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::bad_param(field, "required"))
}

/// The body format of a report or list answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// `application/json` (default).
    #[default]
    Json,
    /// `text/csv; charset=utf-8`, with a byte-order mark so spreadsheet programs detect UTF-8.
    Csv,
}

impl OutputFormat {
    /// Parses the `format` parameter.
    pub fn parse(text: Option<&str>) -> Result<OutputFormat, Problem> {
        Ok(optional("format", text, |t| match t {
            "json" => Ok(OutputFormat::Json),
            "csv" => Ok(OutputFormat::Csv),
            _ => Err("expected json or csv"),
        })?
        .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(DAY_MS));
        assert_eq!(parse_duration("7d"), Ok(7 * DAY_MS));
        assert_eq!(parse_duration("90m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration("1500ms"), Ok(1500));
        assert_eq!(parse_duration("2w"), Ok(14 * DAY_MS));
        for bad in [
            "",
            "24",
            "h",
            "0h",
            "-1d",
            "1y",
            "99999999999999999999d",
            "3651d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(DAY_MS), "1d");
        assert_eq!(format_duration(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration(1500), "1500ms");
    }

    #[test]
    fn errors_name_the_parameter() {
        let p = time("at", Some("yesterday"), Timestamp::EPOCH).unwrap_err();
        assert_eq!(p.errors[0].field.as_deref(), Some("at"));
        let p = grid_code("grid", None).unwrap_err();
        assert_eq!(p.errors[0].field.as_deref(), Some("grid"));
        assert_eq!(p.errors[0].reason, "required");
        let p = gb_id("id", "123").unwrap_err();
        assert!(p.errors[0].reason.contains("20 digits"), "{:?}", p.errors);
        assert_eq!(opt_bool("online", Some("no")).unwrap(), Some(false));
        assert!(opt_usize("limit", Some("-3")).is_err());
        assert_eq!(OutputFormat::parse(Some("csv")).unwrap(), OutputFormat::Csv);
        assert!(OutputFormat::parse(Some("xml")).is_err());
    }
}
