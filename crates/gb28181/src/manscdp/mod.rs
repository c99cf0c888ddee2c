//! MANSCDP: the XML bodies of GB/T 28181 MESSAGE/NOTIFY requests.
//!
//! [`parse_body`] decodes the body ([`decode`]), parses it into an element tree ([`xml`]) and
//! extracts a typed [`Manscdp`]. Errors name the device (from the SIP From header when the
//! caller knows it, else from the document) and the CmdType when they can be recovered.
//! [`build`] produces our queries, keepalives and catalog responses.

pub mod build;
pub mod decode;
pub mod types;
pub mod xml;

use thiserror::Error;

use crate::gbid::CivilCode;
use crate::quirks::{Quirk, QuirkSet};
pub use types::*;
use xml::Element;

/// Why a MANSCDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManscdpError {
    /// Not well-formed XML.
    #[error("MANSCDP body from device {} (CmdType {}) is not well-formed XML at byte {position}: {reason}",
        device.as_deref().unwrap_or("?"), cmd_type.as_deref().unwrap_or("?"))]
    NotWellFormed {
        /// Device, from the SIP From header or the document.
        device: Option<String>,
        /// CmdType, if it could be found in the raw text.
        cmd_type: Option<String>,
        /// Byte offset in the decoded text.
        position: u64,
        /// Parser message.
        reason: String,
    },
    /// The root is not Query/Response/Notify/Control.
    #[error("MANSCDP body from device {} has root <{root}>, expected Query, Response, Notify or Control",
        device.as_deref().unwrap_or("?"))]
    UnknownRoot {
        /// Device.
        device: Option<String>,
        /// The root element name.
        root: String,
    },
    /// A required element is missing.
    #[error("MANSCDP {root} from device {} (CmdType {}) lacks <{field}>",
        device.as_deref().unwrap_or("?"), cmd_type.as_deref().unwrap_or("?"))]
    MissingField {
        /// Device.
        device: Option<String>,
        /// CmdType if present.
        cmd_type: Option<String>,
        /// Root element.
        root: &'static str,
        /// The missing element.
        field: &'static str,
    },
    /// A required element with an unusable value.
    #[error("MANSCDP {cmd_type} from device {}: <{field}> has invalid value {value:?}",
        device.as_deref().unwrap_or("?"))]
    InvalidField {
        /// Device.
        device: Option<String>,
        /// CmdType.
        cmd_type: String,
        /// The element.
        field: &'static str,
        /// The value (truncated).
        value: String,
    },
}

/// Finds `<tag>value</tag>` in raw text without parsing (for error messages only).
fn sniff(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find('<')? + start;
    let v = text[start..end].trim();
    (!v.is_empty()).then(|| v.chars().take(64).collect())
}

/// Text of a child; `None` when absent or empty.
fn text(el: &Element, name: &str, quirks: &mut QuirkSet) -> Option<String> {
    let t = el.child_q(name, quirks)?.text.as_str();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Text of a descriptive catalog field, treating a value that is exactly the element's own name
/// as a placeholder (`<Owner>Owner</Owner>`, Hikvision NVR vector 70; `<Address>Address</Address>`,
/// Uniview vector 79). Only used for free-text fields, where such a value carries no information.
fn descriptive(el: &Element, name: &str, quirks: &mut QuirkSet) -> Option<String> {
    let t = text(el, name, quirks)?;
    if t == name {
        quirks.insert(Quirk::PlaceholderValue);
        return None;
    }
    Some(t)
}

fn number<T: std::str::FromStr>(
    el: &Element,
    name: &'static str,
    quirks: &mut QuirkSet,
    invalid: &mut Vec<&'static str>,
) -> Option<T> {
    let t = text(el, name, quirks)?;
    match t.trim().parse() {
        Ok(v) => Some(v),
        Err(_) => {
            invalid.push(name);
            None
        }
    }
}

fn flag(
    el: &Element,
    name: &'static str,
    quirks: &mut QuirkSet,
    invalid: &mut Vec<&'static str>,
) -> Option<bool> {
    let t = text(el, name, quirks)?;
    match t.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => {
            invalid.push(name);
            None
        }
    }
}

/// Parses one catalog `<Item>`.
pub fn parse_catalog_item(el: &Element, quirks: &mut QuirkSet) -> Option<CatalogItem> {
    let mut inv = Vec::new();
    let q = quirks;
    let device_id = text(el, "DeviceID", q)?;
    let civil_code = match descriptive(el, "CivilCode", q) {
        Some(c) => match CivilCode::parse(&c) {
            Ok(code) => Some(code),
            Err(_) => {
                q.insert(Quirk::PlaceholderValue);
                None
            }
        },
        None => None,
    };
    let ip_address = text(el, "IPAddress", q);
    if let Some(ip) = &ip_address {
        if types::extract_ip(ip).is_some_and(|(_, url)| url) {
            q.insert(Quirk::UrlInIpAddress);
        }
    }
    let info: Vec<(String, String)> = el
        .child_q("Info", q)
        .map(|i| {
            i.children
                .iter()
                .map(|c| (c.name.clone(), c.text.clone()))
                .collect()
        })
        .unwrap_or_default();
    let ptz_type = number(el, "PTZType", q, &mut inv).or_else(|| {
        let i = el.child("Info")?;
        number(i, "PTZType", q, &mut inv)
    });
    const KNOWN: &[&str] = &[
        "DeviceID",
        "Event",
        "Name",
        "Manufacturer",
        "Model",
        "Owner",
        "CivilCode",
        "Block",
        "Address",
        "Parental",
        "ParentID",
        "BusinessGroupID",
        "SafetyWay",
        "RegisterWay",
        "CertNum",
        "Certifiable",
        "ErrCode",
        "EndTime",
        "Secrecy",
        "IPAddress",
        "Port",
        "Password",
        "Status",
        "Longitude",
        "Latitude",
        "PTZType",
        "Info",
    ];
    let extra = el
        .children
        .iter()
        .filter(|c| !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect();
    Some(CatalogItem {
        event: text(el, "Event", q).map(|e| CatalogEvent::parse(&e)),
        name: descriptive(el, "Name", q),
        manufacturer: descriptive(el, "Manufacturer", q),
        model: descriptive(el, "Model", q),
        owner: descriptive(el, "Owner", q),
        civil_code,
        block: descriptive(el, "Block", q),
        address: descriptive(el, "Address", q),
        parental: flag(el, "Parental", q, &mut inv),
        parent_id: text(el, "ParentID", q),
        business_group_id: text(el, "BusinessGroupID", q),
        safety_way: number(el, "SafetyWay", q, &mut inv),
        register_way: number(el, "RegisterWay", q, &mut inv),
        cert_num: text(el, "CertNum", q),
        certifiable: flag(el, "Certifiable", q, &mut inv),
        err_code: number(el, "ErrCode", q, &mut inv),
        end_time: text(el, "EndTime", q),
        secrecy: number(el, "Secrecy", q, &mut inv),
        ip_address,
        port: number(el, "Port", q, &mut inv),
        status: text(el, "Status", q).map(|s| ChannelStatus::parse(&s)),
        longitude: number(el, "Longitude", q, &mut inv),
        latitude: number(el, "Latitude", q, &mut inv),
        ptz_type,
        info,
        extra,
        invalid_fields: inv,
        device_id,
    })
}

fn list_num(list: &Element) -> Option<u32> {
    list.attr("Num").and_then(|n| n.trim().parse().ok())
}

fn catalog_list(root: &Element, q: &mut QuirkSet) -> CatalogList {
    let mut inv = Vec::new();
    let list = root.child_q("DeviceList", q);
    CatalogList {
        sum_num: number(root, "SumNum", q, &mut inv),
        list_num: list.and_then(list_num),
        items: list
            .map(|l| {
                l.children_named("Item")
                    .filter_map(|i| parse_catalog_item(i, q))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn remaining(root: &Element) -> Vec<(String, String)> {
    root.children
        .iter()
        .filter(|c| {
            !["CmdType", "SN", "DeviceID"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.name))
        })
        .map(|c| (c.name.clone(), c.text.clone()))
        .collect()
}

/// Parses a MANSCDP body. `device_hint` is the sender as the SIP layer knows it (From user),
/// used in error messages.
pub fn parse_body(body: &[u8], device_hint: Option<&str>) -> Result<Manscdp, ManscdpError> {
    let decoded = decode::decode_body(body);
    let mut q = decoded.quirks;
    let text = decoded.text.as_str();
    let root = xml::parse_tree(text, &mut q).map_err(|e| ManscdpError::NotWellFormed {
        device: device_hint
            .map(str::to_owned)
            .or_else(|| sniff(text, "DeviceID")),
        cmd_type: sniff(text, "CmdType"),
        position: e.position,
        reason: e.reason,
    })?;
    parse_tree_into(&root, decoded.encoding.name(), q, device_hint)
}

fn parse_tree_into(
    root: &Element,
    encoding: &'static str,
    mut q: QuirkSet,
    device_hint: Option<&str>,
) -> Result<Manscdp, ManscdpError> {
    let device = || {
        device_hint
            .map(str::to_owned)
            .or_else(|| root.child_text("DeviceID").map(str::to_owned))
    };
    let root_kind = match root.name.to_ascii_lowercase().as_str() {
        "query" => Root::Query,
        "response" => Root::Response,
        "notify" => Root::Notify,
        "control" => Root::Control,
        _ => {
            return Err(ManscdpError::UnknownRoot {
                device: device(),
                root: root.name.chars().take(64).collect(),
            })
        }
    };
    // CmdType, SN and DeviceID are child elements; older stacks write them as attributes of
    // the root (Quirk::ManscdpHeaderAsAttributes).
    let header = |name: &str, q: &mut QuirkSet| -> Option<String> {
        if let Some(t) = root.child_q(name, q).map(|c| c.text.trim().to_owned()) {
            if !t.is_empty() {
                return Some(t);
            }
        }
        let a = root.attr(name).map(str::trim).filter(|t| !t.is_empty())?;
        q.insert(Quirk::ManscdpHeaderAsAttributes);
        Some(a.to_owned())
    };
    let cmd_text = header("CmdType", &mut q);
    let Some(cmd_text) = cmd_text else {
        return Err(ManscdpError::MissingField {
            device: device(),
            cmd_type: None,
            root: root_kind.as_str(),
            field: "CmdType",
        });
    };
    let cmd_type = CmdType::parse(&cmd_text);
    let device_id = match header("DeviceID", &mut q) {
        Some(d) => d,
        None => {
            return Err(ManscdpError::MissingField {
                device: device(),
                cmd_type: Some(cmd_text),
                root: root_kind.as_str(),
                field: "DeviceID",
            })
        }
    };
    let sn = match header("SN", &mut q).as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| ManscdpError::InvalidField {
            device: device(),
            cmd_type: cmd_text.clone(),
            field: "SN",
            value: s.chars().take(32).collect(),
        })?),
    };
    let mut inv = Vec::new();
    let payload = match (root_kind, &cmd_type) {
        (Root::Notify, CmdType::Keepalive) => Payload::Keepalive {
            status: text(root, "Status", &mut q),
            faulty: root
                .child("Info")
                .map(|i| {
                    i.children_named("DeviceID")
                        .map(|d| d.text.clone())
                        .collect()
                })
                .unwrap_or_default(),
        },
        (Root::Query, _) => Payload::Query(QueryParams {
            start_time: text(root, "StartTime", &mut q),
            end_time: text(root, "EndTime", &mut q),
            record_type: text(root, "Type", &mut q),
            secrecy: number(root, "Secrecy", &mut q, &mut inv),
        }),
        (Root::Response, CmdType::Catalog) => Payload::CatalogResponse(catalog_list(root, &mut q)),
        (Root::Notify, CmdType::Catalog) => Payload::CatalogNotify(catalog_list(root, &mut q)),
        (Root::Response, CmdType::DeviceInfo) => Payload::DeviceInfo(DeviceInfo {
            device_name: text(root, "DeviceName", &mut q),
            result: text(root, "Result", &mut q),
            device_type: text(root, "DeviceType", &mut q),
            manufacturer: text(root, "Manufacturer", &mut q),
            model: text(root, "Model", &mut q),
            firmware: text(root, "Firmware", &mut q),
            max_camera: number(root, "MaxCamera", &mut q, &mut inv),
            max_alarm: number(root, "MaxAlarm", &mut q, &mut inv),
            channel: number(root, "Channel", &mut q, &mut inv),
        }),
        (Root::Response, CmdType::DeviceStatus) => Payload::DeviceStatus(DeviceStatus {
            result: text(root, "Result", &mut q),
            online: text(root, "Online", &mut q).map(|o| o.eq_ignore_ascii_case("ONLINE")),
            status: text(root, "Status", &mut q),
            reason: text(root, "Reason", &mut q),
            encode: text(root, "Encode", &mut q),
            record: text(root, "Record", &mut q),
            device_time: text(root, "DeviceTime", &mut q),
            alarm_status: root
                .child_q("AlarmStatus", &mut q)
                .map(|a| {
                    a.children_named("Item")
                        .filter_map(|i| {
                            Some(AlarmStatusItem {
                                device_id: i.child_text("DeviceID")?.to_owned(),
                                duty_status: i.child_text("DutyStatus").map(str::to_owned),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }),
        (Root::Notify, CmdType::Alarm) => {
            let info = root.child("Info");
            Payload::Alarm(Alarm {
                priority: number(root, "AlarmPriority", &mut q, &mut inv),
                method: number(root, "AlarmMethod", &mut q, &mut inv),
                time: text(root, "AlarmTime", &mut q),
                description: text(root, "AlarmDescription", &mut q),
                longitude: number(root, "Longitude", &mut q, &mut inv),
                latitude: number(root, "Latitude", &mut q, &mut inv),
                alarm_type: info.and_then(|i| number(i, "AlarmType", &mut q, &mut inv)),
                event_type: info
                    .and_then(|i| i.child("AlarmTypeParam"))
                    .and_then(|p| number(p, "EventType", &mut q, &mut inv)),
            })
        }
        (Root::Response, CmdType::RecordInfo) => {
            let list = root.child_q("RecordList", &mut q);
            let items = list
                .map(|l| {
                    l.children_named("Item")
                        .filter_map(|i| {
                            let mut inv2 = Vec::new();
                            Some(RecordItem {
                                device_id: text(i, "DeviceID", &mut q)?,
                                name: text(i, "Name", &mut q),
                                file_path: text(i, "FilePath", &mut q),
                                address: text(i, "Address", &mut q),
                                start_time: text(i, "StartTime", &mut q),
                                end_time: text(i, "EndTime", &mut q),
                                secrecy: number(i, "Secrecy", &mut q, &mut inv2),
                                record_type: text(i, "Type", &mut q),
                                recorder_id: text(i, "RecorderID", &mut q),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Payload::RecordInfo(RecordList {
                name: text(root, "Name", &mut q),
                sum_num: number(root, "SumNum", &mut q, &mut inv),
                list_num: list
                    .and_then(|l| l.attr("Num"))
                    .and_then(|n| n.trim().parse().ok()),
                items,
            })
        }
        (Root::Control, _) => Payload::Control(remaining(root)),
        (Root::Response, _) if root.children.len() <= 4 && root.child("Result").is_some() => {
            Payload::Result(text(root, "Result", &mut q))
        }
        _ => Payload::Other(remaining(root)),
    };
    Ok(Manscdp {
        root: root_kind,
        cmd_type,
        sn,
        device_id,
        payload,
        encoding,
        quirks: q,
    })
}

#[cfg(test)]
mod tests;
