//! Typed header values: Via, name-addr (From/To/Contact), CSeq, Content-Type, X-GB-Ver.

use std::fmt;
use std::net::IpAddr;

use super::error::SipError;
use super::header::HeaderName;
use super::method::Method;
use super::uri::{split_host_port, SipUri};

/// A `;name[=value]` parameter. Values keep their quotes stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as received.
    pub name: String,
    /// Value, if any (`;lr` has none).
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: &str, value: Option<&str>) -> Param {
        Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }
}

/// Splits `s` on `sep` outside double quotes and angle brackets.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => angle += 1,
            '>' => angle = angle.saturating_sub(1),
            c if c == sep && angle == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Removes surrounding double quotes and backslash escapes.
pub(crate) fn unquote(s: &str) -> String {
    let s = s.trim();
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut esc = false;
            for c in inner.chars() {
                if esc {
                    out.push(c);
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => s.to_owned(),
    }
}

/// Parses `a=1;b;c="x;y"` into parameters (empty names are dropped).
pub(crate) fn parse_params(s: &str) -> Vec<Param> {
    split_outside_quotes(s, ';')
        .into_iter()
        .filter_map(|p| {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            Some(match p.split_once('=') {
                Some((n, v)) => Param {
                    name: n.trim().to_owned(),
                    value: Some(unquote(v)),
                },
                None => Param {
                    name: p.to_owned(),
                    value: None,
                },
            })
        })
        .collect()
}

/// Writes `;name[=value]` for each parameter, quoting values that need it.
pub(crate) fn write_params(f: &mut impl fmt::Write, params: &[Param]) -> fmt::Result {
    for p in params {
        write!(f, ";{}", p.name)?;
        if let Some(v) = &p.value {
            if v.bytes()
                .all(|b| super::method::is_token_byte(b) || b == b':' || b == b'[' || b == b']')
                && !v.is_empty()
            {
                write!(f, "={v}")?;
            } else {
                write!(f, "=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))?;
            }
        }
    }
    Ok(())
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// One Via element: `SIP/2.0/UDP 192.168.6.71:5060;rport;branch=z9hG4bK1251336551`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`).
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters in order.
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one Via element (not a comma-separated list).
    pub fn parse(s: &str) -> Result<Via, SipError> {
        let bad = |reason: &'static str| SipError::InvalidHeader {
            name: HeaderName::Via,
            value: s.chars().take(200).collect(),
            reason,
        };
        let s = s.trim();
        // sent-protocol may carry LWS around the slashes: "SIP / 2.0 / UDP".
        let mut parts = s.splitn(3, '/');
        let proto = parts.next().unwrap_or_default().trim();
        let version = parts
            .next()
            .ok_or_else(|| bad("no protocol version"))?
            .trim();
        let rest = parts
            .next()
            .ok_or_else(|| bad("no transport"))?
            .trim_start();
        if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad("not SIP/2.0"));
        }
        let t_end = rest
            .find(|c: char| c.is_whitespace())
            .ok_or_else(|| bad("no sent-by"))?;
        let transport = rest[..t_end].to_ascii_uppercase();
        let rest = rest[t_end..].trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], parse_params(&rest[i + 1..])),
            None => (rest, Vec::new()),
        };
        let (host, port) = split_host_port(sent_by).ok_or_else(|| bad("bad sent-by port"))?;
        if host.is_empty() {
            return Err(bad("empty sent-by host"));
        }
        Ok(Via {
            transport,
            host: host.to_owned(),
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").and_then(|p| p.value.as_deref())
    }

    /// `rport`: `None` if absent, `Some(None)` if present without a value (a request asking
    /// for symmetric response routing, RFC 3581), `Some(Some(port))` if filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        find_param(&self.params, "rport").map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }

    /// The `received` parameter as an address.
    pub fn received(&self) -> Option<IpAddr> {
        find_param(&self.params, "received")
            .and_then(|p| p.value.as_deref())
            .and_then(|v| v.trim_matches(|c| c == '[' || c == ']').parse().ok())
    }

    /// Sets (or replaces) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => p.value = value.map(str::to_owned),
            None => self.params.push(Param::new(name, value)),
        }
    }

    /// The sent-by as `host[:port]`, used in transaction keys.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        write_params(f, &self.params)
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted (may be Chinese text).
    pub display: Option<String>,
    /// The URI.
    pub uri: SipUri,
    /// Header parameters after the URI (`tag`, `expires`).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// A name-addr around a URI.
    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Parses `"name" <sip:...>;tag=x` or `sip:...;tag=x`.
    pub fn parse(name: HeaderName, s: &str) -> Result<NameAddr, SipError> {
        let s = s.trim();
        let bad = |reason: &'static str| SipError::InvalidHeader {
            name: name.clone(),
            value: s.chars().take(200).collect(),
            reason,
        };
        if let Some(lt) = s.find('<') {
            let gt = s[lt..].find('>').ok_or_else(|| bad("'<' without '>'"))? + lt;
            let display = unquote(&s[..lt]);
            let uri = SipUri::parse(&s[lt + 1..gt]).map_err(|_| bad("invalid URI"))?;
            let rest = s[gt + 1..].trim_start();
            let params = match rest.strip_prefix(';') {
                Some(p) => parse_params(p),
                None => Vec::new(),
            };
            Ok(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                params,
            })
        } else {
            // addr-spec without brackets: parameters after the URI belong to the header.
            let (u, p) = match s.find(';') {
                Some(i) => (&s[..i], parse_params(&s[i + 1..])),
                None => (s, Vec::new()),
            };
            let uri = SipUri::parse(u).map_err(|_| bad("invalid URI"))?;
            Ok(NameAddr {
                display: None,
                uri,
                params: p,
            })
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").and_then(|p| p.value.as_deref())
    }

    /// A header parameter by name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// Sets the tag (replacing any).
    pub fn set_tag(&mut self, tag: &str) {
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case("tag"))
        {
            Some(p) => p.value = Some(tag.to_owned()),
            None => self.params.push(Param::new("tag", Some(tag))),
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// `CSeq: 20 MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `20 MESSAGE`.
    pub fn parse(s: &str) -> Result<CSeq, SipError> {
        let bad = |reason: &'static str| SipError::InvalidHeader {
            name: HeaderName::CSeq,
            value: s.chars().take(100).collect(),
            reason,
        };
        let mut it = s.split_whitespace();
        let seq = it
            .next()
            .ok_or_else(|| bad("empty"))?
            .parse()
            .map_err(|_| bad("sequence number is not a 32-bit integer"))?;
        let m = it.next().ok_or_else(|| bad("no method"))?;
        if it.next().is_some() {
            return Err(bad("trailing text"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(m),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type such as `Application/MANSCDP+xml`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Type, lower-cased.
    pub top: String,
    /// Subtype, lower-cased.
    pub sub: String,
    /// Parameters (`charset`).
    pub params: Vec<Param>,
}

impl MediaType {
    /// Parses `type/subtype;params`; `None` when there is no slash.
    pub fn parse(s: &str) -> Option<MediaType> {
        let (ts, params) = match s.find(';') {
            Some(i) => (&s[..i], parse_params(&s[i + 1..])),
            None => (s, Vec::new()),
        };
        let (t, st) = ts.split_once('/')?;
        Some(MediaType {
            top: t.trim().to_ascii_lowercase(),
            sub: st.trim().to_ascii_lowercase(),
            params,
        })
    }

    /// `application/manscdp+xml` in any case (devices send `Application/MANSCDP+xml`).
    pub fn is_manscdp(&self) -> bool {
        self.top == "application" && self.sub == "manscdp+xml"
    }

    /// Any XML type (`application/xml`, `text/xml`, `*/*+xml`): accepted as MANSCDP from
    /// devices that label their bodies generically.
    pub fn is_xml(&self) -> bool {
        self.sub == "xml" || self.sub.ends_with("+xml")
    }

    /// `application/sdp` in any case (Hikvision NVRs send `application/SDP`).
    pub fn is_sdp(&self) -> bool {
        self.top == "application" && self.sub == "sdp"
    }

    /// `application/rtsp` / `application/mansrtsp` (INFO playback control).
    pub fn is_rtsp(&self) -> bool {
        self.top == "application" && (self.sub == "rtsp" || self.sub == "mansrtsp")
    }

    /// The `charset` parameter.
    pub fn charset(&self) -> Option<&str> {
        find_param(&self.params, "charset").and_then(|p| p.value.as_deref())
    }
}

/// The GB/T 28181 edition a peer speaks, from `X-GB-Ver` (GB/T 28181-2022 annex I:
/// `1.0` = 2011, `2.0` = 2016, `3.0` = 2022).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GbVersion {
    /// GB/T 28181-2011.
    V2011,
    /// GB/T 28181-2016 (also assumed when a device sends no `X-GB-Ver`).
    V2016,
    /// GB/T 28181-2022.
    V2022,
}

impl GbVersion {
    /// Maps an `X-GB-Ver` value; `None` for values we do not know (kept raw by callers).
    pub fn from_header(value: &str) -> Option<GbVersion> {
        let v = value.trim();
        let major = v.split('.').next()?.trim();
        match major {
            "1" => Some(GbVersion::V2011),
            "2" => Some(GbVersion::V2016),
            "3" => Some(GbVersion::V2022),
            _ => None,
        }
    }

    /// The `X-GB-Ver` value for this edition.
    pub fn header_value(self) -> &'static str {
        match self {
            GbVersion::V2011 => "1.0",
            GbVersion::V2016 => "2.0",
            GbVersion::V2022 => "3.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_parse_and_params() {
        let v = Via::parse("SIP/2.0/UDP 192.168.6.71:5060;rport;branch=z9hG4bK1251336551").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.168.6.71");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK1251336551"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), None);
        // Vector 78: received and a filled-in rport.
        let v = Via::parse("SIP/2.0/UDP 192.100.100.125:5060;received=192.168.1.125;rport=5060;branch=z9hG4bK.wAF3TBVMMrwiOOCPVxcc7D6ngsp4t9jK").unwrap();
        assert_eq!(v.received(), Some("192.168.1.125".parse().unwrap()));
        assert_eq!(v.rport(), Some(Some(5060)));
        assert_eq!(v.branch(), Some("z9hG4bK.wAF3TBVMMrwiOOCPVxcc7D6ngsp4t9jK"));
        // LWS inside sent-protocol is legal.
        let v = Via::parse("SIP / 2.0 / tcp host;branch=z9hG4bKx").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.port, None);
        assert!(Via::parse("SIP/3.0/UDP h").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            HeaderName::From,
            "<sip:34020000001320000002@192.168.6.71:5060>;tag=2088733642",
        )
        .unwrap();
        assert_eq!(n.tag(), Some("2088733642"));
        assert_eq!(n.uri.user.as_deref(), Some("34020000001320000002"));
        let n = NameAddr::parse(HeaderName::To, "\"Cam \\\"1\\\"\" <sip:a@b>").unwrap();
        assert_eq!(n.display.as_deref(), Some("Cam \"1\""));
        assert_eq!(n.tag(), None);
        let n = NameAddr::parse(HeaderName::Contact, "sip:a@b:5060;expires=60").unwrap();
        assert_eq!(
            n.param("expires").and_then(|p| p.value.as_deref()),
            Some("60")
        );
        assert!(NameAddr::parse(HeaderName::To, "<sip:a@b").is_err());
        let mut n = NameAddr::parse(HeaderName::To, "<sip:a@b>").unwrap();
        n.set_tag("99");
        assert_eq!(n.to_string(), "<sip:a@b>;tag=99");
    }

    #[test]
    fn cseq_and_media_type() {
        let c = CSeq::parse("20 MESSAGE").unwrap();
        assert_eq!((c.seq, c.method.clone()), (20, Method::Message));
        assert!(CSeq::parse("x MESSAGE").is_err());
        assert!(CSeq::parse("99999999999 MESSAGE").is_err());
        assert!(MediaType::parse("Application/MANSCDP+xml")
            .unwrap()
            .is_manscdp());
        assert!(MediaType::parse("application/SDP").unwrap().is_sdp());
        assert!(MediaType::parse("Application/RTSP").unwrap().is_rtsp());
        assert_eq!(
            MediaType::parse("text/plain; charset=\"GB2312\"")
                .unwrap()
                .charset(),
            Some("GB2312")
        );
    }

    #[test]
    fn params_with_quotes_and_escapes() {
        let p = parse_params(r#"a=1;b; c="x;y" ;d="q\"z""#);
        assert_eq!(p.len(), 4);
        assert_eq!(p[2].value.as_deref(), Some("x;y"));
        assert_eq!(p[3].value.as_deref(), Some("q\"z"));
        let mut s = String::new();
        write_params(&mut s, &p).unwrap();
        assert_eq!(parse_params(&s[1..]), p);
    }

    #[test]
    fn gb_versions() {
        assert_eq!(GbVersion::from_header(" 3.0 "), Some(GbVersion::V2022));
        assert_eq!(GbVersion::from_header("2.0"), Some(GbVersion::V2016));
        assert_eq!(GbVersion::from_header("1.0"), Some(GbVersion::V2011));
        assert_eq!(GbVersion::from_header("9"), None);
    }
}
