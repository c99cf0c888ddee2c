//! GB/T 28181 server load harness (vigil-gb28181), on loopback, with the simulator of
//! `crates/sim/src/gb` as the load in a separate process so that the server's CPU time and
//! peak RSS are its own.
//!
//! Scenarios (each in its own process; the server runs on one current-thread tokio runtime,
//! i.e. one core):
//! - `storm`: N simulated IPCs (default 10 000, 1 channel each, 100 per UDP socket) register at
//!   once with digest authentication; each registration triggers the server's DeviceInfo,
//!   DeviceStatus and Catalog queries and a catalog SUBSCRIBE, all answered. Reported: time
//!   until every device is online and until every catalog is complete, server CPU seconds,
//!   server peak RSS.
//!   Then `keepalive`: the load process blasts Keepalive MESSAGEs (distinct branches and
//!   Call-IDs, as devices send them) from 8 sockets with a window of outstanding requests,
//!   for 5 s. Reported: keepalives accepted per second by the server and its CPU use.
//! - `catalog`: one simulated NVR with 10 000 channels answers the catalog query in MESSAGEs
//!   of 4 items over UDP (2 500 packets, GB2312 names). Reported: time from the device coming
//!   online to the complete 10 000-item catalog event.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-gbsrv cargo bench -p vigil-gb28181 --bench gb_load`
//! (options after `--`: `storm|catalog`, `--devices N`, `--channels N`, `--blast-secs S`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_gb28181::catalog::Completion;
use vigil_gb28181::server::{GbConfig, GbEvent, GbHandle, GbServer, NoSinks, PortRange};
use vigil_sim::gb::{GbSimConfig, GbSimFleet};

const SERVER_ID: &str = "34020000002000000001";
const DOMAIN: &str = "3402000000";
const PASSWORD: &str = "bench-password";

struct Args {
    scenario: Option<String>,
    sim: Option<String>,
    server: Option<SocketAddr>,
    devices: usize,
    channels: usize,
    blast_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        scenario: None,
        sim: None,
        server: None,
        devices: 10_000,
        channels: 10_000,
        blast_secs: 5,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = |i: usize| v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--scenario" => {
                a.scenario = Some(next(i));
                i += 1;
            }
            "--sim" => {
                a.sim = Some(next(i));
                i += 1;
            }
            "--server" => {
                a.server = next(i).parse().ok();
                i += 1;
            }
            "--devices" => {
                a.devices = next(i).parse().unwrap_or(a.devices);
                i += 1;
            }
            "--channels" => {
                a.channels = next(i).parse().unwrap_or(a.channels);
                i += 1;
            }
            "--blast-secs" => {
                a.blast_secs = next(i).parse().unwrap_or(a.blast_secs);
                i += 1;
            }
            "storm" | "catalog" => a.scenario = Some(v[i].clone()),
            // `cargo bench` passes --bench; criterion-style filters are ignored.
            _ => {}
        }
        i += 1;
    }
    a
}

fn main() {
    let a = args();
    if let Some(role) = a.sim.clone() {
        sim_process(&role, &a);
        return;
    }
    match a.scenario.as_deref() {
        Some("storm") => storm(&a),
        Some("catalog") => catalog(&a),
        _ => {
            // Each scenario in a fresh process, so peak RSS is per scenario.
            for s in ["storm", "catalog"] {
                let st = Command::new(std::env::current_exe().expect("own path"))
                    .args([
                        "--scenario",
                        s,
                        "--devices",
                        &a.devices.to_string(),
                        "--channels",
                        &a.channels.to_string(),
                        "--blast-secs",
                        &a.blast_secs.to_string(),
                    ])
                    .status()
                    .expect("run a scenario");
                assert!(st.success(), "scenario {s} failed");
            }
        }
    }
}

/// CPU seconds (user + system) of this process.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process, MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn server_config() -> GbConfig {
    let mut c = GbConfig {
        sip_id: SERVER_ID.into(),
        domain: DOMAIN.into(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        default_password: Some(PASSWORD.into()),
        event_queue: 1 << 20,
        ..GbConfig::default()
    };
    c.media.rtp_ports = PortRange { start: 0, end: 0 };
    c.catalog.refresh_interval_secs = 0;
    c.catalog.quiet_timeout_secs = 10;
    c
}

/// What the event consumer saw (the daemon's side, running on the server's thread).
#[derive(Default)]
struct Seen {
    online: AtomicU64,
    catalogs_complete: AtomicU64,
    catalog_items: AtomicU64,
    /// Nanoseconds since `t0` of the first DeviceOnline and of the last complete catalog.
    first_online_ns: AtomicU64,
    last_catalog_ns: AtomicU64,
}

/// Starts the server on its own thread with a current-thread runtime (one core).
fn start_server(cfg: GbConfig, t0: Instant) -> (GbHandle, Arc<Seen>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let server = GbServer::start(cfg, Arc::new(NoSinks))
                .await
                .expect("server starts");
            let GbServer {
                handle,
                mut events,
                task,
            } = server;
            tx.send(handle).expect("handle to main");
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    let ns = t0.elapsed().as_nanos() as u64;
                    match e {
                        GbEvent::DeviceOnline { .. } => {
                            let before = seen2.online.fetch_add(1, Ordering::Relaxed);
                            if before == 0 {
                                seen2.first_online_ns.store(ns, Ordering::Relaxed);
                            }
                        }
                        GbEvent::Catalog { catalog, .. }
                            if catalog.completion == Completion::Complete =>
                        {
                            seen2.catalogs_complete.fetch_add(1, Ordering::Relaxed);
                            seen2
                                .catalog_items
                                .fetch_add(catalog.entries.len() as u64, Ordering::Relaxed);
                            seen2.last_catalog_ns.store(ns, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
            let _ = task.await;
        });
    });
    let handle = rx.recv().expect("server handle");
    (handle, seen, thread)
}

struct Child {
    proc: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Child {
    fn spawn(role: &str, server: SocketAddr, a: &Args) -> Child {
        let mut proc = Command::new(std::env::current_exe().expect("own path"))
            .args([
                "--sim",
                role,
                "--server",
                &server.to_string(),
                "--devices",
                &a.devices.to_string(),
                "--channels",
                &a.channels.to_string(),
                "--blast-secs",
                &a.blast_secs.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("load process");
        let out = proc.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Child { proc, lines }
    }

    fn wait_line(&self, prefix: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(l) => eprintln!("  [load] {l}"),
                Err(_) => panic!("load process: no {prefix:?} line in {timeout:?}"),
            }
        }
    }

    fn say(&mut self, line: &str) {
        if let Some(stdin) = self.proc.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f()
}

fn storm(a: &Args) {
    let n = a.devices as u64;
    let t0 = Instant::now();
    let cpu0 = cpu_secs();
    let (handle, seen, _thread) = start_server(server_config(), t0);
    let addr = handle.sip_udp_addr();
    let rss_idle = peak_rss_mib();
    println!("storm: {n} devices (1 channel each, 100 per UDP socket) → {addr}");
    let mut child = Child::spawn("storm", addr, a);
    child.wait_line("STARTED", Duration::from_secs(60));
    let start = Instant::now();
    let cpu_start = cpu_secs();
    let all_online = wait_until(Duration::from_secs(300), || {
        handle.metrics().devices_online >= n
    });
    let t_online = start.elapsed();
    let all_catalogs = wait_until(Duration::from_secs(300), || {
        seen.catalogs_complete.load(Ordering::Relaxed) >= n
    });
    let t_catalogs = start.elapsed();
    let cpu_storm = cpu_secs() - cpu_start;
    let rss_storm = peak_rss_mib();
    let m = handle.metrics();
    println!(
        "storm: all {n} online: {all_online} in {:.2} s; all catalogs complete: {all_catalogs} in {:.2} s",
        t_online.as_secs_f64(),
        t_catalogs.as_secs_f64()
    );
    println!(
        "storm: server CPU {cpu_storm:.2} s ({:.0} % of one core over the storm), peak RSS {rss_storm:.0} MiB (idle {rss_idle:.0} MiB)",
        100.0 * cpu_storm / t_catalogs.as_secs_f64()
    );
    println!(
        "storm: registrations {} auth failures {} retransmissions absorbed {} parse errors {} send failures {} transaction errors {}; live transactions at the end {}",
        m.registrations, m.auth_failures, m.retransmissions_in, m.sip_parse_errors, m.send_failures, m.transaction_errors, m.live_transactions_now
    );
    let line = child.wait_line("REGISTERED", Duration::from_secs(60));
    println!("storm: load process saw {line}");

    // Keepalive throughput.
    let k0 = handle.metrics().keepalives;
    let cpu_k0 = cpu_secs();
    let tk = Instant::now();
    child.say(&format!("BLAST {}", a.blast_secs));
    let line = child.wait_line("KEEPALIVE", Duration::from_secs(a.blast_secs + 60));
    let secs = tk.elapsed().as_secs_f64();
    let k = handle.metrics().keepalives - k0;
    let cpu_k = cpu_secs() - cpu_k0;
    println!(
        "keepalive: server accepted {k} keepalives in {secs:.2} s = {:.0}/s; server CPU {:.0} % of one core; load side: {line}",
        k as f64 / secs,
        100.0 * cpu_k / secs
    );
    let m = handle.metrics();
    println!(
        "keepalive: transaction errors {} send failures {} live transactions {} peak RSS {:.0} MiB; total server CPU {:.2} s",
        m.transaction_errors,
        m.send_failures,
        m.live_transactions_now,
        peak_rss_mib(),
        cpu_secs() - cpu0
    );
    println!(
        "{{\"scenario\":\"storm\",\"devices\":{n},\"online_s\":{:.3},\"catalogs_s\":{:.3},\"server_cpu_s\":{cpu_storm:.3},\"peak_rss_mib\":{rss_storm:.1},\"keepalive_per_s\":{:.0},\"keepalive_cpu_pct\":{:.0}}}",
        t_online.as_secs_f64(),
        t_catalogs.as_secs_f64(),
        k as f64 / secs,
        100.0 * cpu_k / secs
    );
    handle.shutdown();
}

fn catalog(a: &Args) {
    let t0 = Instant::now();
    let mut cfg = server_config();
    cfg.catalog.subscribe = false;
    let (handle, seen, _thread) = start_server(cfg, t0);
    let addr = handle.sip_udp_addr();
    println!(
        "catalog: 1 device with {} channels, 4 items per MESSAGE over UDP → {addr}",
        a.channels
    );
    let cpu0 = cpu_secs();
    let _child = Child::spawn("catalog", addr, a);
    let ok = wait_until(Duration::from_secs(300), || {
        seen.catalogs_complete.load(Ordering::Relaxed) >= 1
    });
    let online = seen.first_online_ns.load(Ordering::Relaxed);
    let done = seen.last_catalog_ns.load(Ordering::Relaxed);
    let items = seen.catalog_items.load(Ordering::Relaxed);
    let ms = (done.saturating_sub(online)) as f64 / 1e6;
    let m = handle.metrics();
    println!(
        "catalog: complete {ok}, {items} items, {ms:.0} ms from online to the catalog event; server CPU {:.2} s; peak RSS {:.0} MiB; retransmissions absorbed {} inconsistencies {}",
        cpu_secs() - cpu0,
        peak_rss_mib(),
        m.retransmissions_in,
        m.catalog_inconsistencies
    );
    println!(
        "{{\"scenario\":\"catalog\",\"channels\":{},\"complete\":{ok},\"items\":{items},\"online_to_catalog_ms\":{ms:.0}}}",
        a.channels
    );
    handle.shutdown();
}

/// The load process.
fn sim_process(role: &str, a: &Args) {
    let server = a.server.expect("--server");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let base = GbSimConfig {
            server,
            server_id: SERVER_ID.into(),
            domain: DOMAIN.into(),
            password: PASSWORD.into(),
            devices_per_socket: 100,
            keepalive_interval: Duration::from_secs(60),
            ..GbSimConfig::default()
        };
        let cfg = match role {
            "storm" => GbSimConfig {
                devices: a.devices,
                channels_per_device: 1,
                ..base
            },
            _ => GbSimConfig {
                devices: 1,
                device_type: 118,
                channels_per_device: a.channels,
                catalog_items_per_packet: 4,
                ..base
            },
        };
        let n = cfg.devices as u64;
        let t = Instant::now();
        let fleet = GbSimFleet::start(cfg).await.expect("fleet");
        println!("STARTED");
        let ok = fleet.wait_registered(n, Duration::from_secs(300)).await;
        println!(
            "REGISTERED {} of {n} in {:.2} s ({ok}); {:?}",
            fleet.stats().registered,
            t.elapsed().as_secs_f64(),
            fleet.stats()
        );
        if role != "storm" {
            std::future::pending::<()>().await;
        }
        // Wait for BLAST <secs> on stdin.
        let secs = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            line.trim()
                .strip_prefix("BLAST ")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(5)
        })
        .await
        .unwrap_or(5);
        let ids: Vec<String> = fleet.device_ids().iter().map(|d| d.to_string()).collect();
        let (sent, ok) = blast(server, &ids, Duration::from_secs(secs)).await;
        println!(
            "KEEPALIVE sent={sent} answered_200={ok} in {secs} s = {:.0}/s",
            ok as f64 / secs as f64
        );
        std::future::pending::<()>().await;
    });
}

/// Sends keepalives for `ids` as fast as the server answers: 8 sockets, each with at most
/// `WINDOW` unanswered. Returns (sent, 200 OK received).
async fn blast(server: SocketAddr, ids: &[String], dur: Duration) -> (u64, u64) {
    const SOCKETS: usize = 8;
    const WINDOW: u64 = 64;
    let sent = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + dur;
    let mut tasks = Vec::new();
    for s in 0..SOCKETS {
        let ids: Vec<String> = ids.iter().skip(s).step_by(SOCKETS).cloned().collect();
        let sent = sent.clone();
        let ok = ok.clone();
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            sock.connect(server).await.expect("connect");
            let local = sock.local_addr().expect("addr");
            let mut buf = vec![0u8; 4096];
            let (mut my_sent, mut my_ok, mut inflight) = (0u64, 0u64, 0u64);
            let mut n: u64 = 0;
            while Instant::now() < end {
                while inflight < WINDOW {
                    n += 1;
                    let id = &ids[(n as usize) % ids.len()];
                    let body = format!(
                        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{n}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
                    );
                    let msg = format!(
                        "MESSAGE sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bKka{s}x{n}\r\nFrom: <sip:{id}@{DOMAIN}>;tag={n}\r\nTo: <sip:{SERVER_ID}@{DOMAIN}>\r\nCall-ID: ka{s}-{n}@{local}\r\nCSeq: 20 MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\nMax-Forwards: 70\r\nUser-Agent: vigil-sim\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.send(msg.as_bytes()).await.is_err() {
                        break;
                    }
                    my_sent += 1;
                    inflight += 1;
                }
                // Responses; after a silence the window is reopened (lost datagrams).
                match tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await {
                    Ok(Ok(len)) => {
                        inflight = inflight.saturating_sub(1);
                        if buf[..len].starts_with(b"SIP/2.0 200") {
                            my_ok += 1;
                        }
                    }
                    _ => inflight = 0,
                }
            }
            sent.fetch_add(my_sent, Ordering::Relaxed);
            ok.fetch_add(my_ok, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (sent.load(Ordering::Relaxed), ok.load(Ordering::Relaxed))
}
