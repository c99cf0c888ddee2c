//! Registry tests driven by the real-device REGISTER / MESSAGE vectors.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::digest::{authorize, choose_challenge, Challenge};
use crate::manscdp::Payload;
use crate::quirks::Quirk;
use crate::sip::{parse_datagram, HeaderName, Transport};
use crate::testdata::vector;

const DAHUA: &str = "34020000001320000002";
const PASSWORD: &str = "12345678";

fn dahua_peer() -> Peer {
    Peer::udp("192.168.6.71:5060".parse().unwrap())
}

struct Clock {
    t0: Instant,
}

impl Clock {
    fn at(&self, secs: u64) -> Now {
        Now::new(
            self.t0 + Duration::from_secs(secs),
            1_715_926_053_000 + secs as i64 * 1000,
        )
    }
}

fn registry(t0: Instant) -> Registry {
    let mut cfg = RegistryConfig::new(
        GbId::parse("34020000002000000010").unwrap(),
        DomainCode::parse("3402000000").unwrap(),
    );
    cfg.default_password = Some(PASSWORD.into());
    cfg.ban = BanPolicy {
        max_failures: 3,
        ..BanPolicy::default()
    };
    Registry::new(cfg, [5; 32], t0)
}

fn msg(name: &str) -> Message {
    parse_datagram(vector(name)).unwrap()
}

/// Answers the 401 in `challenge_resp` for `register` the way a device does.
fn with_authorization(register: &Message, challenge_resp: &Message, password: &str) -> Message {
    let chs: Vec<Challenge> = challenge_resp
        .www_authenticate()
        .iter()
        .map(|v| Challenge::parse(v).unwrap())
        .collect();
    // Like the Dahua of vector 03: answer RFC 2069 style even when qop=auth is offered.
    let mut ch = choose_challenge(&chs).unwrap().clone();
    ch.qop.clear();
    let ch = &ch;
    let uri = match &register.start {
        crate::sip::StartLine::Request(r) => r.uri.clone(),
        _ => unreachable!(),
    };
    let user = register.from().unwrap().uri.user.unwrap();
    let creds = authorize(ch, "REGISTER", &uri, &user, password, "c0ffee", 1);
    let mut m = register.clone();
    m.set_header(HeaderName::Authorization, creds.to_header_value());
    // Re-parse so the message is exactly what a device would send.
    parse_datagram(m.to_bytes()).unwrap()
}

/// Registers the Dahua of vectors 01/03 at `now`; returns the 200 OK outcome.
fn register_dahua(r: &mut Registry, now: Now) -> RequestOutcome {
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), now);
    let challenge = first.response.expect("401");
    assert_eq!(challenge.status(), Some(401));
    let second = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &challenge,
        PASSWORD,
    );
    r.handle_request(&second, dahua_peer(), now)
}

fn kinds(events: &[RegistryEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            RegistryEvent::DeviceRegistered { .. } => "registered",
            RegistryEvent::DeviceOnline { .. } => "online",
            RegistryEvent::DeviceOffline { .. } => "offline",
            RegistryEvent::AuthFailed { .. } => "auth_failed",
            RegistryEvent::SourceBanned { .. } => "banned",
            RegistryEvent::QueryDeviceInfo { .. } => "query_info",
            RegistryEvent::QueryCatalog { .. } => "query_catalog",
            RegistryEvent::QuirksSeen { .. } => "quirks",
        })
        .collect()
}

#[test]
fn dahua_register_challenge_then_200_with_date() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(0));
    assert!(first.events.is_empty());
    let challenge = first.response.unwrap();
    assert_eq!(challenge.status(), Some(401));
    let chs = challenge.www_authenticate();
    assert_eq!(chs.len(), 1, "2016 device: MD5 only");
    let ch = Challenge::parse(&chs[0]).unwrap();
    assert_eq!(ch.realm, "3402000000");
    assert!(chs[0].contains("algorithm=MD5"));
    // The 401 answers vector 01 the way eXosip did in vector 02.
    let via = challenge.top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK1251336551"));
    assert_eq!(via.rport(), Some(Some(5060)));
    assert!(challenge.to().unwrap().tag().is_some());

    let ok = register_dahua(&mut r, c.at(0));
    let resp = ok.response.unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(
        resp.header_str(&HeaderName::Date).unwrap(),
        "2024-05-17T14:07:33.000"
    );
    assert_eq!(resp.expires().unwrap(), Some(3600));
    assert_eq!(
        resp.contact()
            .unwrap()
            .unwrap()
            .param("expires")
            .unwrap()
            .value
            .as_deref(),
        Some("3600")
    );
    assert_eq!(
        kinds(&ok.events),
        vec![
            "registered",
            "online",
            "query_info",
            "query_catalog",
            "quirks"
        ]
    );
    match &ok.events[0] {
        RegistryEvent::DeviceRegistered {
            id,
            addr,
            transport,
            version,
            user_agent,
            algorithm,
            ..
        } => {
            assert_eq!(id.as_str(), DAHUA);
            assert_eq!(*addr, dahua_peer().addr);
            assert_eq!(*transport, Transport::Udp);
            assert_eq!(*version, GbVersion::V2016);
            assert_eq!(user_agent.as_deref(), Some("SIP UAS V3.0.0.675168"));
            assert_eq!(*algorithm, Some(Algorithm::Md5));
        }
        other => panic!("{other:?}"),
    }
    // Dahua answered without qop although we offered qop=auth (as in vector 03).
    match ok.events.last().unwrap() {
        RegistryEvent::QuirksSeen { quirks, .. } => {
            assert!(quirks.contains(Quirk::DigestWithoutQop))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.online_count(), 1);
    assert_eq!(
        r.device(&GbId::parse(DAHUA).unwrap()).unwrap().algorithm,
        Some(Algorithm::Md5)
    );
}

#[test]
fn keepalive_vector_05_gets_200_and_no_events() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    register_dahua(&mut r, c.at(0));
    let out = r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(60));
    let resp = out.response.unwrap();
    assert_eq!(resp.status(), Some(200));
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert!(out.manscdp.is_none());
    assert_eq!(
        resp.header(&HeaderName::CallId),
        msg("05_dahua_keepalive.sip").header(&HeaderName::CallId)
    );
}

#[test]
fn keepalive_from_elsewhere_or_unregistered_is_forbidden() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let out = r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(403));
    assert_eq!(out.rejection, Some(Rejection::NotRegistered));
    register_dahua(&mut r, c.at(0));
    let out = r.handle_request(
        &msg("05_dahua_keepalive.sip"),
        Peer::udp("10.6.6.6:5060".parse().unwrap()),
        c.at(1),
    );
    assert_eq!(out.response.unwrap().status(), Some(403));
    assert!(matches!(
        out.rejection,
        Some(Rejection::SourceMismatch { .. })
    ));
    // Same IP, new port (NAT rebinding): accepted and the device is reached there now.
    let moved = Peer::udp("192.168.6.71:40000".parse().unwrap());
    let out = r.handle_request(&msg("05_dahua_keepalive.sip"), moved, c.at(2));
    assert_eq!(out.response.unwrap().status(), Some(200));
    assert_eq!(r.device(&GbId::parse(DAHUA).unwrap()).unwrap().peer, moved);
}

#[test]
fn keepalive_timeout_then_recovery_then_expiry() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    register_dahua(&mut r, c.at(0));
    let id = GbId::parse(DAHUA).unwrap();
    // Keepalives every 60 s keep it online past the first 180 s.
    for t in [60, 120] {
        r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(t));
        assert!(r.handle_timeout(c.at(t).instant).is_empty());
    }
    r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(180));
    assert_eq!(r.next_deadline(), Some(c.at(180).instant));
    // Lazy re-arm: waking at the stale deadline finds the real one.
    assert!(r.handle_timeout(c.at(180).instant).is_empty());
    assert_eq!(r.next_deadline(), Some(c.at(360).instant));
    let ev = r.handle_timeout(c.at(360).instant);
    assert_eq!(
        ev,
        vec![RegistryEvent::DeviceOffline {
            id,
            reason: OfflineReason::KeepaliveTimeout
        }]
    );
    assert_eq!(r.online_count(), 0);
    // The registration is still valid: the next keepalive brings it back and asks for a catalog.
    let out = r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(400));
    assert_eq!(
        kinds(&out.events),
        vec!["online", "query_info", "query_catalog"]
    );
    // No keepalive and no refresh: offline again at 580, then the registration expires.
    let ev = r.handle_timeout(c.at(580).instant);
    assert_eq!(
        ev,
        vec![RegistryEvent::DeviceOffline {
            id,
            reason: OfflineReason::KeepaliveTimeout
        }]
    );
    assert!(r.handle_timeout(c.at(3629).instant).is_empty());
    assert!(r.device(&id).is_some());
    assert!(
        r.handle_timeout(c.at(3630).instant).is_empty(),
        "already offline: no second event"
    );
    assert!(r.device(&id).is_none());
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn expiry_while_online_and_per_device_policy() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let id = GbId::parse(DAHUA).unwrap();
    r.set_keepalive_policy(
        id,
        Some(KeepalivePolicy {
            interval: Duration::from_secs(3600),
            max_missed: 3,
        }),
    );
    register_dahua(&mut r, c.at(0));
    let ev = r.handle_timeout(c.at(3630).instant);
    assert_eq!(
        ev,
        vec![RegistryEvent::DeviceOffline {
            id,
            reason: OfflineReason::Expired
        }]
    );
    assert_eq!(r.registered_count(), 0);
    // A tighter per-device policy: 10 s × 2.
    register_dahua(&mut r, c.at(4000));
    r.set_keepalive_policy(
        id,
        Some(KeepalivePolicy {
            interval: Duration::from_secs(10),
            max_missed: 2,
        }),
    );
    assert_eq!(r.next_deadline(), Some(c.at(4020).instant));
    let ev = r.handle_timeout(c.at(4020).instant);
    assert_eq!(
        ev,
        vec![RegistryEvent::DeviceOffline {
            id,
            reason: OfflineReason::KeepaliveTimeout
        }]
    );
}

#[test]
fn refresh_is_silent_reboot_is_a_new_registration_and_unregister_goes_offline() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    register_dahua(&mut r, c.at(0));
    let refresh = register_dahua(&mut r, c.at(3000));
    assert_eq!(refresh.response.unwrap().status(), Some(200));
    assert!(kinds(&refresh.events).is_empty(), "{:?}", refresh.events);
    // A new Call-ID means the device restarted: registered again, catalog again, still online.
    let first = r.handle_request(
        &msg("01_dahua_register_noauth.sip"),
        dahua_peer(),
        c.at(3100),
    );
    let mut rebooted = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &first.response.unwrap(),
        PASSWORD,
    );
    rebooted.set_header(HeaderName::CallId, "999@192.168.6.71");
    let out = r.handle_request(&rebooted, dahua_peer(), c.at(3100));
    assert_eq!(
        kinds(&out.events),
        vec!["registered", "query_info", "query_catalog"]
    );
    // Expires: 0.
    let mut unreg = rebooted.clone();
    unreg.set_header(HeaderName::Expires, "0");
    let first = r.handle_request(&unreg, dahua_peer(), c.at(3200));
    assert_eq!(
        first.response.as_ref().unwrap().status(),
        Some(200),
        "nonce still fresh"
    );
    assert_eq!(
        first.events,
        vec![RegistryEvent::DeviceOffline {
            id: GbId::parse(DAHUA).unwrap(),
            reason: OfflineReason::Unregistered
        }]
    );
    assert_eq!(first.response.unwrap().expires().unwrap(), Some(0));
    assert_eq!(r.registered_count(), 0);
}

#[test]
fn stale_nonce_is_rechallenged_without_counting_a_failure() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(0));
    let reg = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &first.response.unwrap(),
        PASSWORD,
    );
    let out = r.handle_request(&reg, dahua_peer(), c.at(301));
    let resp = out.response.unwrap();
    assert_eq!(resp.status(), Some(401));
    assert!(Challenge::parse(&resp.www_authenticate()[0]).unwrap().stale);
    assert!(out.events.is_empty());
    // The real vector 03 carries eXosip's nonce and an unknown password: a wrong digest for us.
    let out = r.handle_request(
        &msg("03_dahua_register_with_authorization.sip"),
        dahua_peer(),
        c.at(302),
    );
    assert!(matches!(
        out.events[0],
        RegistryEvent::AuthFailed {
            reason: AuthFailure::RealmMismatch { .. },
            ..
        }
    ));
}

#[test]
fn wrong_passwords_lead_to_a_ban_and_silence() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let mut all = Vec::new();
    for i in 0..3 {
        let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(i));
        let bad = with_authorization(
            &msg("03_dahua_register_with_authorization.sip"),
            &first.response.unwrap(),
            "wrong",
        );
        let out = r.handle_request(&bad, dahua_peer(), c.at(i));
        assert_eq!(out.response.unwrap().status(), Some(401));
        all.extend(out.events);
    }
    assert_eq!(
        kinds(&all),
        vec!["auth_failed", "auth_failed", "auth_failed", "banned"]
    );
    match &all[3] {
        RegistryEvent::SourceBanned {
            source,
            until,
            failures,
        } => {
            assert_eq!(*source, dahua_peer().addr.ip());
            assert_eq!(*until, c.at(2).instant + Duration::from_secs(600));
            assert_eq!(*failures, 3);
        }
        other => panic!("{other:?}"),
    }
    // Banned: nothing is answered.
    let out = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(10));
    assert!(out.response.is_none());
    assert!(matches!(out.rejection, Some(Rejection::Banned { .. })));
    let out = r.handle_request(&msg("05_dahua_keepalive.sip"), dahua_peer(), c.at(10));
    assert!(out.response.is_none());
    // After the ban it works.
    let out = register_dahua(&mut r, c.at(700));
    assert_eq!(out.response.unwrap().status(), Some(200));
}

#[test]
fn unknown_device_without_default_password_is_forbidden() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    r.passwords_mut().set_default(None);
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(0));
    let reg = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &first.response.unwrap(),
        PASSWORD,
    );
    let out = r.handle_request(&reg, dahua_peer(), c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(403));
    assert!(matches!(
        out.events[0],
        RegistryEvent::AuthFailed {
            reason: AuthFailure::UnknownDevice { .. },
            ..
        }
    ));
    // With its own password it registers.
    r.passwords_mut()
        .set(GbId::parse(DAHUA).unwrap(), "own".into());
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), dahua_peer(), c.at(1));
    let reg = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &first.response.unwrap(),
        "own",
    );
    assert_eq!(
        r.handle_request(&reg, dahua_peer(), c.at(1))
            .response
            .unwrap()
            .status(),
        Some(200)
    );
}

#[test]
fn gb2022_device_gets_sha256_first_and_version_answered() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let mut reg = msg("60_srs_utest_hik_ipc_register.sip");
    reg.push_header(HeaderName::XGbVer, "3.0");
    let reg = parse_datagram(reg.to_bytes()).unwrap();
    let peer = Peer::udp("192.168.3.99:5060".parse().unwrap());
    let first = r.handle_request(&reg, peer, c.at(0));
    let challenge = first.response.unwrap();
    let algs: Vec<_> = challenge
        .www_authenticate()
        .iter()
        .map(|v| Challenge::parse(v).unwrap().effective_algorithm())
        .collect();
    assert_eq!(algs, vec![Algorithm::Sha256, Algorithm::Md5]);
    let out = r.handle_request(
        &with_authorization(&reg, &challenge, PASSWORD),
        peer,
        c.at(0),
    );
    let resp = out.response.unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.header_str(&HeaderName::XGbVer).unwrap(), "3.0");
    match &out.events[0] {
        RegistryEvent::DeviceRegistered {
            version,
            x_gb_ver,
            algorithm,
            ..
        } => {
            assert_eq!(*version, GbVersion::V2022);
            assert_eq!(x_gb_ver.as_deref(), Some("3.0"));
            assert_eq!(*algorithm, Some(Algorithm::Sha256));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn domain_as_uri_host_requests_go_to_the_source() {
    // Vector 60 (Hikvision IPC): Request-URI and From on domain `3402000000`; with auth off it
    // registers directly, and the registry keeps the source address, not a URI host.
    let c = Clock { t0: Instant::now() };
    let mut cfg = registry(c.t0).config().clone();
    cfg.require_auth = false;
    let mut r2 = Registry::new(cfg, [1; 32], c.t0);
    let peer = Peer::udp("192.168.3.99:5060".parse().unwrap());
    let reg = msg("60_srs_utest_hik_ipc_register.sip");
    assert_eq!(reg.from().unwrap().uri.host, "3402000000");
    let out = r2.handle_request(&reg, peer, c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(200));
    let id = GbId::parse("34020000001320000001").unwrap();
    assert_eq!(r2.device(&id).unwrap().peer, peer);
    let (q, to) = r2
        .build_query(
            &id,
            &CmdType::Catalog,
            1,
            "192.168.3.82:5060".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(to, peer);
    assert_eq!(q.request_uri().unwrap().unwrap().host, "192.168.3.99");
    let m = crate::manscdp::parse_body(&q.body, None).unwrap();
    assert_eq!(
        (m.cmd_type, m.sn, m.device_id.as_str()),
        (CmdType::Catalog, Some(1), "34020000001320000001")
    );
}

#[test]
fn quirk_to_is_sender_hikvision_nvr_catalog_message() {
    // Vector 70: the NVR addresses the MESSAGE To itself; the sender is the From user.
    let c = Clock { t0: Instant::now() };
    let mut cfg = registry(c.t0).config().clone();
    cfg.require_auth = false;
    let mut r = Registry::new(cfg, [1; 32], c.t0);
    let nvr = Peer::udp("192.168.1.21:5060".parse().unwrap());
    let mut reg = msg("60_srs_utest_hik_ipc_register.sip");
    reg.set_header(
        HeaderName::From,
        "<sip:34020000001110000001@3402000000.spvmn.cn>;tag=1",
    );
    let out = r.handle_request(&reg, nvr, c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(200));
    let cat = msg("70_hik_nvr_catalog_response_sumnum8_num2.sip");
    assert_eq!(cat.to().unwrap().uri.user, cat.from().unwrap().uri.user);
    let out = r.handle_request(&cat, nvr, c.at(1));
    assert_eq!(
        out.device.map(|d| d.to_string()).as_deref(),
        Some("34020000001110000001")
    );
    assert_eq!(out.response.unwrap().status(), Some(200));
    let m = out.manscdp.expect("catalog passed on");
    assert!(matches!(m.payload, Payload::CatalogResponse(_)));
    // The NVR's self-addressed To and placeholder values were noted once.
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, RegistryEvent::QuirksSeen { quirks, .. }
        if quirks.contains(Quirk::PlaceholderValue) && quirks.contains(Quirk::ToIsSender))));
    let again = r.handle_request(&cat, nvr, c.at(2));
    assert!(again.events.is_empty());
}

#[test]
fn tcp_transport_loss_takes_devices_offline() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let tcp = Peer::tcp("192.168.6.71:50123".parse().unwrap());
    let first = r.handle_request(&msg("01_dahua_register_noauth.sip"), tcp, c.at(0));
    let reg = with_authorization(
        &msg("03_dahua_register_with_authorization.sip"),
        &first.response.unwrap(),
        PASSWORD,
    );
    assert_eq!(
        r.handle_request(&reg, tcp, c.at(0))
            .response
            .unwrap()
            .status(),
        Some(200)
    );
    assert!(r
        .connection_closed("192.168.6.71:9".parse().unwrap(), c.at(1).instant)
        .is_empty());
    let ev = r.connection_closed(tcp.addr, c.at(1).instant);
    assert_eq!(
        ev,
        vec![RegistryEvent::DeviceOffline {
            id: GbId::parse(DAHUA).unwrap(),
            reason: OfflineReason::TransportLost
        }]
    );
    assert_eq!(r.registered_count(), 0);
    assert!(r
        .transport_lost(&GbId::parse(DAHUA).unwrap(), c.at(2).instant)
        .is_empty());
}

#[test]
fn expires_is_clamped_and_malformed_requests_get_400() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let mut short = msg("01_dahua_register_noauth.sip");
    short.set_header(HeaderName::Expires, "10");
    let first = r.handle_request(&short, dahua_peer(), c.at(0));
    let reg = with_authorization(&short, &first.response.unwrap(), PASSWORD);
    let out = r.handle_request(&reg, dahua_peer(), c.at(0));
    assert_eq!(out.response.unwrap().expires().unwrap(), Some(60));
    let mut bad = msg("01_dahua_register_noauth.sip");
    bad.set_header(HeaderName::From, "<sip:notanid@192.168.6.71>;tag=1");
    let out = r.handle_request(&bad, dahua_peer(), c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(400));
    assert!(matches!(out.rejection, Some(Rejection::BadRequest(ref s)) if s.contains("notanid")));
}

#[test]
fn message_bodies_are_parsed_once_and_passed_on() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    register_dahua(&mut r, c.at(0));
    for (f, want) in [
        ("09_dahua_catalog_response.sip", "Catalog"),
        ("13_dahua_deviceinfo_response.sip", "DeviceInfo"),
        ("17_dahua_devicestatus_response.sip", "DeviceStatus"),
    ] {
        let out = r.handle_request(&msg(f), dahua_peer(), c.at(1));
        assert_eq!(out.response.unwrap().status(), Some(200));
        assert_eq!(out.manscdp.unwrap().cmd_type.as_str(), want);
    }
    // A broken body: 400 naming the device and CmdType.
    let mut broken = msg("09_dahua_catalog_response.sip");
    broken.body = broken.body.slice(..broken.body.len() - 30);
    let out = r.handle_request(&broken, dahua_peer(), c.at(2));
    assert_eq!(out.response.unwrap().status(), Some(400));
    match out.rejection {
        Some(Rejection::BadBody(e)) => {
            assert!(e.to_string().contains(DAHUA) && e.to_string().contains("Catalog"))
        }
        other => panic!("{other:?}"),
    }
    // Not MANSCDP, not a MESSAGE: not handled.
    let mut chat = msg("05_dahua_keepalive.sip");
    chat.set_header(HeaderName::ContentType, "text/plain");
    chat.body = Bytes::from_static(b"hi");
    assert!(r.handle_request(&chat, dahua_peer(), c.at(3)).not_handled);
    assert!(
        r.handle_request(&msg("24_server_bye_play.sip"), dahua_peer(), c.at(3))
            .not_handled
    );
}

#[test]
fn quirk_body_device_id_mismatch_in_keepalive() {
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    register_dahua(&mut r, c.at(0));
    // Vector 77's body (DeviceID …0001) inside vector 05's envelope (From …0002).
    let mut ka = msg("05_dahua_keepalive.sip");
    ka.body = msg("77_dahua_ipc_dh_sip_uas_v1_keepalive.sip").body;
    let out = r.handle_request(&ka, dahua_peer(), c.at(1));
    assert_eq!(out.response.unwrap().status(), Some(200));
    assert!(out.events.iter().any(|e| matches!(e, RegistryEvent::QuirksSeen { quirks, .. } if quirks.contains(Quirk::BodyDeviceIdMismatch))));
}

#[test]
fn quirk_digest_uri_mismatch() {
    // Vector 60 (Hikvision IPC, Request-URI on the domain) answered with a digest `uri` naming
    // the server's address instead: accepted, checked against the uri the device used.
    let c = Clock { t0: Instant::now() };
    let mut r = registry(c.t0);
    let peer = Peer::udp("192.168.3.99:5060".parse().unwrap());
    let reg = msg("60_srs_utest_hik_ipc_register.sip");
    let challenge = r.handle_request(&reg, peer, c.at(0)).response.unwrap();
    let mut ch = Challenge::parse(&challenge.www_authenticate()[0]).unwrap();
    ch.qop.clear();
    let creds = authorize(
        &ch,
        "REGISTER",
        "sip:34020000002000000001@192.168.3.82:5060",
        "34020000001320000001",
        PASSWORD,
        "x",
        1,
    );
    let mut answer = reg.clone();
    answer.set_header(HeaderName::Authorization, creds.to_header_value());
    let out = r.handle_request(&parse_datagram(answer.to_bytes()).unwrap(), peer, c.at(0));
    assert_eq!(out.response.unwrap().status(), Some(200));
    assert!(out.events.iter().any(|e| matches!(e, RegistryEvent::QuirksSeen { quirks, .. } if quirks.contains(Quirk::DigestUriMismatch))));
}
