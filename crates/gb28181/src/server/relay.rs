//! Serving an upper platform's INVITE (cascade): the channel's live PS over RTP, as received
//! from the device, is copied to the upper platform with the upper platform's SSRC and our own
//! sequence numbers, over UDP or TCP (RFC 4571, listening or connecting as its offer asks).
//!
//! The channel is pulled from the device while at least one upper platform watches it (the
//! frames also go to the channel's recording sink if it has one, else they are discarded).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn, Instrument};
use vigil_media::rtp::{rfc4571_frame, write_header};

use super::core::{now_ts, Core};
use super::events::GbEvent;
use super::media::{RelayCmd, RtpChunk};
use crate::gbid::GbId;
use crate::play::ChannelKey;
use crate::sdp::{Answer, MediaTransport, Sdp};
use crate::sip::transaction::ServerKey;
use crate::sip::{Message, Peer};
use crate::time::Now;

/// An upper platform watching one of our channels.
#[derive(Debug)]
pub(crate) struct UpperSession {
    pub uplink: usize,
    pub key: ChannelKey,
    pub relay_id: u64,
    pub stop: Option<oneshot::Sender<()>>,
}

/// Where relayed RTP goes.
#[derive(Debug)]
enum RelayOut {
    Udp(UdpSocket, SocketAddr),
    TcpListen(TcpListener),
    TcpConnect(SocketAddr),
}

/// A receiver that discards frames: the sink of a channel pulled only for an upper platform.
fn null_sink() -> mpsc::Sender<vigil_store::SourceEvent> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tx
}

async fn relay_task(
    out: RelayOut,
    mut rx: mpsc::Receiver<RtpChunk>,
    ssrc: u32,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tcp: Option<TcpStream> = None;
    let mut udp: Option<(UdpSocket, SocketAddr)> = None;
    match out {
        RelayOut::Udp(s, to) => udp = Some((s, to)),
        RelayOut::TcpConnect(to) => {
            tokio::select! {
                _ = &mut stop => return,
                r = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(to)) => match r {
                    Ok(Ok(s)) => tcp = Some(s),
                    _ => {
                        warn!(%to, "cannot connect to the upper platform for TCP media");
                        return;
                    }
                }
            }
        }
        RelayOut::TcpListen(l) => {
            tokio::select! {
                _ = &mut stop => return,
                r = tokio::time::timeout(Duration::from_secs(10), l.accept()) => match r {
                    Ok(Ok((s, _))) => tcp = Some(s),
                    _ => {
                        warn!("the upper platform did not connect for TCP media");
                        return;
                    }
                }
            }
        }
    }
    let mut seq: u16 = (ssrc as u16).wrapping_mul(7);
    let mut sent: u64 = 0;
    loop {
        let chunk = tokio::select! {
            _ = &mut stop => break,
            c = rx.recv() => match c {
                Some(c) => c,
                None => break,
            },
        };
        let mut b = BytesMut::with_capacity(12 + chunk.payload.len());
        write_header(&mut b, chunk.marker, 96, seq, chunk.timestamp, ssrc);
        b.extend_from_slice(&chunk.payload);
        seq = seq.wrapping_add(1);
        let pkt: Bytes = b.freeze();
        let r = if let Some((s, to)) = &udp {
            s.send_to(&pkt, *to).await.map(|_| ())
        } else if let Some(s) = tcp.as_mut() {
            match rfc4571_frame(&pkt) {
                Some(f) => s.write_all(&f).await,
                None => Ok(()),
            }
        } else {
            Ok(())
        };
        if let Err(e) = r {
            debug!(error = %e, "relay to the upper platform stopped");
            break;
        }
        sent += 1;
    }
    debug!(sent, "relay ended");
}

impl Core {
    /// Whether an upper platform watches the channel.
    pub(crate) fn relayed(&self, key: &ChannelKey) -> bool {
        self.relays.get(key).is_some_and(|v| !v.is_empty())
    }

    /// The sink for a pull that exists only for relays.
    pub(crate) fn relay_sink(
        &self,
        key: &ChannelKey,
    ) -> Option<mpsc::Sender<vigil_store::SourceEvent>> {
        self.relayed(key).then(null_sink)
    }

    /// The registered device that has `channel` in its catalog.
    fn owner_of_channel(&self, channel: &GbId) -> Option<GbId> {
        self.devices
            .iter()
            .find(|(_, d)| d.online && d.channels.contains_key(channel.as_str()))
            .map(|(id, _)| *id)
    }

    fn upper_answer(
        &mut self,
        key: &ServerKey,
        code: u16,
        body: Option<(&str, Bytes)>,
        contact: Option<String>,
        now: Instant,
    ) {
        let ua = self.cfg.user_agent.clone();
        match self.upper_invites.answer(key, code, body, contact, &ua) {
            Some(Ok(r)) => self.respond(key, r, now),
            Some(Err(e)) => debug!(error = %e, "cannot answer the upper platform's INVITE"),
            None => {}
        }
    }

    /// An INVITE from an upper platform for one of our channels.
    pub(crate) fn upper_invite(
        &mut self,
        idx: usize,
        key: ServerKey,
        req: Message,
        peer: Peer,
        now: Now,
    ) {
        let name = self.uplinks[idx].name.clone();
        let tag = self.tokens.tag();
        match self
            .upper_invites
            .on_invite(key.clone(), &req, peer.addr, tag)
        {
            Ok(trying) => self.respond(&key, trying, now.instant),
            Err(e) => {
                debug!(uplink = %name, error = %e, "unusable INVITE from the upper platform");
                return;
            }
        }
        let channel = req
            .request_uri()
            .and_then(|u| u.ok())
            .and_then(|u| u.user)
            .and_then(|u| GbId::parse(&u).ok());
        let Some(channel) = channel else {
            self.upper_answer(&key, 400, None, None, now.instant);
            return;
        };
        let Some(device) = self.owner_of_channel(&channel) else {
            warn!(uplink = %name, %channel, "upper platform INVITE for a channel no online device has");
            self.upper_answer(&key, 404, None, None, now.instant);
            return;
        };
        let ck = ChannelKey { device, channel };
        let offer = match Sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                warn!(uplink = %name, error = %e, "upper platform INVITE with an unusable SDP");
                self.upper_answer(&key, 488, None, None, now.instant);
                return;
            }
        };
        let (Some(theirs), Some(ssrc), Some(ip), Some(video)) = (
            offer.media_transport(),
            offer.gb_ssrc(),
            offer.media_ip(),
            offer.video(),
        ) else {
            self.upper_answer(&key, 488, None, None, now.instant);
            return;
        };
        let ours = theirs.counterpart();
        let dest = SocketAddr::new(ip, video.port);
        let bind_ip = self.listen_ip;
        let (out, port) = match ours {
            MediaTransport::Udp => match self.ports.bind_udp(bind_ip) {
                Ok(s) => {
                    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
                    (RelayOut::Udp(s, dest), port)
                }
                Err(e) => {
                    warn!(uplink = %name, error = %e, "cannot bind a relay port");
                    self.upper_answer(&key, 503, None, None, now.instant);
                    return;
                }
            },
            MediaTransport::TcpPassive => match self.ports.bind_tcp(bind_ip) {
                Ok(l) => {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    (RelayOut::TcpListen(l), port)
                }
                Err(e) => {
                    warn!(uplink = %name, error = %e, "cannot bind a relay port");
                    self.upper_answer(&key, 503, None, None, now.instant);
                    return;
                }
            },
            MediaTransport::TcpActive => (RelayOut::TcpConnect(dest), 9),
        };
        let media_ip = self.local_ip_for(peer.addr.ip());
        let answer = Answer {
            session: offer.session.clone(),
            our_id: self.our_id.to_string(),
            ip: media_ip,
            port,
            transport: ours,
            ssrc,
            timing: offer.timing.unwrap_or((0, 0)),
        };
        let local = self.local_for(peer);
        let contact = format!("<sip:{channel}@{local}>");
        let body = Bytes::from(answer.to_sdp().to_text());
        self.upper_answer(
            &key,
            200,
            Some(("application/sdp", body)),
            Some(contact),
            now.instant,
        );

        self.relay_seq += 1;
        let relay_id = self.relay_seq;
        let (tx, rx) = mpsc::channel(1024);
        let (stop_tx, stop_rx) = oneshot::channel();
        let span = tracing::info_span!("gb_relay", uplink = %name, channel = %ck);
        tokio::spawn(relay_task(out, rx, ssrc.rtp(), stop_rx).instrument(span));
        if let Some(slot) = self.media.get(&ck) {
            if let Some(ctl) = &slot.relay_ctl {
                let _ = ctl.send(RelayCmd::Add {
                    id: relay_id,
                    tx: tx.clone(),
                });
            }
        }
        self.relays.entry(ck).or_default().push((relay_id, tx));
        let call_id = req.call_id().map(|c| c.into_owned()).unwrap_or_default();
        self.upper_sessions.insert(
            call_id,
            UpperSession {
                uplink: idx,
                key: ck,
                relay_id,
                stop: Some(stop_tx),
            },
        );
        info!(uplink = %name, channel = %ck, transport = ?ours, "relaying to the upper platform");
        self.emit(GbEvent::UplinkRelay {
            uplink: name,
            device: ck.device,
            channel: ck.channel,
            active: true,
            at: now_ts(),
        });
        self.reconcile(ck, now.instant);
    }

    /// BYE from an upper platform: stop relaying. Returns false when the call is unknown.
    pub(crate) fn upper_bye(&mut self, req: &Message, now: Instant) -> bool {
        let Some(call_id) = req.call_id().ok().map(|c| c.into_owned()) else {
            return false;
        };
        let Some(mut s) = self.upper_sessions.remove(&call_id) else {
            return false;
        };
        if let Some(stop) = s.stop.take() {
            let _ = stop.send(());
        }
        if let Some(v) = self.relays.get_mut(&s.key) {
            v.retain(|(id, _)| *id != s.relay_id);
            if v.is_empty() {
                self.relays.remove(&s.key);
            }
        }
        if let Some(ctl) = self.media.get(&s.key).and_then(|m| m.relay_ctl.as_ref()) {
            let _ = ctl.send(RelayCmd::Remove { id: s.relay_id });
        }
        let name = self
            .uplinks
            .get(s.uplink)
            .map(|u| u.name.clone())
            .unwrap_or_default();
        info!(uplink = %name, channel = %s.key, "relay to the upper platform ended");
        self.emit(GbEvent::UplinkRelay {
            uplink: name,
            device: s.key.device,
            channel: s.key.channel,
            active: false,
            at: now_ts(),
        });
        self.reconcile(s.key, now);
        true
    }

    /// CANCEL from an upper platform.
    pub(crate) fn upper_cancel(
        &mut self,
        key: ServerKey,
        req: &Message,
        peer: Peer,
        cancels: Option<ServerKey>,
        now: Instant,
    ) {
        let out = self
            .upper_invites
            .on_cancel(req, cancels.as_ref(), peer.addr);
        if let Ok(r) = out.cancel_response {
            self.respond(&key, r, now);
        }
        if let Some((ik, Ok(r))) = out.invite_response {
            self.respond(&ik, r, now);
        }
    }
}
