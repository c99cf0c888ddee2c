//! Simulated RTSP cameras: a small RTSP/1.0 server that serves a clip in a loop, paced in real
//! time, over TCP interleaved or UDP. It is for demos, load harnesses and fault injection
//! (stalls, disconnects, clock jumps, streams without key frames, malformed packets); the
//! recording tests' real peer is GStreamer's RTSP server.
//!
//! Every path `/<name>` registered with [`SimServer::add_stream`] is a camera; a default stream
//! may answer any other path, so a load harness can open `/cam/0` … `/cam/299` on one clip.
//!
//! Clips come from raw Annex B streams ([`Clip::from_annex_b`], cut into access units by
//! `vigil-media`) or from the bundled [`DemoClip`]s. The simulator is checked end to end
//! against ffprobe (TCP and UDP) and retina in `tests/rtsp_sim.rs`.

mod clip;
mod packetize;
mod request;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use clip::{AccessUnit, Clip, ClipError, ClipFrame, DemoClip, MAX_RTP_PAYLOAD};

/// A fault the simulated camera injects, for testing how the puller copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// After this long, stop sending media but keep the connection open and answer requests.
    StallAfter(Duration),
    /// After this long, close the connection.
    DisconnectAfter(Duration),
    /// After this long, jump the RTP timestamp by this many 90 kHz ticks (camera clock reset).
    ClockJumpAfter { after: Duration, ticks: i64 },
    /// Never send a key frame (drops key frames from the loop).
    NoKeyFrames,
    /// After this long, send one malformed RTP payload (a fragmentation unit continuing a
    /// fragment that never started), then carry on as normal.
    CorruptAfter(Duration),
    /// After this long, every fragmented NAL unit loses its last fragment (the one with the end
    /// bit): the NAL units arrive truncated, as from a camera whose packetizer cuts them short.
    TruncatedNalsAfter(Duration),
    /// The SDP and the in-band SPS NAL units carry an SPS that cannot be parsed (its body is
    /// garbage).
    BadSps,
}

/// One simulated camera stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub clip: Arc<Clip>,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct Streams {
    by_path: HashMap<String, Stream>,
    default: Option<Stream>,
}

impl Streams {
    fn find(&self, path: &str) -> Option<Stream> {
        let path = path.trim_end_matches('/');
        // Clients SETUP `<base>/track1`; accept both the stream path and its track URL.
        let base = path.strip_suffix("/track1").unwrap_or(path);
        self.by_path
            .get(base)
            .cloned()
            .or_else(|| self.default.clone())
    }
}

/// Counters over every session of one server (read by load harnesses).
#[derive(Debug, Default)]
struct SimStats {
    frames_sent: AtomicU64,
    sessions: AtomicU64,
}

/// A running simulated RTSP server.
#[derive(Debug, Clone)]
pub struct SimServer {
    addr: SocketAddr,
    streams: Arc<RwLock<Streams>>,
    stats: Arc<SimStats>,
    cancel: CancellationToken,
}

impl SimServer {
    /// Binds `addr` (port 0 picks a free port) and serves until [`SimServer::stop`] or until
    /// `cancel` is cancelled.
    pub async fn start(addr: SocketAddr, cancel: CancellationToken) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let server = SimServer {
            addr: listener.local_addr()?,
            streams: Arc::default(),
            stats: Arc::default(),
            cancel,
        };
        let accept = server.clone();
        tokio::spawn(async move { accept.accept_loop(listener).await });
        Ok(server)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `stream` at `path` (e.g. `/cam/1`).
    pub fn add_stream(&self, path: &str, stream: Stream) {
        let path = path.trim_end_matches('/').to_owned();
        self.streams.write().by_path.insert(path, stream);
    }

    /// Serves `stream` at every path not registered otherwise.
    pub fn set_default_stream(&self, stream: Stream) {
        self.streams.write().default = Some(stream);
    }

    /// The URL a client should open for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}{}", self.addr, path)
    }

    /// Access units sent so far, over all sessions (a frame counts once it was handed to the
    /// TCP writer or the UDP socket).
    pub fn frames_sent(&self) -> u64 {
        self.stats.frames_sent.load(Ordering::Relaxed)
    }

    /// RTSP connections accepted so far.
    pub fn sessions(&self) -> u64 {
        self.stats.sessions.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }

    async fn accept_loop(self, listener: TcpListener) {
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let streams = self.streams.clone();
                        let cancel = self.cancel.child_token();
                        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
                        let stats = self.stats.clone();
                        tokio::spawn(session::serve(socket, peer, streams, stats, cancel));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "sim RTSP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}
