//! SDP, GB/T 28181 flavour (RFC 4566 plus the GB `y=` SSRC and `f=` media description lines).
//!
//! Parsing is lenient: CRLF or LF, a missing final line end, unknown line types kept, `y=`/`f=`
//! accepted anywhere ([`Quirk::GbSdpLinesInMediaSection`]), non-UTF-8 text decoded as GB18030.
//! Building produces our INVITE offer for UDP, TCP passive (we listen) and TCP active (we
//! connect), in the line order the devices in the vectors use.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use thiserror::Error;

use crate::quirks::{Quirk, QuirkSet};
use crate::ssrc::Ssrc;

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// A line that must have a fixed shape does not.
    #[error("SDP line {line_no} {line:?}: {reason}")]
    InvalidLine {
        /// 1-based line number.
        line_no: usize,
        /// The line (truncated).
        line: String,
        /// Why.
        reason: &'static str,
    },
}

/// `s=`: what the session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// Live video.
    Play,
    /// Recorded video at normal speed.
    Playback,
    /// Recorded video as fast as possible.
    Download,
    /// Voice broadcast / talk-back.
    Talk,
    /// Anything else (Hikvision NVR answers `Network Video Recorder`).
    Other(String),
}

impl SessionKind {
    /// Maps `s=` (case-insensitive).
    pub fn parse(s: &str) -> SessionKind {
        match s.trim().to_ascii_lowercase().as_str() {
            "play" => SessionKind::Play,
            "playback" => SessionKind::Playback,
            "download" => SessionKind::Download,
            "talk" => SessionKind::Talk,
            _ => SessionKind::Other(s.trim().to_owned()),
        }
    }

    /// The `s=` text.
    pub fn as_str(&self) -> &str {
        match self {
            SessionKind::Play => "Play",
            SessionKind::Playback => "Playback",
            SessionKind::Download => "Download",
            SessionKind::Talk => "Talk",
            SessionKind::Other(s) => s,
        }
    }

    /// Whether the SSRC must mark history (first digit 1).
    pub fn is_history(&self) -> bool {
        matches!(self, SessionKind::Playback | SessionKind::Download)
    }
}

/// `o=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (GB: the sender's ID).
    pub username: String,
    /// Session ID.
    pub session_id: String,
    /// Session version.
    pub session_version: String,
    /// Network type (`IN`).
    pub net_type: String,
    /// Address type (`IP4`).
    pub addr_type: String,
    /// Address.
    pub address: String,
}

/// `c=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IN`.
    pub net_type: String,
    /// `IP4` / `IP6`.
    pub addr_type: String,
    /// Address (TTL/count suffixes kept).
    pub address: String,
}

impl Connection {
    /// The address as an IP, ignoring any `/ttl` suffix.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }
}

/// Media transport protocol of `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaProto {
    /// `RTP/AVP` (UDP).
    RtpAvp,
    /// `TCP/RTP/AVP` (RFC 4571 framing; some devices write `RTP/AVP/TCP`).
    TcpRtpAvp,
    /// Anything else.
    Other(String),
}

impl MediaProto {
    fn parse(s: &str) -> MediaProto {
        let u = s.to_ascii_uppercase();
        match u.as_str() {
            "RTP/AVP" => MediaProto::RtpAvp,
            "TCP/RTP/AVP" | "RTP/AVP/TCP" => MediaProto::TcpRtpAvp,
            _ => MediaProto::Other(s.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            MediaProto::RtpAvp => "RTP/AVP",
            MediaProto::TcpRtpAvp => "TCP/RTP/AVP",
            MediaProto::Other(s) => s,
        }
    }
}

/// `a=sendonly|recvonly|sendrecv|inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// sendonly.
    SendOnly,
    /// recvonly.
    RecvOnly,
    /// sendrecv.
    SendRecv,
    /// inactive.
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::SendRecv => "sendrecv",
            Direction::Inactive => "inactive",
        }
    }
}

/// `a=setup:` (RFC 4145).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The endpoint connects.
    Active,
    /// The endpoint listens.
    Passive,
    /// Either.
    ActPass,
}

impl Setup {
    fn parse(s: &str) -> Option<Setup> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
        }
    }
}

/// `a=rtpmap:96 PS/90000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name (`PS`, `H264`, `MPEG4`).
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Encoding parameters (channels), if any.
    pub params: Option<String>,
}

/// Any other attribute.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value after the colon.
    pub value: Option<String>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hikvision NVRs put a password in the SDP (vectors 39/50); keep it out of logs.
        if self.name.eq_ignore_ascii_case("password") {
            return write!(f, "a={}:<redacted>", self.name);
        }
        match &self.value {
            Some(v) => write!(f, "a={}:{v}", self.name),
            None => write!(f, "a={}", self.name),
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `video` / `audio`.
    pub kind: String,
    /// Port.
    pub port: u16,
    /// Protocol.
    pub proto: MediaProto,
    /// Format list (payload types as text).
    pub formats: Vec<String>,
    /// `c=` at media level.
    pub connection: Option<Connection>,
    /// rtpmaps.
    pub rtpmaps: Vec<RtpMap>,
    /// Direction.
    pub direction: Option<Direction>,
    /// `a=setup`.
    pub setup: Option<Setup>,
    /// `a=connection:new`.
    pub connection_new: bool,
    /// Other attributes.
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// An attribute value by name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .and_then(|a| a.value.as_deref())
    }
}

/// How media flows between us and the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTransport {
    /// RTP over UDP.
    Udp,
    /// RTP over TCP, we listen (our offer says `a=setup:passive`; the device connects).
    TcpPassive,
    /// RTP over TCP, we connect (our offer says `a=setup:active`; the device listens).
    TcpActive,
}

/// A parsed SDP.
#[derive(Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=`.
    pub origin: Option<Origin>,
    /// `s=`.
    pub session: SessionKind,
    /// `i=`.
    pub info: Option<String>,
    /// `u=` (GB playback: `channel:type`).
    pub uri: Option<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `t=` start and stop (Unix seconds for GB playback; 0 0 for live).
    pub timing: Option<(u64, u64)>,
    /// Session-level attributes.
    pub attributes: Vec<Attribute>,
    /// `m=` sections.
    pub media: Vec<Media>,
    /// `y=` SSRC as written (10 decimal digits).
    pub ssrc: Option<String>,
    /// `f=` media description as written (may be empty).
    pub media_description: Option<String>,
    /// Quirks applied.
    pub quirks: QuirkSet,
}

impl fmt::Debug for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sdp")
            .field("origin", &self.origin)
            .field("session", &self.session)
            .field("uri", &self.uri)
            .field("connection", &self.connection)
            .field("timing", &self.timing)
            .field("attributes", &self.attributes)
            .field("media", &self.media)
            .field("ssrc", &self.ssrc)
            .field("media_description", &self.media_description)
            .field("quirks", &self.quirks)
            .finish()
    }
}

fn parse_connection(v: &str) -> Option<Connection> {
    let mut it = v.split_whitespace();
    Some(Connection {
        net_type: it.next()?.to_owned(),
        addr_type: it.next()?.to_owned(),
        address: it.next()?.to_owned(),
    })
}

fn parse_rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.trim().split_once(char::is_whitespace)?;
    let mut parts = rest.trim().split('/');
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding: parts.next()?.to_owned(),
        clock_rate: parts.next()?.trim().parse().ok()?,
        params: parts.next().map(str::to_owned),
    })
}

impl Sdp {
    /// Parses an SDP body.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = match std::str::from_utf8(body) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => encoding_rs::GB18030.decode_without_bom_handling(body).0,
        };
        let mut sdp = Sdp {
            origin: None,
            session: SessionKind::Other(String::new()),
            info: None,
            uri: None,
            connection: None,
            timing: None,
            attributes: Vec::new(),
            media: Vec::new(),
            ssrc: None,
            media_description: None,
            quirks: QuirkSet::new(),
        };
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_end_matches('\r').trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: &'static str| SdpError::InvalidLine {
                line_no: i + 1,
                line: line.chars().take(100).collect(),
                reason,
            };
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            let in_media = !sdp.media.is_empty();
            match kind.trim() {
                "o" => {
                    let p: Vec<&str> = value.split_whitespace().collect();
                    if p.len() < 6 {
                        return Err(bad("o= needs six fields"));
                    }
                    sdp.origin = Some(Origin {
                        username: p[0].to_owned(),
                        session_id: p[1].to_owned(),
                        session_version: p[2].to_owned(),
                        net_type: p[3].to_owned(),
                        addr_type: p[4].to_owned(),
                        address: p[5].to_owned(),
                    });
                }
                "s" => sdp.session = SessionKind::parse(value),
                "i" if !in_media => sdp.info = Some(value.to_owned()),
                "u" => sdp.uri = Some(value.trim().to_owned()),
                "c" => {
                    let c = parse_connection(value).ok_or_else(|| bad("c= needs three fields"))?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => sdp.connection = Some(c),
                    }
                }
                "t" => {
                    let mut it = value.split_whitespace();
                    let start = it.next().and_then(|s| s.parse().ok());
                    let stop = it.next().and_then(|s| s.parse().ok());
                    match (start, stop) {
                        (Some(a), Some(b)) => sdp.timing = Some((a, b)),
                        _ => return Err(bad("t= needs two integers")),
                    }
                }
                "m" => {
                    let p: Vec<&str> = value.split_whitespace().collect();
                    if p.len() < 3 {
                        return Err(bad("m= needs media, port and protocol"));
                    }
                    let port = p[1]
                        .split('/')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .ok_or_else(|| bad("bad port"))?;
                    sdp.media.push(Media {
                        kind: p[0].to_owned(),
                        port,
                        proto: MediaProto::parse(p[2]),
                        formats: p[3..].iter().map(|s| (*s).to_owned()).collect(),
                        connection: None,
                        rtpmaps: Vec::new(),
                        direction: None,
                        setup: None,
                        connection_new: false,
                        attributes: Vec::new(),
                    });
                }
                "y" => {
                    if in_media {
                        sdp.quirks.insert(Quirk::GbSdpLinesInMediaSection);
                    }
                    sdp.ssrc = Some(value.trim().to_owned());
                }
                "f" => {
                    if in_media {
                        sdp.quirks.insert(Quirk::GbSdpLinesInMediaSection);
                    }
                    sdp.media_description = Some(value.trim().to_owned());
                }
                "a" => {
                    let (name, val) = match value.split_once(':') {
                        Some((n, v)) => (n.trim(), Some(v.trim())),
                        None => (value.trim(), None),
                    };
                    if name.eq_ignore_ascii_case("password")
                        || name.eq_ignore_ascii_case("username")
                    {
                        sdp.quirks.insert(Quirk::CredentialsInSdp);
                    }
                    let Some(m) = sdp.media.last_mut() else {
                        sdp.attributes.push(Attribute {
                            name: name.to_owned(),
                            value: val.map(str::to_owned),
                        });
                        continue;
                    };
                    match (name.to_ascii_lowercase().as_str(), val) {
                        ("rtpmap", Some(v)) => match parse_rtpmap(v) {
                            Some(r) => m.rtpmaps.push(r),
                            None => return Err(bad("bad rtpmap")),
                        },
                        ("sendonly", None) => m.direction = Some(Direction::SendOnly),
                        ("recvonly", None) => m.direction = Some(Direction::RecvOnly),
                        ("sendrecv", None) => m.direction = Some(Direction::SendRecv),
                        ("inactive", None) => m.direction = Some(Direction::Inactive),
                        ("setup", Some(v)) if Setup::parse(v).is_some() => {
                            m.setup = Setup::parse(v)
                        }
                        ("connection", Some(v)) if v.eq_ignore_ascii_case("new") => {
                            m.connection_new = true
                        }
                        _ => m.attributes.push(Attribute {
                            name: name.to_owned(),
                            value: val.map(str::to_owned),
                        }),
                    }
                }
                _ => {}
            }
        }
        if !matches!(
            sdp.session,
            SessionKind::Play | SessionKind::Playback | SessionKind::Download | SessionKind::Talk
        ) {
            sdp.quirks.insert(Quirk::NonGbSessionName);
        }
        Ok(sdp)
    }

    /// The first video section.
    pub fn video(&self) -> Option<&Media> {
        self.media
            .iter()
            .find(|m| m.kind.eq_ignore_ascii_case("video"))
    }

    /// The SSRC from `y=`, if it is a valid GB SSRC.
    pub fn gb_ssrc(&self) -> Option<Ssrc> {
        self.ssrc.as_deref().and_then(|s| Ssrc::parse(s).ok())
    }

    /// Where media flows from this description's point of view: UDP, or TCP with this side
    /// listening (`passive`) or connecting (`active`). TCP without `a=setup` is taken as
    /// active (the RFC 4145 default; SRS's offer in vector 61 omits it).
    pub fn media_transport(&self) -> Option<MediaTransport> {
        let v = self.video()?;
        Some(match v.proto {
            MediaProto::TcpRtpAvp => match v.setup {
                Some(Setup::Passive) => MediaTransport::TcpPassive,
                _ => MediaTransport::TcpActive,
            },
            _ => MediaTransport::Udp,
        })
    }

    /// The media address: the video section's `c=`, else the session's.
    pub fn media_ip(&self) -> Option<IpAddr> {
        self.video()
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
            .and_then(Connection::ip)
    }

    /// Serializes in GB order (v o s i u c t m a... y f), CRLF line ends.
    pub fn to_text(&self) -> String {
        let mut s = String::from("v=0\r\n");
        if let Some(o) = &self.origin {
            let _ = write!(
                s,
                "o={} {} {} {} {} {}\r\n",
                o.username, o.session_id, o.session_version, o.net_type, o.addr_type, o.address
            );
        }
        let _ = write!(s, "s={}\r\n", self.session.as_str());
        if let Some(i) = &self.info {
            let _ = write!(s, "i={i}\r\n");
        }
        if let Some(u) = &self.uri {
            let _ = write!(s, "u={u}\r\n");
        }
        if let Some(c) = &self.connection {
            let _ = write!(s, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address);
        }
        let (a, b) = self.timing.unwrap_or((0, 0));
        let _ = write!(s, "t={a} {b}\r\n");
        for at in &self.attributes {
            write_attr(&mut s, at);
        }
        for m in &self.media {
            let _ = write!(s, "m={} {} {}", m.kind, m.port, m.proto.as_str());
            for f in &m.formats {
                let _ = write!(s, " {f}");
            }
            s.push_str("\r\n");
            if let Some(c) = &m.connection {
                let _ = write!(s, "c={} {} {}\r\n", c.net_type, c.addr_type, c.address);
            }
            if let Some(d) = m.direction {
                let _ = write!(s, "a={}\r\n", d.as_str());
            }
            for r in &m.rtpmaps {
                let _ = write!(
                    s,
                    "a=rtpmap:{} {}/{}",
                    r.payload_type, r.encoding, r.clock_rate
                );
                if let Some(p) = &r.params {
                    let _ = write!(s, "/{p}");
                }
                s.push_str("\r\n");
            }
            if let Some(st) = m.setup {
                let _ = write!(s, "a=setup:{}\r\n", st.as_str());
            }
            if m.connection_new {
                s.push_str("a=connection:new\r\n");
            }
            for at in &m.attributes {
                write_attr(&mut s, at);
            }
        }
        if let Some(y) = &self.ssrc {
            let _ = write!(s, "y={y}\r\n");
        }
        if let Some(f) = &self.media_description {
            let _ = write!(s, "f={f}\r\n");
        }
        s
    }
}

fn write_attr(s: &mut String, a: &Attribute) {
    match &a.value {
        Some(v) => {
            let _ = write!(s, "a={}:{v}\r\n", a.name);
        }
        None => {
            let _ = write!(s, "a={}\r\n", a.name);
        }
    }
}

/// What our INVITE asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferKind {
    /// Live video.
    Play,
    /// Recorded video between two Unix times.
    Playback {
        /// Start (Unix seconds).
        start: u64,
        /// End (Unix seconds).
        end: u64,
    },
    /// Recorded video, fast: `speed` is the download speed factor (`a=downloadspeed`).
    Download {
        /// Start (Unix seconds).
        start: u64,
        /// End (Unix seconds).
        end: u64,
        /// Speed factor (1, 2, 4, 8...).
        speed: u32,
    },
}

/// Our INVITE offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// What we want.
    pub kind: OfferKind,
    /// Our platform ID (`o=` username).
    pub our_id: String,
    /// The channel (for `u=` in playback/download).
    pub channel_id: String,
    /// Our media address.
    pub ip: IpAddr,
    /// Our media port (for TCP active, the port we will connect from, or 9 per RFC 4145).
    pub port: u16,
    /// Transport.
    pub transport: MediaTransport,
    /// The SSRC allocated for this stream.
    pub ssrc: Ssrc,
}

impl Offer {
    /// The SDP for this offer: PS/90000 as PT 96 plus the H264 (98) and MPEG4 (97) rtpmaps that
    /// devices expect to see (vector 19), `a=recvonly`, and for TCP `a=setup` and
    /// `a=connection:new`.
    pub fn to_sdp(&self) -> Sdp {
        let addr_type = if self.ip.is_ipv6() { "IP6" } else { "IP4" };
        let (session, uri, timing, extra) = match &self.kind {
            OfferKind::Play => (SessionKind::Play, None, (0, 0), None),
            OfferKind::Playback { start, end } => (
                SessionKind::Playback,
                Some(format!("{}:0", self.channel_id)),
                (*start, *end),
                None,
            ),
            OfferKind::Download { start, end, speed } => (
                SessionKind::Download,
                Some(format!("{}:0", self.channel_id)),
                (*start, *end),
                Some(Attribute {
                    name: "downloadspeed".into(),
                    value: Some(speed.to_string()),
                }),
            ),
        };
        let tcp = !matches!(self.transport, MediaTransport::Udp);
        Sdp {
            origin: Some(Origin {
                username: self.our_id.clone(),
                session_id: "0".into(),
                session_version: "0".into(),
                net_type: "IN".into(),
                addr_type: addr_type.into(),
                address: self.ip.to_string(),
            }),
            session,
            info: None,
            uri,
            connection: Some(Connection {
                net_type: "IN".into(),
                addr_type: addr_type.into(),
                address: self.ip.to_string(),
            }),
            timing: Some(timing),
            attributes: Vec::new(),
            media: vec![Media {
                kind: "video".into(),
                port: self.port,
                proto: if tcp {
                    MediaProto::TcpRtpAvp
                } else {
                    MediaProto::RtpAvp
                },
                formats: vec!["96".into(), "98".into(), "97".into()],
                connection: None,
                rtpmaps: vec![
                    RtpMap {
                        payload_type: 96,
                        encoding: "PS".into(),
                        clock_rate: 90_000,
                        params: None,
                    },
                    RtpMap {
                        payload_type: 98,
                        encoding: "H264".into(),
                        clock_rate: 90_000,
                        params: None,
                    },
                    RtpMap {
                        payload_type: 97,
                        encoding: "MPEG4".into(),
                        clock_rate: 90_000,
                        params: None,
                    },
                ],
                direction: Some(Direction::RecvOnly),
                setup: match self.transport {
                    MediaTransport::Udp => None,
                    MediaTransport::TcpPassive => Some(Setup::Passive),
                    MediaTransport::TcpActive => Some(Setup::Active),
                },
                connection_new: tcp,
                attributes: extra.into_iter().collect(),
            }],
            ssrc: Some(self.ssrc.to_string()),
            media_description: Some(String::new()),
            quirks: QuirkSet::new(),
        }
    }
}

impl MediaTransport {
    /// The transport as the other side sees it: when one side listens (`TcpPassive`), the other
    /// connects (`TcpActive`). UDP is symmetric.
    pub fn counterpart(self) -> MediaTransport {
        match self {
            MediaTransport::Udp => MediaTransport::Udp,
            MediaTransport::TcpPassive => MediaTransport::TcpActive,
            MediaTransport::TcpActive => MediaTransport::TcpPassive,
        }
    }
}

/// An SDP answer to an INVITE we received: what a device (our simulator) or we, serving an
/// upper platform's INVITE, send back. PS/90000 as payload type 96, `a=sendonly`, the `y=` SSRC
/// (normally the offer's), and for TCP the answerer's `a=setup` role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Session kind, echoing the offer (`Play`, `Playback`, ...).
    pub session: SessionKind,
    /// The answerer's ID (`o=` username).
    pub our_id: String,
    /// Media address the answerer sends from (and, for TCP passive, listens on).
    pub ip: IpAddr,
    /// Media port (for TCP active, the port the answerer connects from, or 9).
    pub port: u16,
    /// Transport from the answerer's point of view (use [`MediaTransport::counterpart`] of the
    /// offer's).
    pub transport: MediaTransport,
    /// SSRC of the stream.
    pub ssrc: Ssrc,
    /// `t=` echoed from the offer (0 0 for live).
    pub timing: (u64, u64),
}

impl Answer {
    /// The answer for `offer` from an answerer at `ip:port`: session kind, timing and SSRC are
    /// echoed; the transport is the counterpart of the offer's. `None` when the offer has no
    /// video section or no usable `y=` SSRC.
    pub fn for_offer(offer: &Sdp, our_id: &str, ip: IpAddr, port: u16) -> Option<Answer> {
        let transport = offer.media_transport()?.counterpart();
        Some(Answer {
            session: offer.session.clone(),
            our_id: our_id.to_owned(),
            ip,
            port,
            transport,
            ssrc: offer.gb_ssrc()?,
            timing: offer.timing.unwrap_or((0, 0)),
        })
    }

    /// The SDP of this answer.
    pub fn to_sdp(&self) -> Sdp {
        let addr_type = if self.ip.is_ipv6() { "IP6" } else { "IP4" };
        let tcp = !matches!(self.transport, MediaTransport::Udp);
        Sdp {
            origin: Some(Origin {
                username: self.our_id.clone(),
                session_id: "0".into(),
                session_version: "0".into(),
                net_type: "IN".into(),
                addr_type: addr_type.into(),
                address: self.ip.to_string(),
            }),
            session: self.session.clone(),
            info: None,
            uri: None,
            connection: Some(Connection {
                net_type: "IN".into(),
                addr_type: addr_type.into(),
                address: self.ip.to_string(),
            }),
            timing: Some(self.timing),
            attributes: Vec::new(),
            media: vec![Media {
                kind: "video".into(),
                port: self.port,
                proto: if tcp {
                    MediaProto::TcpRtpAvp
                } else {
                    MediaProto::RtpAvp
                },
                formats: vec!["96".into()],
                connection: None,
                rtpmaps: vec![RtpMap {
                    payload_type: 96,
                    encoding: "PS".into(),
                    clock_rate: 90_000,
                    params: None,
                }],
                direction: Some(Direction::SendOnly),
                setup: match self.transport {
                    MediaTransport::Udp => None,
                    MediaTransport::TcpPassive => Some(Setup::Passive),
                    MediaTransport::TcpActive => Some(Setup::Active),
                },
                connection_new: tcp,
                attributes: Vec::new(),
            }],
            ssrc: Some(self.ssrc.to_string()),
            media_description: None,
            quirks: QuirkSet::new(),
        }
    }
}

/// What an answer says relative to our offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCheck {
    /// Quirks found ([`Quirk::PlaybackRangeShifted`], [`Quirk::NonGbSessionName`], ...).
    pub quirks: QuirkSet,
    /// The SSRC to expect on RTP: the answer's when present (GB lets the device choose),
    /// else ours.
    pub ssrc: Option<Ssrc>,
    /// The answer's `t=` start minus the offer's, when they differ by whole hours.
    pub range_shift_secs: Option<i64>,
}

/// Compares an answer with our offer (see [`AnswerCheck`]).
pub fn check_answer(offer: &Sdp, answer: &Sdp) -> AnswerCheck {
    let mut quirks = answer.quirks;
    let mut range_shift_secs = None;
    if let (Some((os, _)), Some((as_, _))) = (offer.timing, answer.timing) {
        let d = as_ as i64 - os as i64;
        if os != 0 && d != 0 && d % 3600 == 0 {
            quirks.insert(Quirk::PlaybackRangeShifted);
            range_shift_secs = Some(d);
        }
    }
    AnswerCheck {
        quirks,
        ssrc: answer.gb_ssrc().or_else(|| offer.gb_ssrc()),
        range_shift_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;
    use crate::testdata::vector;

    fn sdp_of(name: &str) -> Sdp {
        let m = parse_datagram(vector(name)).unwrap();
        assert!(m.content_type().unwrap().unwrap().is_sdp(), "{name}");
        Sdp::parse(&m.body).unwrap()
    }

    #[test]
    fn quirk_gb_sdp_lines_in_media_section_exosip_play_offer() {
        let s = sdp_of("19_server_invite_play.sip");
        assert_eq!(s.session, SessionKind::Play);
        assert_eq!(s.origin.as_ref().unwrap().username, "34020000002000000010");
        assert_eq!(s.timing, Some((0, 0)));
        let v = s.video().unwrap();
        assert_eq!((v.port, &v.proto), (45056, &MediaProto::RtpAvp));
        assert_eq!(v.formats, vec!["96", "98", "97"]);
        assert_eq!(v.direction, Some(Direction::RecvOnly));
        assert_eq!(
            v.rtpmaps
                .iter()
                .map(|r| (r.payload_type, r.encoding.as_str(), r.clock_rate))
                .collect::<Vec<_>>(),
            vec![(96, "PS", 90000), (98, "H264", 90000), (97, "MPEG4", 90000)]
        );
        assert_eq!(s.ssrc.as_deref(), Some("0000001002"));
        assert_eq!(s.media_description.as_deref(), Some(""));
        assert!(s.quirks.contains(Quirk::GbSdpLinesInMediaSection));
        assert_eq!(s.media_transport(), Some(MediaTransport::Udp));
    }

    #[test]
    fn dahua_play_answer() {
        let s = sdp_of("22_dahua_invite_200ok_sdp.sip");
        assert_eq!(s.info.as_deref(), Some("VCam Live Video"));
        let v = s.video().unwrap();
        assert_eq!((v.port, v.direction), (9712, Some(Direction::SendOnly)));
        assert_eq!(v.attribute("streamprofile"), Some("0"));
        assert_eq!(s.media_description.as_deref(), Some("v/0/0/0/0/0a/0/0/0"));
        assert_eq!(s.gb_ssrc().map(|x| x.value()), Some(1002));
        assert_eq!(s.media_ip(), Some("192.168.6.71".parse().unwrap()));
    }

    #[test]
    fn tcp_answers_setup_active() {
        // Hikvision IPC via SRS (63) and Dahua IVSS (78): the device connects to us.
        let s = sdp_of("63_srs_utest_hik_ipc_invite_200ok_sdp.sip");
        assert_eq!(s.media_transport(), Some(MediaTransport::TcpActive));
        assert_eq!(s.video().unwrap().port, 15060);
        assert_eq!(s.gb_ssrc().map(|x| x.rtp()), Some(0x0BEB_DFA1));
        let s = sdp_of("78_dahua_ivss_invite_200ok_sdp_tcp_active.sip");
        let v = s.video().unwrap();
        assert_eq!(v.setup, Some(Setup::Active));
        assert!(v.connection_new);
        assert_eq!(v.attribute("streamnumber"), Some("0"));
        assert_eq!(s.ssrc.as_deref(), Some("0200005549"));
        // SRS's offer (61) is TCP without a=setup.
        let s = sdp_of("61_srs_utest_srs_invite_to_hik_ipc.sip");
        assert_eq!(s.video().unwrap().proto, MediaProto::TcpRtpAvp);
        assert_eq!(s.video().unwrap().setup, None);
    }

    #[test]
    fn quirk_playback_range_shifted_hikvision_nvr() {
        for (offer, answer, kind) in [
            (
                "38_server_invite_playback.sip",
                "39_hik_nvr_invite_playback_200ok_sdp.sip",
                SessionKind::Playback,
            ),
            (
                "49_server_invite_download.sip",
                "50_hik_nvr_invite_download_200ok_sdp.sip",
                SessionKind::Download,
            ),
        ] {
            let o = sdp_of(offer);
            assert_eq!(o.session, kind);
            assert_eq!(o.uri.as_deref(), Some("34020000001310000001:3"));
            assert_eq!(o.timing, Some((1714804996, 1714806986)));
            let a = sdp_of(answer);
            let c = check_answer(&o, &a);
            assert!(c.quirks.contains(Quirk::PlaybackRangeShifted));
            assert_eq!(c.range_shift_secs, Some(8 * 3600));
            assert_eq!(c.ssrc, o.gb_ssrc());
        }
    }

    #[test]
    fn quirk_non_gb_session_name_and_credentials_redacted() {
        let a = sdp_of("39_hik_nvr_invite_playback_200ok_sdp.sip");
        assert!(a.quirks.contains(Quirk::NonGbSessionName));
        assert_eq!(
            a.session,
            SessionKind::Other("Network Video Recorder".into())
        );
        assert!(a.quirks.contains(Quirk::CredentialsInSdp));
        let v = a.video().unwrap();
        assert_eq!(v.attribute("password"), Some("zzgd1234"));
        assert_eq!(v.attribute("filesize"), Some("2124794308"));
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("zzgd1234"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn offer_builder_matches_the_reference_shape_and_round_trips() {
        let ssrc = Ssrc::parse("0200000001").unwrap();
        let mut offer = Offer {
            kind: OfferKind::Play,
            our_id: "34020000002000000001".into(),
            channel_id: "34020000001310000001".into(),
            ip: "192.168.6.106".parse().unwrap(),
            port: 45056,
            transport: MediaTransport::Udp,
            ssrc,
        };
        let text = offer.to_sdp().to_text();
        let reference = std::str::from_utf8(
            &parse_datagram(vector("19_server_invite_play.sip"))
                .unwrap()
                .body,
        )
        .unwrap()
        .replace("34020000002000000010", "34020000002000000001")
        .replace("0000001002", "0200000001");
        assert_eq!(text, reference);
        for t in [MediaTransport::TcpPassive, MediaTransport::TcpActive] {
            offer.transport = t;
            let s = Sdp::parse(offer.to_sdp().to_text().as_bytes()).unwrap();
            assert_eq!(s.media_transport(), Some(t));
            assert!(s.video().unwrap().connection_new);
        }
        offer.kind = OfferKind::Download {
            start: 1714804996,
            end: 1714806986,
            speed: 4,
        };
        let s = Sdp::parse(offer.to_sdp().to_text().as_bytes()).unwrap();
        assert_eq!(s.session, SessionKind::Download);
        assert_eq!(s.uri.as_deref(), Some("34020000001310000001:0"));
        assert_eq!(s.timing, Some((1714804996, 1714806986)));
        assert_eq!(s.video().unwrap().attribute("downloadspeed"), Some("4"));
        assert_eq!(s, Sdp::parse(s.to_text().as_bytes()).unwrap());
    }

    #[test]
    fn errors_and_leniency() {
        assert!(matches!(
            Sdp::parse(b"v=0\nm=video\n"),
            Err(SdpError::InvalidLine { line_no: 2, .. })
        ));
        assert!(Sdp::parse(b"v=0\r\nc=IN\r\n").is_err());
        assert!(Sdp::parse(b"v=0\nt=x y\n").is_err());
        // LF only, no final newline, junk lines, RTP/AVP/TCP spelling.
        let s = Sdp::parse(
            b"v=0\nnonsense\ns=Play\nm=video 1 RTP/AVP/TCP 96\na=setup:passive\ny=1200000001",
        )
        .unwrap();
        assert_eq!(s.media_transport(), Some(MediaTransport::TcpPassive));
        assert_eq!(s.gb_ssrc().map(|x| x.is_history()), Some(true));
    }

    #[test]
    fn answers_mirror_the_offer_transport_and_echo_the_ssrc() {
        // Our own UDP play offer (as vector 19) answered like the Dahua of vector 22.
        let offer = sdp_of("19_server_invite_play.sip");
        let a = Answer::for_offer(
            &offer,
            "34020000001320000002",
            "192.168.6.71".parse().unwrap(),
            9712,
        )
        .unwrap();
        assert_eq!(a.transport, MediaTransport::Udp);
        let text = a.to_sdp().to_text();
        let parsed = Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.session, SessionKind::Play);
        assert_eq!(parsed.gb_ssrc().map(|s| s.value()), Some(1002));
        assert_eq!(parsed.video().unwrap().direction, Some(Direction::SendOnly));
        assert_eq!(parsed.media_ip(), Some("192.168.6.71".parse().unwrap()));
        let check = check_answer(&offer, &parsed);
        assert_eq!(check.ssrc.map(|s| s.value()), Some(1002));
        // A TCP passive offer (we listen) is answered "active" (the device connects), and the
        // other way round — the role each side reads back with media_transport().
        for (ours, theirs) in [
            (MediaTransport::TcpPassive, MediaTransport::TcpActive),
            (MediaTransport::TcpActive, MediaTransport::TcpPassive),
        ] {
            let offer = Offer {
                kind: OfferKind::Play,
                our_id: "34020000002000000001".into(),
                channel_id: "34020000001310000001".into(),
                ip: "10.0.0.1".parse().unwrap(),
                port: 30000,
                transport: ours,
                ssrc: Ssrc::parse("0200000001").unwrap(),
            }
            .to_sdp();
            let reparsed = Sdp::parse(offer.to_text().as_bytes()).unwrap();
            assert_eq!(reparsed.media_transport(), Some(ours));
            let a = Answer::for_offer(
                &reparsed,
                "34020000001320000001",
                "10.0.0.2".parse().unwrap(),
                40000,
            )
            .unwrap();
            assert_eq!(a.transport, theirs);
            let back = Sdp::parse(a.to_sdp().to_text().as_bytes()).unwrap();
            assert_eq!(back.media_transport(), Some(theirs));
            assert_eq!(back.video().unwrap().proto, MediaProto::TcpRtpAvp);
        }
    }
}
