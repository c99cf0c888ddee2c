//! GB/T 28181 identifiers: the 20-digit device/channel ID, the 10-digit SIP domain and the
//! administrative CivilCode. This is the only place in vigil where these are parsed.
//!
//! Layout of a 20-digit ID (GB/T 28181-2016 appendix D):
//! digits 1–8 centre code (province 2, city 2, district 2, grass-roots unit 2), 9–10 industry,
//! 11–13 type, 14 network, 15–20 serial. The ID is kept as its 20 ASCII digits, so ordering IDs
//! orders them numerically and `as_str` is free.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::time::truncate_for_error;

/// Why an identifier was rejected; each variant quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("{kind} {text:?}: expected {expected}, got {len} characters")]
    Length {
        kind: &'static str,
        text: String,
        expected: &'static str,
        len: usize,
    },
    /// A character that is not an ASCII digit.
    #[error("{kind} {text:?}: character {found:?} at position {position} is not a digit 0-9")]
    NonDigit {
        kind: &'static str,
        text: String,
        position: usize,
        found: char,
    },
    /// A serial number does not fit the six serial digits.
    #[error("serial {serial} does not fit the six serial digits of a GB/T 28181 ID")]
    SerialOutOfRange { serial: u32 },
    /// The network digit must be 0–9.
    #[error("network id {network} is not a single digit")]
    NetworkOutOfRange { network: u8 },
    /// A camera row has no ID and no domain is configured to assign one under.
    #[error("the camera has no ID and no RTSP ID domain is configured to assign one")]
    NoRtspDomain,
    /// Every serial under a domain prefix is taken.
    #[error("all 999999 serials for IPC IDs under domain {domain} network {network} are in use")]
    SerialsExhausted { domain: DomainCode, network: u8 },
}

fn check_digits<const N: usize>(kind: &'static str, text: &str) -> Result<[u8; N], IdError> {
    let len = text.chars().count();
    if len != N {
        return Err(IdError::Length {
            kind,
            text: truncate_for_error(text),
            expected: match N {
                20 => "20 digits",
                10 => "10 digits",
                _ => "a fixed number of digits",
            },
            len,
        });
    }
    if let Some((position, found)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(IdError::NonDigit {
            kind,
            text: truncate_for_error(text),
            position: position + 1,
            found,
        });
    }
    let mut out = [0u8; N];
    out.copy_from_slice(text.as_bytes());
    Ok(out)
}

fn num(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
}

/// GB/T 28181 device type (digits 11–13). Codes not named here are kept as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// 111 DVR.
    Dvr,
    /// 118 network video recorder.
    Nvr,
    /// 131 camera.
    Camera,
    /// 132 IP camera.
    Ipc,
    /// 134 alarm input device.
    AlarmInput,
    /// 200 central signalling control server (platform / SIP server).
    Platform,
    /// 215 business group.
    BusinessGroup,
    /// 216 virtual organisation.
    VirtualOrganisation,
    /// Any other three-digit type code.
    Other(u16),
}

impl DeviceType {
    /// Maps a three-digit type code.
    pub fn from_code(code: u16) -> DeviceType {
        match code {
            111 => DeviceType::Dvr,
            118 => DeviceType::Nvr,
            131 => DeviceType::Camera,
            132 => DeviceType::Ipc,
            134 => DeviceType::AlarmInput,
            200 => DeviceType::Platform,
            215 => DeviceType::BusinessGroup,
            216 => DeviceType::VirtualOrganisation,
            other => DeviceType::Other(other),
        }
    }

    /// The three-digit type code.
    pub fn code(self) -> u16 {
        match self {
            DeviceType::Dvr => 111,
            DeviceType::Nvr => 118,
            DeviceType::Camera => 131,
            DeviceType::Ipc => 132,
            DeviceType::AlarmInput => 134,
            DeviceType::Platform => 200,
            DeviceType::BusinessGroup => 215,
            DeviceType::VirtualOrganisation => 216,
            DeviceType::Other(c) => c,
        }
    }

    /// Whether this type produces video itself (a channel that can be watched and recorded).
    pub fn is_video_channel(self) -> bool {
        matches!(self, DeviceType::Camera | DeviceType::Ipc)
    }
}

/// The 8-digit centre code at the start of an ID: province, city, district, grass-roots unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CentreCode {
    /// Digits 1–2.
    pub province: u8,
    /// Digits 3–4.
    pub city: u8,
    /// Digits 5–6.
    pub district: u8,
    /// Digits 7–8.
    pub grass_roots: u8,
}

/// A validated 20-digit GB/T 28181 ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GbId([u8; 20]);

impl GbId {
    /// Parses and validates an ID: exactly 20 ASCII digits.
    pub fn parse(text: &str) -> Result<GbId, IdError> {
        check_digits::<20>("GB/T 28181 ID", text).map(GbId)
    }

    /// Builds an ID from 20 raw bytes (e.g. a stored key), validating them.
    pub fn from_bytes(bytes: &[u8]) -> Result<GbId, IdError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => GbId::parse(text),
            Err(_) => Err(IdError::NonDigit {
                kind: "GB/T 28181 ID",
                text: String::from_utf8_lossy(bytes).into_owned(),
                position: 0,
                found: char::REPLACEMENT_CHARACTER,
            }),
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored (checked in `parse`/`compose`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The 20 ASCII digit bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Digits 1–8.
    pub fn centre(&self) -> CentreCode {
        CentreCode {
            province: num(&self.0[0..2]) as u8,
            city: num(&self.0[2..4]) as u8,
            district: num(&self.0[4..6]) as u8,
            grass_roots: num(&self.0[6..8]) as u8,
        }
    }

    /// The centre code as an 8-digit CivilCode (the administrative area the ID was issued in).
    pub fn civil_code(&self) -> CivilCode {
        CivilCode {
            digits: [
                self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5], self.0[6],
                self.0[7],
            ],
            len: 8,
        }
    }

    /// Digits 9–10: industry code.
    pub fn industry(&self) -> u8 {
        num(&self.0[8..10]) as u8
    }

    /// Digits 11–13 as a number.
    pub fn type_code(&self) -> u16 {
        num(&self.0[10..13]) as u16
    }

    /// Digits 11–13 as a device type.
    pub fn device_type(&self) -> DeviceType {
        DeviceType::from_code(self.type_code())
    }

    /// Digit 14: network identification.
    pub fn network(&self) -> u8 {
        self.0[13] - b'0'
    }

    /// Digits 15–20: serial number.
    pub fn serial(&self) -> u32 {
        num(&self.0[14..20])
    }

    /// Digits 1–10: the SIP domain / realm this ID belongs to.
    pub fn domain(&self) -> DomainCode {
        let mut d = [0u8; 10];
        d.copy_from_slice(&self.0[..10]);
        DomainCode(d)
    }

    /// Composes an ID from a domain, a type code, a network digit and a serial.
    pub fn compose(
        domain: &DomainCode,
        device_type: DeviceType,
        network: u8,
        serial: u32,
    ) -> Result<GbId, IdError> {
        if serial > 999_999 {
            return Err(IdError::SerialOutOfRange { serial });
        }
        if network > 9 {
            return Err(IdError::NetworkOutOfRange { network });
        }
        let text = format!(
            "{}{:03}{}{:06}",
            domain.as_str(),
            device_type.code() % 1000,
            network,
            serial
        );
        GbId::parse(&text)
    }

    /// The ID vigil assigns to an RTSP camera: an IPC (type 132) under the configured domain,
    /// network digit `network`, serial `serial`. Deterministic: the same inputs give the same ID.
    pub fn for_rtsp_camera(domain: &DomainCode, network: u8, serial: u32) -> Result<GbId, IdError> {
        GbId::compose(domain, DeviceType::Ipc, network, serial)
    }

    /// The lowest-serial RTSP camera ID under `domain`/`network`, at serial `start` or above,
    /// for which `taken` is false. Serial 0 is never used (many platforms treat all-zero serials
    /// as "unset"). Bulk callers pass the last serial + 1 as `start` to stay linear.
    pub fn next_free_rtsp_id(
        domain: &DomainCode,
        network: u8,
        start: u32,
        mut taken: impl FnMut(&GbId) -> bool,
    ) -> Result<GbId, IdError> {
        for serial in start.max(1)..=999_999 {
            let id = GbId::for_rtsp_camera(domain, network, serial)?;
            if !taken(&id) {
                return Ok(id);
            }
        }
        Err(IdError::SerialsExhausted {
            domain: *domain,
            network,
        })
    }
}

impl fmt::Debug for GbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GbId({})", self.as_str())
    }
}

impl fmt::Display for GbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GbId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GbId::parse(s)
    }
}

impl Serialize for GbId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GbId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GbId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The 10-digit SIP domain (realm) of a platform: centre code plus industry code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainCode([u8; 10]);

impl DomainCode {
    /// Parses exactly 10 ASCII digits.
    pub fn parse(text: &str) -> Result<DomainCode, IdError> {
        check_digits::<10>("GB/T 28181 domain", text).map(DomainCode)
    }

    /// The domain as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for DomainCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainCode({})", self.as_str())
    }
}

impl fmt::Display for DomainCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DomainCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DomainCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DomainCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The administrative level a CivilCode names, by its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CivilLevel {
    /// 2 digits.
    Province,
    /// 4 digits.
    City,
    /// 6 digits.
    District,
    /// 8 digits (grass-roots unit: street office / town).
    GrassRoots,
}

/// An administrative-area code as carried in catalog items: 2, 4, 6 or 8 digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CivilCode {
    digits: [u8; 8],
    len: u8,
}

impl CivilCode {
    /// Parses 2, 4, 6 or 8 ASCII digits.
    pub fn parse(text: &str) -> Result<CivilCode, IdError> {
        let len = text.chars().count();
        if !matches!(len, 2 | 4 | 6 | 8) {
            return Err(IdError::Length {
                kind: "CivilCode",
                text: truncate_for_error(text),
                expected: "2, 4, 6 or 8 digits",
                len,
            });
        }
        if let Some((position, found)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(IdError::NonDigit {
                kind: "CivilCode",
                text: truncate_for_error(text),
                position: position + 1,
                found,
            });
        }
        let mut digits = [b'0'; 8];
        digits[..len].copy_from_slice(text.as_bytes());
        Ok(CivilCode {
            digits,
            len: len as u8,
        })
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }

    /// The level named by the code's length.
    pub fn level(&self) -> CivilLevel {
        match self.len {
            2 => CivilLevel::Province,
            4 => CivilLevel::City,
            6 => CivilLevel::District,
            _ => CivilLevel::GrassRoots,
        }
    }

    /// The enclosing area (two digits shorter), or `None` for a province.
    pub fn parent(&self) -> Option<CivilCode> {
        (self.len > 2).then(|| CivilCode {
            digits: {
                let mut d = self.digits;
                d[usize::from(self.len) - 2..].fill(b'0');
                d
            },
            len: self.len - 2,
        })
    }

    /// Whether `other` is this area or lies inside it.
    pub fn contains(&self, other: &CivilCode) -> bool {
        other.len >= self.len
            && other.digits[..usize::from(self.len)] == self.digits[..usize::from(self.len)]
    }
}

impl fmt::Debug for CivilCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CivilCode({})", self.as_str())
    }
}

impl fmt::Display for CivilCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CivilCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CivilCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CivilCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_of_an_ipc_id() {
        let id = GbId::parse("34020000001320000001").unwrap();
        assert_eq!(
            id.centre(),
            CentreCode {
                province: 34,
                city: 2,
                district: 0,
                grass_roots: 0
            }
        );
        assert_eq!(id.industry(), 0);
        assert_eq!(id.type_code(), 132);
        assert_eq!(id.device_type(), DeviceType::Ipc);
        assert_eq!(id.network(), 0);
        assert_eq!(id.serial(), 1);
        assert_eq!(id.domain().as_str(), "3402000000");
        assert_eq!(id.civil_code().as_str(), "34020000");
        assert_eq!(id.to_string(), "34020000001320000001");
    }

    #[test]
    fn device_types_round_trip() {
        for code in [111, 118, 131, 132, 134, 200, 215, 216, 999] {
            assert_eq!(DeviceType::from_code(code).code(), code);
        }
        assert_eq!(DeviceType::from_code(999), DeviceType::Other(999));
        let platform = GbId::parse("34020000002000000001").unwrap();
        assert_eq!(platform.device_type(), DeviceType::Platform);
    }

    #[test]
    fn rejects_with_reason() {
        let e = GbId::parse("3402000000132000001").unwrap_err();
        assert!(matches!(e, IdError::Length { len: 19, .. }), "{e}");
        assert!(e.to_string().contains("3402000000132000001"));
        let e = GbId::parse("3402000000132000000A").unwrap_err();
        assert!(
            matches!(
                e,
                IdError::NonDigit {
                    position: 20,
                    found: 'A',
                    ..
                }
            ),
            "{e}"
        );
        let e = GbId::parse("3402000000132000000１").unwrap_err();
        assert!(matches!(e, IdError::NonDigit { position: 20, .. }), "{e}");
        assert!(GbId::parse("").is_err());
        assert!(GbId::from_bytes(&[0xff; 20]).is_err());
    }

    #[test]
    fn ids_order_numerically() {
        let a = GbId::parse("34020000001320000002").unwrap();
        let b = GbId::parse("34020000001320000010").unwrap();
        assert!(a < b);
    }

    #[test]
    fn rtsp_ids_are_deterministic_ipcs_under_the_domain() {
        let domain = DomainCode::parse("3402000000").unwrap();
        let id = GbId::for_rtsp_camera(&domain, 0, 42).unwrap();
        assert_eq!(id.as_str(), "34020000001320000042");
        assert_eq!(GbId::for_rtsp_camera(&domain, 0, 42).unwrap(), id);
        assert!(GbId::for_rtsp_camera(&domain, 0, 1_000_000).is_err());
        assert!(GbId::for_rtsp_camera(&domain, 10, 1).is_err());
        let taken = [
            GbId::for_rtsp_camera(&domain, 0, 1).unwrap(),
            GbId::for_rtsp_camera(&domain, 0, 2).unwrap(),
        ];
        let next = GbId::next_free_rtsp_id(&domain, 0, 0, |id| taken.contains(id)).unwrap();
        assert_eq!(next.serial(), 3);
        let later = GbId::next_free_rtsp_id(&domain, 0, 10, |id| taken.contains(id)).unwrap();
        assert_eq!(later.serial(), 10);
        assert!(GbId::next_free_rtsp_id(&domain, 0, 1_000_000, |_| false).is_err());
        assert!(DomainCode::parse("340200000").is_err());
    }

    #[test]
    fn civil_codes_nest() {
        let city = CivilCode::parse("3402").unwrap();
        let town = CivilCode::parse("34020301").unwrap();
        assert_eq!(city.level(), CivilLevel::City);
        assert_eq!(town.level(), CivilLevel::GrassRoots);
        assert!(city.contains(&town));
        assert!(!town.contains(&city));
        assert_eq!(town.parent().unwrap().as_str(), "340203");
        assert_eq!(CivilCode::parse("34").unwrap().parent(), None);
        assert!(CivilCode::parse("340").is_err());
        assert!(CivilCode::parse("34x2").is_err());
        let json = serde_json::to_string(&town).unwrap();
        assert_eq!(serde_json::from_str::<CivilCode>(&json).unwrap(), town);
    }
}
