//! Load harness for the RTSP puller: N simulated cameras at 4 Mbit/s, 25 fps, pulled over TCP
//! by our pullers and, in the same run, by N `ffmpeg -c copy -f segment` processes.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-rtsp cargo bench -p vigil-rtsp --bench rtsp_load -- \
//!     [--cameras 25,50,100,200] [--seconds 20] [--sink count|fmp4|both] [--no-ffmpeg] \
//!     [--resolution 720p|1080p] [--ramp] [--ffmpeg-max 200]
//! ```
//!
//! - The clip (10 s, x264 `veryfast`, 4 Mbit/s CBR-ish, GOP 50, no B-frames, noisy
//!   `testsrc2` so that the encoder really spends 4 Mbit/s) is made with ffmpeg at start into
//!   `<target>/rtsp-load/` and reused.
//! - The simulator runs in a child process (this binary re-run with `--sim-child`), so its
//!   CPU is not counted as ours; it is reported separately.
//! - Our CPU is utime + stime of this process from `/proc/self/stat` over the measurement
//!   window; ffmpeg's is the sum over its N processes from `/proc/<pid>/stat`, over a window
//!   of the same length. Each is given as % of one core and as milliseconds of CPU per second
//!   per stream.
//! - Keeping up: the simulator counts the frames it queues to each TCP connection; over TCP
//!   nothing is lost on the wire, so a puller that cannot keep up shows as a growing backlog
//!   (frames sent minus frames received over the window, ±1 frame per stream for frames in
//!   flight at the window's edges), as the simulator falling behind its schedule (TCP
//!   back-pressure), or as frames arriving late: each camera's lag is its latest frame's
//!   `arrival − pts` minus the smallest such value seen. A step is *sustained* when there is no backlog growth, the
//!   simulator is on schedule, every camera is streaming, nothing was dropped and every lag
//!   is under a second.
//! - Sinks: `count` counts frames at the end of each camera's channel; `fmp4` also writes
//!   fragmented MP4 (vigil-media's `FragmentBuilder`, one fragment per GOP) to one file per
//!   camera, which is the fair comparison with ffmpeg writing MP4 segments. The writes are
//!   done by two writer threads (blocking I/O kept off the runtime's workers, as the store
//!   must do too). Files go to a temporary directory under the target directory and are
//!   deleted after each step.
//! - `--ramp` stops at the first N that loses frames; the last N before it is the maximum.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_core::id::GbId;
use vigil_media::fmp4::{init_segment, FragmentBuilder};
use vigil_media::{VideoCodec, VideoParameters};
use vigil_rtsp::{CameraSource, PullerOptions, PullerRegistry, PullerState};
use vigil_sim::rtsp::{Clip, SimServer, Stream};
use vigil_store::SourceEvent;

#[path = "support/load.rs"]
mod load;
use load::{
    clock_ticks_per_second, cpu_ticks, dir_bytes, ensure_clip, rss_mib, target_dir, BoxError, FPS,
};

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sim-child") {
        let clip = args.get(2).ok_or("--sim-child needs the clip path")?;
        return sim_child(Path::new(clip));
    }
    let options = Options::parse(&args[1..])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkKind {
    Count,
    Fmp4,
}

#[derive(Debug)]
struct Options {
    cameras: Vec<usize>,
    seconds: u64,
    sinks: Vec<SinkKind>,
    ffmpeg: bool,
    resolution: &'static str,
    ramp: bool,
    /// Largest N for the ffmpeg comparison (each ffmpeg process holds ~20 MiB).
    ffmpeg_max: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut o = Options {
            cameras: vec![25, 50, 100, 150, 200],
            seconds: 20,
            sinks: vec![SinkKind::Count, SinkKind::Fmp4],
            ffmpeg: true,
            resolution: "720p",
            ramp: false,
            ffmpeg_max: 200,
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
                "--sink" => {
                    o.sinks = match value()?.as_str() {
                        "count" => vec![SinkKind::Count],
                        "fmp4" => vec![SinkKind::Fmp4],
                        "both" => vec![SinkKind::Count, SinkKind::Fmp4],
                        other => return Err(format!("unknown sink {other}").into()),
                    }
                }
                "--no-ffmpeg" => o.ffmpeg = false,
                "--ffmpeg-max" => o.ffmpeg_max = value()?.parse()?,
                "--ramp" => o.ramp = true,
                "--resolution" => {
                    o.resolution = match value()?.as_str() {
                        "720p" => "720p",
                        "1080p" => "1080p",
                        other => return Err(format!("unknown resolution {other}").into()),
                    }
                }
                // `cargo bench` passes `--bench`; libtest-style filters are ignored too.
                _ => {}
            }
        }
        Ok(o)
    }
}

// --- the simulator child process ---------------------------------------------------------

fn sim_child(clip: &Path) -> Result<(), BoxError> {
    let bytes = std::fs::read(clip)?;
    let clip = Clip::from_annex_b(VideoCodec::H264, &bytes, FPS)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let server = runtime.block_on(async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let server = SimServer::start("127.0.0.1:0".parse().map_err(Box::new)?, cancel).await?;
        server.set_default_stream(Stream {
            clip: Arc::new(clip),
            fault: vigil_sim::rtsp::Fault::None,
        });
        Ok::<_, BoxError>(server)
    })?;
    println!("READY {}", server.local_addr().port());
    std::io::stdout().flush()?;
    // Commands on stdin; EOF (the parent exited) ends the child.
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "SENT" => println!("SENT {}", server.frames_sent()),
            other => println!("ERR unknown command {other}"),
        }
        std::io::stdout().flush()?;
    }
    server.stop();
    Ok(())
}

struct SimChild {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl SimChild {
    fn start(clip: &Path) -> Result<Self, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--sim-child")
            .arg(clip)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("simulator did not start: {line:?}"))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            port,
        })
    }

    fn sent(&mut self) -> Result<u64, BoxError> {
        writeln!(self.stdin, "SENT")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line
            .strip_prefix("SENT ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("bad answer {line:?}"))?)
    }

    fn url(&self, camera: usize) -> String {
        format!("rtsp://127.0.0.1:{}/cam/{camera}", self.port)
    }

    fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id())
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- measuring ---------------------------------------------------------------------------

fn camera_id(n: usize) -> GbId {
    // 20 digits: centre 34010000, industry 00, type 132 (IPC), network 0, serial n.
    GbId::parse(&format!("3401000000132{n:07}")).unwrap_or_else(|e| panic!("camera id {n}: {e}"))
}

// --- sinks -------------------------------------------------------------------------------

/// Where a camera's events end up in the harness. The real store plugs in at the same place:
/// the receiving end of the camera's channel. A sink does no I/O itself: it returns write
/// jobs, which go to writer threads (blocking file I/O on the runtime's two workers would
/// stall every puller behind a slow `write`).
trait Sink: Send {
    fn frame(
        &mut self,
        params: &Arc<VideoParameters>,
        frame: vigil_media::VideoFrame,
    ) -> Vec<WriteJob>;
    fn interrupted(&mut self) -> Vec<WriteJob> {
        Vec::new()
    }
    fn finish(&mut self) -> Vec<WriteJob> {
        Vec::new()
    }
}

struct CountSink;

impl Sink for CountSink {
    fn frame(&mut self, _: &Arc<VideoParameters>, _: vigil_media::VideoFrame) -> Vec<WriteJob> {
        Vec::new()
    }
}

/// A file operation for a writer thread.
enum WriteJob {
    Create {
        path: PathBuf,
        init: bytes::Bytes,
    },
    Append {
        path: PathBuf,
        chunks: Vec<bytes::Bytes>,
    },
    Close {
        path: PathBuf,
    },
}

/// Writer threads, each owning the files of the cameras assigned to it.
struct WriterPool {
    senders: Vec<mpsc::Sender<WriteJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WriterPool {
    fn new(threads: usize) -> Self {
        let mut pool = WriterPool {
            senders: Vec::new(),
            threads: Vec::new(),
        };
        for _ in 0..threads {
            let (tx, mut rx) = mpsc::channel::<WriteJob>(1024);
            pool.senders.push(tx);
            pool.threads.push(std::thread::spawn(move || {
                let mut files: HashMap<PathBuf, BufWriter<File>> = HashMap::new();
                while let Some(job) = rx.blocking_recv() {
                    let result = match job {
                        WriteJob::Create { path, init } => File::create(&path).and_then(|f| {
                            let mut out = BufWriter::with_capacity(256 << 10, f);
                            out.write_all(&init)?;
                            files.insert(path, out);
                            Ok(())
                        }),
                        WriteJob::Append { path, chunks } => match files.get_mut(&path) {
                            Some(out) => chunks.iter().try_for_each(|c| out.write_all(c)),
                            None => Ok(()),
                        },
                        WriteJob::Close { path } => match files.remove(&path) {
                            Some(mut out) => out.flush(),
                            None => Ok(()),
                        },
                    };
                    if let Err(e) = result {
                        panic!("writer thread: {e}");
                    }
                }
            }));
        }
        pool
    }

    fn sender(&self, camera: usize) -> mpsc::Sender<WriteJob> {
        self.senders[camera % self.senders.len()].clone()
    }

    fn join(self) {
        drop(self.senders);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One fragmented MP4 file per camera (a new one when the parameters change), one fragment
/// per GOP.
struct Fmp4Sink {
    base: PathBuf,
    path: Option<PathBuf>,
    params: Option<Arc<VideoParameters>>,
    fragment: FragmentBuilder,
    sequence: u32,
    decode_time: u64,
    files: u32,
}

impl Fmp4Sink {
    fn new(base: PathBuf) -> Self {
        Self {
            base,
            path: None,
            params: None,
            fragment: FragmentBuilder::default(),
            sequence: 1,
            decode_time: 0,
            files: 0,
        }
    }

    fn flush_fragment(&mut self, next_pts: Option<i64>, jobs: &mut Vec<WriteJob>) {
        let Some(path) = &self.path else {
            return;
        };
        if self.fragment.is_empty() {
            return;
        }
        match self
            .fragment
            .finish(self.sequence, self.decode_time, next_pts)
        {
            Ok(fragment) => {
                jobs.push(WriteJob::Append {
                    path: path.clone(),
                    chunks: fragment.chunks().cloned().collect(),
                });
                self.sequence += 1;
                self.decode_time += fragment.duration();
            }
            Err(e) => panic!("fragment {}: {e}", self.sequence),
        }
    }
}

impl Sink for Fmp4Sink {
    fn frame(
        &mut self,
        params: &Arc<VideoParameters>,
        frame: vigil_media::VideoFrame,
    ) -> Vec<WriteJob> {
        let mut jobs = Vec::new();
        let changed = self
            .params
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, params) && **p != **params);
        if changed {
            jobs.extend(self.finish());
            self.files += 1;
            let path = self.base.with_extension(format!("{}.mp4", self.files));
            jobs.push(WriteJob::Create {
                path: path.clone(),
                init: init_segment(params),
            });
            self.path = Some(path);
            self.params = Some(params.clone());
            self.fragment = FragmentBuilder::for_params(params);
            self.sequence = 1;
            self.decode_time = 0;
        }
        if self.fragment.starts_new_gop(&frame) {
            self.flush_fragment(Some(frame.pts), &mut jobs);
        }
        self.fragment.push(frame);
        jobs
    }

    fn interrupted(&mut self) -> Vec<WriteJob> {
        let mut jobs = Vec::new();
        self.flush_fragment(None, &mut jobs);
        jobs
    }

    fn finish(&mut self) -> Vec<WriteJob> {
        let mut jobs = Vec::new();
        self.flush_fragment(None, &mut jobs);
        if let Some(path) = self.path.take() {
            jobs.push(WriteJob::Close { path });
        }
        jobs
    }
}

/// Consumes one camera's events. `lag_ms` receives how late the latest frame arrived
/// relative to the camera's schedule: the simulator paces frames exactly by their
/// timestamps, so `arrival − pts` (in ms) stays constant while the pipeline keeps up and
/// grows when it falls behind. The lag is measured from the earliest value seen.
async fn consume(
    mut rx: mpsc::Receiver<SourceEvent>,
    mut sink: Box<dyn Sink>,
    writer: Option<mpsc::Sender<WriteJob>>,
    frames: Arc<AtomicU64>,
    lag_ms: Arc<AtomicI64>,
) {
    let mut earliest: Option<i64> = None;
    let submit = |jobs: Vec<WriteJob>| {
        let writer = writer.clone();
        async move {
            if let Some(w) = writer {
                for job in jobs {
                    if w.send(job).await.is_err() {
                        panic!("writer thread gone");
                    }
                }
            }
        }
    };
    while let Some(event) = rx.recv().await {
        match event {
            SourceEvent::Frame {
                params,
                frame,
                received_at,
            } => {
                let offset = received_at.as_millis() - frame.pts / 90;
                let base = earliest.map_or(offset, |e| e.min(offset));
                earliest = Some(base);
                lag_ms.store(offset - base, Ordering::Relaxed);
                submit(sink.frame(&params, frame)).await;
                frames.fetch_add(1, Ordering::Relaxed);
            }
            SourceEvent::Interrupted { .. } => {
                earliest = None;
                submit(sink.interrupted()).await;
            }
        }
    }
    submit(sink.finish()).await;
}

// --- runs --------------------------------------------------------------------------------

struct Step {
    cpu_s: f64,
    sim_cpu_s: f64,
    window_s: f64,
    received: u64,
    sent: u64,
    not_streaming: usize,
    dropped: u64,
    rss_mib: f64,
    bytes_written: u64,
    /// Median and maximum over the cameras of the last frame's lateness (see `consume`).
    lag_ms: Option<(i64, i64)>,
}

/// Lateness beyond which a camera counts as falling behind.
const MAX_LAG_MS: i64 = 1000;

impl Step {
    /// Whether the run kept up: nothing dropped, nobody reconnecting, the simulator on
    /// schedule, no backlog growth, no camera more than a second late.
    fn sustained(&self, n: usize) -> bool {
        self.loss(n) == 0
            && self.behind(n) == 0
            && self.not_streaming == 0
            && self.dropped == 0
            && self.lag_ms.is_none_or(|(_, max)| max < MAX_LAG_MS)
    }

    fn loss(&self, n: usize) -> i64 {
        // Frames in flight at either edge of the window: one per stream.
        let slack = n as i64;
        let missing = self.sent as i64 - self.received as i64;
        if missing.abs() <= slack {
            0
        } else {
            missing
        }
    }

    /// Frames the simulator could not send on time (a consumer holding it back).
    fn behind(&self, n: usize) -> i64 {
        let nominal = (n as f64 * f64::from(FPS) * self.window_s) as i64;
        let behind = nominal - self.sent as i64;
        if behind <= 2 * n as i64 {
            0
        } else {
            behind
        }
    }
}

async fn run_ours(
    n: usize,
    kind: SinkKind,
    sim: &mut SimChild,
    seconds: u64,
    ticks: f64,
    scratch: &Path,
) -> Result<Step, BoxError> {
    let registry = PullerRegistry::new(PullerOptions::default());
    let received = Arc::new(AtomicU64::new(0));
    let lags: Vec<Arc<AtomicI64>> = (0..n).map(|_| Arc::default()).collect();
    let writers = (kind == SinkKind::Fmp4).then(|| WriterPool::new(2));
    let mut consumers = Vec::new();
    for (i, lag) in lags.iter().enumerate() {
        let (tx, rx) = mpsc::channel(256);
        let source = CameraSource::parse(&sim.url(i))?;
        registry.start(camera_id(i), source, tx)?;
        let sink: Box<dyn Sink> = match kind {
            SinkKind::Count => Box::new(CountSink),
            SinkKind::Fmp4 => Box::new(Fmp4Sink::new(scratch.join(format!("cam{i}")))),
        };
        consumers.push(tokio::spawn(consume(
            rx,
            sink,
            writers.as_ref().map(|w| w.sender(i)),
            received.clone(),
            lag.clone(),
        )));
    }
    // Warm up: every camera streaming, then a few seconds more.
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.states().iter().any(|(_, s)| !s.is_streaming()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let cpu0 = cpu_ticks(std::process::id());
    let sim_cpu0 = sim.cpu_ticks();
    let bytes0 = dir_bytes(scratch);
    let recv0 = received.load(Ordering::Relaxed);
    let sent0 = sim.sent()?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let sent1 = sim.sent()?;
    let recv1 = received.load(Ordering::Relaxed);
    let window_s = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_ticks(std::process::id());
    let sim_cpu1 = sim.cpu_ticks();
    let bytes1 = dir_bytes(scratch);
    let rss = rss_mib(std::process::id());
    let mut lag: Vec<i64> = lags.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    lag.sort_unstable();

    let states = registry.states();
    let not_streaming = states.iter().filter(|(_, s)| !s.is_streaming()).count();
    let dropped = states
        .iter()
        .map(|(_, s)| match s {
            PullerState::Streaming(s) => {
                s.counters.dropped_slow_consumer + s.counters.rtp_packets_lost
            }
            _ => 0,
        })
        .sum();
    let mut errors: HashMap<String, usize> = HashMap::new();
    for (_, s) in &states {
        if let Some(e) = s.last_error() {
            *errors.entry(format!("{:?}", e.kind())).or_default() += 1;
        }
    }
    if !errors.is_empty() {
        eprintln!("  pullers retrying at the end of the window: {errors:?}");
    }
    registry.shutdown().await;
    for c in consumers {
        let _ = c.await;
    }
    if let Some(w) = writers {
        tokio::task::spawn_blocking(move || w.join()).await?;
    }
    clear_dir(scratch)?;
    Ok(Step {
        cpu_s: (cpu1 - cpu0) as f64 / ticks,
        sim_cpu_s: sim_cpu1.saturating_sub(sim_cpu0) as f64 / ticks,
        window_s,
        received: recv1 - recv0,
        sent: sent1 - sent0,
        not_streaming,
        dropped,
        rss_mib: rss,
        bytes_written: bytes1.saturating_sub(bytes0),
        lag_ms: lag
            .get(lag.len() / 2)
            .zip(lag.last())
            .map(|(a, b)| (*a, *b)),
    })
}

async fn run_ffmpeg(
    n: usize,
    sim: &mut SimChild,
    seconds: u64,
    ticks: f64,
    scratch: &Path,
) -> Result<Step, BoxError> {
    let mut children = Vec::new();
    for i in 0..n {
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(sim.url(i))
            .args(["-c", "copy", "-f", "segment", "-segment_time", "60"])
            .arg(scratch.join(format!("cam{i}_%03d.mp4")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run ffmpeg ({e}); run scripts/ensure-test-deps"))?;
        children.push(child);
    }
    // ffmpeg probes the stream before writing (analyzeduration 5 s by default).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stat = |c: &Child| cpu_ticks(c.id());
    let cpu0: u64 = children.iter().map(stat).sum();
    let sim_cpu0 = sim.cpu_ticks();
    let bytes0 = dir_bytes(scratch);
    let sent0 = sim.sent()?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let sent1 = sim.sent()?;
    let window_s = t0.elapsed().as_secs_f64();
    let cpu1: u64 = children.iter().map(stat).sum();
    let sim_cpu1 = sim.cpu_ticks();
    let bytes1 = dir_bytes(scratch);
    let mut not_streaming = 0;
    for mut c in children {
        if c.try_wait().ok().flatten().is_some() {
            not_streaming += 1;
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    clear_dir(scratch)?;
    Ok(Step {
        cpu_s: cpu1.saturating_sub(cpu0) as f64 / ticks,
        sim_cpu_s: sim_cpu1.saturating_sub(sim_cpu0) as f64 / ticks,
        window_s,
        // ffmpeg's frame count is not observable from here; TCP loses nothing, so what the
        // simulator sent was received (a slow ffmpeg shows up as the simulator falling behind).
        received: sent1 - sent0,
        sent: sent1 - sent0,
        not_streaming,
        dropped: 0,
        rss_mib: 0.0,
        bytes_written: bytes1.saturating_sub(bytes0),
        lag_ms: None,
    })
}

fn clear_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    Ok(())
}

fn print_step(label: &str, n: usize, s: &Step) {
    let lag = s.lag_ms.map_or(String::new(), |(p50, max)| {
        format!(" | lag p50 {p50} ms max {max} ms")
    });
    let core_pct = 100.0 * s.cpu_s / s.window_s;
    let per_stream_ms = 1000.0 * s.cpu_s / s.window_s / n as f64;
    let written_mbps = s.bytes_written as f64 * 8.0 / s.window_s / 1e6;
    println!(
        "  {label:<12} cpu {core_pct:6.1}% of a core = {per_stream_ms:6.2} ms/s per stream | \
         received {} / sent {} (nominal {:.0}) loss {} behind {} | not streaming {} | \
         dropped {} | written {written_mbps:.1} Mbit/s | sim cpu {:.1}% | rss {:.0} MiB{lag}{}",
        s.received,
        s.sent,
        n as f64 * f64::from(FPS) * s.window_s,
        s.loss(n),
        s.behind(n),
        s.not_streaming,
        s.dropped,
        100.0 * s.sim_cpu_s / s.window_s,
        s.rss_mib,
        if s.sustained(n) {
            ""
        } else {
            " | NOT SUSTAINED"
        },
    );
}

async fn run(options: Options) -> Result<(), BoxError> {
    let clip_path = ensure_clip("rtsp-load", options.resolution)?;
    let clip = Clip::from_annex_b(VideoCodec::H264, &std::fs::read(&clip_path)?, FPS)?;
    let ticks = clock_ticks_per_second();
    let scratch = tempfile::tempdir_in(target_dir()?)?;
    let mut sim = SimChild::start(&clip_path)?;
    println!(
        "rtsp_load: clip {} {}x{} {} fps, {:.2} Mbit/s, GOP {:?}; window {} s; cores {}; \
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
        let mut ours_cpu = Vec::new();
        let mut lost = false;
        for &kind in &options.sinks {
            let step = run_ours(n, kind, &mut sim, options.seconds, ticks, scratch.path()).await?;
            let label = match kind {
                SinkKind::Count => "ours/count",
                SinkKind::Fmp4 => "ours/fmp4",
            };
            print_step(label, n, &step);
            lost |= !step.sustained(n);
            ours_cpu.push((label, step.cpu_s / step.window_s));
        }
        if options.ffmpeg && n <= options.ffmpeg_max {
            let step = run_ffmpeg(n, &mut sim, options.seconds, ticks, scratch.path()).await?;
            print_step("ffmpeg", n, &step);
            let theirs = step.cpu_s / step.window_s;
            for (label, ours) in &ours_cpu {
                println!(
                    "  ratio {label} / ffmpeg cpu = {:.3}",
                    if theirs > 0.0 {
                        ours / theirs
                    } else {
                        f64::NAN
                    }
                );
            }
        }
        if lost && options.ramp {
            println!("not sustained at N = {n}: stopping the ramp");
            break;
        }
    }
    Ok(())
}
