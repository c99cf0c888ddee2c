//! The tokio driver of [`SimGroup`]s: one task per group (one SIP UDP socket for many devices,
//! or one TCP connection per device), one task per media stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use vigil_gb28181::manscdp::CatalogItem;
use vigil_gb28181::sip::{parse_datagram, Frame, Peer, StreamFramer, Transport};
use vigil_media::rtp::rfc4571_frame;

use super::clip::{ClipPacketizer, GbClip};
use super::device::{Action, MediaDest, MediaFault, MediaJob, SimGroup, SimStats};

/// Commands to a group task.
#[derive(Debug)]
pub(crate) enum GroupCmd {
    Notify {
        device: usize,
        items: Vec<CatalogItem>,
    },
    Shutdown {
        unregister: bool,
        done: oneshot::Sender<()>,
    },
}

/// What a group task needs besides the group.
pub(crate) struct GroupRuntime {
    pub clip: Option<Arc<GbClip>>,
    pub media_udp: Arc<UdpSocket>,
    pub listeners: HashMap<usize, Arc<TcpListener>>,
    pub fault: MediaFault,
    pub stats: Arc<SimStats>,
    pub cancel: CancellationToken,
    /// When each device sends its first REGISTER.
    pub starts: Vec<(Instant, usize)>,
}

enum Sip {
    Udp(Arc<UdpSocket>),
    Tcp {
        server: SocketAddr,
        local: SocketAddr,
        writer: Option<OwnedWriteHalf>,
        incoming: mpsc::Receiver<Bytes>,
        incoming_tx: mpsc::Sender<Bytes>,
    },
}

struct Driver {
    group: SimGroup,
    rt: GroupRuntime,
    streams: HashMap<String, CancellationToken>,
    sip: Sip,
}

impl Driver {
    async fn send(&mut self, bytes: Bytes, to: SocketAddr) {
        match &mut self.sip {
            Sip::Udp(s) => {
                if let Err(e) = s.send_to(&bytes, to).await {
                    debug!(%to, error = %e, "sim SIP send failed");
                }
            }
            Sip::Tcp { writer, .. } => {
                if let Some(w) = writer.as_mut() {
                    if let Err(e) = w.write_all(&bytes).await {
                        debug!(error = %e, "sim SIP TCP write failed");
                        *writer = None;
                    }
                }
            }
        }
    }

    async fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send(t) => self.send(t.bytes, t.peer.addr).await,
                Action::StartMedia(job) => self.start_media(job),
                Action::StopMedia(call_id) => {
                    if let Some(c) = self.streams.remove(&call_id) {
                        c.cancel();
                    }
                }
            }
        }
    }

    fn start_media(&mut self, job: MediaJob) {
        let Some(clip) = self.rt.clip.clone() else {
            warn!(channel = %job.channel, "INVITE answered but the simulator has no clip");
            return;
        };
        let cancel = self.rt.cancel.child_token();
        if let Some(old) = self.streams.insert(job.call_id.clone(), cancel.clone()) {
            old.cancel();
        }
        let listener = match job.dest {
            MediaDest::TcpAccept(_) => self.rt.listeners.get(&job.device).cloned(),
            _ => None,
        };
        tokio::spawn(stream(
            job,
            clip,
            self.rt.media_udp.clone(),
            listener,
            self.rt.fault,
            self.rt.stats.clone(),
            cancel,
        ));
    }

    /// (Re)connects the SIP TCP connection.
    async fn connect_tcp(&mut self) {
        let Sip::Tcp {
            server,
            local,
            writer,
            incoming_tx,
            ..
        } = &mut self.sip
        else {
            return;
        };
        let sock = match tokio::net::TcpSocket::new_v4() {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "sim TCP socket");
                return;
            }
        };
        let _ = sock.set_reuseaddr(true);
        if let Err(e) = sock.bind(*local) {
            warn!(error = %e, %local, "sim TCP bind");
            return;
        }
        match sock.connect(*server).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let (mut rd, wr) = stream.into_split();
                *writer = Some(wr);
                let tx = incoming_tx.clone();
                let cancel = self.rt.cancel.clone();
                tokio::spawn(async move {
                    let mut framer = StreamFramer::new();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = tokio::select! {
                            _ = cancel.cancelled() => return,
                            r = rd.read(&mut buf) => match r {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            },
                        };
                        framer.push(&buf[..n]);
                        while let Some(f) = framer.next_frame() {
                            if let Ok(Frame::Message(m)) = f {
                                if tx.send(m.to_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
            Err(e) => warn!(error = %e, %server, "sim cannot connect to the SIP server"),
        }
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<GroupCmd>) {
        if matches!(self.sip, Sip::Tcp { .. }) {
            self.connect_tcp().await;
        }
        let mut buf = vec![0u8; 65_536];
        let mut starts = std::mem::take(&mut self.rt.starts);
        starts.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        let transport = match self.sip {
            Sip::Udp(_) => Transport::Udp,
            Sip::Tcp { .. } => Transport::Tcp,
        };
        loop {
            let next_start = starts.last().map(|(t, _)| *t);
            let deadline = [self.group.next_deadline(), next_start]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            let received: Option<(Bytes, SocketAddr)> = match &mut self.sip {
                Sip::Udp(s) => {
                    let s = s.clone();
                    tokio::select! {
                        _ = self.rt.cancel.cancelled() => return,
                        c = cmds.recv() => {
                            match c {
                                Some(c) => { if self.command(c).await { return; } }
                                None => return,
                            }
                            None
                        }
                        r = s.recv_from(&mut buf) => match r {
                            Ok((n, from)) => Some((Bytes::copy_from_slice(&buf[..n]), from)),
                            Err(_) => None,
                        },
                        _ = sleep => None,
                    }
                }
                Sip::Tcp {
                    incoming, server, ..
                } => {
                    let server = *server;
                    tokio::select! {
                        _ = self.rt.cancel.cancelled() => return,
                        c = cmds.recv() => {
                            match c {
                                Some(c) => { if self.command(c).await { return; } }
                                None => return,
                            }
                            None
                        }
                        m = incoming.recv() => m.map(|b| (b, server)),
                        _ = sleep => None,
                    }
                }
            };
            let now = Instant::now();
            if let Some((bytes, from)) = received {
                if let Ok(msg) = parse_datagram(bytes) {
                    let peer = Peer {
                        transport,
                        addr: from,
                    };
                    let actions = self.group.on_message(msg, peer, now);
                    self.act(actions).await;
                }
            }
            while starts.last().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, i)) = starts.pop() {
                    let actions = self.group.start_device(i, now);
                    self.act(actions).await;
                }
            }
            if self.group.next_deadline().is_some_and(|d| d <= now) {
                let actions = self.group.handle_timeout(now);
                self.act(actions).await;
            }
            if let Sip::Tcp { writer: None, .. } = self.sip {
                // The server closed the connection: reconnect; the devices re-register when
                // their keepalives fail.
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.connect_tcp().await;
            }
        }
    }

    /// Returns true when the task must end.
    async fn command(&mut self, c: GroupCmd) -> bool {
        match c {
            GroupCmd::Notify { device, items } => {
                let actions = self.group.notify_catalog(device, &items, Instant::now());
                self.act(actions).await;
                false
            }
            GroupCmd::Shutdown { unregister, done } => {
                for s in self.streams.values() {
                    s.cancel();
                }
                if unregister {
                    let now = Instant::now();
                    for i in 0..self.group.len() {
                        if self.group.is_up(i) {
                            let actions = self.group.stop_device(i, now);
                            self.act(actions).await;
                        }
                    }
                }
                let _ = done.send(());
                true
            }
        }
    }
}

/// Runs a UDP group until cancelled.
pub(crate) async fn run_udp_group(
    group: SimGroup,
    sock: Arc<UdpSocket>,
    rt: GroupRuntime,
    cmds: mpsc::Receiver<GroupCmd>,
) {
    Driver {
        group,
        rt,
        streams: HashMap::new(),
        sip: Sip::Udp(sock),
    }
    .run(cmds)
    .await
}

/// Runs a one-device TCP group until cancelled.
pub(crate) async fn run_tcp_group(
    group: SimGroup,
    server: SocketAddr,
    local: SocketAddr,
    rt: GroupRuntime,
    cmds: mpsc::Receiver<GroupCmd>,
) {
    let (incoming_tx, incoming) = mpsc::channel(1024);
    Driver {
        group,
        rt,
        streams: HashMap::new(),
        sip: Sip::Tcp {
            server,
            local,
            writer: None,
            incoming,
            incoming_tx,
        },
    }
    .run(cmds)
    .await
}

/// Streams the clip for one session until cancelled.
async fn stream(
    job: MediaJob,
    clip: Arc<GbClip>,
    udp: Arc<UdpSocket>,
    listener: Option<Arc<TcpListener>>,
    fault: MediaFault,
    stats: Arc<SimStats>,
    cancel: CancellationToken,
) {
    let ssrc = match fault {
        MediaFault::WrongSsrc => job.ssrc ^ 0x00ff_00ff,
        _ => job.ssrc,
    };
    let mut tcp: Option<TcpStream> = match job.dest {
        MediaDest::Udp(_) => None,
        MediaDest::TcpConnect(a) => {
            match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(a)).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    warn!(channel = %job.channel, dest = %a, "sim cannot connect for TCP media");
                    return;
                }
            }
        }
        MediaDest::TcpAccept(_) => {
            let Some(l) = listener else {
                return;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), l.accept()) => match r {
                    Ok(Ok((s, _))) => Some(s),
                    _ => {
                        warn!(channel = %job.channel, "the server did not connect for TCP media");
                        return;
                    }
                },
            }
        }
    };
    stats.streams.fetch_add(1, Ordering::Relaxed);
    let first_seq = (job.ssrc as u16).wrapping_mul(31);
    let mut packetizer = ClipPacketizer::new(&clip, ssrc, first_seq);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(clip.fps)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut noise: u32 = job.ssrc | 1;
    let mut pkts = Vec::new();
    let mut frame_no: u64 = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let MediaFault::StopAfter(d) = fault {
            if started.elapsed() >= d {
                // Keep the socket, send nothing: a stalled camera.
                cancel.cancelled().await;
                break;
            }
        }
        pkts.clear();
        packetizer.next_frame(&mut pkts);
        frame_no += 1;
        let mut failed = false;
        for (i, p) in pkts.iter().enumerate() {
            let p = if fault == MediaFault::BrokenStartCodes && i == 0 && frame_no % 2 == 0 {
                // The frame's pack header start code, right after the RTP header.
                let mut b = BytesMut::from(&p[..]);
                if b.get(12..15) == Some(&[0, 0, 1][..]) {
                    b[14] = 2;
                }
                b.freeze()
            } else if fault == MediaFault::GarbagePayload {
                let mut b = BytesMut::from(&p[..]);
                for x in b.iter_mut().skip(12) {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    *x = noise as u8;
                }
                b.freeze()
            } else {
                p.clone()
            };
            let r = match (&mut tcp, job.dest) {
                (Some(s), _) => match rfc4571_frame(&p) {
                    Some(f) => s.write_all(&f).await.map(|_| ()),
                    None => Ok(()),
                },
                (None, MediaDest::Udp(to)) => udp.send_to(&p, to).await.map(|_| ()),
                (None, _) => Ok(()),
            };
            if r.is_err() {
                failed = true;
                break;
            }
            stats.rtp_packets.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            debug!(channel = %job.channel, "sim media send failed; stream ends");
            break;
        }
    }
    stats.streams.fetch_sub(1, Ordering::Relaxed);
}
