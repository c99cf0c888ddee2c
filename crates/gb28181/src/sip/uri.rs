//! SIP URIs (`sip:user@host:port;params?headers`), parsed leniently.

use std::fmt;

use super::error::SipError;
use super::values::{parse_params, write_params, Param};

/// A SIP or SIPS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips` (lower-cased).
    pub scheme: String,
    /// The user part (a GB device ID in every GB/T 28181 message).
    pub user: Option<String>,
    /// Host: an IP address, a host name, or a bare SIP domain such as `3402000000` (the GB form,
    /// vectors 36, 60, 70). Never resolved: requests and responses go to the address a peer
    /// was last seen at. IPv6 keeps its brackets.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;lr`, `;transport=tcp`).
    pub params: Vec<Param>,
    /// Headers part after `?`, verbatim.
    pub headers: Option<String>,
}

impl SipUri {
    /// A `sip:user@host[:port]` URI.
    pub fn new(user: Option<&str>, host: &str, port: Option<u16>) -> SipUri {
        SipUri {
            scheme: "sip".into(),
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    /// Parses a URI such as `sip:34020000001320000002@192.168.6.71:5060;lr`.
    pub fn parse(s: &str) -> Result<SipUri, SipError> {
        let s = s.trim();
        let err = |reason: &'static str| SipError::InvalidUri {
            uri: s.chars().take(128).collect(),
            reason,
        };
        let (scheme, rest) = s.split_once(':').ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(err("scheme is not sip or sips"));
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((a, b)) => (a, Some(b.to_owned())),
            None => (rest, None),
        };
        // The user part ends at the last '@' before the host; a ';' may legally occur in the
        // user part, so split on '@' first.
        let (user, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], parse_params(&hostpart[i + 1..])),
            None => (hostpart, Vec::new()),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| err("bad host or port"))?;
        if host.is_empty() {
            return Err(err("empty host"));
        }
        Ok(SipUri {
            scheme,
            user: user.filter(|u| !u.is_empty()).map(str::to_owned),
            host: host.to_owned(),
            port,
            params,
            headers,
        })
    }

    /// A URI parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Splits `host[:port]`, keeping IPv6 brackets. `None` when the port is not a u16.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = &s[end + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.trim().parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.trim(), Some(p.trim().parse().ok()?))),
        None => Some((s, None)),
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gb_uris() {
        let u = SipUri::parse("sip:34020000001320000002@192.168.6.106:5062;lr").unwrap();
        assert_eq!(u.user.as_deref(), Some("34020000001320000002"));
        assert_eq!(u.host, "192.168.6.106");
        assert_eq!(u.port, Some(5062));
        assert!(u.param("LR").is_some());
        assert_eq!(
            u.to_string(),
            "sip:34020000001320000002@192.168.6.106:5062;lr"
        );
    }

    #[test]
    fn domain_as_uri_host() {
        // Vector 36 (Hikvision NVR) and 70: the host is the SIP domain, not an address.
        let u = SipUri::parse("sip:34020000002000000010@3402000000").unwrap();
        assert_eq!(u.host, "3402000000");
        assert_eq!(u.port, None);
        assert!(u.host.parse::<std::net::IpAddr>().is_err());
        let u = SipUri::parse("sip:34020000001110000001@3402000000.spvmn.cn").unwrap();
        assert_eq!(u.host, "3402000000.spvmn.cn");
    }

    #[test]
    fn ipv6_and_errors() {
        let u = SipUri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert!(SipUri::parse("http://x").is_err());
        assert!(SipUri::parse("sip:a@host:99999").is_err());
        assert!(SipUri::parse("sip:").is_err());
    }
}
