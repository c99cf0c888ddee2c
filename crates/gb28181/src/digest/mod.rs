//! HTTP digest authentication as SIP uses it (RFC 2617, RFC 7616; RFC 2069 compatibility).
//!
//! - [`Challenge`] / [`Credentials`]: the `WWW-Authenticate` and `Authorization` values.
//! - [`compute_response`]: the digest itself (MD5 or SHA-256; with or without `qop=auth`).
//! - [`server`]: our registrar side — stateless, source-bound nonces with an embedded timestamp,
//!   verification with a password book, and per-source failure counting with temporary bans.
//! - [`client`]: the cascade side — answering an upper platform's challenge.

pub mod client;
pub mod server;

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::sip::values::{split_outside_quotes, unquote};
use crate::token::hex;

pub use client::{authorize, choose_challenge};
pub use server::{
    AuthContext, AuthFailure, AuthPolicy, BanPolicy, DigestServer, FailureTracker, NonceStatus,
    PasswordBook, Verification, Verified,
};

/// Why a digest header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// The scheme is not `Digest`.
    #[error("{header}: scheme {scheme:?} is not Digest")]
    NotDigest {
        /// Header name.
        header: &'static str,
        /// The scheme found.
        scheme: String,
    },
    /// A required parameter is absent.
    #[error("{header}: missing parameter {param}")]
    MissingParam {
        /// Header name.
        header: &'static str,
        /// Parameter name.
        param: &'static str,
    },
    /// An algorithm we do not implement (`MD5-sess`, `SHA-512-256`, ...).
    #[error("{header}: unsupported algorithm {value:?}")]
    UnsupportedAlgorithm {
        /// Header name.
        header: &'static str,
        /// The value.
        value: String,
    },
    /// A parameter with an invalid value.
    #[error("{header}: parameter {param} has invalid value {value:?}")]
    InvalidParam {
        /// Header name.
        header: &'static str,
        /// Parameter name.
        param: &'static str,
        /// The value (truncated).
        value: String,
    },
}

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 2617); what GB/T 28181-2016 devices use.
    Md5,
    /// SHA-256 (RFC 7616); offered to GB/T 28181-2022 devices.
    Sha256,
}

impl Algorithm {
    /// Parses an `algorithm=` value (case-insensitive).
    pub fn parse(header: &'static str, value: &str) -> Result<Algorithm, DigestError> {
        if value.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if value.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(DigestError::UnsupportedAlgorithm {
                header,
                value: value.chars().take(32).collect(),
            })
        }
    }

    /// The token.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash_hex(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 => {
                let mut h = Md5::new();
                for p in parts {
                    h.update(p);
                }
                hex(&h.finalize())
            }
            Algorithm::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                hex(&h.finalize())
            }
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `Digest a=b, c="d"` into (lower-cased name, unquoted value) pairs.
fn parse_auth_params(
    header: &'static str,
    value: &str,
) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim();
    let (scheme, rest) = match value.find(|c: char| c.is_whitespace()) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest {
            header,
            scheme: scheme.chars().take(32).collect(),
        });
    }
    let mut out = Vec::new();
    for part in split_outside_quotes(rest, ',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let Some((k, v)) = part.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), unquote(v)));
        }
    }
    Ok(out)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm (the 10-digit SIP domain for GB servers).
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Algorithm, `None` when the header omits it (which means MD5).
    pub algorithm: Option<Algorithm>,
    /// Offered qop values (`auth`, `auth-int`).
    pub qop: Vec<String>,
    /// Opaque value to echo.
    pub opaque: Option<String>,
    /// Whether the previous nonce was stale.
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` (or `Proxy-Authenticate`) value.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        const H: &str = "WWW-Authenticate";
        let p = parse_auth_params(H, value)?;
        let realm = get(&p, "realm").ok_or(DigestError::MissingParam {
            header: H,
            param: "realm",
        })?;
        let nonce = get(&p, "nonce").ok_or(DigestError::MissingParam {
            header: H,
            param: "nonce",
        })?;
        let algorithm = get(&p, "algorithm")
            .map(|a| Algorithm::parse(H, a))
            .transpose()?;
        let qop = get(&p, "qop")
            .map(|q| {
                q.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            algorithm,
            qop,
            opaque: get(&p, "opaque").map(str::to_owned),
            stale: get(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Serializes. The algorithm is always written when set — Dahua NVRs refuse a challenge
    /// without `algorithm=MD5` — and unquoted, as in the eXosip challenge of vector 02.
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        );
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque={}", quote(o)));
        }
        if let Some(a) = self.algorithm {
            s.push_str(&format!(", algorithm={a}"));
        }
        if !self.qop.is_empty() {
            s.push_str(&format!(", qop={}", quote(&self.qop.join(","))));
        }
        if self.stale {
            s.push_str(", stale=TRUE");
        }
        s
    }

    /// The algorithm in effect (MD5 when omitted).
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

/// An `Authorization: Digest ...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (GB devices use their device ID).
    pub username: String,
    /// Realm echoed from the challenge.
    pub realm: String,
    /// Nonce echoed from the challenge.
    pub nonce: String,
    /// The digest URI.
    pub uri: String,
    /// The response digest (hex).
    pub response: String,
    /// Algorithm as sent (`None` means MD5).
    pub algorithm: Option<Algorithm>,
    /// `qop` (only `auth` is supported).
    pub qop: Option<String>,
    /// Nonce count, 8 hex digits, required with qop.
    pub nc: Option<String>,
    /// Client nonce, required with qop.
    pub cnonce: Option<String>,
    /// Opaque echoed.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` value.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        const H: &str = "Authorization";
        let p = parse_auth_params(H, value)?;
        let req = |param: &'static str| {
            get(&p, param)
                .map(str::to_owned)
                .ok_or(DigestError::MissingParam { header: H, param })
        };
        let c = Credentials {
            username: req("username")?,
            realm: req("realm")?,
            nonce: req("nonce")?,
            uri: req("uri")?,
            response: req("response")?,
            algorithm: get(&p, "algorithm")
                .map(|a| Algorithm::parse(H, a))
                .transpose()?,
            qop: get(&p, "qop").map(str::to_ascii_lowercase),
            nc: get(&p, "nc").map(str::to_owned),
            cnonce: get(&p, "cnonce").map(str::to_owned),
            opaque: get(&p, "opaque").map(str::to_owned),
        };
        if let Some(q) = &c.qop {
            if q != "auth" {
                return Err(DigestError::InvalidParam {
                    header: H,
                    param: "qop",
                    value: q.clone(),
                });
            }
            if c.nc.is_none() {
                return Err(DigestError::MissingParam {
                    header: H,
                    param: "nc",
                });
            }
            if c.cnonce.is_none() {
                return Err(DigestError::MissingParam {
                    header: H,
                    param: "cnonce",
                });
            }
        }
        Ok(c)
    }

    /// Serializes in the parameter order devices and eXosip use (vector 03).
    pub fn to_header_value(&self) -> String {
        let mut s = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        );
        if let Some(a) = self.algorithm {
            s.push_str(&format!(", algorithm={a}"));
        }
        if let (Some(q), Some(nc), Some(cn)) = (&self.qop, &self.nc, &self.cnonce) {
            s.push_str(&format!(", qop={q}, nc={nc}, cnonce={}", quote(cn)));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque={}", quote(o)));
        }
        s
    }
}

/// `qop=auth` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    /// Nonce count (8 hex digits as sent).
    pub nc: &'a str,
    /// Client nonce.
    pub cnonce: &'a str,
}

/// Inputs of one digest computation.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// User name.
    pub username: &'a str,
    /// Realm.
    pub realm: &'a str,
    /// Password.
    pub password: &'a str,
    /// Request method (`REGISTER`).
    pub method: &'a str,
    /// Digest URI.
    pub uri: &'a str,
    /// Server nonce.
    pub nonce: &'a str,
    /// `Some` for qop=auth, `None` for RFC 2069 style.
    pub qop: Option<QopAuth<'a>>,
}

/// Computes the `response` value (lower-case hex).
pub fn compute_response(i: &DigestInput<'_>) -> String {
    let a = i.algorithm;
    let ha1 = a.hash_hex(&[
        i.username.as_bytes(),
        b":",
        i.realm.as_bytes(),
        b":",
        i.password.as_bytes(),
    ]);
    let ha2 = a.hash_hex(&[i.method.as_bytes(), b":", i.uri.as_bytes()]);
    match i.qop {
        Some(q) => a.hash_hex(&[
            ha1.as_bytes(),
            b":",
            i.nonce.as_bytes(),
            b":",
            q.nc.as_bytes(),
            b":",
            q.cnonce.as_bytes(),
            b":auth:",
            ha2.as_bytes(),
        ]),
        None => a.hash_hex(&[
            ha1.as_bytes(),
            b":",
            i.nonce.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;
    use crate::testdata::vector;

    #[test]
    fn rfc2617_section_3_5_example() {
        let r = compute_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_section_3_9_1_examples() {
        // RFC 7616 3.9.1 (password "Circle of Life", lower-case "of", erratum 4495).
        let mut i = DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            }),
        };
        assert_eq!(compute_response(&i), "8ca523f5e9506fed4657c9700eebdbec");
        i.algorithm = Algorithm::Sha256;
        assert_eq!(
            compute_response(&i),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2069_style_without_qop() {
        // The RFC 2069 computation (no qop) as used by many cameras; value cross-checked with
        // an independent implementation (the digest-access crate's RFC 2069 test).
        let r = compute_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "CircleOfLife",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: None,
        });
        assert_eq!(r, "1949323746fe6a43ef61f9606e7febea");
    }

    #[test]
    fn parses_the_real_challenge_and_credentials() {
        let m = parse_datagram(vector("02_server_401_unauthorized.sip")).unwrap();
        let c = Challenge::parse(&m.www_authenticate()[0]).unwrap();
        assert_eq!(c.realm, "34020000");
        assert_eq!(c.nonce, "1715926053");
        assert_eq!(c.algorithm, Some(Algorithm::Md5));
        assert!(c.qop.is_empty());
        let back = Challenge::parse(&c.to_header_value()).unwrap();
        assert_eq!(back, c);

        let m = parse_datagram(vector("03_dahua_register_with_authorization.sip")).unwrap();
        let cr = Credentials::parse(&m.authorization().unwrap()).unwrap();
        assert_eq!(cr.username, "34020000001320000002");
        assert_eq!(cr.realm, "34020000");
        assert_eq!(cr.nonce, "1715926053");
        assert_eq!(cr.uri, "sip:34020000002000000010@192.168.6.106:5062");
        assert_eq!(cr.response, "fa983ee8abd2b6ff36b857c660b06f67");
        assert_eq!(cr.algorithm, Some(Algorithm::Md5));
        assert_eq!(cr.qop, None);
        assert_eq!(Credentials::parse(&cr.to_header_value()).unwrap(), cr);
    }

    #[test]
    fn header_errors_name_the_parameter() {
        assert_eq!(
            Credentials::parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\""),
            Err(DigestError::MissingParam {
                header: "Authorization",
                param: "response"
            })
        );
        assert!(matches!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest { .. })
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=MD5-sess"),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert_eq!(
            Credentials::parse("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth, cnonce=\"c\""),
            Err(DigestError::MissingParam { header: "Authorization", param: "nc" })
        );
        // Quoted algorithm and odd casing are accepted.
        let c = Challenge::parse(
            "digest REALM=\"x\",nonce=\"y\",algorithm=\"sha-256\",qop=\"auth,auth-int\"",
        )
        .unwrap();
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
    }
}
