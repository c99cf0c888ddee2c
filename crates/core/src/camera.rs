//! The camera record (一机一档, one file per camera) and the rules that read it: whether the
//! record is complete (registration rate) and whether the camera must upload video to the centre.
//!
//! RTSP credentials never live in the record: [`RtspUrl::parse`] splits them off so that the URL
//! kept (and shown, exported, audited) has no user-info, and [`RtspCredentials`] has no
//! `Serialize` impl and a redacting `Debug`, so they cannot leak through a report by accident.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geo::GeoPoint;
use crate::grid::GridCode;
use crate::id::GbId;
use crate::site::{PointClass, SiteId};
use crate::time::{truncate_for_error, Date, Timestamp};

/// Why a camera field was rejected; names the camera or the value (credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CameraError {
    /// Not a usable RTSP URL.
    #[error("RTSP URL {url:?} is invalid: {reason}")]
    BadRtspUrl { url: String, reason: &'static str },
    /// Empty or over-long name.
    #[error("camera {id}: name must be 1-200 characters and not blank")]
    BadName { id: GbId },
    /// The same site listed twice.
    #[error("camera {id}: site {site} is listed twice")]
    DuplicateSite { id: GbId, site: SiteId },
    /// An enum field with an unknown value.
    #[error("{field}: {text:?} is not one of {expected}")]
    UnknownValue {
        field: &'static str,
        text: String,
        expected: &'static str,
    },
    /// A resolution or frame rate that cannot be real.
    #[error("camera {id}: HD capability {reason}")]
    BadHd { id: GbId, reason: &'static str },
}

/// An RTSP URL without user-info (`rtsp://host[:port]/path`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RtspUrl(String);

impl TryFrom<String> for RtspUrl {
    type Error = CameraError;
    /// Accepts only URLs without credentials (stored records never carry them).
    fn try_from(s: String) -> Result<Self, CameraError> {
        match RtspUrl::parse(&s)? {
            (url, None) => Ok(url),
            (url, Some(_)) => Err(CameraError::BadRtspUrl {
                url: url.0,
                reason: "stored URLs must not contain credentials",
            }),
        }
    }
}

impl From<RtspUrl> for String {
    fn from(u: RtspUrl) -> String {
        u.0
    }
}

impl RtspUrl {
    /// Parses `rtsp://` / `rtsps://` URLs, returning the URL with any `user:password@` removed
    /// and the credentials separately. The user and password are kept exactly as written
    /// (still percent-encoded), because that is the form RTSP digest auth is configured with.
    pub fn parse(text: &str) -> Result<(RtspUrl, Option<RtspCredentials>), CameraError> {
        let t = text.trim();
        let scheme_len = if t.len() >= 7 && t[..7].eq_ignore_ascii_case("rtsp://") {
            7
        } else if t.len() >= 8 && t[..8].eq_ignore_ascii_case("rtsps://") {
            8
        } else {
            return Err(bad_url(t, "must start with rtsp:// or rtsps://"));
        };
        if t.len() > 1024 {
            return Err(bad_url(t, "longer than 1024 characters"));
        }
        if t.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad_url(t, "contains whitespace or control characters"));
        }
        let rest = &t[scheme_len..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let (creds, host) = match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (
                    Some(RtspCredentials {
                        username: user.to_owned(),
                        password: pass.to_owned(),
                    }),
                    &authority[at + 1..],
                )
            }
            None => (None, authority),
        };
        if host.is_empty() || host.starts_with(':') {
            return Err(bad_url(t, "has no host"));
        }
        let url = format!("{}{}{}", &t[..scheme_len], host, &rest[auth_end..]);
        Ok((RtspUrl(url), creds))
    }

    /// The URL text (never contains credentials).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtspUrl({})", self.0)
    }
}

/// Quotes a URL in an error with any user-info replaced by `***`.
fn bad_url(text: &str, reason: &'static str) -> CameraError {
    let redacted = match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &text[..s + 3], &text[at..]),
        _ => text.to_owned(),
    };
    CameraError::BadRtspUrl {
        url: truncate_for_error(&redacted),
        reason,
    }
}

/// RTSP login. Stored apart from the camera record; `Debug` hides the password and there is
/// deliberately no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspCredentials {
    /// User name as written in the URL.
    pub username: String,
    /// Password as written in the URL.
    pub password: String,
}

impl fmt::Debug for RtspCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Where the video comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CameraSource {
    /// Pulled over RTSP.
    Rtsp {
        /// URL without credentials.
        url: RtspUrl,
    },
    /// A channel of a GB/T 28181 device or lower platform.
    Gb {
        /// The registering device (or lower platform).
        device_id: GbId,
        /// The channel within it.
        channel_id: GbId,
    },
}

macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $code:literal $(| $alias:literal)*),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $code)] $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Stable code used in files and APIs.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }
        }

        impl FromStr for $name {
            type Err = CameraError;
            fn from_str(s: &str) -> Result<Self, CameraError> {
                match s.trim() {
                    $($code $(| $alias)* => Ok($name::$variant),)*
                    _ => Err(CameraError::UnknownValue {
                        field: $field,
                        text: truncate_for_error(s),
                        expected: concat!($($code, " "),*),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// Who built the camera; decides whether it must upload video (seed 001 三.3(1)).
    Builder, "builder" {
        /// 政府投资建设在公共部位: government-built public camera.
        GovernmentPublic = "government_public" | "政府建设",
        /// 单位自建: built by a unit for its own premises.
        UnitSelfBuilt = "unit_self_built" | "单位自建",
    }
);

code_enum!(
    /// Filing (备案) with the public-security bureau.
    RegistrationState, "registration" {
        /// Not filed yet.
        NotFiled = "not_filed" | "未备案",
        /// Filed (备案) with the bureau.
        Filed = "filed" | "已备案",
    }
);

code_enum!(
    /// Access test (接入检测) and acceptance (审核验收) of a new system.
    AcceptanceState, "acceptance" {
        /// Nothing done yet.
        Pending = "pending" | "待检测",
        /// Access test passed, acceptance not yet given.
        AccessTested = "access_tested" | "已检测",
        /// Accepted by the public-security bureau.
        Accepted = "accepted" | "已验收",
        /// Rejected at test or acceptance.
        Rejected = "rejected" | "未通过",
    }
);

code_enum!(
    /// Video codec the camera delivers.
    VideoCodec, "codec" {
        /// H.264 / AVC.
        H264 = "h264" | "H264" | "H.264",
        /// H.265 / HEVC.
        H265 = "h265" | "H265" | "H.265",
        /// SVAC (GB/T 25724).
        Svac = "svac" | "SVAC",
        /// MJPEG.
        Mjpeg = "mjpeg" | "MJPEG",
        /// Anything else.
        Other = "other",
    }
);

/// What the camera can deliver.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HdCapability {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Codec.
    pub codec: VideoCodec,
    /// Frames per second.
    pub fps: f64,
}

impl HdCapability {
    /// Whether this counts as high definition: at least 1280×720 (720p, the common floor in
    /// GB/T 28181-2016 and local 高清 requirements) at 25 fps or more.
    pub fn meets_hd(&self) -> bool {
        self.width >= 1280 && self.height >= 720 && self.fps >= 25.0
    }
}

/// Which parts of a record are missing for it to count as complete (建档率).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFields {
    /// No coordinates.
    pub location: bool,
    /// Builder unknown.
    pub builder: bool,
    /// Point class unknown.
    pub point_class: bool,
}

impl MissingFields {
    /// Whether nothing is missing.
    pub fn is_complete(&self) -> bool {
        !(self.location || self.builder || self.point_class)
    }

    /// Comma-separated names of the missing fields.
    pub fn names(&self) -> String {
        let mut v = Vec::new();
        if self.location {
            v.push("location");
        }
        if self.builder {
            v.push("builder");
        }
        if self.point_class {
            v.push("point_class");
        }
        v.join(",")
    }
}

/// One camera's record as of one effective date (the index keeps the dated versions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// GB/T 28181 ID (assigned by vigil for RTSP cameras if the integrator gave none).
    pub id: GbId,
    /// Display name.
    pub name: String,
    /// Where the video comes from.
    pub source: CameraSource,
    /// Coordinates; required for a complete record.
    pub location: Option<GeoPoint>,
    /// Street address.
    pub address: Option<String>,
    /// The management grid. Mandatory in vigil: a camera must sit in a grid to be in any figure,
    /// so "grid" is never the missing part of an incomplete record.
    pub grid: GridCode,
    /// Key sites this camera watches.
    pub sites: Vec<SiteId>,
    /// Who built it; required for a complete record.
    pub builder: Option<Builder>,
    /// Point class; required for a complete record.
    pub point_class: Option<PointClass>,
    /// Installation date from the paperwork.
    pub install_date: Option<Date>,
    /// Filing (备案).
    pub registration: RegistrationState,
    /// Access test and acceptance (审核验收).
    pub acceptance: AcceptanceState,
    /// Resolution, codec, fps.
    pub hd: Option<HdCapability>,
    /// Whether the camera is shared upward to the public-security platform (cascade catalog).
    pub shared_upward: bool,
    /// When the camera was taken out of service; it leaves every figure from then on.
    pub decommissioned_at: Option<Timestamp>,
}

impl Camera {
    /// Checks the fields that do not depend on other records.
    pub fn validate(&self) -> Result<(), CameraError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(CameraError::BadName { id: self.id });
        }
        for (i, s) in self.sites.iter().enumerate() {
            if self.sites[..i].contains(s) {
                return Err(CameraError::DuplicateSite {
                    id: self.id,
                    site: s.clone(),
                });
            }
        }
        if let Some(hd) = &self.hd {
            if hd.width == 0 || hd.height == 0 || hd.width > 16_384 || hd.height > 16_384 {
                return Err(CameraError::BadHd {
                    id: self.id,
                    reason: "resolution must be 1..=16384 pixels each way",
                });
            }
            if !(hd.fps.is_finite() && hd.fps > 0.0 && hd.fps <= 1000.0) {
                return Err(CameraError::BadHd {
                    id: self.id,
                    reason: "fps must be in (0, 1000]",
                });
            }
        }
        Ok(())
    }

    /// What the record lacks for the registration rate: location, builder, point class (the
    /// grid is mandatory, see [`Camera::grid`]).
    pub fn missing_fields(&self) -> MissingFields {
        MissingFields {
            location: self.location.is_none(),
            builder: self.builder.is_none(),
            point_class: self.point_class.is_none(),
        }
    }

    /// Whether the camera must upload video to the centre (seed 001 三.3(1)): government-built
    /// public cameras, and self-built cameras at key parts — `covers_key_site` is whether it
    /// watches at least one key site in the coverage scope. An unknown builder is treated as
    /// required — the conservative reading, so a gap in the paperwork cannot hide a missing
    /// signal.
    pub fn required_to_upload(&self, covers_key_site: bool) -> bool {
        match self.builder {
            Some(Builder::GovernmentPublic) | None => true,
            Some(Builder::UnitSelfBuilt) => covers_key_site,
        }
    }

    /// Whether the camera is in service at `t` (not decommissioned at or before `t`).
    pub fn in_service_at(&self, t: Timestamp) -> bool {
        self.decommissioned_at.is_none_or(|d| d > t)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::id::GbId;

    pub(crate) fn camera(id: &str, grid: &str) -> Camera {
        Camera {
            id: GbId::parse(id).unwrap(),
            name: format!("cam {id}"),
            source: CameraSource::Rtsp {
                url: RtspUrl::parse("rtsp://10.0.0.1/stream").unwrap().0,
            },
            location: Some(GeoPoint::new(31.0, 121.0).unwrap()),
            address: None,
            grid: GridCode::parse(grid).unwrap(),
            sites: vec![],
            builder: Some(Builder::GovernmentPublic),
            point_class: Some(PointClass::Class1),
            install_date: None,
            registration: RegistrationState::Filed,
            acceptance: AcceptanceState::Accepted,
            hd: None,
            shared_upward: true,
            decommissioned_at: None,
        }
    }

    #[test]
    fn rtsp_credentials_are_split_off() {
        let (url, creds) =
            RtspUrl::parse("rtsp://admin:s3cr%40t@192.168.1.64:554/Streaming/101").unwrap();
        assert_eq!(url.as_str(), "rtsp://192.168.1.64:554/Streaming/101");
        let creds = creds.unwrap();
        assert_eq!(creds.username, "admin");
        assert_eq!(creds.password, "s3cr%40t");
        assert!(!format!("{creds:?}").contains("s3cr"));
        let (url, creds) = RtspUrl::parse("RTSP://cam.local/live").unwrap();
        assert_eq!(url.as_str(), "RTSP://cam.local/live");
        assert!(creds.is_none());
    }

    #[test]
    fn rtsp_errors_never_echo_the_password() {
        let e = RtspUrl::parse("http://admin:hunter2@host/").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = RtspUrl::parse("rtsp://admin:hunter2@/x").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(RtspUrl::parse("rtsp://host/a b").is_err());
        // A stored record can never carry credentials.
        assert!(serde_json::from_str::<RtspUrl>("\"rtsp://u:p@h/\"").is_err());
    }

    #[test]
    fn completeness_and_upload_rules() {
        let mut c = camera("34020000001320000001", "g");
        assert!(c.missing_fields().is_complete());
        c.location = None;
        c.point_class = None;
        assert_eq!(c.missing_fields().names(), "location,point_class");
        assert!(c.required_to_upload(false));
        c.builder = Some(Builder::UnitSelfBuilt);
        assert!(!c.required_to_upload(false));
        assert!(c.required_to_upload(true));
        c.sites.push(SiteId::parse("s1").unwrap());
        c.sites.push(SiteId::parse("s1").unwrap());
        assert!(matches!(
            c.validate(),
            Err(CameraError::DuplicateSite { .. })
        ));
    }

    #[test]
    fn hd_threshold_and_enums() {
        let hd = HdCapability {
            width: 1920,
            height: 1080,
            codec: VideoCodec::H265,
            fps: 25.0,
        };
        assert!(hd.meets_hd());
        assert!(!HdCapability { fps: 15.0, ..hd }.meets_hd());
        assert!(!HdCapability {
            width: 704,
            height: 576,
            ..hd
        }
        .meets_hd());
        assert_eq!(
            "已备案".parse::<RegistrationState>().unwrap(),
            RegistrationState::Filed
        );
        assert_eq!("H.264".parse::<VideoCodec>().unwrap(), VideoCodec::H264);
        assert!("maybe".parse::<Builder>().is_err());
        let json = serde_json::to_string(&camera("34020000001320000001", "g")).unwrap();
        let back: Camera = serde_json::from_str(&json).unwrap();
        assert_eq!(back, camera("34020000001320000001", "g"));
    }
}
