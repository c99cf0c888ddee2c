//! Builders for the MANSCDP bodies we send: queries to devices, keepalives and catalog
//! responses to an upper platform (cascade).

use std::fmt::Write as _;

use bytes::Bytes;
use encoding_rs::{GB18030, GBK};

use super::types::{CatalogItem, CmdType, DeviceInfo, DeviceStatus};

/// The character encoding of a body we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyEncoding {
    /// Declared `GB2312`, encoded with the GBK encoder (what devices and most platforms
    /// expect; characters outside GBK become numeric character references).
    #[default]
    Gb2312,
    /// Declared and encoded `GB18030` (every Unicode character).
    Gb18030,
    /// Declared and encoded `UTF-8`.
    Utf8,
    /// No `encoding` in the declaration (`<?xml version="1.0"?>`, so UTF-8), as the eXosip
    /// platform of vector 07 sends its queries and the Dahua device there answers them. Used
    /// for our queries (ASCII only): a `GB2312` declaration makes some device stacks drop the
    /// query (`gb28181-rs` 0.14, `testdata/interop/SOURCES.md`).
    Undeclared,
}

impl BodyEncoding {
    fn label(self) -> &'static str {
        match self {
            BodyEncoding::Gb2312 => "GB2312",
            BodyEncoding::Gb18030 => "GB18030",
            BodyEncoding::Utf8 | BodyEncoding::Undeclared => "UTF-8",
        }
    }

    fn encode(self, s: &str) -> Vec<u8> {
        match self {
            BodyEncoding::Gb2312 => GBK.encode(s).0.into_owned(),
            BodyEncoding::Gb18030 => GB18030.encode(s).0.into_owned(),
            BodyEncoding::Utf8 | BodyEncoding::Undeclared => s.as_bytes().to_vec(),
        }
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 text; drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn prolog(enc: BodyEncoding) -> String {
    match enc {
        BodyEncoding::Undeclared => "<?xml version=\"1.0\"?>\r\n".to_owned(),
        _ => format!("<?xml version=\"1.0\" encoding=\"{}\"?>\r\n", enc.label()),
    }
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>{}</{name}>\r\n", escape(value));
}

/// A `<Query>` for Catalog, DeviceInfo, DeviceStatus (or any CmdType without parameters).
pub fn query(cmd: &CmdType, sn: u64, device_id: &str, enc: BodyEncoding) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Query>\r\n");
    field(&mut s, "CmdType", cmd.as_str());
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", device_id);
    s.push_str("</Query>\r\n");
    Bytes::from(enc.encode(&s))
}

/// A RecordInfo `<Query>` for a channel and time range (`YYYY-MM-DDTHH:MM:SS`), type `all`
/// unless given (vector 34 is the reference).
pub fn record_info_query(
    sn: u64,
    channel_id: &str,
    start_time: &str,
    end_time: &str,
    record_type: Option<&str>,
    enc: BodyEncoding,
) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Query>\r\n");
    field(&mut s, "CmdType", "RecordInfo");
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", channel_id);
    field(&mut s, "StartTime", start_time);
    field(&mut s, "EndTime", end_time);
    field(&mut s, "Secrecy", "0");
    field(&mut s, "Type", record_type.unwrap_or("all"));
    s.push_str("</Query>\r\n");
    Bytes::from(enc.encode(&s))
}

/// Our keepalive `<Notify>` to an upper platform.
pub fn keepalive(sn: u64, device_id: &str, enc: BodyEncoding) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Notify>\r\n");
    field(&mut s, "CmdType", "Keepalive");
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", device_id);
    field(&mut s, "Status", "OK");
    s.push_str("</Notify>\r\n");
    Bytes::from(enc.encode(&s))
}

/// Serializes one catalog item (fields in GB/T 28181 order; absent fields omitted).
pub fn catalog_item_xml(item: &CatalogItem) -> String {
    let mut s = String::from("<Item>\r\n");
    field(&mut s, "DeviceID", &item.device_id);
    if let Some(e) = &item.event {
        field(&mut s, "Event", e.as_str());
    }
    let opt = |s: &mut String, n: &str, v: &Option<String>| {
        if let Some(v) = v {
            field(s, n, v);
        }
    };
    let num = |s: &mut String, n: &str, v: Option<u32>| {
        if let Some(v) = v {
            field(s, n, &v.to_string());
        }
    };
    opt(&mut s, "Name", &item.name);
    opt(&mut s, "Manufacturer", &item.manufacturer);
    opt(&mut s, "Model", &item.model);
    opt(&mut s, "Owner", &item.owner);
    if let Some(c) = &item.civil_code {
        field(&mut s, "CivilCode", c.as_str());
    }
    opt(&mut s, "Block", &item.block);
    opt(&mut s, "Address", &item.address);
    num(&mut s, "Parental", item.parental.map(u32::from));
    opt(&mut s, "ParentID", &item.parent_id);
    opt(&mut s, "BusinessGroupID", &item.business_group_id);
    num(&mut s, "SafetyWay", item.safety_way);
    num(&mut s, "RegisterWay", item.register_way);
    opt(&mut s, "CertNum", &item.cert_num);
    num(&mut s, "Certifiable", item.certifiable.map(u32::from));
    num(&mut s, "ErrCode", item.err_code);
    opt(&mut s, "EndTime", &item.end_time);
    num(&mut s, "Secrecy", item.secrecy);
    opt(&mut s, "IPAddress", &item.ip_address);
    num(&mut s, "Port", item.port.map(u32::from));
    if let Some(st) = &item.status {
        field(&mut s, "Status", st.as_str());
    }
    if let Some(v) = item.longitude {
        field(&mut s, "Longitude", &format!("{v:.7}"));
    }
    if let Some(v) = item.latitude {
        field(&mut s, "Latitude", &format!("{v:.7}"));
    }
    for (k, v) in &item.extra {
        if is_name(k) {
            field(&mut s, k, v);
        }
    }
    let has_info_ptz = item
        .info
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("PTZType"));
    if !item.info.is_empty() || item.ptz_type.is_some() {
        s.push_str("<Info>\r\n");
        if let (Some(p), false) = (item.ptz_type, has_info_ptz) {
            field(&mut s, "PTZType", &p.to_string());
        }
        for (k, v) in &item.info {
            if is_name(k) {
                field(&mut s, k, v);
            }
        }
        s.push_str("</Info>\r\n");
    }
    s.push_str("</Item>\r\n");
    s
}

/// Whether `s` is safe as an element name (we only echo names we parsed, but never trust).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Limits for splitting a catalog response into MESSAGEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketLimits {
    /// Items per packet at most. Many upper platforms expect small packets over UDP.
    pub max_items: usize,
    /// Encoded body bytes per packet at most (a single larger item still gets its own packet).
    /// Default 1 200 so that a UDP MESSAGE stays under a 1 500-byte MTU.
    pub max_body_bytes: usize,
}

impl Default for PacketLimits {
    fn default() -> Self {
        PacketLimits {
            max_items: 4,
            max_body_bytes: 1200,
        }
    }
}

/// Our Catalog `<Response>` to an upper platform's query, split into packets that each carry
/// `SumNum` = total items and `DeviceList Num` = items in the packet.
/// An empty catalog yields one packet with `SumNum 0`.
pub fn catalog_response(
    our_id: &str,
    sn: u64,
    items: &[CatalogItem],
    limits: PacketLimits,
    enc: BodyEncoding,
) -> Vec<Bytes> {
    catalog_packets("Response", our_id, sn, items, limits, enc)
}

/// A catalog change `<Notify>` (items carry their `<Event>`: ADD, DEL, ON, OFF, VLOST, DEFECT,
/// UPDATE), split into packets like [`catalog_response`]. Devices send it as the body of a SIP
/// NOTIFY on a catalog subscription, or of a MESSAGE.
pub fn catalog_notify(
    device_id: &str,
    sn: u64,
    items: &[CatalogItem],
    limits: PacketLimits,
    enc: BodyEncoding,
) -> Vec<Bytes> {
    catalog_packets("Notify", device_id, sn, items, limits, enc)
}

fn catalog_packets(
    root: &str,
    our_id: &str,
    sn: u64,
    items: &[CatalogItem],
    limits: PacketLimits,
    enc: BodyEncoding,
) -> Vec<Bytes> {
    let head = |n: usize| {
        let mut s = prolog(enc);
        let _ = write!(s, "<{root}>\r\n");
        field(&mut s, "CmdType", "Catalog");
        field(&mut s, "SN", &sn.to_string());
        field(&mut s, "DeviceID", our_id);
        field(&mut s, "SumNum", &items.len().to_string());
        let _ = write!(s, "<DeviceList Num=\"{n}\">\r\n");
        s
    };
    let tail = format!("</DeviceList>\r\n</{root}>\r\n");
    let encoded: Vec<Vec<u8>> = items
        .iter()
        .map(|i| enc.encode(&catalog_item_xml(i)))
        .collect();
    let base = enc.encode(&head(items.len())).len() + tail.len();
    let mut packets = Vec::new();
    let mut start = 0;
    while start < encoded.len() || (packets.is_empty() && encoded.is_empty()) {
        let mut end = start;
        let mut size = base;
        while end < encoded.len()
            && end - start < limits.max_items.max(1)
            && (end == start || size + encoded[end].len() <= limits.max_body_bytes)
        {
            size += encoded[end].len();
            end += 1;
        }
        let mut body = enc.encode(&head(end - start));
        for e in &encoded[start..end] {
            body.extend_from_slice(e);
        }
        body.extend_from_slice(tail.as_bytes());
        packets.push(Bytes::from(body));
        if encoded.is_empty() {
            break;
        }
        start = end;
    }
    packets
}

/// A `DeviceInfo` `<Response>` (what a device answers to a DeviceInfo query; also what we
/// answer an upper platform). Absent fields are omitted; `Result` defaults to `OK`.
pub fn device_info_response(
    sn: u64,
    device_id: &str,
    info: &DeviceInfo,
    enc: BodyEncoding,
) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Response>\r\n");
    field(&mut s, "CmdType", "DeviceInfo");
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", device_id);
    let opt = |s: &mut String, n: &str, v: &Option<String>| {
        if let Some(v) = v {
            field(s, n, v);
        }
    };
    opt(&mut s, "DeviceName", &info.device_name);
    field(&mut s, "Result", info.result.as_deref().unwrap_or("OK"));
    opt(&mut s, "DeviceType", &info.device_type);
    opt(&mut s, "Manufacturer", &info.manufacturer);
    opt(&mut s, "Model", &info.model);
    opt(&mut s, "Firmware", &info.firmware);
    for (n, v) in [
        ("MaxCamera", info.max_camera),
        ("MaxAlarm", info.max_alarm),
        ("Channel", info.channel),
    ] {
        if let Some(v) = v {
            field(&mut s, n, &v.to_string());
        }
    }
    s.push_str("</Response>\r\n");
    Bytes::from(enc.encode(&s))
}

/// A `DeviceStatus` `<Response>`. `Result` defaults to `OK`; `Online` is written as
/// `ONLINE`/`OFFLINE`.
pub fn device_status_response(
    sn: u64,
    device_id: &str,
    status: &DeviceStatus,
    enc: BodyEncoding,
) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Response>\r\n");
    field(&mut s, "CmdType", "DeviceStatus");
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", device_id);
    field(&mut s, "Result", status.result.as_deref().unwrap_or("OK"));
    if let Some(o) = status.online {
        field(&mut s, "Online", if o { "ONLINE" } else { "OFFLINE" });
    }
    let opt = |s: &mut String, n: &str, v: &Option<String>| {
        if let Some(v) = v {
            field(s, n, v);
        }
    };
    opt(&mut s, "Status", &status.status);
    opt(&mut s, "Reason", &status.reason);
    opt(&mut s, "Encode", &status.encode);
    opt(&mut s, "Record", &status.record);
    opt(&mut s, "DeviceTime", &status.device_time);
    if !status.alarm_status.is_empty() {
        let _ = write!(s, "<AlarmStatus Num=\"{}\">\r\n", status.alarm_status.len());
        for a in &status.alarm_status {
            s.push_str("<Item>\r\n");
            field(&mut s, "DeviceID", &a.device_id);
            opt(&mut s, "DutyStatus", &a.duty_status);
            s.push_str("</Item>\r\n");
        }
        s.push_str("</AlarmStatus>\r\n");
    }
    s.push_str("</Response>\r\n");
    Bytes::from(enc.encode(&s))
}

/// A `<Response>` carrying only `Result` (`OK` or `ERROR`) for `cmd`, e.g. the body of a 200 OK
/// to a catalog SUBSCRIBE.
pub fn result_response(
    cmd: &CmdType,
    sn: u64,
    device_id: &str,
    ok: bool,
    enc: BodyEncoding,
) -> Bytes {
    let mut s = prolog(enc);
    s.push_str("<Response>\r\n");
    field(&mut s, "CmdType", cmd.as_str());
    field(&mut s, "SN", &sn.to_string());
    field(&mut s, "DeviceID", device_id);
    field(&mut s, "Result", if ok { "OK" } else { "ERROR" });
    s.push_str("</Response>\r\n");
    Bytes::from(enc.encode(&s))
}
