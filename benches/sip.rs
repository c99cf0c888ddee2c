//! SIP core benchmarks (vigil-gb28181).
//!
//! - `keepalive/registry`: parse a real Dahua Keepalive MESSAGE (vector 05, rewritten per device)
//!   and produce the serialized 200 OK through the registry, for 10 000 registered devices.
//! - `keepalive/registry+transactions`: the same through the transaction layer as a UDP server
//!   sees it (distinct branches, 64·T1 lingering transactions, timers fired as time advances).
//! - `catalog/10000_items`: 5 000 MESSAGEs of 2 items each (GB2312 bodies with Chinese names)
//!   parsed as datagrams, decoded as MANSCDP and assembled into one 10 000-item catalog.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-gb cargo bench -p vigil-gb28181 --bench sip`

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vigil_gb28181::catalog::{AssemblerConfig, AssemblerEvent, CatalogAssembler};
use vigil_gb28181::gbid::{CivilCode, DomainCode, GbId};
use vigil_gb28181::manscdp::build::{catalog_response, BodyEncoding, PacketLimits};
use vigil_gb28181::manscdp::{parse_body, CatalogItem, ChannelStatus};
use vigil_gb28181::registry::{Registry, RegistryConfig};
use vigil_gb28181::sip::transaction::{Incoming, TimerConfig, TransactionLayer};
use vigil_gb28181::sip::{parse_datagram, Peer};
use vigil_gb28181::time::Now;

/// Vector 05 (Dahua DH-SD-6C3230UE-HN keepalive; crates/gb28181/testdata/sip/SOURCES.md).
const KEEPALIVE: &str = include_str!("../crates/gb28181/testdata/sip/05_dahua_keepalive.sip");
/// Vector 01 (the same Dahua's REGISTER).
const REGISTER: &str = include_str!("../crates/gb28181/testdata/sip/01_dahua_register_noauth.sip");
/// Vector 09 (the same Dahua's catalog response), used as the SIP envelope.
const CATALOG: &str = include_str!("../crates/gb28181/testdata/sip/09_dahua_catalog_response.sip");

const DEVICES: usize = 10_000;
const DAHUA_ID: &str = "34020000001320000002";
const DAHUA_ADDR: &str = "192.168.6.71";

fn device(i: usize) -> (String, SocketAddr) {
    let id = format!("340200000013200{i:05}");
    let addr = SocketAddr::from((
        Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1),
        5060,
    ));
    (id, addr)
}

fn for_device(template: &str, i: usize, branch: usize) -> Bytes {
    let (id, addr) = device(i);
    Bytes::from(
        template
            .replace(DAHUA_ID, &id)
            .replace(&format!("{DAHUA_ADDR}:5060"), &addr.to_string())
            .replace(DAHUA_ADDR, &addr.ip().to_string())
            .replace("z9hG4bK677047196", &format!("z9hG4bK{branch:09}"))
            .replace("z9hG4bK1251336551", &format!("z9hG4bK{branch:09}")),
    )
}

fn registry_with_devices(t0: Instant) -> Registry {
    let mut cfg = RegistryConfig::new(
        GbId::parse("34020000002000000010").unwrap(),
        DomainCode::parse("3402000000").unwrap(),
    );
    // Registration itself is not measured; skip digest to set up 10 000 devices quickly.
    cfg.require_auth = false;
    cfg.default_expires = 86_400;
    let mut r = Registry::new(cfg, [1; 32], t0);
    for i in 0..DEVICES {
        let (_, addr) = device(i);
        let m = parse_datagram(for_device(REGISTER, i, i)).unwrap();
        let out = r.handle_request(&m, Peer::udp(addr), Now::new(t0, 0));
        assert_eq!(out.response.unwrap().status(), Some(200));
    }
    assert_eq!(r.online_count(), DEVICES);
    r
}

fn keepalive(c: &mut Criterion) {
    let t0 = Instant::now();
    let datagrams: Vec<(Bytes, Peer)> = (0..DEVICES)
        .map(|i| {
            (
                for_device(KEEPALIVE, i, 1_000_000 + i),
                Peer::udp(device(i).1),
            )
        })
        .collect();
    let mut g = c.benchmark_group("keepalive");
    g.throughput(Throughput::Elements(1));

    let mut r = registry_with_devices(t0);
    let mut i = 0usize;
    g.bench_function("registry", |b| {
        b.iter(|| {
            let (bytes, peer) = &datagrams[i % DEVICES];
            i += 1;
            let m = parse_datagram(bytes.clone()).unwrap();
            let out = r.handle_request(&m, *peer, Now::new(t0, 0));
            black_box(out.response.unwrap().to_bytes())
        })
    });

    let mut r = registry_with_devices(t0);
    let mut txn = TransactionLayer::new(TimerConfig::default());
    let mut n = 0u64;
    g.bench_function("registry+transactions", |b| {
        b.iter(|| {
            // 1 ms of simulated time per keepalive (1 000/s, the rate of a 60 000-device
            // platform): timer J keeps about 32 000 answered UDP transactions lingering.
            n += 1;
            let now = t0 + Duration::from_millis(n);
            let idx = (n as usize) % DEVICES;
            let (_, peer) = &datagrams[idx];
            // A distinct branch per keepalive, as devices send.
            let bytes = for_branch(&datagrams[idx].0, n);
            let m = parse_datagram(bytes).unwrap();
            let Incoming::Request { key, request, .. } = txn.on_request(m, *peer, now).unwrap()
            else {
                panic!("not new")
            };
            let out = r.handle_request(&request, *peer, Now::new(now, 0));
            let sent = txn.respond(&key, out.response.unwrap(), now).unwrap();
            if txn.next_deadline().is_some_and(|d| d <= now) {
                black_box(txn.handle_timeout(now));
            }
            black_box(sent)
        })
    });
    g.finish();
}

/// Rewrites the 9-digit branch suffix in place (cheap, same length).
fn for_branch(template: &Bytes, n: u64) -> Bytes {
    let mut v = template.to_vec();
    let pat = b"z9hG4bK";
    if let Some(p) = v.windows(pat.len()).position(|w| w == pat) {
        let digits = format!("{:09}", n % 1_000_000_000);
        v[p + pat.len()..p + pat.len() + 9].copy_from_slice(digits.as_bytes());
    }
    Bytes::from(v)
}

fn catalog(c: &mut Criterion) {
    let items: Vec<CatalogItem> = (0..10_000)
        .map(|i| CatalogItem {
            device_id: format!("340200000013100{i:05}"),
            name: Some(format!("大华摄像机{i}号 东门")),
            manufacturer: Some("Dahua".into()),
            model: Some("DH-SD-6C3230UE-HN".into()),
            owner: Some("0".into()),
            civil_code: Some(CivilCode::parse("340200").unwrap()),
            address: Some("axy".into()),
            parental: Some(false),
            parent_id: Some("34020000001180000001".into()),
            register_way: Some(1),
            secrecy: Some(0),
            status: Some(if i % 7 == 0 {
                ChannelStatus::Off
            } else {
                ChannelStatus::On
            }),
            longitude: Some(117.2),
            latitude: Some(31.8),
            ptz_type: Some(3),
            info: vec![("PTZType".into(), "3".into())],
            ..CatalogItem::default()
        })
        .collect();
    let bodies = catalog_response(
        "34020000001180000001",
        4,
        &items,
        PacketLimits {
            max_items: 2,
            max_body_bytes: 8192,
        },
        BodyEncoding::Gb2312,
    );
    let (head, _) = CATALOG.split_once("\r\n\r\n").unwrap();
    let datagrams: Vec<Bytes> = bodies
        .iter()
        .map(|b| {
            let mut d = head
                .replace(
                    "Content-Length:   898",
                    &format!("Content-Length: {}", b.len()),
                )
                .into_bytes();
            d.extend_from_slice(b"\r\n\r\n");
            d.extend_from_slice(b);
            Bytes::from(d)
        })
        .collect();
    assert_eq!(datagrams.len(), 5_000);

    let mut g = c.benchmark_group("catalog");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("10000_items", |b| {
        b.iter_batched(
            || CatalogAssembler::new(AssemblerConfig::default()),
            |mut a| {
                let now = Instant::now();
                let mut done = None;
                for d in &datagrams {
                    let m = parse_datagram(d.clone()).unwrap();
                    let doc = parse_body(&m.body, Some("34020000001180000001")).unwrap();
                    if let Some(ev) = a.push_message(doc, now) {
                        done = Some(ev);
                    }
                }
                let Some(AssemblerEvent::Completed(r)) = done else {
                    panic!("incomplete")
                };
                assert_eq!(r.items.len(), 10_000);
                black_box(r)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, keepalive, catalog);
criterion_main!(benches);
