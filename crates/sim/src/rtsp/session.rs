//! One RTSP connection: answers requests and, after PLAY, streams the clip.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::request::{self, Request};
use vigil_media::VideoCodec;

use super::{Clip, Fault, SimStats, Stream, Streams};

/// Frames queued towards a slow TCP client before the streamer waits for it.
const WRITE_QUEUE: usize = 64;

#[derive(Debug, Clone)]
enum Transport {
    Interleaved {
        rtp_channel: u8,
    },
    Udp {
        client_rtp: SocketAddr,
        sockets: Arc<UdpPair>,
    },
}

/// The server's RTP and RTCP sockets of a UDP session, bound at SETUP so that the
/// `server_port` it announces is where the media really comes from: clients such as retina
/// `connect()` their sockets to that port and drop datagrams from anywhere else.
#[derive(Debug)]
struct UdpPair {
    rtp: UdpSocket,
    /// Never read: it exists so that the client's RTCP (receiver reports, NAT hole punching)
    /// is not answered with ICMP port-unreachable, which would fail the client's socket.
    _rtcp: UdpSocket,
}

impl UdpPair {
    /// Binds an RTP socket and an RTCP socket on the next port up (RFC 3550 convention that
    /// clients assume).
    async fn bind(ip: std::net::IpAddr) -> std::io::Result<Self> {
        let mut last_error = None;
        for _ in 0..16 {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let port = rtp.local_addr()?.port();
            let Some(next) = port.checked_add(1) else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(ip, next)).await {
                Ok(rtcp) => return Ok(UdpPair { rtp, _rtcp: rtcp }),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free UDP port pair")))
    }

    fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map_or(0, |a| a.port())
    }
}

struct Session {
    id: String,
    peer: SocketAddr,
    local: SocketAddr,
    streams: Arc<RwLock<Streams>>,
    stats: Arc<SimStats>,
    out: mpsc::Sender<Bytes>,
    stream: Option<Stream>,
    transport: Option<Transport>,
    ssrc: u32,
    first_seq: u16,
    first_ts: u32,
    playing: Option<CancellationToken>,
    cancel: CancellationToken,
}

pub(super) async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    streams: Arc<RwLock<Streams>>,
    stats: Arc<SimStats>,
    cancel: CancellationToken,
) {
    let local = match socket.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            tracing::debug!(%peer, %error, "sim RTSP connection lost before it started");
            return;
        }
    };
    let (mut reader, mut writer) = socket.into_split();
    let (out, mut queue) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer_cancel = cancel.clone();
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        writer_cancel.cancel();
    });

    let mut session = Session {
        id: format!("{:016x}", random_u64()),
        peer,
        local,
        streams,
        stats,
        out,
        stream: None,
        transport: None,
        ssrc: random_u64() as u32,
        first_seq: random_u64() as u16,
        first_ts: random_u64() as u32,
        playing: None,
        cancel: cancel.clone(),
    };
    let mut buf = BytesMut::with_capacity(4096);
    'connection: loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
        loop {
            // Interleaved data from the client (RTCP receiver reports) is skipped.
            if buf.first() == Some(&b'$') {
                if buf.len() < 4 {
                    break;
                }
                let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() < len {
                    break;
                }
                let _ = buf.split_to(len);
                continue;
            }
            match request::parse(&buf) {
                Ok(None) => break,
                Ok(Some((req, used))) => {
                    let _ = buf.split_to(used);
                    let close = session.handle(&req).await;
                    if close {
                        break 'connection;
                    }
                }
                Err(error) => {
                    tracing::debug!(%peer, %error, "sim RTSP: bad request, closing");
                    let _ = session
                        .out
                        .send(Bytes::from("RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n"))
                        .await;
                    break 'connection;
                }
            }
        }
    }
    if let Some(playing) = session.playing.take() {
        playing.cancel();
    }
    drop(session);
    let _ = write_task.await;
}

impl Session {
    /// Answers one request. Returns true when the connection should close.
    async fn handle(&mut self, req: &Request) -> bool {
        let cseq = req.cseq().to_owned();
        let (status, headers, body, close) = match req.method.as_str() {
            "OPTIONS" => (
                "200 OK",
                "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n"
                    .to_owned(),
                String::new(),
                false,
            ),
            "DESCRIBE" => match self.streams.read().find(req.path()) {
                Some(stream) => {
                    let sdp = sdp(&stream.clip, self.local, stream.fault == Fault::BadSps);
                    self.stream = Some(stream);
                    let base = format!("{}/", req.uri.trim_end_matches('/'));
                    (
                        "200 OK",
                        format!("Content-Base: {base}\r\nContent-Type: application/sdp\r\n"),
                        sdp,
                        false,
                    )
                }
                None => ("404 Not Found", String::new(), String::new(), false),
            },
            "SETUP" => self.setup(req).await,
            "PLAY" => self.play(req),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                ("200 OK", String::new(), String::new(), false)
            }
            "TEARDOWN" => {
                if let Some(playing) = self.playing.take() {
                    playing.cancel();
                }
                ("200 OK", String::new(), String::new(), true)
            }
            _ => ("501 Not Implemented", String::new(), String::new(), false),
        };
        let mut response = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n");
        if self.transport.is_some() {
            let _ = write!(response, "Session: {};timeout=60\r\n", self.id);
        }
        response.push_str(&headers);
        if !body.is_empty() {
            let _ = write!(response, "Content-Length: {}\r\n", body.len());
        }
        response.push_str("\r\n");
        response.push_str(&body);
        let sent = self.out.send(Bytes::from(response)).await.is_ok();
        close || !sent
    }

    async fn setup(&mut self, req: &Request) -> (&'static str, String, String, bool) {
        if self.stream.is_none() {
            self.stream = self.streams.read().find(req.path());
        }
        if self.stream.is_none() {
            return ("404 Not Found", String::new(), String::new(), false);
        }
        let requested = req.header("Transport").unwrap_or_default();
        let ssrc = self.ssrc;
        if let Some(ports) = param(requested, "client_port") {
            let Some(rtp_port) = ports.split('-').next().and_then(|p| p.parse::<u16>().ok()) else {
                return (
                    "461 Unsupported Transport",
                    String::new(),
                    String::new(),
                    false,
                );
            };
            let sockets = match UdpPair::bind(self.local.ip()).await {
                Ok(sockets) => Arc::new(sockets),
                Err(error) => {
                    tracing::warn!(%error, "sim RTSP: cannot bind UDP sockets");
                    return (
                        "500 Internal Server Error",
                        String::new(),
                        String::new(),
                        false,
                    );
                }
            };
            let server_rtp = sockets.rtp_port();
            self.transport = Some(Transport::Udp {
                client_rtp: SocketAddr::new(self.peer.ip(), rtp_port),
                sockets,
            });
            let header = format!(
                "Transport: RTP/AVP;unicast;client_port={ports};server_port={server_rtp}-{};ssrc={ssrc:08X}\r\n",
                u32::from(server_rtp) + 1
            );
            return ("200 OK", header, String::new(), false);
        }
        let channels = param(requested, "interleaved").unwrap_or("0-1");
        let rtp_channel = channels
            .split('-')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        self.transport = Some(Transport::Interleaved { rtp_channel });
        let header =
            format!("Transport: RTP/AVP/TCP;unicast;interleaved={channels};ssrc={ssrc:08X}\r\n");
        ("200 OK", header, String::new(), false)
    }

    fn play(&mut self, req: &Request) -> (&'static str, String, String, bool) {
        let (Some(stream), Some(transport)) = (self.stream.clone(), self.transport.clone()) else {
            return (
                "455 Method Not Valid In This State",
                String::new(),
                String::new(),
                false,
            );
        };
        if self.playing.is_none() {
            let token = self.cancel.child_token();
            self.playing = Some(token.clone());
            let media = Media {
                stream,
                ssrc: self.ssrc,
                seq: self.first_seq,
                first_ts: self.first_ts,
                out: self.out.clone(),
                session: self.cancel.clone(),
                stats: self.stats.clone(),
            };
            tokio::spawn(async move { media.run(transport, token).await });
        }
        let url = format!("{}/track1", req.uri.trim_end_matches('/'));
        let header = format!(
            "Range: npt=0.000-\r\nRTP-Info: url={url};seq={};rtptime={}\r\n",
            self.first_seq, self.first_ts
        );
        ("200 OK", header, String::new(), false)
    }
}

/// The media half of a playing session.
struct Media {
    stream: Stream,
    ssrc: u32,
    seq: u16,
    first_ts: u32,
    out: mpsc::Sender<Bytes>,
    session: CancellationToken,
    stats: Arc<SimStats>,
}

impl Media {
    async fn run(mut self, transport: Transport, cancel: CancellationToken) {
        let clip = self.stream.clip.clone();
        let frame_interval = Duration::from_secs(1) / clip.fps;
        let start = Instant::now();
        let mut jump: i64 = 0;
        let mut corrupted = false;
        for n in 0u64.. {
            let deadline = start + frame_interval * u32::try_from(n).unwrap_or(u32::MAX);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => {}
            }
            let elapsed = deadline - start;
            match self.stream.fault {
                Fault::StallAfter(after) if elapsed >= after => {
                    cancel.cancelled().await;
                    return;
                }
                Fault::DisconnectAfter(after) if elapsed >= after => {
                    self.session.cancel();
                    return;
                }
                Fault::ClockJumpAfter { after, ticks } if elapsed >= after => jump = ticks,
                _ => {}
            }
            let frame = &clip.frames[(n % clip.frames.len() as u64) as usize];
            if frame.is_key && self.stream.fault == Fault::NoKeyFrames {
                continue;
            }
            let ts =
                (i64::from(self.first_ts) + n as i64 * i64::from(clip.frame_ticks()) + jump) as u32;
            let mut garbled_sets: Vec<Bytes> = Vec::new();
            let mut payloads: Vec<&Bytes> = Vec::with_capacity(frame.payloads.len() + 1);
            let corrupt;
            if let Fault::CorruptAfter(after) = self.stream.fault {
                if elapsed >= after && !corrupted {
                    corrupted = true;
                    corrupt = orphan_fragment(clip.codec);
                    payloads.push(&corrupt);
                }
            }
            match self.stream.fault {
                Fault::TruncatedNalsAfter(after) if elapsed >= after => {
                    let cut = frame
                        .payloads
                        .iter()
                        .position(|p| ends_fragmented_nal(clip.codec, p));
                    payloads.extend(
                        frame
                            .payloads
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| Some(*i) != cut)
                            .map(|(_, p)| p),
                    );
                }
                Fault::BadSps => {
                    for p in frame.payloads.iter() {
                        if is_sps(clip.codec, p) {
                            garbled_sets.push(garbled(p));
                        }
                    }
                    let mut garbage = garbled_sets.iter();
                    for p in frame.payloads.iter() {
                        match is_sps(clip.codec, p).then(|| garbage.next()).flatten() {
                            Some(g) => payloads.push(g),
                            None => payloads.push(p),
                        }
                    }
                }
                _ => payloads.extend(frame.payloads.iter()),
            }
            if !self.send(&transport, &payloads, ts).await {
                return;
            }
            self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends one access unit's payloads; the last carries the marker bit. False when the
    /// client is gone.
    async fn send(&mut self, transport: &Transport, payloads: &[&Bytes], ts: u32) -> bool {
        match transport {
            Transport::Interleaved { rtp_channel } => {
                let total: usize = payloads.iter().map(|p| p.len() + 16).sum();
                let mut buf = BytesMut::with_capacity(total);
                for (i, payload) in payloads.iter().enumerate() {
                    let marker = i + 1 == payloads.len();
                    buf.put_u8(b'$');
                    buf.put_u8(*rtp_channel);
                    buf.put_u16((12 + payload.len()) as u16);
                    self.put_rtp_header(&mut buf, marker, ts);
                    buf.put_slice(payload);
                }
                self.out.send(buf.freeze()).await.is_ok()
            }
            Transport::Udp {
                client_rtp,
                sockets,
            } => {
                let mut ok = true;
                for (i, payload) in payloads.iter().enumerate() {
                    let marker = i + 1 == payloads.len();
                    let mut buf = BytesMut::with_capacity(12 + payload.len());
                    self.put_rtp_header(&mut buf, marker, ts);
                    buf.put_slice(payload);
                    ok &= sockets.rtp.send_to(&buf, client_rtp).await.is_ok();
                }
                ok
            }
        }
    }

    fn put_rtp_header(&mut self, buf: &mut BytesMut, marker: bool, ts: u32) {
        buf.put_u8(0x80);
        buf.put_u8((u8::from(marker) << 7) | 96);
        buf.put_u16(self.seq);
        buf.put_u32(ts);
        buf.put_u32(self.ssrc);
        self.seq = self.seq.wrapping_add(1);
    }
}

/// The SDP describing `clip`'s one video track; with `bad_sps`, its SPS keeps its NAL
/// header and profile bytes but its body is garbage.
fn sdp(clip: &Clip, local: SocketAddr, bad_sps: bool) -> String {
    let b64 = |b: &Bytes| base64::engine::general_purpose::STANDARD.encode(b);
    let sps_index = match clip.codec {
        VideoCodec::H264 => 0,
        VideoCodec::H265 => 1,
    };
    let mut sets = clip.parameter_sets.clone();
    if bad_sps {
        if let Some(sps) = sets.get_mut(sps_index) {
            *sps = garbled(sps);
        }
    }
    let (rtpmap, fmtp) = match clip.codec {
        VideoCodec::H264 => {
            let profile_level = sets[0].get(1..4).map(hex_upper).unwrap_or_default();
            (
                "H264/90000",
                format!(
                    "packetization-mode=1;profile-level-id={profile_level};sprop-parameter-sets={},{}",
                    b64(&sets[0]),
                    b64(&sets[1])
                ),
            )
        }
        VideoCodec::H265 => (
            "H265/90000",
            format!(
                "sprop-vps={};sprop-sps={};sprop-pps={}",
                b64(&sets[0]),
                b64(&sets[1]),
                b64(&sets[2])
            ),
        ),
    };
    let ip = local.ip();
    format!(
        "v=0\r\no=- 0 0 IN IP4 {ip}\r\ns=vigil simulated camera\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 {rtpmap}\r\na=fmtp:96 {fmtp}\r\n\
         a=control:track1\r\n"
    )
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A fragmentation unit that continues a fragment never started (start bit clear, no
/// packet lost before it): RFC 6184 5.8 / RFC 7798 4.4.3 forbid it, so a conforming
/// depacketizer must report bad data.
fn orphan_fragment(codec: VideoCodec) -> Bytes {
    match codec {
        // FU-A indicator (NRI 3, type 28), FU header: S=0, E=0, type 5 (IDR slice).
        VideoCodec::H264 => Bytes::from_static(&[0x7c, 0x05, 0xde, 0xad, 0xbe, 0xef]),
        // PayloadHdr type 49, FU header: S=0, E=0, type 19 (IDR_W_RADL).
        VideoCodec::H265 => Bytes::from_static(&[0x62, 0x01, 0x13, 0xde, 0xad, 0xbe, 0xef]),
    }
}

/// A parameter set that keeps its NAL header and first bytes but whose body cannot be parsed.
fn garbled(set: &[u8]) -> Bytes {
    let keep = set.len().min(4);
    let mut garbage = set[..keep].to_vec();
    garbage.extend_from_slice(&[0x00, 0x00, 0x03, 0x00, 0x00, 0x03]);
    Bytes::from(garbage)
}

/// Whether `payload` is a whole SPS NAL unit (what the packetizer makes of the in-band SPS).
fn is_sps(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => payload.first().is_some_and(|b| b & 0x1f == 7),
        VideoCodec::H265 => payload.first().is_some_and(|b| (b >> 1) & 0x3f == 33),
    }
}

/// Whether `payload` is the last fragment (end bit set) of a fragmented NAL unit (H.264 FU-A,
/// RFC 6184 5.8; H.265 FU, RFC 7798 4.4.3).
fn ends_fragmented_nal(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => payload.len() > 2 && payload[0] & 0x1f == 28 && payload[1] & 0x40 != 0,
        VideoCodec::H265 => {
            payload.len() > 3 && (payload[0] >> 1) & 0x3f == 49 && payload[2] & 0x40 != 0
        }
    }
}

/// The value of `name=value` inside a `;`-separated header value.
fn param<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // The OS random source failing is not worth refusing a simulated camera over.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_params_are_found_case_insensitively() {
        let t = "RTP/AVP/TCP;unicast;Interleaved=2-3";
        assert_eq!(param(t, "interleaved"), Some("2-3"));
        assert_eq!(param(t, "client_port"), None);
    }
}
