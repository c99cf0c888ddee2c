//! Decoding uploaded text files: integrators' spreadsheets arrive as UTF-8 (with or without a
//! BOM) or as GB18030/GBK (what Excel on a Chinese Windows saves as "CSV").
//!
//! The rule: a declared `charset` wins and must decode cleanly; otherwise a UTF-8 BOM or clean
//! UTF-8 means UTF-8; otherwise clean GB18030 (a superset of GBK and GB2312) means GB18030;
//! otherwise the file is rejected with the byte offset of the first undecodable sequence. We never
//! substitute U+FFFD silently: a mangled name in a camera record is worse than a rejected upload.

use encoding_rs::{Encoding, GB18030, UTF_8};

/// Why a body could not be turned into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("unknown charset {0:?}; use utf-8, gbk, gb2312 or gb18030")]
    UnknownCharset(String),
    #[error("the body is not valid {encoding}: undecodable bytes at offset {offset}")]
    Undecodable {
        encoding: &'static str,
        offset: usize,
    },
}

/// Which encoding a body turned out to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedEncoding {
    Utf8,
    Gb18030,
}

impl DetectedEncoding {
    /// `utf-8` or `gb18030`.
    pub fn code(self) -> &'static str {
        match self {
            DetectedEncoding::Utf8 => "utf-8",
            DetectedEncoding::Gb18030 => "gb18030",
        }
    }
}

/// Decodes `bytes` following the module's rule. `charset` is the `charset` parameter of the
/// request's `Content-Type`, if any.
pub fn decode(
    bytes: &[u8],
    charset: Option<&str>,
) -> Result<(String, DetectedEncoding), TextError> {
    if let Some(label) = charset {
        let encoding = Encoding::for_label(label.trim().as_bytes())
            .ok_or_else(|| TextError::UnknownCharset(label.to_owned()))?;
        return if encoding == UTF_8 {
            decode_strict(UTF_8, strip_utf8_bom(bytes)).map(|s| (s, DetectedEncoding::Utf8))
        } else if encoding == GB18030 || encoding == encoding_rs::GBK {
            // GBK and GB2312 labels map to encoding_rs's GBK decoder, which decodes GB18030's
            // two-byte range; decoding as GB18030 accepts the same files and more.
            decode_strict(GB18030, bytes).map(|s| (s, DetectedEncoding::Gb18030))
        } else {
            Err(TextError::UnknownCharset(label.to_owned()))
        };
    }
    let unbommed = strip_utf8_bom(bytes);
    if let Ok(text) = std::str::from_utf8(unbommed) {
        return Ok((text.to_owned(), DetectedEncoding::Utf8));
    }
    match decode_strict(GB18030, bytes) {
        Ok(text) => Ok((text, DetectedEncoding::Gb18030)),
        // Report against UTF-8: a file that is neither is far more often broken UTF-8.
        Err(_) => Err(TextError::Undecodable {
            encoding: "UTF-8 or GB18030",
            offset: std::str::from_utf8(unbommed)
                .err()
                .map(|e| e.valid_up_to() + (bytes.len() - unbommed.len()))
                .unwrap_or(0),
        }),
    }
}

fn strip_utf8_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn decode_strict(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, TextError> {
    match encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(text.into_owned()),
        None => Err(TextError::Undecodable {
            encoding: encoding.name(),
            offset: first_error_offset(encoding, bytes),
        }),
    }
}

/// Finds where decoding first fails, for the error message.
fn first_error_offset(encoding: &'static Encoding, bytes: &[u8]) -> usize {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    match result {
        encoding_rs::DecoderResult::Malformed(bad, _) => read.saturating_sub(bad as usize),
        _ => read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "网格" (grid) in GB18030/GBK.
    const WANGGE_GBK: &[u8] = &[0xCD, 0xF8, 0xB8, 0xF1];

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode("网格".as_bytes(), None).unwrap().0, "网格");
        let mut bommed = b"\xEF\xBB\xBF".to_vec();
        bommed.extend_from_slice("网格".as_bytes());
        assert_eq!(
            decode(&bommed, None).unwrap(),
            ("网格".to_owned(), DetectedEncoding::Utf8)
        );
    }

    #[test]
    fn gbk_bytes_are_detected_as_gb18030() {
        assert_eq!(
            decode(WANGGE_GBK, None).unwrap(),
            ("网格".to_owned(), DetectedEncoding::Gb18030)
        );
    }

    #[test]
    fn declared_charset_is_used() {
        assert_eq!(decode(WANGGE_GBK, Some("GBK")).unwrap().0, "网格");
        assert_eq!(decode(WANGGE_GBK, Some("gb2312")).unwrap().0, "网格");
        assert!(matches!(
            decode(WANGGE_GBK, Some("utf-8")),
            Err(TextError::Undecodable { offset: 0, .. })
        ));
        assert!(matches!(
            decode(b"a", Some("klingon")),
            Err(TextError::UnknownCharset(_))
        ));
    }

    #[test]
    fn garbage_is_rejected_with_an_offset() {
        let err = decode(b"abc\xFF\xFFdef", None).unwrap_err();
        assert_eq!(
            err,
            TextError::Undecodable {
                encoding: "UTF-8 or GB18030",
                offset: 3
            }
        );
    }
}
