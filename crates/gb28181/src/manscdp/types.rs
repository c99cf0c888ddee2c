//! Typed MANSCDP messages.

use std::fmt;
use std::net::IpAddr;

use crate::gbid::CivilCode;
#[allow(unused_imports)]
use crate::quirks::Quirk;
use crate::quirks::QuirkSet; // referenced by doc links

/// The document root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// `<Query>`: a request for information.
    Query,
    /// `<Response>`: the answer, sent in its own MESSAGE.
    Response,
    /// `<Notify>`: unsolicited (Keepalive, Alarm, catalog changes).
    Notify,
    /// `<Control>`: a command (PTZ, record, guard, reboot).
    Control,
}

impl Root {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Query => "Query",
            Root::Response => "Response",
            Root::Notify => "Notify",
            Root::Control => "Control",
        }
    }
}

/// `<CmdType>`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CmdType {
    /// Keepalive.
    Keepalive,
    /// Catalog.
    Catalog,
    /// DeviceInfo.
    DeviceInfo,
    /// DeviceStatus.
    DeviceStatus,
    /// Alarm.
    Alarm,
    /// RecordInfo.
    RecordInfo,
    /// DeviceControl.
    DeviceControl,
    /// MediaStatus (end of a playback/download stream).
    MediaStatus,
    /// Anything else, verbatim.
    Other(String),
}

impl CmdType {
    /// Maps the element text.
    pub fn parse(s: &str) -> CmdType {
        const KNOWN: &[(&str, CmdType)] = &[
            ("Keepalive", CmdType::Keepalive),
            ("Catalog", CmdType::Catalog),
            ("DeviceInfo", CmdType::DeviceInfo),
            ("DeviceStatus", CmdType::DeviceStatus),
            ("Alarm", CmdType::Alarm),
            ("RecordInfo", CmdType::RecordInfo),
            ("DeviceControl", CmdType::DeviceControl),
            ("MediaStatus", CmdType::MediaStatus),
        ];
        KNOWN
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(s))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| CmdType::Other(s.to_owned()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        match self {
            CmdType::Keepalive => "Keepalive",
            CmdType::Catalog => "Catalog",
            CmdType::DeviceInfo => "DeviceInfo",
            CmdType::DeviceStatus => "DeviceStatus",
            CmdType::Alarm => "Alarm",
            CmdType::RecordInfo => "RecordInfo",
            CmdType::DeviceControl => "DeviceControl",
            CmdType::MediaStatus => "MediaStatus",
            CmdType::Other(s) => s,
        }
    }
}

impl fmt::Display for CmdType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Channel / device status in a catalog item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelStatus {
    /// `ON`, `ONLINE` (and `OK` from some devices).
    On,
    /// `OFF`, `OFFLINE`.
    Off,
    /// Anything else, verbatim.
    Other(String),
}

impl ChannelStatus {
    /// Maps the element text (case-insensitive).
    pub fn parse(s: &str) -> ChannelStatus {
        let u = s.trim().to_ascii_uppercase();
        match u.as_str() {
            "ON" | "ONLINE" | "OK" => ChannelStatus::On,
            "OFF" | "OFFLINE" => ChannelStatus::Off,
            _ => ChannelStatus::Other(s.to_owned()),
        }
    }

    /// The GB/T 28181-2016 text.
    pub fn as_str(&self) -> &str {
        match self {
            ChannelStatus::On => "ON",
            ChannelStatus::Off => "OFF",
            ChannelStatus::Other(s) => s,
        }
    }
}

/// `<Event>` of a catalog change notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogEvent {
    /// ON: came online.
    On,
    /// OFF: went offline.
    Off,
    /// VLOST: video lost.
    VideoLost,
    /// DEFECT: fault.
    Defect,
    /// ADD: new item.
    Add,
    /// DEL: item removed.
    Del,
    /// UPDATE: item changed.
    Update,
    /// Anything else, verbatim.
    Other(String),
}

impl CatalogEvent {
    /// Maps the element text (case-insensitive).
    pub fn parse(s: &str) -> CatalogEvent {
        match s.trim().to_ascii_uppercase().as_str() {
            "ON" => CatalogEvent::On,
            "OFF" => CatalogEvent::Off,
            "VLOST" => CatalogEvent::VideoLost,
            "DEFECT" => CatalogEvent::Defect,
            "ADD" => CatalogEvent::Add,
            "DEL" => CatalogEvent::Del,
            "UPDATE" => CatalogEvent::Update,
            _ => CatalogEvent::Other(s.to_owned()),
        }
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        match self {
            CatalogEvent::On => "ON",
            CatalogEvent::Off => "OFF",
            CatalogEvent::VideoLost => "VLOST",
            CatalogEvent::Defect => "DEFECT",
            CatalogEvent::Add => "ADD",
            CatalogEvent::Del => "DEL",
            CatalogEvent::Update => "UPDATE",
            CatalogEvent::Other(s) => s,
        }
    }
}

/// One `<Item>` of a catalog (response or change notification).
///
/// Text fields are `None` when absent, empty, or a placeholder equal to the element's own name
/// (`<Owner>Owner</Owner>`, [`Quirk::PlaceholderValue`]). Numeric fields that do not parse are
/// `None` and named in `invalid_fields`. Unknown elements are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogItem {
    /// `DeviceID` (required; shape not checked here).
    pub device_id: String,
    /// `Event` (notifications only).
    pub event: Option<CatalogEvent>,
    /// `Name`.
    pub name: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `Owner` (Uniview puts its firmware version here, vector 79).
    pub owner: Option<String>,
    /// `CivilCode`, parsed by `vigil_core::id` (2/4/6/8 digits); placeholders and malformed
    /// codes are dropped ([`Quirk::PlaceholderValue`]).
    pub civil_code: Option<CivilCode>,
    /// `Block`.
    pub block: Option<String>,
    /// `Address`.
    pub address: Option<String>,
    /// `Parental`: 1 if the item has children. Unreliable (Uniview sets 1 on video channels,
    /// vector 79): build trees from `ParentID`/`BusinessGroupID`, not from this flag.
    pub parental: Option<bool>,
    /// `ParentID` (2022: several IDs separated by `/`, see [`CatalogItem::parent_ids`]).
    pub parent_id: Option<String>,
    /// `BusinessGroupID` (virtual organisation items, type 216).
    pub business_group_id: Option<String>,
    /// `SafetyWay`.
    pub safety_way: Option<u32>,
    /// `RegisterWay`.
    pub register_way: Option<u32>,
    /// `CertNum`.
    pub cert_num: Option<String>,
    /// `Certifiable`.
    pub certifiable: Option<bool>,
    /// `ErrCode`.
    pub err_code: Option<u32>,
    /// `EndTime`.
    pub end_time: Option<String>,
    /// `Secrecy`.
    pub secrecy: Option<u32>,
    /// `IPAddress` as sent (Dahua IVSS sends an RTSP URL, vector 71; see [`CatalogItem::ip`]).
    pub ip_address: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `Status`.
    pub status: Option<ChannelStatus>,
    /// `Longitude`.
    pub longitude: Option<f64>,
    /// `Latitude`.
    pub latitude: Option<f64>,
    /// `PTZType`, from the item or its `<Info>`.
    pub ptz_type: Option<u32>,
    /// `<Info>` children (name, text), e.g. `PTZType`, `Resolution`, `DownloadSpeed`.
    pub info: Vec<(String, String)>,
    /// Other child elements (name, text), e.g. `StreamNum`, 2022 additions.
    pub extra: Vec<(String, String)>,
    /// Fields present but unparsable.
    pub invalid_fields: Vec<&'static str>,
}

impl CatalogItem {
    /// `ParentID` split on `/` (GB/T 28181-2022 allows several parents).
    pub fn parent_ids(&self) -> Vec<&str> {
        self.parent_id
            .as_deref()
            .map(|p| {
                p.split('/')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The address in `IPAddress`, also when it is a URL (`rtsp://admin@192.168.1.64:554/...`,
    /// [`Quirk::UrlInIpAddress`]).
    pub fn ip(&self) -> Option<IpAddr> {
        extract_ip(self.ip_address.as_deref()?).map(|(ip, _)| ip)
    }
}

/// Extracts an IP address from a bare address or a URL; the flag says whether it was a URL.
pub(crate) fn extract_ip(s: &str) -> Option<(IpAddr, bool)> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some((ip, false));
    }
    let after_scheme = s.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host.split(':').next()?
    };
    host.parse().ok().map(|ip| (ip, true))
}

/// Catalog response or notification payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogList {
    /// `SumNum`: total items across all packets, as announced.
    pub sum_num: Option<u32>,
    /// `DeviceList Num=`: items in this packet, as announced.
    pub list_num: Option<u32>,
    /// The items of this packet.
    pub items: Vec<CatalogItem>,
}

/// `DeviceInfo` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `Result` (OK/ERROR).
    pub result: Option<String>,
    /// `DeviceType`.
    pub device_type: Option<String>,
    /// `Manufacturer`.
    pub manufacturer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
    /// `Firmware`.
    pub firmware: Option<String>,
    /// `MaxCamera`.
    pub max_camera: Option<u32>,
    /// `MaxAlarm`.
    pub max_alarm: Option<u32>,
    /// `Channel`.
    pub channel: Option<u32>,
}

/// One `<Item>` of `<AlarmStatus>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmStatusItem {
    /// Alarm input ID.
    pub device_id: String,
    /// `DutyStatus` (ONDUTY/OFFDUTY/ALARM).
    pub duty_status: Option<String>,
}

/// `DeviceStatus` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    /// `Result`.
    pub result: Option<String>,
    /// `Online`: true for ONLINE.
    pub online: Option<bool>,
    /// `Status` (OK/ERROR).
    pub status: Option<String>,
    /// `Reason`.
    pub reason: Option<String>,
    /// `Encode` (ON/OFF).
    pub encode: Option<String>,
    /// `Record` (ON/OFF).
    pub record: Option<String>,
    /// `DeviceTime`.
    pub device_time: Option<String>,
    /// `AlarmStatus` items (Dahua spells it `Alarmstatus`).
    pub alarm_status: Vec<AlarmStatusItem>,
}

/// `Alarm` notification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alarm {
    /// `AlarmPriority`.
    pub priority: Option<u32>,
    /// `AlarmMethod`.
    pub method: Option<u32>,
    /// `AlarmTime`.
    pub time: Option<String>,
    /// `AlarmDescription`.
    pub description: Option<String>,
    /// `Longitude`.
    pub longitude: Option<f64>,
    /// `Latitude`.
    pub latitude: Option<f64>,
    /// `Info/AlarmType`.
    pub alarm_type: Option<u32>,
    /// `Info/AlarmTypeParam/EventType`.
    pub event_type: Option<u32>,
}

/// One record segment of a `RecordInfo` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordItem {
    /// Channel ID.
    pub device_id: String,
    /// `Name`.
    pub name: Option<String>,
    /// `FilePath`.
    pub file_path: Option<String>,
    /// `Address`.
    pub address: Option<String>,
    /// `StartTime`.
    pub start_time: Option<String>,
    /// `EndTime`.
    pub end_time: Option<String>,
    /// `Secrecy`.
    pub secrecy: Option<u32>,
    /// `Type` (time/alarm/manual/all).
    pub record_type: Option<String>,
    /// `RecorderID`.
    pub recorder_id: Option<String>,
}

/// `RecordInfo` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordList {
    /// `Name`.
    pub name: Option<String>,
    /// `SumNum`.
    pub sum_num: Option<u32>,
    /// `RecordList Num=`.
    pub list_num: Option<u32>,
    /// Items.
    pub items: Vec<RecordItem>,
}

/// Query parameters (Catalog / RecordInfo time range and filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// `StartTime`.
    pub start_time: Option<String>,
    /// `EndTime`.
    pub end_time: Option<String>,
    /// `Type`.
    pub record_type: Option<String>,
    /// `Secrecy`.
    pub secrecy: Option<u32>,
}

/// What a document carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Keepalive notify; `status` is `OK` normally, `info` lists faulty device IDs.
    Keepalive {
        /// `Status`.
        status: Option<String>,
        /// `Info/DeviceID` entries.
        faulty: Vec<String>,
    },
    /// A query (Catalog, DeviceInfo, DeviceStatus, RecordInfo, ...).
    Query(QueryParams),
    /// A catalog response packet.
    CatalogResponse(CatalogList),
    /// A catalog change notification (Notify with CmdType Catalog; items carry `Event`).
    CatalogNotify(CatalogList),
    /// DeviceInfo response.
    DeviceInfo(DeviceInfo),
    /// DeviceStatus response.
    DeviceStatus(DeviceStatus),
    /// Alarm notification.
    Alarm(Alarm),
    /// RecordInfo response.
    RecordInfo(RecordList),
    /// A control command: child elements except CmdType/SN/DeviceID (e.g. `PTZCmd`).
    Control(Vec<(String, String)>),
    /// A response carrying only a `Result` (e.g. to DeviceControl).
    Result(Option<String>),
    /// Anything else: the remaining children (name, text).
    Other(Vec<(String, String)>),
}

/// A parsed MANSCDP document.
#[derive(Debug, Clone, PartialEq)]
pub struct Manscdp {
    /// Root element.
    pub root: Root,
    /// `CmdType`.
    pub cmd_type: CmdType,
    /// `SN` (absent only on broken devices).
    pub sn: Option<u64>,
    /// `DeviceID` of the document (the device or channel it is about).
    pub device_id: String,
    /// The payload.
    pub payload: Payload,
    /// The encoding the body was decoded with (encoding_rs name).
    pub encoding: &'static str,
    /// Quirks applied.
    pub quirks: QuirkSet,
}

impl Manscdp {
    /// Whether this is a keepalive notification.
    pub fn is_keepalive(&self) -> bool {
        matches!(self.payload, Payload::Keepalive { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirk_url_in_ip_address_extraction() {
        assert_eq!(
            extract_ip("rtsp://admin@192.168.1.64:554/Streaming/Channels/101"),
            Some(("192.168.1.64".parse().unwrap(), true))
        );
        assert_eq!(
            extract_ip("192.168.1.64"),
            Some(("192.168.1.64".parse().unwrap(), false))
        );
        assert_eq!(
            extract_ip("http://[::1]:80/"),
            Some(("::1".parse().unwrap(), true))
        );
        assert_eq!(extract_ip("camera.local"), None);
    }

    #[test]
    fn enums_are_case_insensitive() {
        assert_eq!(CmdType::parse("keepalive"), CmdType::Keepalive);
        assert_eq!(ChannelStatus::parse("online"), ChannelStatus::On);
        assert_eq!(ChannelStatus::parse("OFFLINE"), ChannelStatus::Off);
        assert_eq!(CatalogEvent::parse("vlost"), CatalogEvent::VideoLost);
        assert_eq!(CatalogEvent::parse("X").as_str(), "X");
    }
}
