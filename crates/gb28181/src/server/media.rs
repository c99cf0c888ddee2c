//! One task per live media session: receive RTP (UDP, or TCP with RFC 4571 / interleaved
//! framing, listening or connecting), filter by SSRC, reorder, account for loss, demux MPEG-PS
//! and hand [`SourceEvent`]s to the channel's sink.
//!
//! The task never blocks on the sink (a full queue drops the frame and counts it), ends with a
//! reason when no RTP arrives for `no_rtp_timeout`, when the packets are not RTP/PS at all, or
//! when told to stop, and sends `SourceEvent::Interrupted` at the end if it delivered any
//! frame. [`run_session`] is public so that tests can drive a session directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use vigil_core::time::Timestamp;
use vigil_media::ps::{PsDemuxer, PsEvent};
use vigil_media::rtp::{
    ReceiveError, ReceiverConfig, Reordered, Rfc4571Decoder, RtpReceiver, TcpFraming,
};
use vigil_media::VideoParameters;
use vigil_store::SourceEvent;

use super::metrics::{add, inc, ChannelCounters, LastFrame, Metrics};
use crate::play::ChannelKey;
use crate::quirks::Quirk;

/// Where the media comes from.
#[derive(Debug)]
pub enum MediaSocket {
    /// A bound UDP socket; the device sends to it.
    Udp(UdpSocket),
    /// A bound TCP listener; the device connects to it (our offer said `a=setup:passive`).
    TcpListen(TcpListener),
    /// The device listens at this address; we connect (our offer said `a=setup:active`).
    TcpConnect(SocketAddr),
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Channel (for logs).
    pub key: ChannelKey,
    /// RTP SSRC to accept.
    pub ssrc: u32,
    /// End the session when no RTP arrived for this long (also bounds the TCP accept/connect).
    pub no_rtp_timeout: Duration,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// In words, naming the channel.
    pub reason: String,
    /// True when the media failed (re-INVITE); false when we were told to stop.
    pub failure: bool,
    /// Frames delivered to the sink.
    pub frames: u64,
}

/// What a session notices on the way (for the device's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionNote {
    /// The first frame went to the sink.
    FirstFrame,
    /// The stream needed a quirk (reported once per session and quirk).
    Quirk(Quirk),
}

/// One in-order RTP payload of the session, for relays (cascade: an upper platform watching
/// the channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpChunk {
    /// The RTP payload (PS bytes as the device sent them).
    pub payload: Bytes,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP marker bit.
    pub marker: bool,
}

/// Attaches or detaches a relay from a running session.
#[derive(Debug)]
pub enum RelayCmd {
    /// Copy every in-order payload to `tx` (dropped when its queue is full).
    Add {
        /// Relay identifier.
        id: u64,
        /// Where the copies go.
        tx: mpsc::Sender<RtpChunk>,
    },
    /// Stop copying to relay `id`.
    Remove {
        /// Relay identifier.
        id: u64,
    },
}

/// How the owner talks to a running session.
#[derive(Debug)]
pub struct SessionControl {
    /// Fires (with the reason) to end the session; dropping it ends it too.
    pub stop: oneshot::Receiver<String>,
    /// Hears about the first frame and quirks.
    pub notes: mpsc::UnboundedSender<SessionNote>,
    /// Relay attachments (a closed channel just means no more changes).
    pub relays: mpsc::UnboundedReceiver<RelayCmd>,
}

impl SessionControl {
    /// Controls for a session nobody relays (tests): returns the control plus the stop sender
    /// and the notes receiver.
    pub fn new() -> (
        SessionControl,
        oneshot::Sender<String>,
        mpsc::UnboundedReceiver<SessionNote>,
    ) {
        let (stop_tx, stop) = oneshot::channel();
        let (notes, notes_rx) = mpsc::unbounded_channel();
        let (_relay_tx, relays) = mpsc::unbounded_channel();
        (
            SessionControl {
                stop,
                notes,
                relays,
            },
            stop_tx,
            notes_rx,
        )
    }
}

/// What a media task reports to the core.
#[derive(Debug)]
pub(crate) enum MediaReport {
    /// The first frame went to the sink.
    Flowing { key: ChannelKey, call_id: String },
    /// The stream needed a quirk.
    Quirk { key: ChannelKey, quirk: Quirk },
    /// The task ended.
    Ended {
        key: ChannelKey,
        call_id: String,
        end: SessionEnd,
    },
}

/// The shared counters a session updates.
#[derive(Debug, Clone)]
pub struct SessionCounters {
    /// Server-wide.
    pub metrics: Arc<Metrics>,
    /// This channel's.
    pub channel: Arc<ChannelCounters>,
    /// This channel's last frame time.
    pub last_frame: Arc<LastFrame>,
}

impl SessionCounters {
    /// Fresh counters (tests).
    pub fn new() -> Self {
        SessionCounters {
            metrics: Arc::new(Metrics::default()),
            channel: Arc::new(ChannelCounters::default()),
            last_frame: Arc::new(LastFrame::default()),
        }
    }
}

impl Default for SessionCounters {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ts() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// RTP → PS → frames for one session.
struct Pipeline {
    key: ChannelKey,
    rtp: RtpReceiver,
    /// Whether the PES layout quirk was reported.
    pes_quirk_reported: bool,
    demux: PsDemuxer,
    params: Option<Arc<VideoParameters>>,
    last_ts: Option<u32>,
    sink: mpsc::Sender<SourceEvent>,
    counters: SessionCounters,
    frames: u64,
    rejected_logged: u64,
    corrupt_logged: u64,
    notes: mpsc::UnboundedSender<SessionNote>,
    first_frame_sent: bool,
    relays: Vec<(u64, mpsc::Sender<RtpChunk>)>,
    last_delivery: Instant,
    last_receive: Instant,
}

/// Why the pipeline wants the session to end.
struct Fatal(String);

impl Pipeline {
    fn new(
        cfg: &SessionConfig,
        sink: mpsc::Sender<SourceEvent>,
        counters: SessionCounters,
        notes: mpsc::UnboundedSender<SessionNote>,
    ) -> Self {
        let now = Instant::now();
        Pipeline {
            key: cfg.key,
            rtp: RtpReceiver::new(ReceiverConfig::gb28181(cfg.ssrc)),
            pes_quirk_reported: false,
            demux: PsDemuxer::default(),
            params: None,
            last_ts: None,
            sink,
            counters,
            frames: 0,
            rejected_logged: 0,
            corrupt_logged: 0,
            notes,
            first_frame_sent: false,
            relays: Vec::new(),
            last_delivery: now,
            last_receive: now,
        }
    }

    /// One datagram / TCP frame. `Ok(true)` when an RTP packet was accepted.
    fn packet(&mut self, data: Bytes) -> Result<bool, Fatal> {
        let c = &self.counters;
        match self.rtp.receive(data) {
            Ok(()) => {}
            Err(ReceiveError::TooManyRejected { count, last, .. }) => {
                return Err(Fatal(format!(
                    "channel {}: {count} consecutive RTP packets rejected, last: {last}",
                    self.key
                )));
            }
            Err(e) => {
                match &e {
                    ReceiveError::SsrcMismatch { .. } => {
                        inc(&c.metrics.rtp_ssrc_mismatches);
                        inc(&c.channel.rtp_ssrc_mismatches);
                    }
                    _ => {
                        inc(&c.metrics.rtp_invalid);
                        inc(&c.channel.rtp_invalid);
                    }
                }
                // Log the first rejections and then every 1000th: a stray stream can send
                // thousands per second.
                if self.rejected_logged < 5 || self.rejected_logged % 1000 == 0 {
                    warn!(channel = %self.key, error = %e, "RTP packet dropped");
                }
                self.rejected_logged += 1;
                return Ok(false);
            }
        }
        self.last_receive = Instant::now();
        self.drain_rtp()?;
        Ok(true)
    }

    fn drain_rtp(&mut self) -> Result<(), Fatal> {
        while let Some(item) = self.rtp.pop() {
            self.last_delivery = Instant::now();
            match item {
                Reordered::Lost { count, .. } => {
                    add(&self.counters.metrics.rtp_lost, u64::from(count));
                    add(&self.counters.channel.rtp_lost, u64::from(count));
                    self.demux.discontinuity();
                    self.last_ts = None;
                }
                Reordered::Packet(p) => {
                    let c = &self.counters;
                    inc(&c.metrics.rtp_packets);
                    inc(&c.channel.rtp_packets);
                    add(&c.metrics.rtp_bytes, p.payload.len() as u64);
                    add(&c.channel.rtp_bytes, p.payload.len() as u64);
                    // A new RTP timestamp means the previous access unit ended.
                    if self.last_ts.is_some_and(|t| t != p.header.timestamp) {
                        self.demux.end_of_access_unit();
                    }
                    self.last_ts = Some(p.header.timestamp);
                    if !self.relays.is_empty() {
                        let chunk = RtpChunk {
                            payload: p.payload.clone(),
                            timestamp: p.header.timestamp,
                            marker: p.header.marker,
                        };
                        // A slow or gone relay loses packets, never the recording.
                        self.relays.retain(|(_, tx)| {
                            !matches!(
                                tx.try_send(chunk.clone()),
                                Err(mpsc::error::TrySendError::Closed(_))
                            )
                        });
                    }
                    self.push_ps(&p.payload)?;
                    if !self.pes_quirk_reported && self.demux.stats().pes_without_marker_byte > 0 {
                        self.pes_quirk_reported = true;
                        let q = Quirk::PesHeaderWithoutMarkerByte;
                        info!(channel = %self.key, quirk = q.name(), "device quirk in PS: PES headers without the marker byte");
                        let _ = self.notes.send(SessionNote::Quirk(q));
                    }
                    if p.header.marker {
                        self.demux.end_of_access_unit();
                    }
                    self.drain_demux()?;
                }
            }
        }
        Ok(())
    }

    fn push_ps(&mut self, ps: &[u8]) -> Result<(), Fatal> {
        if ps.is_empty() {
            return Ok(());
        }
        self.demux.push(ps).map_err(|e| {
            Fatal(format!(
                "channel {}: not an MPEG program stream: {e}",
                self.key
            ))
        })
    }

    fn drain_demux(&mut self) -> Result<(), Fatal> {
        while let Some(ev) = self.demux.next_event() {
            match ev {
                PsEvent::Parameters(p) => {
                    info!(
                        channel = %self.key,
                        codec = p.rfc6381_codec(),
                        width = p.width(),
                        height = p.height(),
                        "codec parameters"
                    );
                    self.params = Some(Arc::new(p));
                }
                PsEvent::Video(frame) => {
                    let c = &self.counters;
                    let Some(params) = self.params.clone() else {
                        inc(&c.metrics.frames_before_parameters);
                        inc(&c.channel.frames_before_parameters);
                        continue;
                    };
                    let at = now_ts();
                    match self.sink.try_send(SourceEvent::Frame {
                        params,
                        frame,
                        received_at: at,
                    }) {
                        Ok(()) => {
                            inc(&c.metrics.frames);
                            inc(&c.channel.frames);
                            c.last_frame.set(at.as_millis());
                            self.frames += 1;
                            if !self.first_frame_sent {
                                self.first_frame_sent = true;
                                let _ = self.notes.send(SessionNote::FirstFrame);
                            }
                        }
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            inc(&c.metrics.frames_dropped);
                            inc(&c.channel.frames_dropped);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            return Err(Fatal(format!(
                                "channel {}: the recording sink is closed",
                                self.key
                            )));
                        }
                    }
                }
                PsEvent::Corrupt(e) => {
                    inc(&self.counters.metrics.ps_corrupt);
                    inc(&self.counters.channel.ps_corrupt);
                    if self.corrupt_logged < 5 || self.corrupt_logged % 1000 == 0 {
                        warn!(channel = %self.key, error = %e, "PS data dropped");
                    }
                    self.corrupt_logged += 1;
                }
                PsEvent::BadParameters(e) => {
                    warn!(channel = %self.key, error = %e, "unusable codec parameters");
                }
                PsEvent::Unsupported {
                    stream_id,
                    stream_type,
                } => {
                    warn!(channel = %self.key, stream_id, stream_type = stream_type.0, "unsupported elementary stream skipped");
                }
                PsEvent::Audio(_) => {}
            }
        }
        Ok(())
    }

    /// Gives up on a reordering gap that did not fill while packets kept arriving.
    fn tick(&mut self) -> Result<(), Fatal> {
        if self.last_receive > self.last_delivery
            && self.last_receive.duration_since(self.last_delivery) > Duration::from_millis(500)
        {
            self.rtp.skip_gap();
            self.drain_rtp()?;
        }
        Ok(())
    }

    async fn finish(mut self, reason: String, failure: bool) -> SessionEnd {
        self.rtp.flush();
        let _ = self.drain_rtp();
        self.demux.flush();
        let _ = self.drain_demux();
        if self.frames > 0 {
            inc(&self.counters.metrics.interruptions);
            inc(&self.counters.channel.interruptions);
            // The end of a recording interval must not be lost to a momentarily full queue.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                self.sink.send(SourceEvent::Interrupted {
                    at: now_ts(),
                    reason: reason.clone(),
                }),
            )
            .await;
        }
        SessionEnd {
            reason,
            failure,
            frames: self.frames,
        }
    }
}

enum Step {
    Data(Bytes),
    Relay(Option<RelayCmd>),
    Closed(String),
    Stop(String),
    Tick,
}

/// Runs one session until the media stops, fails or the control's `stop` fires (with the
/// reason, or when dropped).
pub async fn run_session(
    socket: MediaSocket,
    cfg: SessionConfig,
    sink: mpsc::Sender<SourceEvent>,
    counters: SessionCounters,
    control: SessionControl,
) -> SessionEnd {
    let SessionControl {
        mut stop,
        notes,
        mut relays,
    } = control;
    let mut relays_open = true;
    let mut p = Pipeline::new(&cfg, sink, counters, notes.clone());
    let key = cfg.key;
    let timeout = cfg.no_rtp_timeout;
    let stopped = |r: Result<String, oneshot::error::RecvError>| {
        r.unwrap_or_else(|_| "the server stopped".to_owned())
    };
    // TCP: get a connection first.
    let mut tcp: Option<TcpStream> = None;
    let mut udp: Option<UdpSocket> = None;
    match socket {
        MediaSocket::Udp(s) => udp = Some(s),
        MediaSocket::TcpListen(l) => {
            tokio::select! {
                r = &mut stop => return p.finish(stopped(r), false).await,
                r = tokio::time::timeout(timeout, l.accept()) => match r {
                    Ok(Ok((s, from))) => {
                        debug!(channel = %key, %from, "device connected for TCP media");
                        tcp = Some(s);
                    }
                    Ok(Err(e)) => return p.finish(format!("channel {key}: TCP media accept failed: {e}"), true).await,
                    Err(_) => return p.finish(format!("channel {key}: the device did not connect for TCP media within {timeout:?}"), true).await,
                }
            }
        }
        MediaSocket::TcpConnect(addr) => {
            tokio::select! {
                r = &mut stop => return p.finish(stopped(r), false).await,
                r = tokio::time::timeout(timeout, TcpStream::connect(addr)) => match r {
                    Ok(Ok(s)) => tcp = Some(s),
                    Ok(Err(e)) => return p.finish(format!("channel {key}: cannot connect to the device's TCP media port {addr}: {e}"), true).await,
                    Err(_) => return p.finish(format!("channel {key}: connecting to {addr} for TCP media timed out"), true).await,
                }
            }
        }
    }
    let mut framer = Rfc4571Decoder::new();
    let mut quirk_logged = false;
    let mut buf = vec![0u8; 65_536];
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let step = if let Some(s) = udp.as_ref() {
            tokio::select! {
                r = &mut stop => Step::Stop(stopped(r)),
                c = relays.recv(), if relays_open => Step::Relay(c),
                _ = tokio::time::sleep_until(deadline) => Step::Closed(format!("channel {key}: no RTP for {timeout:?}")),
                _ = tick.tick() => Step::Tick,
                r = s.recv_from(&mut buf) => match r {
                    Ok((n, _)) => Step::Data(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) => {
                        debug!(channel = %key, error = %e, "RTP UDP receive error");
                        Step::Tick
                    }
                },
            }
        } else if let Some(s) = tcp.as_mut() {
            tokio::select! {
                r = &mut stop => Step::Stop(stopped(r)),
                c = relays.recv(), if relays_open => Step::Relay(c),
                _ = tokio::time::sleep_until(deadline) => Step::Closed(format!("channel {key}: no RTP for {timeout:?}")),
                _ = tick.tick() => Step::Tick,
                r = s.read(&mut buf) => match r {
                    Ok(0) => Step::Closed(format!("channel {key}: the device closed the TCP media connection")),
                    Ok(n) => Step::Data(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) => Step::Closed(format!("channel {key}: TCP media read failed: {e}")),
                },
            }
        } else {
            Step::Closed(format!("channel {key}: no media socket"))
        };
        match step {
            Step::Stop(reason) => return p.finish(reason, false).await,
            Step::Closed(reason) => return p.finish(reason, true).await,
            Step::Relay(None) => relays_open = false,
            Step::Relay(Some(RelayCmd::Add { id, tx })) => {
                p.relays.retain(|(i, _)| *i != id);
                p.relays.push((id, tx));
            }
            Step::Relay(Some(RelayCmd::Remove { id })) => p.relays.retain(|(i, _)| *i != id),
            Step::Tick => {
                if let Err(Fatal(r)) = p.tick() {
                    return p.finish(r, true).await;
                }
            }
            Step::Data(data) => {
                let result = if udp.is_some() {
                    p.packet(data).map(usize::from)
                } else {
                    framer.push(&data);
                    let mut accepted = 0usize;
                    let mut fatal = None;
                    while let Some(pkt) = framer.next_packet() {
                        match p.packet(pkt) {
                            Ok(true) => accepted += 1,
                            Ok(false) => {}
                            Err(e) => {
                                fatal = Some(e);
                                break;
                            }
                        }
                    }
                    if !quirk_logged && framer.framing() == Some(TcpFraming::Interleaved) {
                        let q = Quirk::RtpOverTcpDollarFraming;
                        info!(channel = %key, quirk = q.name(), "device quirk on TCP media");
                        let _ = notes.send(SessionNote::Quirk(q));
                        quirk_logged = true;
                    }
                    match fatal {
                        Some(e) => Err(e),
                        None => Ok(accepted),
                    }
                };
                match result {
                    Ok(n) if n > 0 => deadline = tokio::time::Instant::now() + timeout,
                    Ok(_) => {}
                    Err(Fatal(r)) => return p.finish(r, true).await,
                }
            }
        }
    }
}
