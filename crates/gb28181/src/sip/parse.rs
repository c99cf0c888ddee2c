//! The lenient SIP parser.
//!
//! Accepted beyond RFC 3261: bare-LF line ends, leading empty lines, odd header-name casing and
//! compact forms, whitespace around the colon and in values (`Content-Length:   180`), folded
//! continuation lines, non-UTF-8 bytes in header values and bodies, header lines without a
//! colon (skipped), and on UDP a missing or wrong `Content-Length` (see [`BodyFraming`]).
//! Every deviation that is not plain RFC leniency is recorded as a [`Quirk`].

use bytes::{Bytes, BytesMut};

use super::error::SipError;
use super::header::{Header, HeaderName};
use super::message::{Message, RequestLine, StartLine, StatusLine};
use super::method::{is_token_byte, Method};
use crate::quirks::{Quirk, QuirkSet};

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// A whole UDP datagram: a missing Content-Length means "rest of the datagram", a
    /// Content-Length beyond the datagram is tolerated ([`Quirk::ShortBodyUdp`]), extra bytes
    /// are discarded ([`Quirk::ExcessBytesUdp`]).
    Datagram,
    /// A message already framed by the stream framer: the bytes after the header block are
    /// exactly the body.
    Framed,
}

/// Parser limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Maximum number of header lines.
    pub max_headers: usize,
    /// Maximum header block size in bytes (stream framer; a datagram is bounded anyway).
    pub max_header_bytes: usize,
    /// Maximum body size in bytes (a 10 000-item catalog is sent in many packets; one
    /// MESSAGE body stays far below this).
    pub max_body_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_headers: 256,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Parses one UDP datagram.
pub fn parse_datagram(data: impl Into<Bytes>) -> Result<Message, SipError> {
    parse_message(data.into(), BodyFraming::Datagram, &ParseLimits::default())
}

/// The parsed head of a message: start line, headers, and where the body starts.
pub(crate) struct Head {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body_offset: usize,
    pub quirks: QuirkSet,
}

/// Finds the end of the header block in `data` (after any leading line ends). Returns the
/// offset of the first body byte, or `None` if the block is not complete yet.
pub(crate) fn find_header_end(data: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < data.len() {
        match memchr_lf(&data[i..]) {
            None => return None,
            Some(off) => {
                let next = i + off + 1;
                // An empty line is "\n" or "\r\n" right after a line end.
                if data.get(next) == Some(&b'\n') {
                    return Some(next + 1);
                }
                if data.get(next) == Some(&b'\r') && data.get(next + 1) == Some(&b'\n') {
                    return Some(next + 2);
                }
                if next >= data.len() || (data[next] == b'\r' && next + 1 >= data.len()) {
                    return None;
                }
                i = next;
            }
        }
    }
    None
}

fn memchr_lf(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// Number of leading CR/LF bytes (RFC 3261 7.5: ignore empty lines before the start line).
pub(crate) fn leading_line_ends(data: &[u8]) -> usize {
    data.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn lossy_trunc(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(128)]).into_owned()
}

/// Parses the start line.
pub(crate) fn parse_start_line(line: &[u8]) -> Result<StartLine, SipError> {
    let bad = |reason: &'static str| SipError::InvalidStartLine {
        line: lossy_trunc(line),
        reason,
    };
    let line = trim_ws(line);
    if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
        let rest = trim_ws(&line[8..]);
        let (code, reason) = match rest.iter().position(|b| b.is_ascii_whitespace()) {
            Some(i) => (&rest[..i], trim_ws(&rest[i..])),
            None => (rest, &b""[..]),
        };
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(bad("status code is not three digits"));
        }
        let code = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        if !(100..=699).contains(&code) {
            return Err(bad("status code outside 100-699"));
        }
        // Reason phrases may be GBK text; decode leniently.
        let reason = match std::str::from_utf8(reason) {
            Ok(s) => s.to_owned(),
            Err(_) => encoding_rs::GB18030
                .decode_without_bom_handling(reason)
                .0
                .into_owned(),
        };
        return Ok(StartLine::Response(StatusLine { code, reason }));
    }
    let mut parts = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|p| !p.is_empty());
    let method = parts.next().ok_or_else(|| bad("empty"))?;
    let uri = parts.next().ok_or_else(|| bad("no Request-URI"))?;
    let version = parts.next().ok_or_else(|| bad("no SIP version"))?;
    if parts.next().is_some() {
        return Err(bad("extra tokens"));
    }
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(bad("version is not SIP/2.0"));
    }
    if !method.iter().all(|&b| is_token_byte(b)) {
        return Err(bad("method is not a token"));
    }
    let method = std::str::from_utf8(method).map_err(|_| bad("method is not ASCII"))?;
    let uri = std::str::from_utf8(uri).map_err(|_| bad("Request-URI is not ASCII"))?;
    Ok(StartLine::Request(RequestLine {
        method: Method::from_token(method),
        uri: uri.to_owned(),
    }))
}

/// Parses start line and headers from `data` (which must contain the complete header block).
pub(crate) fn parse_head(data: &Bytes, limits: &ParseLimits) -> Result<Head, SipError> {
    let mut quirks = QuirkSet::new();
    let mut pos = leading_line_ends(data);
    if pos == data.len() {
        return Err(SipError::Empty);
    }
    let body_offset =
        find_header_end(&data[pos..])
            .map(|e| pos + e)
            .ok_or(SipError::UnterminatedHeaders {
                len: data.len() - pos,
            })?;

    // Split the header block into lines.
    let mut lines: Vec<(usize, usize)> = Vec::new();
    while pos < body_offset {
        let off = memchr_lf(&data[pos..body_offset]).unwrap_or(body_offset - pos);
        let end = pos + off;
        let crlf = end > pos && data[end - 1] == b'\r';
        if !crlf && end < body_offset {
            quirks.insert(Quirk::BareLfLineEndings);
        }
        let content_end = if crlf { end - 1 } else { end };
        if content_end > pos {
            lines.push((pos, content_end));
        }
        pos = end + 1;
    }
    let (first, rest) = lines.split_first().ok_or(SipError::Empty)?;
    let start = parse_start_line(&data[first.0..first.1])?;

    let mut headers: Vec<Header> = Vec::with_capacity(rest.len());
    // Whether the last header was assembled from folded lines (owned bytes).
    let mut folded: Option<BytesMut> = None;
    for &(s, e) in rest {
        let line = &data[s..e];
        if line[0] == b' ' || line[0] == b'\t' {
            // Continuation (LWS folding): append to the previous value with one space.
            if let Some(last) = headers.last_mut() {
                let buf = folded.get_or_insert_with(|| BytesMut::from(&last.value[..]));
                let cont = trim_ws(line);
                if !cont.is_empty() {
                    if !buf.is_empty() {
                        buf.extend_from_slice(b" ");
                    }
                    buf.extend_from_slice(cont);
                }
                last.value = Bytes::copy_from_slice(buf);
            } else {
                quirks.insert(Quirk::MalformedHeaderLineSkipped);
            }
            continue;
        }
        folded = None;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            quirks.insert(Quirk::MalformedHeaderLineSkipped);
            continue;
        };
        let name = trim_ws(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            quirks.insert(Quirk::MalformedHeaderLineSkipped);
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(SipError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        // `name` is all token bytes, hence ASCII.
        let name = HeaderName::from_wire(std::str::from_utf8(name).unwrap_or_default());
        let raw_value = &line[colon + 1..];
        let v = trim_ws(raw_value);
        let value = if v.is_empty() {
            Bytes::new()
        } else {
            let off = v.as_ptr() as usize - data.as_ptr() as usize;
            data.slice(off..off + v.len())
        };
        headers.push(Header { name, value });
    }
    Ok(Head {
        start,
        headers,
        body_offset,
        quirks,
    })
}

/// The Content-Length from parsed headers: `Ok(None)` if absent; an error if unparsable or if
/// two values disagree.
pub(crate) fn content_length(headers: &[Header]) -> Result<Option<usize>, SipError> {
    let mut found: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        let v = std::str::from_utf8(&h.value)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .ok_or_else(|| SipError::InvalidHeader {
                name: HeaderName::ContentLength,
                value: lossy_trunc(&h.value),
                reason: "not a non-negative integer",
            })?;
        match found {
            Some(f) if f != v => {
                return Err(SipError::ConflictingContentLength {
                    first: f,
                    second: v,
                })
            }
            _ => found = Some(v),
        }
    }
    Ok(found)
}

/// Parses a complete message with the given body framing.
pub fn parse_message(
    data: Bytes,
    framing: BodyFraming,
    limits: &ParseLimits,
) -> Result<Message, SipError> {
    let head = parse_head(&data, limits)?;
    let mut quirks = head.quirks;
    let available = data.len() - head.body_offset;
    let cl = content_length(&head.headers)?;
    let body_len = match (framing, cl) {
        (BodyFraming::Framed, _) => available,
        (BodyFraming::Datagram, None) => {
            if available > 0 {
                quirks.insert(Quirk::MissingContentLengthUdp);
            }
            available
        }
        (BodyFraming::Datagram, Some(n)) if n > available => {
            quirks.insert(Quirk::ShortBodyUdp);
            available
        }
        (BodyFraming::Datagram, Some(n)) => {
            if n < available {
                quirks.insert(Quirk::ExcessBytesUdp);
            }
            n
        }
    };
    if body_len > limits.max_body_bytes {
        return Err(SipError::BodyTooLarge {
            len: body_len,
            limit: limits.max_body_bytes,
        });
    }
    if let StartLine::Response(s) = &head.start {
        if s.code == 101 {
            quirks.insert(Quirk::DahuaDialogEstablishment101);
        }
    }
    let body = data.slice(head.body_offset..head.body_offset + body_len);
    Ok(Message {
        start: head.start,
        headers: head.headers,
        body,
        quirks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::vector;

    #[test]
    fn parses_vector_05_keepalive() {
        let m = parse_datagram(vector("05_dahua_keepalive.sip")).unwrap();
        assert_eq!(m.method(), Some(&Method::Message));
        assert_eq!(m.body.len(), 180);
        assert_eq!(m.cseq().unwrap().seq, 20);
        assert!(m.content_type().unwrap().unwrap().is_manscdp());
        assert!(m.quirks.is_empty(), "{:?}", m.quirks);
    }

    #[test]
    fn bare_lf_compact_forms_and_folding() {
        let raw = b"\r\n\r\nMESSAGE sip:34020000002000000001@3402000000 SIP/2.0\n\
v: SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK1\n\
f: <sip:34020000001320000001@3402000000>;tag=1\n\
t: <sip:34020000002000000001@3402000000>\n\
i: abc\n\
CSEQ :  7 MESSAGE\n\
Subject: a,\n  b\n\
l: 3\n\
c: Application/MANSCDP+xml\n\
\nxyz";
        let m = parse_datagram(Bytes::from_static(raw)).unwrap();
        assert!(m.quirks.contains(Quirk::BareLfLineEndings));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(m.from().unwrap().tag(), Some("1"));
        assert_eq!(m.call_id().unwrap(), "abc");
        assert_eq!(m.cseq().unwrap().seq, 7);
        assert_eq!(m.subject().unwrap(), "a, b");
        assert_eq!(&m.body[..], b"xyz");
    }

    #[test]
    fn quirk_bare_lf_line_endings() {
        // Vector 09 (Dahua catalog) with every CRLF of its head turned into LF.
        let raw = vector("09_dahua_catalog_response.sip");
        let text = std::str::from_utf8(raw).unwrap().replace("\r\n", "\n");
        let m = parse_datagram(Bytes::from(text)).unwrap();
        assert!(m.quirks.contains(Quirk::BareLfLineEndings));
        assert_eq!(m.body.len(), 898);
        assert_eq!(
            m.header_str(&HeaderName::UserAgent).unwrap(),
            "SIP UAS V3.0.0.675168"
        );
        let crlf = parse_datagram(vector("09_dahua_catalog_response.sip")).unwrap();
        assert_eq!(m.headers, crlf.headers);
    }

    #[test]
    fn quirk_dahua_dialog_establishment_101() {
        let m = parse_datagram(vector("21_dahua_invite_101_dialog_establishement.sip")).unwrap();
        assert!(m.quirks.contains(Quirk::DahuaDialogEstablishment101));
        match &m.start {
            StartLine::Response(s) => {
                assert_eq!((s.code, s.reason.as_str()), (101, "Dialog Establishement"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.to().unwrap().tag(), Some("1504032660"));
    }

    #[test]
    fn quirk_missing_content_length_udp() {
        // Vector 05 with its Content-Length header removed: the body is the rest.
        let raw = vector("05_dahua_keepalive.sip");
        let text = std::str::from_utf8(raw)
            .unwrap()
            .replace("Content-Length:   180\r\n", "");
        let m = parse_datagram(Bytes::from(text)).unwrap();
        assert!(m.quirks.contains(Quirk::MissingContentLengthUdp));
        assert_eq!(m.body.len(), 180);
    }

    #[test]
    fn quirk_short_body_udp_hikvision_plus_one() {
        // Vector 70 as the Hikvision NVR sent it: Content-Length 909 for a 908-byte body
        // (SOURCES.md: the original value; the file carries the corrected 908).
        let raw = vector("70_hik_nvr_catalog_response_sumnum8_num2.sip");
        let text = std::str::from_utf8(raw).unwrap();
        assert!(text.contains("Content-Length:   908\r\n"));
        let wire = text.replace("Content-Length:   908\r\n", "Content-Length:   909\r\n");
        let m = parse_datagram(Bytes::from(wire)).unwrap();
        assert!(m.quirks.contains(Quirk::ShortBodyUdp));
        assert_eq!(m.body.len(), 908);
        assert!(m.body.ends_with(b"</Response>\n"));
        // Same for vector 36 (777 announced, 776 published).
        let raw = std::str::from_utf8(vector("36_hik_nvr_recordinfo_response.sip")).unwrap();
        let wire = raw.replace("Content-Length:   776", "Content-Length:   777");
        let m = parse_datagram(Bytes::from(wire)).unwrap();
        assert!(m.quirks.contains(Quirk::ShortBodyUdp));
        assert_eq!(m.body.len(), 776);
    }

    #[test]
    fn quirk_excess_bytes_udp_discarded() {
        let mut raw = vector("06_server_keepalive_200ok.sip").to_vec();
        raw.extend_from_slice(b"\0\0garbage");
        let m = parse_datagram(Bytes::from(raw)).unwrap();
        assert!(m.quirks.contains(Quirk::ExcessBytesUdp));
        assert!(m.body.is_empty());
    }

    #[test]
    fn quirk_malformed_header_line_skipped() {
        // Vector 01 (Dahua REGISTER) with two broken lines inserted after the Via.
        let text = std::str::from_utf8(vector("01_dahua_register_noauth.sip")).unwrap();
        let broken = text.replacen("\r\nRoute:", "\r\nnot a header\r\n: empty\r\nRoute:", 1);
        let m = parse_datagram(Bytes::from(broken)).unwrap();
        assert!(m.quirks.contains(Quirk::MalformedHeaderLineSkipped));
        let clean = parse_datagram(vector("01_dahua_register_noauth.sip")).unwrap();
        assert_eq!(m.headers, clean.headers);
    }

    #[test]
    fn gbk_bytes_in_header_values_and_reason() {
        let raw = b"SIP/2.0 200 \xb3\xc9\xb9\xa6\r\nFrom: \"\xb4\xf3\xbb\xaa\" <sip:1@2>;tag=9\r\nContent-Length: 0\r\n\r\n";
        let m = parse_datagram(Bytes::from_static(raw)).unwrap();
        match &m.start {
            StartLine::Response(s) => assert_eq!(s.reason, "成功"),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.from().unwrap().display.as_deref(), Some("大华"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            parse_datagram(Bytes::from_static(b"\r\n\r\n")),
            Err(SipError::Empty)
        );
        assert!(matches!(
            parse_datagram(Bytes::from_static(b"HELLO\r\n\r\n")),
            Err(SipError::InvalidStartLine { .. })
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(b"SIP/2.0 2000 OK\r\n\r\n")),
            Err(SipError::InvalidStartLine { .. })
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(
                b"REGISTER sip:a@b SIP/2.0\r\nVia: x\r\n"
            )),
            Err(SipError::UnterminatedHeaders { .. })
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(
                b"REGISTER sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n"
            )),
            Err(SipError::InvalidHeader {
                name: HeaderName::ContentLength,
                ..
            })
        ));
        assert!(matches!(
            parse_datagram(Bytes::from_static(
                b"REGISTER sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab"
            )),
            Err(SipError::ConflictingContentLength {
                first: 1,
                second: 2
            })
        ));
    }
}
