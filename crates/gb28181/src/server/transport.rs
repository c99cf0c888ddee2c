//! SIP transports: the UDP socket, the TCP listener and one task per TCP connection. They parse
//! and frame; the core task decides.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::metrics::{inc, Metrics};
use crate::sip::{parse_datagram, Frame, FrameError, Message, SipError, StreamFramer};

/// What the transports hand the core.
#[derive(Debug)]
pub(crate) enum Input {
    /// A UDP datagram, parsed.
    Udp {
        msg: Result<Message, SipError>,
        from: SocketAddr,
    },
    /// A message framed from a TCP connection.
    Tcp { msg: Message, from: SocketAddr },
    /// Bytes a TCP connection had to skip.
    TcpGarbage { from: SocketAddr, error: FrameError },
    /// A TCP connection opened; `tx` writes to it.
    TcpOpened {
        addr: SocketAddr,
        tx: mpsc::Sender<Bytes>,
    },
    /// A TCP connection closed.
    TcpClosed { addr: SocketAddr, reason: String },
    /// A media task's report.
    Media(super::media::MediaReport),
}

/// Receives datagrams until cancelled, parsing each in this task (off the core task).
pub(crate) async fn udp_receiver(
    sock: Arc<UdpSocket>,
    tx: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => r,
        };
        match r {
            Ok((n, from)) => {
                inc(&metrics.udp_datagrams_in);
                let msg = parse_datagram(Bytes::copy_from_slice(&buf[..n]));
                if tx.send(Input::Udp { msg, from }).await.is_err() {
                    return;
                }
            }
            // ICMP port unreachable from an earlier send shows up here on some platforms;
            // the socket is still fine.
            Err(e) => debug!(error = %e, "SIP UDP receive error"),
        }
    }
}

/// Sends datagrams the core could not send without blocking.
pub(crate) async fn udp_writer(
    sock: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<(Bytes, SocketAddr)>,
    metrics: Arc<Metrics>,
) {
    while let Some((bytes, to)) = rx.recv().await {
        if let Err(e) = sock.send_to(&bytes, to).await {
            inc(&metrics.send_failures);
            debug!(%to, error = %e, "SIP UDP send failed");
        }
    }
}

/// Accepts TCP connections until cancelled.
pub(crate) async fn tcp_listener(
    listener: TcpListener,
    tx: mpsc::Sender<Input>,
    metrics: Arc<Metrics>,
    max_connections: usize,
    cancel: CancellationToken,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match r {
            Ok((stream, addr)) => {
                if open.load(Ordering::Relaxed) >= max_connections {
                    warn!(%addr, max_connections, "SIP TCP connection refused: too many connections");
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                open.fetch_add(1, Ordering::Relaxed);
                let open = open.clone();
                let tx = tx.clone();
                let metrics = metrics.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let reason = tcp_connection(stream, addr, &tx, &metrics, cancel).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send(Input::TcpClosed { addr, reason }).await;
                });
            }
            Err(e) => {
                warn!(error = %e, "SIP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// One TCP connection: frames messages, answers CRLF pings, writes what the core sends.
/// Returns why it closed.
async fn tcp_connection(
    stream: TcpStream,
    addr: SocketAddr,
    tx: &mpsc::Sender<Input>,
    metrics: &Metrics,
    cancel: CancellationToken,
) -> String {
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(1024);
    if tx.send(Input::TcpOpened { addr, tx: wtx }).await.is_err() {
        return "server stopped".into();
    }
    let (mut rd, mut wr) = stream.into_split();
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return "server stopped".into(),
            out = wrx.recv() => match out {
                Some(bytes) => {
                    if let Err(e) = wr.write_all(&bytes).await {
                        return format!("write failed: {e}");
                    }
                }
                None => return "closed by the server".into(),
            },
            r = rd.read(&mut buf) => match r {
                Ok(0) => return "closed by the peer".into(),
                Ok(n) => {
                    framer.push(&buf[..n]);
                    while let Some(f) = framer.next_frame() {
                        match f {
                            Ok(Frame::Message(msg)) => {
                                inc(&metrics.tcp_messages_in);
                                if tx.send(Input::Tcp { msg, from: addr }).await.is_err() {
                                    return "server stopped".into();
                                }
                            }
                            Ok(Frame::Ping) => {
                                if let Err(e) = wr.write_all(b"\r\n").await {
                                    return format!("write failed: {e}");
                                }
                            }
                            Err(error) => {
                                inc(&metrics.sip_parse_errors);
                                if tx.send(Input::TcpGarbage { from: addr, error }).await.is_err() {
                                    return "server stopped".into();
                                }
                            }
                        }
                    }
                }
                Err(e) => return format!("read failed: {e}"),
            },
        }
    }
}
