//! Every real-device vector (01-79) against the facts in its `EXPECTED.json`, plus
//! serialize→parse round trips of every SIP vector.

use serde_json::Value;

use crate::manscdp::{self, Payload};
use crate::quirks::QuirkSet;
use crate::sip::{parse_datagram, HeaderName, Message, StartLine};
use crate::testdata::{EXPECTED_JSON, VECTORS};

fn start_line(m: &Message) -> String {
    match &m.start {
        StartLine::Request(r) => format!("{} {} SIP/2.0", r.method, r.uri),
        StartLine::Response(s) => format!("SIP/2.0 {} {}", s.code, s.reason),
    }
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Checks the MANSCDP facts of one body.
fn check_xml(name: &str, body: &[u8], xml: &Value) {
    let root = s(&xml["root"]).unwrap();
    assert_eq!(
        manscdp::decode::declared_encoding(body).as_deref(),
        s(&xml["declared_encoding"]).filter(|e| *e != "utf-8"),
        "{name}: declared encoding"
    );
    if root == "Item" {
        let mut q = QuirkSet::new();
        let text = manscdp::decode::decode_body(body).text;
        let el = manscdp::xml::parse_tree(&text, &mut q).unwrap();
        let item = manscdp::parse_catalog_item(&el, &mut q).unwrap();
        let want = &xml["item"];
        assert_eq!(item.device_id, s(&want["DeviceID"]).unwrap());
        assert_eq!(item.name.as_deref(), s(&want["Name"]));
        assert_eq!(item.model.as_deref(), s(&want["Model"]));
        assert_eq!(item.parent_id.as_deref(), s(&want["ParentID"]));
        assert_eq!(item.status.as_ref().map(|x| x.as_str()), s(&want["Status"]));
        for (k, v) in want["Info"].as_object().unwrap() {
            assert!(
                item.info
                    .contains(&(k.clone(), v.as_str().unwrap().to_owned())),
                "{name}: Info/{k}"
            );
        }
        return;
    }
    let m = manscdp::parse_body(body, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.root.as_str(), root, "{name}");
    assert_eq!(m.cmd_type.as_str(), s(&xml["CmdType"]).unwrap(), "{name}");
    assert_eq!(
        m.sn.map(|x| x.to_string()).as_deref(),
        s(&xml["SN"]),
        "{name}"
    );
    assert_eq!(m.device_id, s(&xml["DeviceID"]).unwrap(), "{name}");
    match &m.payload {
        Payload::Keepalive { status, .. } => {
            assert_eq!(status.as_deref(), s(&xml["Status"]), "{name}")
        }
        Payload::CatalogResponse(l) => {
            assert_eq!(
                l.sum_num.map(|x| x.to_string()).as_deref(),
                s(&xml["SumNum"]),
                "{name}"
            );
            assert_eq!(
                l.list_num.map(|x| x.to_string()).as_deref(),
                s(&xml["DeviceList_Num"]),
                "{name}"
            );
            let items = xml["DeviceList_items"].as_array().unwrap();
            assert_eq!(l.items.len(), items.len(), "{name}");
            for (got, want) in l.items.iter().zip(items) {
                assert_eq!(got.device_id, s(&want["DeviceID"]).unwrap(), "{name}");
                assert_eq!(got.name.as_deref(), s(&want["Name"]), "{name}");
            }
        }
        Payload::DeviceInfo(d) => assert_eq!(d.result.as_deref(), s(&xml["Result"]), "{name}"),
        Payload::DeviceStatus(d) => {
            assert_eq!(d.result.as_deref(), s(&xml["Result"]), "{name}");
            assert_eq!(d.status.as_deref(), s(&xml["Status"]), "{name}");
            let items = xml["Alarmstatus_items"].as_array().unwrap();
            assert_eq!(
                xml["Alarmstatus_Num"].as_str().unwrap(),
                items.len().to_string()
            );
            let ids: Vec<_> = d
                .alarm_status
                .iter()
                .map(|a| a.device_id.as_str())
                .collect();
            let want: Vec<_> = items
                .iter()
                .map(|i| i["DeviceID"].as_str().unwrap())
                .collect();
            assert_eq!(ids, want, "{name}");
        }
        Payload::RecordInfo(r) => {
            assert_eq!(
                r.sum_num.map(|x| x.to_string()).as_deref(),
                s(&xml["SumNum"]),
                "{name}"
            );
            assert_eq!(r.name.as_deref(), s(&xml["Name"]), "{name}");
            assert_eq!(
                r.list_num.map(|x| x.to_string()).as_deref(),
                s(&xml["RecordList_Num"]),
                "{name}"
            );
            let items = xml["RecordList_items"].as_array().unwrap();
            for (got, want) in r.items.iter().zip(items) {
                assert_eq!(got.device_id, s(&want["DeviceID"]).unwrap());
                assert_eq!(got.name.as_deref(), s(&want["Name"]));
            }
            assert_eq!(r.items.len(), items.len());
        }
        Payload::Alarm(a) => assert_eq!(
            a.description.as_deref(),
            s(&xml["AlarmDescription"]),
            "{name}"
        ),
        Payload::Query(_) | Payload::Control(_) => {}
        other => panic!("{name}: unexpected payload {other:?}"),
    }
}

#[test]
fn every_vector_matches_expected_json() {
    let expected: Value = serde_json::from_str(EXPECTED_JSON).unwrap();
    let files = expected["files"].as_object().unwrap();
    assert_eq!(
        files.len(),
        VECTORS.len(),
        "every vector has facts and vice versa"
    );
    let mut checked_xml = 0;
    for (name, bytes) in VECTORS {
        let facts = &files[*name];
        assert_eq!(
            facts["size"].as_u64().unwrap() as usize,
            bytes.len(),
            "{name}: size"
        );
        if facts["body_only"].as_bool() == Some(true) {
            check_xml(name, bytes, &facts["xml"]);
            checked_xml += 1;
            continue;
        }
        let m = parse_datagram(*bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The stored vectors are well-formed SIP; the only quirk is Dahua's 101 (vector 21).
        let mut expected_quirks = QuirkSet::new();
        if name.starts_with("21_") {
            expected_quirks.insert(crate::quirks::Quirk::DahuaDialogEstablishment101);
        }
        assert_eq!(m.quirks, expected_quirks, "{name}");
        assert_eq!(
            start_line(&m),
            facts["start_line"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            m.body.len() as u64,
            facts["body_length"].as_u64().unwrap(),
            "{name}"
        );
        let headers = facts["headers"].as_object().unwrap();
        assert_eq!(
            m.headers.len(),
            headers
                .values()
                .map(|v| v.as_array().unwrap().len())
                .sum::<usize>(),
            "{name}"
        );
        for (hname, values) in headers {
            let hn = HeaderName::from_wire(hname);
            let got: Vec<String> = m
                .headers_named(&hn)
                .map(|h| h.value_str().into_owned())
                .collect();
            let want: Vec<String> = values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().trim().to_owned())
                .collect();
            assert_eq!(got, want, "{name}: {hname}");
        }
        // Typed accessors work on every real message.
        m.top_via().unwrap_or_else(|e| panic!("{name}: {e}"));
        m.from().unwrap();
        m.to().unwrap();
        m.call_id().unwrap();
        let cseq = m.cseq().unwrap();
        if let Some(method) = m.method() {
            if *method != crate::sip::Method::Ack {
                assert_eq!(&cseq.method, method, "{name}");
            }
        }
        m.contact().unwrap();
        m.expires().unwrap();
        m.max_forwards().unwrap();
        m.content_type().unwrap();
        if let Some(xml) = facts.get("xml") {
            assert!(m.content_type().unwrap().unwrap().is_manscdp(), "{name}");
            check_xml(name, &m.body, xml);
            checked_xml += 1;
        } else if m.content_type().unwrap().is_some_and(|c| c.is_sdp()) {
            crate::sdp::Sdp::parse(&m.body).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    assert_eq!(checked_xml, 22, "every MANSCDP body with facts was checked");
}

#[test]
fn every_sip_vector_round_trips() {
    for (name, bytes) in VECTORS.iter().filter(|(n, _)| n.ends_with(".sip")) {
        let m = parse_datagram(*bytes).unwrap();
        let again = parse_datagram(m.to_bytes()).unwrap();
        assert_eq!(again.start, m.start, "{name}");
        assert_eq!(again.body, m.body, "{name}");
        let strip = |m: &Message| {
            m.headers
                .iter()
                .filter(|h| h.name != HeaderName::ContentLength)
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&again), strip(&m), "{name}");
        assert_eq!(
            again.content_length().unwrap(),
            Some(m.body.len() as u32),
            "{name}"
        );
        // The serialization is canonical: a second round is byte-identical.
        assert_eq!(again.to_bytes(), m.to_bytes(), "{name}");
    }
}
