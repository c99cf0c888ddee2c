//! Load harness for recording with the real daemon: N simulated 4 Mbit/s, 25 fps cameras on
//! loopback, pulled and recorded by `vigil run` (RTSP pullers → segment store → disk, status
//! history in the index), and in the same run the same N streams recorded by N
//! `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment` processes; then MP4 export
//! throughput through the daemon's HTTP API from the page cache.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-rec cargo bench -p vigil-daemon --bench recording_load -- \
//!     [--cameras 25,50,100,200,300] [--seconds 20] [--ffmpeg-max 300] [--no-ffmpeg] [--ramp] \
//!     [--export-minutes 10] [--no-export]
//! ```
//!
//! - The clip (10 s, x264 `veryfast`, 4 Mbit/s, GOP 50 = 2 s, no B-frames, noisy `testsrc2`
//!   so that the encoder really spends 4 Mbit/s) is made with ffmpeg once into
//!   `<target>/recording-load/`.
//! - The simulated cameras (`vigil_sim::rtsp`, every path serves the clip) run in this
//!   process; the daemon and ffmpeg are child processes, so their CPU (utime + stime from
//!   `/proc/<pid>/stat` over the window) is theirs alone. The simulator's is reported too.
//! - Each step starts a fresh daemon on a fresh data directory (default configuration:
//!   60 s segments, one fragment per GOP, an `fdatasync` per fragment), files N cameras with
//!   one import, waits until all record, waits 3 s more, then measures over the window.
//! - Keeping up: frames the simulator sent vs frames the recorders received over the window
//!   (±1 GOP per camera: recorders publish their counters once per fragment), whether the
//!   simulator kept its schedule (TCP back-pressure from a slow puller), frames dropped by the
//!   pullers (slow
//!   consumer, RTP loss), every camera recording, and how far each camera's last durable
//!   fragment is behind the wall clock (at most a GOP plus the write: under 2 GOPs + 1 s).
//! - Export: a store pre-filled (through the real recorder, unpaced) with `--export-minutes`
//!   of one 4 Mbit/s camera, served by the daemon; the whole range is fetched over HTTP on
//!   loopback several times (first read warms the page cache), with 1 and 2 clients at once;
//!   reading the segment files directly is the reference.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::video::{ms, now_ms, rfc3339};
use support::{Daemon, Env};
use vigil_core::camera::{AcceptanceState, Camera, CameraSource, RegistrationState};
use vigil_core::grid::{Grid, GridCode};
use vigil_core::id::GbId;
use vigil_core::import::CameraImport;
use vigil_core::model::CameraVersionInput;
use vigil_core::time::Timestamp;
use vigil_index::Index;
use vigil_media::VideoCodec;
use vigil_sim::rtsp::{Clip, Fault, SimServer, Stream};
use vigil_store::testing::{Clip as StoreClip, ClipFeed};
use vigil_store::{Store, StoreConfig};

#[path = "support/load.rs"]
mod load;
use load::{
    clock_ticks_per_second, cpu_split, cpu_ticks, dir_bytes, ensure_clip, rss_mib, BoxError, FPS,
};

const GOP_MS: i64 = 2000;

#[derive(Debug)]
struct Options {
    cameras: Vec<usize>,
    seconds: u64,
    ffmpeg: bool,
    ffmpeg_max: usize,
    ramp: bool,
    export_minutes: u64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut o = Options {
            cameras: vec![25, 50, 100, 200, 300],
            seconds: 20,
            ffmpeg: true,
            ffmpeg_max: 300,
            ramp: false,
            export_minutes: 10,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--cameras" => {
                    o.cameras = value()?
                        .split(',')
                        .map(|n| n.trim().parse())
                        .collect::<Result<_, _>>()?
                }
                "--seconds" => o.seconds = value()?.parse()?,
                "--no-ffmpeg" => o.ffmpeg = false,
                "--ffmpeg-max" => o.ffmpeg_max = value()?.parse()?,
                "--ramp" => o.ramp = true,
                "--export-minutes" => o.export_minutes = value()?.parse()?,
                "--no-export" => o.export_minutes = 0,
                // `cargo bench` passes `--bench`; filters are ignored.
                _ => {}
            }
        }
        Ok(o)
    }
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let options = Options::parse(&args[1..])?;
    let clip_path = ensure_clip("recording-load", "720p")?;
    let clip = Clip::from_annex_b(VideoCodec::H264, &std::fs::read(&clip_path)?, FPS)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let sim = runtime.block_on(SimServer::start("127.0.0.1:0".parse()?, cancel.clone()))?;
    sim.set_default_stream(Stream {
        clip: Arc::new(clip.clone()),
        fault: Fault::None,
    });
    let ticks = clock_ticks_per_second();
    println!(
        "recording_load: clip {} {}x{} {} fps, {:.2} Mbit/s, GOP {:?}; window {} s; cores {}; \
         loadavg at start {}",
        clip_path.display(),
        clip.params.width(),
        clip.params.height(),
        clip.fps,
        clip.bits_per_second() as f64 / 1e6,
        clip.gop_frames(),
        options.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
    );
    for &n in &options.cameras {
        println!("N = {n}");
        let ours = run_vigil(n, &sim, options.seconds, ticks)?;
        print_step("vigil", n, &ours);
        if options.ffmpeg && n <= options.ffmpeg_max {
            let theirs = run_ffmpeg(n, &sim, options.seconds, ticks)?;
            print_step("ffmpeg", n, &theirs);
            let ratio = ours.core_fraction() / theirs.core_fraction();
            println!(
                "  ratio vigil / ffmpeg cpu = {ratio:.3} ({:.1}x less CPU per stream)",
                1.0 / ratio
            );
        }
        if !ours.sustained(n) && options.ramp {
            println!("not sustained at N = {n}: stopping the ramp");
            break;
        }
    }
    cancel.cancel();
    if options.export_minutes > 0 {
        export_throughput(options.export_minutes)?;
    }
    Ok(())
}

fn camera_id(n: usize) -> String {
    format!("3401000000132{n:07}")
}

/// What one measurement window showed.
#[derive(Debug, Default)]
struct Step {
    cpu_s: f64,
    /// The kernel's part of `cpu_s` (writing into the page cache, fsync, sockets).
    system_s: f64,
    sim_cpu_s: f64,
    window_s: f64,
    sent: u64,
    received: Option<u64>,
    recorded: Option<u64>,
    dropped: u64,
    not_recording: usize,
    bytes_written: u64,
    max_lag_ms: Option<i64>,
    rss_mib: f64,
    fsyncs_per_s: Option<f64>,
}

impl Step {
    fn core_fraction(&self) -> f64 {
        self.cpu_s / self.window_s
    }

    /// Frames sent but not received over the window, beyond what the counters' granularity
    /// explains: the recorders publish their counters once per fragment (a GOP), so each
    /// camera's count may be up to a GOP (plus a frame in flight) off at either edge.
    fn loss(&self, n: usize) -> i64 {
        let Some(received) = self.received else {
            return 0;
        };
        let missing = self.sent as i64 - received as i64;
        let slack = n as i64 * (GOP_MS * i64::from(FPS) / 1000 + 1);
        if missing.abs() <= slack {
            0
        } else {
            missing
        }
    }

    /// Frames the simulator could not send on time (a consumer holding it back over TCP).
    fn behind(&self, n: usize) -> i64 {
        let nominal = (n as f64 * f64::from(FPS) * self.window_s) as i64;
        let behind = nominal - self.sent as i64;
        if behind <= 2 * n as i64 {
            0
        } else {
            behind
        }
    }

    fn sustained(&self, n: usize) -> bool {
        self.loss(n) == 0
            && self.behind(n) == 0
            && self.dropped == 0
            && self.not_recording == 0
            && self.max_lag_ms.is_none_or(|l| l < 2 * GOP_MS + 1000)
    }
}

fn print_step(label: &str, n: usize, s: &Step) {
    let per_stream_ms = 1000.0 * s.core_fraction() / n as f64;
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "  {label:<7} cpu {:6.1}% of a core = {per_stream_ms:6.2} ms/s per stream ({:.0}% in the \
         kernel) | sent {} \
         (nominal {:.0}) received {} recorded {} loss {} behind {} dropped {} | not recording {} \
         | written {:.1} MB/s ({:.2} Mbit/s per stream){} | max lag {} | sim cpu {:.1}% | rss \
         {:.0} MiB{}",
        100.0 * s.core_fraction(),
        100.0 * s.system_s / s.cpu_s.max(f64::MIN_POSITIVE),
        s.sent,
        n as f64 * f64::from(FPS) * s.window_s,
        opt(s.received),
        opt(s.recorded),
        s.loss(n),
        s.behind(n),
        s.dropped,
        s.not_recording,
        s.bytes_written as f64 / s.window_s / 1e6,
        s.bytes_written as f64 * 8.0 / s.window_s / 1e6 / n as f64,
        s.fsyncs_per_s
            .map_or(String::new(), |f| format!(" | {f:.0} fsync/s")),
        s.max_lag_ms.map_or("-".to_owned(), |l| format!("{l} ms")),
        100.0 * s.sim_cpu_s / s.window_s,
        s.rss_mib,
        if s.sustained(n) {
            ""
        } else {
            " | NOT SUSTAINED"
        },
    );
}

/// Totals over `GET /recorders`.
#[derive(Debug, Default)]
struct Totals {
    received: u64,
    recorded: u64,
    fragments: u64,
    bytes: u64,
    dropped: u64,
    recording: usize,
    max_lag_ms: i64,
}

fn totals(api: &support::Client) -> Totals {
    let states = api.get("/api/v1/recorders").expect(200).json();
    let now = now_ms();
    let mut t = Totals::default();
    for s in states.as_array().into_iter().flatten() {
        let r = &s["recorder"];
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        t.received += n(&r["frames_received"]);
        t.recorded += n(&r["frames_recorded"]);
        t.fragments += n(&r["fragments_written"]);
        t.bytes += n(&r["bytes_written"]);
        t.dropped += n(&s["puller"]["dropped_slow_consumer"]) + n(&s["puller"]["rtp_packets_lost"]);
        if s["state"] == "recording" {
            t.recording += 1;
        }
        if let Some(end) = r["committed_end"].as_str() {
            t.max_lag_ms = t.max_lag_ms.max(now - ms(end));
        }
    }
    t
}

fn run_vigil(n: usize, sim: &SimServer, seconds: u64, ticks: f64) -> Result<Step, BoxError> {
    let env = Env::new("[recording]\nenabled = true\n");
    let admin = env.token("admin", "bench");
    let daemon: Daemon = env.start();
    let api = daemon.client(Some(&admin));
    api.post("/api/v1/imports/grids", "text/csv", b"code,name\ng,bench\n")
        .expect(200);
    let mut rows = String::from("id,effective_from,name,source,rtsp_url,grid\n");
    for i in 0..n {
        rows.push_str(&format!(
            "{},2024-01-01T00:00:00Z,cam {i},rtsp,{},g\n",
            camera_id(i),
            sim.url(&format!("/cam/{i}"))
        ));
    }
    api.post("/api/v1/imports/cameras", "text/csv", rows.as_bytes())
        .expect(200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = totals(&api);
        if t.recording == n {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("  only {} of {n} cameras recording after 60 s", t.recording);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let pid = daemon.pid();
    let me = std::process::id();
    let (cpu0, sim0, sent0, t0) = (
        cpu_split(pid),
        cpu_ticks(me),
        sim.frames_sent(),
        totals(&api),
    );
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (sent1, t1) = (sim.frames_sent(), totals(&api));
    let window_s = start.elapsed().as_secs_f64();
    let (cpu1, sim1) = (cpu_split(pid), cpu_ticks(me));
    let rss = rss_mib(pid);
    daemon.stop();
    Ok(Step {
        cpu_s: (cpu1.0 + cpu1.1).saturating_sub(cpu0.0 + cpu0.1) as f64 / ticks,
        system_s: cpu1.1.saturating_sub(cpu0.1) as f64 / ticks,
        sim_cpu_s: sim1.saturating_sub(sim0) as f64 / ticks,
        window_s,
        sent: sent1 - sent0,
        received: Some(t1.received.saturating_sub(t0.received)),
        recorded: Some(t1.recorded.saturating_sub(t0.recorded)),
        dropped: t1.dropped,
        not_recording: n.saturating_sub(t1.recording),
        bytes_written: t1.bytes.saturating_sub(t0.bytes),
        max_lag_ms: Some(t1.max_lag_ms),
        rss_mib: rss,
        fsyncs_per_s: Some(t1.fragments.saturating_sub(t0.fragments) as f64 / window_s),
    })
}

fn run_ffmpeg(n: usize, sim: &SimServer, seconds: u64, ticks: f64) -> Result<Step, BoxError> {
    let scratch = tempfile::Builder::new()
        .prefix("vigil-bench-ffmpeg-")
        .tempdir()?;
    let mut children: Vec<Child> = Vec::new();
    for i in 0..n {
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(sim.url(&format!("/cam/{i}")))
            .args(["-c", "copy", "-f", "segment", "-segment_time", "60"])
            .arg(scratch.path().join(format!("cam{i}_%03d.mp4")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run ffmpeg ({e}); run scripts/ensure-test-deps"))?;
        children.push(child);
    }
    // ffmpeg probes the stream before it writes (analyzeduration 5 s by default).
    std::thread::sleep(Duration::from_secs(8));
    let cpu = |children: &[Child]| {
        children
            .iter()
            .map(|c| cpu_split(c.id()))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let me = std::process::id();
    let (cpu0, sim0, sent0, bytes0) = (
        cpu(&children),
        cpu_ticks(me),
        sim.frames_sent(),
        dir_bytes(scratch.path()),
    );
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let (sent1, bytes1) = (sim.frames_sent(), dir_bytes(scratch.path()));
    let window_s = start.elapsed().as_secs_f64();
    let (cpu1, sim1) = (cpu(&children), cpu_ticks(me));
    let rss: f64 = children.iter().map(|c| rss_mib(c.id())).sum();
    let mut not_recording = 0;
    for mut c in children {
        if c.try_wait().ok().flatten().is_some() {
            not_recording += 1;
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(Step {
        cpu_s: (cpu1.0 + cpu1.1).saturating_sub(cpu0.0 + cpu0.1) as f64 / ticks,
        system_s: cpu1.1.saturating_sub(cpu0.1) as f64 / ticks,
        sim_cpu_s: sim1.saturating_sub(sim0) as f64 / ticks,
        window_s,
        sent: sent1 - sent0,
        // ffmpeg's frame count is not observable from here; over TCP a slow ffmpeg shows as
        // the simulator falling behind.
        received: None,
        recorded: None,
        dropped: 0,
        not_recording,
        bytes_written: bytes1.saturating_sub(bytes0),
        max_lag_ms: None,
        rss_mib: rss,
        fsyncs_per_s: None,
    })
}

// --- export throughput ---------------------------------------------------------------------

/// Fills a store with `minutes` of one 4 Mbit/s camera through the real recorder (as fast as
/// it writes), registered in the index as a GB/T 28181 channel so that nothing pulls it.
fn prefill(data: &Path, camera: &GbId, minutes: u64) -> Result<(Timestamp, Timestamp), BoxError> {
    let index = Arc::new(Index::open(data.join("index"))?);
    index.put_grid(Grid {
        code: GridCode::parse("g")?,
        name: "bench".into(),
        level_label: String::new(),
        parent: None,
        polygon: None,
    })?;
    let start = Timestamp::from_millis(now_ms() - (minutes as i64 + 10) * 60_000);
    index.put_camera(CameraImport {
        version: CameraVersionInput {
            from: start.sub_ms(60_000),
            camera: Camera {
                id: *camera,
                name: "export bench".into(),
                source: CameraSource::Gb {
                    device_id: *camera,
                    channel_id: *camera,
                },
                location: None,
                address: None,
                grid: GridCode::parse("g")?,
                sites: Vec::new(),
                builder: None,
                point_class: None,
                install_date: None,
                registration: RegistrationState::Filed,
                acceptance: AcceptanceState::Pending,
                hd: None,
                shared_upward: false,
                decommissioned_at: None,
            },
        },
        credentials: None,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let end = runtime.block_on(async {
        let (store, _) = Store::open(StoreConfig::new(data.join("recordings")), index.clone())?;
        let clip = StoreClip::h264_720p().padded_to(4_000_000);
        let mut feed = ClipFeed::new(&clip, start, 0);
        let (tx, handle) = store.recorder_channel(*camera, 256)?;
        for _ in 0..minutes * 60 * u64::from(FPS) {
            tx.send(feed.next_event()).await?;
        }
        let end = feed.now();
        handle.stop().await;
        drop(tx);
        Ok::<_, BoxError>(end)
    })?;
    index.flush()?;
    Ok((start, end))
}

/// `GET path` read to the end; returns the bytes read.
fn fetch(base: &str, token: &str, path: &str) -> Result<u64, BoxError> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.contains(" 200 ") {
        return Err(format!("export answered {line:?}").into());
    }
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(total)
}

fn export_throughput(minutes: u64) -> Result<(), BoxError> {
    println!(
        "export: {minutes} min of one 4 Mbit/s camera, served by the daemon from the page cache"
    );
    let env = Env::new("[recording]\nenabled = true\n");
    let camera = GbId::parse(&camera_id(9_999_999))?;
    let (start, end) = prefill(&env.data_dir(), &camera, minutes)?;
    let admin = env.token("admin", "bench");
    let daemon = env.start();
    let base = daemon.base.clone();
    let path = format!(
        "/api/v1/cameras/{camera}/recording.mp4?start={}&end={}",
        rfc3339(start.as_millis()),
        rfc3339(end.as_millis())
    );
    // Reference: the segment files read straight from the page cache.
    let files: Vec<PathBuf> = walk(&env.data_dir().join("recordings").join(camera.as_str()));
    let read_files = || -> Result<u64, BoxError> {
        let mut total = 0;
        let mut buf = vec![0u8; 1 << 20];
        for f in &files {
            let mut file = std::fs::File::open(f)?;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        Ok(total)
    };
    read_files()?;
    let t = Instant::now();
    let raw = read_files()?;
    let raw_rate = raw as f64 / t.elapsed().as_secs_f64();
    let size = fetch(&base, &admin, &path)?;
    let mut best = 0f64;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = fetch(&base, &admin, &path)?;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        best = best.max(rate);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let t = Instant::now();
    let pair = std::thread::scope(|s| {
        let a = s.spawn(|| fetch(&base, &admin, &path).map_err(|e| e.to_string()));
        let b = s.spawn(|| fetch(&base, &admin, &path).map_err(|e| e.to_string()));
        let a = a.join().map_err(|_| "client panicked".to_owned())??;
        let b = b.join().map_err(|_| "client panicked".to_owned())??;
        Ok::<_, String>(a + b)
    })?;
    let pair_rate = pair as f64 / t.elapsed().as_secs_f64();
    println!(
        "  export of {} MB ({} segment files): one client median {:.2} GB/s (best {:.2}), two \
         clients {:.2} GB/s together; reading the files directly {:.2} GB/s",
        size / 1_000_000,
        files.len(),
        median / 1e9,
        best / 1e9,
        pair_rate / 1e9,
        raw_rate / 1e9
    );
    daemon.stop();
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
