//! Character encoding of MANSCDP bodies.
//!
//! Devices declare `GB2312` (Dahua, vectors 05-17), `gb2312` (Hikvision, 36/70), nothing
//! (eXosip queries, 07) or UTF-8, and do not always mean it. Decision order:
//! 1. a byte-order mark wins;
//! 2. a body with no byte above 0x7F is ASCII, whatever it declares;
//! 3. a declared UTF-8 (or no declaration) is used if the bytes are valid UTF-8, otherwise the
//!    body is decoded as GB18030 ([`Quirk::Utf8InvalidDecodedAsGb`]);
//! 4. a declared non-UTF-8 encoding is used, except when the bytes are valid UTF-8 with non-ASCII
//!    text: that is overwhelmingly a device that declares GB2312 but writes UTF-8
//!    ([`Quirk::DeclaredEncodingWasUtf8`]) — GBK text essentially never forms valid UTF-8;
//! 5. GB2312 and GBK are decoded with the GB18030 decoder (a strict superset), so characters
//!    outside GB2312 that devices emit anyway survive.

use encoding_rs::{Encoding, GB18030, UTF_8};

use crate::quirks::{Quirk, QuirkSet};

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text.
    pub text: String,
    /// The encoding actually used.
    pub encoding: &'static Encoding,
    /// The label from the XML declaration, if any.
    pub declared: Option<String>,
    /// Quirks applied.
    pub quirks: QuirkSet,
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of `bytes`.
pub fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(256)];
    let start = head.windows(5).position(|w| w == b"<?xml")?;
    let end = head[start..].windows(2).position(|w| w == b"?>")? + start;
    let decl = std::str::from_utf8(&head[start..end]).ok()?;
    let i = decl.find("encoding")?;
    let rest = decl[i + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let rest = &rest[1..];
    let label = &rest[..rest.find(quote)?];
    Some(label.trim().to_owned())
}

/// Decodes a MANSCDP body (see the module documentation for the rules).
pub fn decode_body(bytes: &[u8]) -> Decoded {
    let mut quirks = QuirkSet::new();
    let declared = declared_encoding(bytes);
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return Decoded {
            text: text.into_owned(),
            encoding: enc,
            declared,
            quirks,
        };
    }
    let declared_enc = match &declared {
        Some(label) => match Encoding::for_label(label.as_bytes()) {
            Some(e) => Some(e),
            None => {
                quirks.insert(Quirk::UnknownDeclaredEncoding);
                None
            }
        },
        None => None,
    };
    let ascii = bytes.is_ascii();
    let utf8 = std::str::from_utf8(bytes).ok();
    let (text, encoding) = match (declared_enc, utf8) {
        _ if ascii => (
            utf8.unwrap_or_default().to_owned(),
            declared_enc.unwrap_or(UTF_8),
        ),
        (None, Some(s)) => (s.to_owned(), UTF_8),
        (Some(e), Some(s)) if e == UTF_8 => (s.to_owned(), UTF_8),
        (None, None) => {
            quirks.insert(Quirk::Utf8InvalidDecodedAsGb);
            (
                GB18030.decode_without_bom_handling(bytes).0.into_owned(),
                GB18030,
            )
        }
        (Some(e), None) if e == UTF_8 => {
            quirks.insert(Quirk::Utf8InvalidDecodedAsGb);
            (
                GB18030.decode_without_bom_handling(bytes).0.into_owned(),
                GB18030,
            )
        }
        (Some(_), Some(s)) => {
            quirks.insert(Quirk::DeclaredEncodingWasUtf8);
            (s.to_owned(), UTF_8)
        }
        (Some(e), None) => {
            // GB2312 and GBK map to encoding_rs's GBK, whose decoder is GB18030's.
            let e = if e == encoding_rs::GBK { GB18030 } else { e };
            (e.decode_without_bom_handling(bytes).0.into_owned(), e)
        }
    };
    Decoded {
        text,
        encoding,
        declared,
        quirks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::vector;

    #[test]
    fn real_gb2312_bodies_decode() {
        let d = decode_body(vector(
            "74_dahua_ivss_catalog_sumnum4_sn1_ch1_gb2312_body.xml",
        ));
        assert_eq!(d.declared.as_deref(), Some("GB2312"));
        assert_eq!(d.encoding, GB18030);
        assert!(d.text.contains("<Name>大华1.107</Name>"));
        assert!(d.quirks.is_empty());
        let d = decode_body(vector("75_dahua_ivss_alarm_notify_gb2312_body.xml"));
        assert!(d.text.contains("视频动检"));
    }

    #[test]
    fn ascii_bodies_ignore_the_declaration() {
        let body = vector("71_dahua_ivss_catalog_sumnum4_sn4_ch2_body.xml");
        let d = decode_body(body);
        assert_eq!(d.declared.as_deref(), Some("GB2312"));
        assert_eq!(d.text.as_bytes(), body);
    }

    #[test]
    fn quirk_declared_encoding_was_utf8() {
        // Vector 74 re-encoded as UTF-8 but still declaring GB2312.
        let gb = decode_body(vector(
            "74_dahua_ivss_catalog_sumnum4_sn1_ch1_gb2312_body.xml",
        ))
        .text;
        let d = decode_body(gb.as_bytes());
        assert!(d.quirks.contains(Quirk::DeclaredEncodingWasUtf8));
        assert_eq!(d.encoding, UTF_8);
        assert!(d.text.contains("大华1.107"));
    }

    #[test]
    fn quirk_utf8_invalid_decoded_as_gb() {
        // Vector 76 (real GB2312 bytes) with the declaration changed to UTF-8, and removed.
        let raw = vector("76_dahua_ipc_catalog_gb2312_body.xml");
        let text_pos = raw.windows(6).position(|w| w == b"GB2312").unwrap();
        let mut lying = raw[..text_pos].to_vec();
        lying.extend_from_slice(b"UTF-8");
        lying.extend_from_slice(&raw[text_pos + 6..]);
        let d = decode_body(&lying);
        assert!(d.quirks.contains(Quirk::Utf8InvalidDecodedAsGb));
        assert!(d.text.contains("大华1.107"));
        let nl = raw.iter().position(|&b| b == b'\n').unwrap();
        let d = decode_body(&raw[nl + 1..]);
        assert_eq!(d.declared, None);
        assert!(d.quirks.contains(Quirk::Utf8InvalidDecodedAsGb));
        assert!(d.text.contains("大华1.107"));
    }

    #[test]
    fn quirk_unknown_declared_encoding_and_gb18030_and_bom() {
        // Vector 74 (real GB2312 bytes) declaring an encoding nobody knows.
        let raw = vector("74_dahua_ivss_catalog_sumnum4_sn1_ch1_gb2312_body.xml");
        let pos = raw.windows(6).position(|w| w == b"GB2312").unwrap();
        let mut b = raw[..pos].to_vec();
        b.extend_from_slice(b"x-nonsense");
        b.extend_from_slice(&raw[pos + 6..]);
        let d = decode_body(&b);
        assert!(d.quirks.contains(Quirk::UnknownDeclaredEncoding));
        assert!(d.text.contains("大华1.107"));
        // GB18030 four-byte sequence (U+20000) declared as GB2312: decoded by the superset.
        let mut b = b"<?xml version='1.0' encoding='gb2312'?><a>".to_vec();
        b.extend_from_slice(&[0x95, 0x32, 0x82, 0x36]);
        b.extend_from_slice(b"</a>");
        assert!(decode_body(&b).text.contains('\u{20000}'));
        let mut b = vec![0xef, 0xbb, 0xbf];
        b.extend_from_slice("<a>é</a>".as_bytes());
        let d = decode_body(&b);
        assert_eq!(d.text, "<a>é</a>");
    }
}
