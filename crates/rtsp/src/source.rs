//! Where a camera's stream comes from: the URL (credentials kept apart and never shown), the
//! transport and the handshake timeouts.

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// Why an RTSP URL was refused. The messages never repeat the URL text (it may carry a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a valid URL: {0}")]
    Parse(#[from] url::ParseError),
    #[error("the URL scheme is `{0}`, expected `rtsp`")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL's {0} is not valid UTF-8 after percent-decoding")]
    Encoding(&'static str),
}

/// An `rtsp://` URL without user information. `Display` and `Debug` also mask the values of
/// query parameters that look like secrets (policy [`is_secret_query_key`]: some cameras take
/// `?user=…&password=…` in the query), so the URL can go to logs, states and the API as is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RtspUrl(url::Url);

impl RtspUrl {
    /// Parses `text`, taking `user:password@` out of it. The URL sent to the camera is the
    /// rest; the credentials are offered when the camera asks (Basic or Digest).
    pub fn parse(text: &str) -> Result<(RtspUrl, Option<Credentials>), UrlError> {
        let mut url = url::Url::parse(text.trim())?;
        if url.scheme() != "rtsp" {
            return Err(UrlError::Scheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |part: &str, what| {
                percent_decode_str(part)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| UrlError::Encoding(what))
            };
            Some(Credentials::new(
                decode(url.username(), "user name")?,
                decode(url.password().unwrap_or(""), "password")?,
            ))
        };
        // Both setters only fail for URLs that cannot have credentials (no host), ruled out
        // above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok((RtspUrl(url), credentials))
    }

    /// The URL retina requests (query secrets included: the camera needs them).
    pub(crate) fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// `host:port` (port 554 when the URL has none).
    pub fn authority(&self) -> String {
        let host = self.0.host_str().unwrap_or_default();
        let port = self.0.port().unwrap_or(554);
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// The path (e.g. `/Streaming/Channels/101`).
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// The query parameter values that [`Display`](fmt::Display) masks; [`Redactor`] removes
    /// them from third-party messages too.
    fn secret_query_values(&self) -> impl Iterator<Item = String> + '_ {
        self.0
            .query_pairs()
            .filter(|(k, _)| is_secret_query_key(k))
            .map(|(_, v)| v.into_owned())
    }
}

/// Policy `SecretQueryKeys`: a query parameter is treated as a secret when its name contains
/// `pass`, `pwd`, `token`, `secret`, `auth` or `key` (case-insensitive), which covers the
/// `password=`/`pwd=`/`passwd=`/`authcode=` spellings seen on cameras and NVRs.
pub fn is_secret_query_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "token", "secret", "auth", "key"]
        .iter()
        .any(|s| key.contains(s))
}

impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.query().is_none() {
            return f.write_str(self.0.as_str());
        }
        let mut shown = self.0.clone();
        let pairs: Vec<(String, String)> = self
            .0
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_query_key(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtspUrl({self})")
    }
}

impl Serialize for RtspUrl {
    /// Serialised redacted, like `Display`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A user name and password for the camera. There is no `Display` or `Serialize`; `Debug`
/// shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn to_retina(&self) -> retina::client::Credentials {
        retina::client::Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// How RTP travels from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection: passes NAT and firewalls, no loss.
    #[default]
    Tcp,
    /// RTP/UDP: LAN only (retina has no reorder buffer; a reordered packet is a lost one).
    Udp,
}

/// Handshake timeouts of one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect plus `DESCRIBE` (including the 401 round trip of authentication); retina
    /// does both in one call, so they share one limit.
    pub describe: Duration,
    /// Each of `SETUP` and `PLAY`.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            describe: Duration::from_secs(10),
            request: Duration::from_secs(10),
        }
    }
}

/// One camera's stream: everything needed to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSource {
    pub url: RtspUrl,
    pub credentials: Option<Credentials>,
    pub transport: Transport,
    pub timeouts: Timeouts,
}

impl CameraSource {
    /// A source with default transport (TCP) and timeouts.
    pub fn new(url: RtspUrl, credentials: Option<Credentials>) -> Self {
        Self {
            url,
            credentials,
            transport: Transport::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Parses a URL that may carry `user:password@`.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let (url, credentials) = RtspUrl::parse(text)?;
        Ok(Self::new(url, credentials))
    }

    /// The source of a camera filed in the register: its stored URL (never with credentials)
    /// and its stored credentials, which the register keeps as written in the URL
    /// (percent-encoded) and which are decoded here exactly as [`RtspUrl::parse`] decodes
    /// them.
    pub fn from_record(
        url: &vigil_core::camera::RtspUrl,
        credentials: Option<&vigil_core::camera::RtspCredentials>,
    ) -> Result<Self, UrlError> {
        let (url, _) = RtspUrl::parse(url.as_str())?;
        let credentials = match credentials {
            None => None,
            Some(c) => {
                let decode = |part: &str, what| {
                    percent_decode_str(part)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| UrlError::Encoding(what))
                };
                Some(Credentials::new(
                    decode(&c.username, "user name")?,
                    decode(&c.password, "password")?,
                ))
            }
        };
        Ok(Self::new(url, credentials))
    }

    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// A redactor for messages that third-party code built about this source.
    pub(crate) fn redactor(&self) -> Redactor {
        let mut secrets: Vec<String> = self.url.secret_query_values().collect();
        if let Some(c) = &self.credentials {
            secrets.push(c.password.clone());
        }
        // A very short secret would blank out ordinary characters all over the message; such
        // a password is not worth hiding at that cost (and is unlikely to be echoed anyway).
        secrets.retain(|s| s.len() >= 3);
        // Longest first, so that a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }
}

/// Removes a source's secrets (password, secret query values) from text that we did not
/// write ourselves, such as retina's error messages, before it reaches a log or a state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url_and_decoded() {
        let (url, creds) =
            RtspUrl::parse("rtsp://admin:p%40ss%3Aw0rd@192.168.1.64:8554/Streaming/Channels/101")
                .unwrap();
        assert_eq!(
            url.to_string(),
            "rtsp://192.168.1.64:8554/Streaming/Channels/101"
        );
        assert_eq!(url.as_url().username(), "");
        assert_eq!(url.as_url().password(), None);
        let creds = creds.unwrap();
        assert_eq!(creds.username(), "admin");
        assert_eq!(creds.password, "p@ss:w0rd");
        assert_eq!(url.authority(), "192.168.1.64:8554");
        assert_eq!(url.path(), "/Streaming/Channels/101");
    }

    #[test]
    fn register_records_give_the_same_source_as_the_url_they_came_from() {
        let text = "rtsp://admin:p%40ss%3Aw0rd@192.168.1.64:8554/Streaming/Channels/101";
        let (url, creds) = vigil_core::camera::RtspUrl::parse(text).unwrap();
        let from_record = CameraSource::from_record(&url, creds.as_ref()).unwrap();
        assert_eq!(from_record, CameraSource::parse(text).unwrap());
        let creds = from_record.credentials.unwrap();
        assert_eq!(
            (creds.username(), creds.password.as_str()),
            ("admin", "p@ss:w0rd")
        );
        let (url, _) = vigil_core::camera::RtspUrl::parse("rtsps://h/x").unwrap();
        assert!(matches!(
            CameraSource::from_record(&url, None),
            Err(UrlError::Scheme(_))
        ));
    }

    #[test]
    fn urls_without_credentials_have_none() {
        let (url, creds) = RtspUrl::parse("rtsp://cam.example/live").unwrap();
        assert!(creds.is_none());
        assert_eq!(url.authority(), "cam.example:554");
    }

    #[test]
    fn secret_query_values_are_masked_when_shown_but_sent_to_the_camera() {
        let (url, _) =
            RtspUrl::parse("rtsp://10.0.0.9/live?channel=1&user=admin&password=hunter22&subtype=0")
                .unwrap();
        let shown = url.to_string();
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
        assert!(shown.contains("channel=1") && shown.contains("subtype=0"));
        assert!(format!("{url:?}").contains("password=***"));
        assert_eq!(serde_json::to_string(&url).unwrap(), format!("\"{shown}\""));
        assert!(url.as_url().as_str().contains("password=hunter22"));
    }

    #[test]
    fn secret_query_key_policy() {
        for key in [
            "password", "PWD", "passwd", "authcode", "token", "apikey", "secret",
        ] {
            assert!(is_secret_query_key(key), "{key}");
        }
        for key in ["channel", "subtype", "stream", "user"] {
            assert!(!is_secret_query_key(key), "{key}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let source = CameraSource::parse("rtsp://admin:S3cret!@10.1.1.1/ch1").unwrap();
        let debug = format!("{source:?}");
        assert!(!debug.contains("S3cret!"), "{debug}");
        assert!(debug.contains("admin"), "{debug}");
    }

    #[test]
    fn redactor_scrubs_passwords_and_query_secrets() {
        let source =
            CameraSource::parse("rtsp://admin:S3cret!@10.1.1.1/ch1?pwd=abc123&x=1").unwrap();
        let r = source.redactor();
        assert_eq!(
            r.scrub("bad URL rtsp://10.1.1.1/ch1?pwd=abc123 with S3cret!"),
            "bad URL rtsp://10.1.1.1/ch1?pwd=*** with ***"
        );
        // Too-short secrets are not scrubbed (they would mangle the message).
        let short = CameraSource::parse("rtsp://a:b@h/p").unwrap().redactor();
        assert_eq!(short.scrub("b is for bravo"), "b is for bravo");
    }

    #[test]
    fn refuses_other_schemes_without_echoing_the_text() {
        let err = RtspUrl::parse("http://admin:pw123@h/p").unwrap_err();
        assert_eq!(err, UrlError::Scheme("http".into()));
        assert!(!err.to_string().contains("pw123"));
        assert!(matches!(
            RtspUrl::parse("not a url"),
            Err(UrlError::Parse(_))
        ));
    }
}
