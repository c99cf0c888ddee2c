//! Reading import files into the row shapes of `vigil_core::import`, shared by the HTTP import
//! routes and `vigil import`.
//!
//! Formats (the columns are the fields of the row shapes; `vigil_core::import` documents them):
//! - **CSV** with a header line naming the columns, in any order; unknown or repeated column
//!   names are refused (a misspelt column must not be silently ignored); optional columns may be
//!   left out; empty cells are "not given".
//! - **JSON**: an array of objects with the same field names; unknown fields are refused.
//!
//! Text is UTF-8 (with or without BOM) or GB18030/GBK, declared or detected ([`crate::text`]).
//!
//! Rows are numbered as clients see them: CSV rows count the header line as row 1 (so the first
//! data row is row 2, and a spreadsheet shows the same number); JSON rows are the array index
//! plus 1. A row that cannot be read into its shape (wrong column count, a number that is not a
//! number) is reported with its row number and column and left out; the rest are still read,
//! so one upload reports every bad row.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::extract::{json_field, json_problem};
use crate::problem::{FieldError, Problem};

/// The file formats imports accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated, with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl FileFormat {
    /// From a request's media type (`text/csv`, `application/json`).
    pub fn from_media_type(essence: &str) -> Option<FileFormat> {
        match essence {
            "text/csv" | "application/csv" => Some(FileFormat::Csv),
            "application/json" => Some(FileFormat::Json),
            _ => None,
        }
    }

    /// From a file name's extension (`.csv`, `.json`).
    pub fn from_path(path: &std::path::Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileFormat::Csv),
            "json" => Some(FileFormat::Json),
            _ => None,
        }
    }
}

/// Rows read from a file.
#[derive(Debug)]
pub struct Parsed<R> {
    /// The rows that were read.
    pub rows: Vec<R>,
    /// The client-visible row number of each entry of `rows`.
    pub numbers: Vec<u64>,
    /// Rows that could not be read, with row number, column and reason.
    pub errors: Vec<FieldError>,
}

impl<R> Parsed<R> {
    /// The client-visible number of item `i` of `rows` (for errors the index reports by item).
    pub fn number(&self, i: usize) -> u64 {
        self.numbers.get(i).copied().unwrap_or(i as u64 + 1)
    }

    /// Rows in the file: rows read plus rows refused.
    pub fn seen(&self) -> usize {
        let refused: std::collections::BTreeSet<u64> =
            self.errors.iter().filter_map(|e| e.row).collect();
        self.rows.len() + refused.len()
    }
}

/// The column names of a row shape, in declaration order (from the shape itself, so the list
/// cannot drift from what is parsed).
pub fn columns<R: Serialize + Default>() -> Vec<String> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    if w.serialize(R::default()).is_err() {
        return Vec::new();
    }
    let bytes = w.into_inner().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let header = text.lines().next().unwrap_or("");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Reads `text` in `format`. `progress` is called now and then with (bytes read, bytes in all).
/// Fails as a whole only when the file has no usable structure (no header line, bad or unknown
/// columns, not a JSON array).
pub fn parse<R>(
    text: &str,
    format: FileFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Parsed<R>, Problem>
where
    R: DeserializeOwned + Serialize + Default,
{
    match format {
        FileFormat::Csv => parse_csv(text, progress),
        FileFormat::Json => parse_json_rows(text, progress),
    }
}

const PROGRESS_EVERY: usize = 4096;

fn parse_csv<R>(text: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<Parsed<R>, Problem>
where
    R: DeserializeOwned + Serialize + Default,
{
    let known = columns::<R>();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Problem::bad_request(format!("the header line cannot be read: {e}")))?
        .clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(Problem::invalid(
            "the file has no header line",
            vec![FieldError::new(format!(
                "the first line must name the columns: {}",
                known.join(",")
            ))
            .row(1)],
        ));
    }
    let mut header_errors = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if !known.iter().any(|k| k == h) {
            header_errors.push(
                FieldError::new(format!(
                    "unknown column; the columns are: {}",
                    known.join(",")
                ))
                .row(1)
                .field(h),
            );
        } else if headers.iter().take(i).any(|earlier| earlier == h) {
            header_errors.push(FieldError::new("column appears twice").row(1).field(h));
        }
    }
    if !header_errors.is_empty() {
        return Err(Problem::invalid(
            "the header line is not valid",
            header_errors,
        ));
    }

    let mut parsed = Parsed {
        rows: Vec::new(),
        numbers: Vec::new(),
        errors: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    let mut n = 0usize;
    loop {
        let row = reader.position().record() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = record.position().map_or(row, |p| p.record() + 1);
                match record.deserialize::<R>(Some(&headers)) {
                    Ok(r) => {
                        parsed.rows.push(r);
                        parsed.numbers.push(row);
                    }
                    Err(e) => {
                        let error = csv_row_error(&e, row, &headers);
                        if let Some(missing) = missing_column(&error, &headers) {
                            return Err(Problem::invalid(
                                "a required column is missing",
                                vec![FieldError::new("required column is missing")
                                    .row(1)
                                    .field(missing)],
                            ));
                        }
                        parsed.errors.push(error);
                    }
                }
            }
            Err(e) => {
                let row = e.position().map_or(row, |p| p.record() + 1);
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!(
                        "has {len} fields, the header has {expected_len} (a stray comma or quote?)"
                    ),
                    _ => e.to_string(),
                };
                parsed.errors.push(FieldError::new(reason).row(row));
            }
        }
        n += 1;
        if n % PROGRESS_EVERY == 0 {
            progress(reader.position().byte(), text.len() as u64);
        }
    }
    progress(text.len() as u64, text.len() as u64);
    Ok(parsed)
}

fn csv_row_error(e: &csv::Error, row: u64, headers: &csv::StringRecord) -> FieldError {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let error = FieldError::new(err.kind().to_string()).row(row);
            let named = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .map(str::to_owned)
                .or_else(|| json_field(&err.kind().to_string()).map(str::to_owned));
            match named {
                Some(f) => error.field(f),
                None => error,
            }
        }
        _ => FieldError::new(e.to_string()).row(row),
    }
}

/// A "missing field" error about a column the header does not have: the column is missing
/// from the whole file, so it is reported once rather than on every row.
fn missing_column(error: &FieldError, headers: &csv::StringRecord) -> Option<String> {
    let field = error.field.as_deref()?;
    (error.reason.contains("missing field") && !headers.iter().any(|h| h == field))
        .then(|| field.to_owned())
}

fn parse_json_rows<R>(text: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<Parsed<R>, Problem>
where
    R: DeserializeOwned + Serialize + Default,
{
    let known = columns::<R>();
    let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        let mut p = json_problem(&e);
        p.detail = Some(format!(
            "the body must be a JSON array of objects with the fields {}: {e}",
            known.join(",")
        ));
        p
    })?;
    let mut parsed = Parsed {
        rows: Vec::with_capacity(items.len()),
        numbers: Vec::with_capacity(items.len()),
        errors: Vec::new(),
    };
    let total = items.len().max(1);
    for (i, item) in items.into_iter().enumerate() {
        let row = i as u64 + 1;
        let Some(object) = item.as_object() else {
            parsed
                .errors
                .push(FieldError::new("expected a JSON object").row(row));
            continue;
        };
        let unknown: Vec<FieldError> = object
            .keys()
            .filter(|k| !known.iter().any(|c| c == *k))
            .map(|k| {
                FieldError::new(format!(
                    "unknown field; the fields are: {}",
                    known.join(",")
                ))
                .row(row)
                .field(k.as_str())
            })
            .collect();
        if !unknown.is_empty() {
            parsed.errors.extend(unknown);
            continue;
        }
        match serde_json::from_value::<R>(item.clone()) {
            Ok(r) => {
                parsed.rows.push(r);
                parsed.numbers.push(row);
            }
            Err(e) => parsed.errors.extend(json_row_errors::<R>(&item, &e, row)),
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            progress((text.len() * (i + 1) / total) as u64, text.len() as u64);
        }
    }
    progress(text.len() as u64, text.len() as u64);
    Ok(parsed)
}

/// Names the bad fields of a JSON row: serde's message names a missing field but not a field of
/// the wrong type, so each given field is tried alone on a default row.
fn json_row_errors<R>(item: &serde_json::Value, e: &serde_json::Error, row: u64) -> Vec<FieldError>
where
    R: DeserializeOwned + Serialize + Default,
{
    let message = e.to_string();
    if let Some(field) = json_field(&message) {
        return vec![FieldError::new(message.clone()).row(row).field(field)];
    }
    let (Ok(serde_json::Value::Object(base)), Some(object)) =
        (serde_json::to_value(R::default()), item.as_object())
    else {
        return vec![FieldError::new(message).row(row)];
    };
    let bad: Vec<FieldError> = object
        .iter()
        .filter_map(|(k, v)| {
            let mut probe = base.clone();
            probe.insert(k.clone(), v.clone());
            serde_json::from_value::<R>(serde_json::Value::Object(probe))
                .err()
                .map(|e| FieldError::new(e.to_string()).row(row).field(k.as_str()))
        })
        .collect();
    if bad.is_empty() {
        vec![FieldError::new(message).row(row)]
    } else {
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::import::{CameraRow, GridRow, IntervalRow};

    fn no_progress() -> impl FnMut(u64, u64) {
        |_, _| {}
    }

    #[test]
    fn columns_come_from_the_row_shape() {
        assert_eq!(
            columns::<GridRow>(),
            ["code", "name", "level_label", "parent", "polygon"]
        );
        assert_eq!(
            columns::<IntervalRow>(),
            ["subject", "kind", "start", "end"]
        );
        assert!(columns::<CameraRow>().contains(&"shared_upward".to_owned()));
    }

    #[test]
    fn csv_rows_are_numbered_like_a_spreadsheet_and_bad_rows_named() {
        let text = "code,name,parent\nr,Root,\na,\"A, quoted\",r\nb,B\nc,C,r\n";
        let p: Parsed<GridRow> = parse(text, FileFormat::Csv, &mut no_progress()).unwrap();
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.numbers, [2, 3, 5]);
        assert_eq!(p.rows[1].name, "A, quoted");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].row, Some(4));
        assert!(p.errors[0].reason.contains("2 fields"), "{:?}", p.errors);
    }

    #[test]
    fn csv_type_errors_name_the_column() {
        let text = "id,effective_from,name,source,grid,lat,lon\n,2024-01-01T00:00:00Z,x,rtsp,g,north,117\n";
        let p: Parsed<CameraRow> = parse(text, FileFormat::Csv, &mut no_progress()).unwrap();
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].row, Some(2));
        assert_eq!(p.errors[0].field.as_deref(), Some("lat"));
    }

    #[test]
    fn csv_header_problems_fail_the_whole_file() {
        let p = parse::<GridRow>("code,nmae\nr,Root\n", FileFormat::Csv, &mut no_progress())
            .unwrap_err();
        assert_eq!(p.errors[0].field.as_deref(), Some("nmae"));
        assert_eq!(p.errors[0].row, Some(1));
        let p =
            parse::<GridRow>("code,parent\nr,\n", FileFormat::Csv, &mut no_progress()).unwrap_err();
        assert_eq!(p.errors[0].field.as_deref(), Some("name"));
        assert_eq!(p.errors[0].reason, "required column is missing");
        let p =
            parse::<GridRow>("code,name,code\n", FileFormat::Csv, &mut no_progress()).unwrap_err();
        assert_eq!(p.errors[0].reason, "column appears twice");
        assert!(parse::<GridRow>("", FileFormat::Csv, &mut no_progress()).is_err());
    }

    #[test]
    fn json_rows_name_unknown_and_mistyped_fields() {
        let text = r#"[
            {"code": "r", "name": "Root"},
            {"code": "a", "name": "A", "colour": "red"},
            {"code": "b"},
            "not an object",
            {"code": "c", "name": 7}
        ]"#;
        let p: Parsed<GridRow> = parse(text, FileFormat::Json, &mut no_progress()).unwrap();
        assert_eq!(p.rows.len(), 1);
        let got: Vec<(Option<u64>, Option<&str>)> = p
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(2), Some("colour")),
                (Some(3), Some("name")),
                (Some(4), None),
                (Some(5), Some("name")),
            ]
        );
        assert!(parse::<GridRow>("{}", FileFormat::Json, &mut no_progress()).is_err());
    }
}
