//! Property tests: no parser panics on arbitrary or mutated real-device bytes, and
//! serialize→parse round-trips. (The TCP media framing and PS header policies are tested in
//! vigil-media, which owns them.)

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use vigil_gb28181::catalog::{AssemblerConfig, CatalogAssembler};
use vigil_gb28181::digest::{Challenge, Credentials};
use vigil_gb28181::gbid::{DomainCode, GbId};
use vigil_gb28181::manscdp::parse_body;
use vigil_gb28181::registry::{Registry, RegistryConfig};
use vigil_gb28181::sdp::{MediaTransport, Offer, OfferKind, Sdp};
use vigil_gb28181::sip::{parse_datagram, Frame, HeaderName, Message, Method, Peer, StreamFramer};
use vigil_gb28181::ssrc::Ssrc;
use vigil_gb28181::subscription::SubscriptionState;
use vigil_gb28181::time::Now;

/// Real messages (testdata/sip, provenance in SOURCES.md there) used as mutation seeds.
const SEEDS: &[&[u8]] = &[
    include_bytes!("../testdata/sip/01_dahua_register_noauth.sip"),
    include_bytes!("../testdata/sip/03_dahua_register_with_authorization.sip"),
    include_bytes!("../testdata/sip/05_dahua_keepalive.sip"),
    include_bytes!("../testdata/sip/09_dahua_catalog_response.sip"),
    include_bytes!("../testdata/sip/17_dahua_devicestatus_response.sip"),
    include_bytes!("../testdata/sip/19_server_invite_play.sip"),
    include_bytes!("../testdata/sip/21_dahua_invite_101_dialog_establishement.sip"),
    include_bytes!("../testdata/sip/39_hik_nvr_invite_playback_200ok_sdp.sip"),
    include_bytes!("../testdata/sip/70_hik_nvr_catalog_response_sumnum8_num2.sip"),
    include_bytes!("../testdata/sip/78_dahua_ivss_invite_200ok_sdp_tcp_active.sip"),
];

const BODIES: &[&[u8]] = &[
    include_bytes!("../testdata/sip/72_dahua_ivss_catalog_sumnum4_sn4_ch3_gb2312_body.xml"),
    include_bytes!("../testdata/sip/75_dahua_ivss_alarm_notify_gb2312_body.xml"),
    include_bytes!("../testdata/sip/76_dahua_ipc_catalog_gb2312_body.xml"),
    include_bytes!("../testdata/sip/79_uniview_ipc_catalog_item_fragment.xml"),
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..16),
                Just(b"\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                Just(b";".to_vec()),
                Just(b"<".to_vec()),
                Just(b"&".to_vec()),
                Just(b"\xb4\xf3".to_vec()),
            ]
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in muts {
        if v.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, b) => {
                let i = i % v.len();
                v[i] ^= b;
            }
            Mutation::Truncate(i) => v.truncate(i % v.len()),
            Mutation::Insert(i, bytes) => {
                let i = i % (v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = i % v.len();
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
        }
    }
    v
}

fn mutated(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (0..seeds.len(), proptest::collection::vec(mutation(), 0..6))
        .prop_map(move |(i, m)| apply(seeds[i], &m))
}

fn registry() -> Registry {
    let mut cfg = RegistryConfig::new(
        GbId::parse("34020000002000000010").unwrap(),
        DomainCode::parse("3402000000").unwrap(),
    );
    cfg.default_password = Some("12345678".into());
    Registry::new(cfg, [7; 32], Instant::now())
}

/// Exercises every accessor of a parsed message; none may panic.
fn touch(m: &Message) {
    let _ = m.top_via();
    let _ = m.vias();
    let _ = m.from();
    let _ = m.to();
    let _ = m.call_id();
    let _ = m.cseq();
    let _ = m.contact();
    let _ = m.expires();
    let _ = m.max_forwards();
    let _ = m.content_type();
    let _ = m.subject();
    let _ = m.user_agent();
    let _ = m.gb_version();
    let _ = m.request_uri();
    if let Some(a) = m.authorization() {
        let _ = Credentials::parse(&a);
    }
    for w in m.www_authenticate() {
        let _ = Challenge::parse(&w);
    }
    let _ = parse_body(&m.body, None);
    let _ = Sdp::parse(&m.body);
    let _ = m.to_bytes();
}

/// 512 cases per property by default; `PROPTEST_CASES` raises it for long runs.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sip_parser_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(m) = parse_datagram(data) {
            touch(&m);
        }
    }

    #[test]
    fn sip_parser_and_registry_never_panic_on_mutated_vectors(data in mutated(SEEDS)) {
        if let Ok(m) = parse_datagram(data) {
            touch(&m);
            let mut r = registry();
            let now = Now::new(Instant::now(), 0);
            let _ = r.handle_request(&m, Peer::udp("192.168.6.71:5060".parse().unwrap()), now);
            let _ = r.handle_timeout(now.instant + Duration::from_secs(100_000));
        }
    }

    #[test]
    fn framer_never_panics_and_ignores_chunking(
        data in mutated(SEEDS),
        cuts in proptest::collection::vec(1usize..200, 1..20),
    ) {
        let whole = {
            let mut f = StreamFramer::new();
            f.push(&data);
            std::iter::from_fn(|| f.next_frame()).collect::<Vec<_>>()
        };
        let mut f = StreamFramer::new();
        let mut pieces = Vec::new();
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            f.push(&rest[..n]);
            rest = &rest[n..];
            pieces.extend(std::iter::from_fn(|| f.next_frame()));
            i += 1;
        }
        // Chunking may split a garbage run into several reports; messages must be identical.
        let msgs = |v: &[Result<Frame, _>]| v.iter().filter_map(|r| match r {
            Ok(Frame::Message(m)) => Some(m.clone()),
            _ => None,
        }).collect::<Vec<Message>>();
        prop_assert_eq!(msgs(&whole), msgs(&pieces));
    }

    #[test]
    fn framer_recovers_every_real_message_after_garbage(
        junk in proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\n'), 0..100),
        picks in proptest::collection::vec(0..SEEDS.len(), 1..6),
        chunk in 1usize..300,
    ) {
        let mut stream = junk.clone();
        stream.push(b'\n');
        for &p in &picks {
            stream.extend_from_slice(SEEDS[p]);
        }
        let mut f = StreamFramer::new();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            f.push(c);
            got.extend(std::iter::from_fn(|| f.next_frame()));
        }
        let msgs: Vec<_> = got.into_iter().filter_map(|r| match r {
            Ok(Frame::Message(m)) => Some(m),
            _ => None,
        }).collect();
        prop_assert_eq!(msgs.len(), picks.len());
        for (m, &p) in msgs.iter().zip(&picks) {
            prop_assert_eq!(m, &parse_datagram(SEEDS[p]).unwrap());
        }
    }

    #[test]
    fn sdp_parser_never_panics(data in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1024),
        mutated(SEEDS),
    ]) {
        if let Ok(s) = Sdp::parse(&data) {
            let _ = s.to_text();
            let _ = s.media_transport();
            let _ = s.gb_ssrc();
            let _ = format!("{s:?}");
        }
    }

    #[test]
    fn manscdp_parser_never_panics(data in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1024),
        mutated(BODIES),
        mutated(SEEDS),
    ]) {
        if let Ok(m) = parse_body(&data, Some("34020000001320000002")) {
            let mut a = CatalogAssembler::new(AssemblerConfig::default());
            let now = Instant::now();
            let _ = a.push_message(m, now);
            let _ = a.handle_timeout(now + Duration::from_secs(3600));
        }
    }

    #[test]
    fn digest_headers_never_panic(s in "\\PC{0,300}") {
        let _ = Challenge::parse(&s);
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&format!("Digest {s}"));
        let _ = Credentials::parse(&format!("Digest {s}"));
    }

    #[test]
    fn built_messages_round_trip(
        method in prop_oneof![Just(Method::Register), Just(Method::Message), Just(Method::Invite), Just(Method::Bye), Just(Method::Info)],
        user in "[0-9]{20}",
        tag in "[a-zA-Z0-9]{1,16}",
        call_id in "[a-zA-Z0-9.@-]{1,40}",
        seq in any::<u32>(),
        extra in proptest::collection::vec(("X-[A-Za-z]{1,10}", "[ -~]{0,40}"), 0..5),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut m = Message::request(method.clone(), format!("sip:{user}@3402000000"))
            .with_header(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKabc")
            .with_header(HeaderName::From, format!("<sip:{user}@3402000000>;tag={tag}"))
            .with_header(HeaderName::To, format!("<sip:{user}@3402000000>"))
            .with_header(HeaderName::CallId, call_id.clone())
            .with_header(HeaderName::CSeq, format!("{seq} {method}"));
        for (k, v) in &extra {
            m.push_header(HeaderName::from_wire(k), v.trim());
        }
        if !body.is_empty() {
            m = m.with_body("application/octet-stream", Bytes::from(body.clone()));
        }
        let parsed = parse_datagram(m.to_bytes()).unwrap();
        prop_assert_eq!(&parsed.start, &m.start);
        prop_assert_eq!(&parsed.body[..], &body[..]);
        prop_assert_eq!(parsed.cseq().unwrap().seq, seq);
        prop_assert_eq!(parsed.call_id().unwrap(), call_id);
        let from = parsed.from().unwrap();
        prop_assert_eq!(from.tag(), Some(tag.as_str()));
        let strip = |x: &Message| x.headers.iter().filter(|h| h.name != HeaderName::ContentLength).cloned().collect::<Vec<_>>();
        prop_assert_eq!(strip(&parsed), strip(&m));
    }

    #[test]
    fn offers_round_trip(
        port in 1u16..,
        serial in 0u32..10_000,
        kind in 0u8..3,
        start in 1_600_000_000u64..1_800_000_000,
        transport in prop_oneof![Just(MediaTransport::Udp), Just(MediaTransport::TcpPassive), Just(MediaTransport::TcpActive)],
    ) {
        let ssrc = Ssrc::parse(&format!("02000{serial:04}")).unwrap();
        let kind = match kind {
            0 => OfferKind::Play,
            1 => OfferKind::Playback { start, end: start + 3600 },
            _ => OfferKind::Download { start, end: start + 60, speed: 4 },
        };
        let offer = Offer {
            kind,
            our_id: "34020000002000000001".into(),
            channel_id: "34020000001310000001".into(),
            ip: "10.1.2.3".parse().unwrap(),
            port,
            transport,
            ssrc,
        };
        let sdp = offer.to_sdp();
        let parsed = Sdp::parse(sdp.to_text().as_bytes()).unwrap();
        prop_assert_eq!(parsed.gb_ssrc(), Some(ssrc));
        prop_assert_eq!(parsed.media_transport(), Some(transport));
        prop_assert_eq!(parsed.video().unwrap().port, port);
        prop_assert_eq!(&parsed.media, &sdp.media);
        prop_assert_eq!(parsed.timing, sdp.timing);
    }

    #[test]
    fn subscription_state_never_panics_and_round_trips(
        s in "\\PC{0,120}",
        state in prop_oneof![Just("active"), Just("pending"), Just("terminated"), Just("x-ext")],
        expires in proptest::option::of(any::<u32>()),
        reason in proptest::option::of("[a-z]{1,12}"),
    ) {
        let _ = SubscriptionState::parse(&s);
        let mut text = state.to_owned();
        if let Some(r) = &reason {
            text.push_str(&format!(";reason={r}"));
        }
        if let Some(e) = expires {
            text.push_str(&format!(";expires={e}"));
        }
        let parsed = SubscriptionState::parse(&text).unwrap();
        prop_assert_eq!(parsed.expires, expires);
        prop_assert_eq!(&parsed.reason, &reason);
        prop_assert_eq!(parsed.to_string(), text);
    }
}
