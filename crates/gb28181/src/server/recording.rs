//! Recording: which channels are pulled (policy + per-channel overrides), opening sessions
//! (media port, INVITE), starting and stopping media tasks, retries, BYE from devices.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn, Instrument};

use super::config::RecordingMode;
use super::core::{now_ts, Core, MediaSlot, Pending};
use super::events::{GbEvent, MediaState};
use super::media::{
    run_session, MediaReport, MediaSocket, RelayCmd, SessionConfig, SessionControl,
    SessionCounters, SessionNote,
};
use super::metrics::inc;
use super::transport::Input;
use crate::catalog::ItemKind;
use crate::gbid::GbId;
use crate::manscdp::ChannelStatus;
use crate::play::{ChannelKey, InviteParams, MediaPlan, PlayError, PlayEvent, PlayOutput};
use crate::registry::OfflineReason;
use crate::sdp::MediaTransport;
use crate::sip::transaction::{ClientKey, ServerKey};
use crate::sip::{Message, Peer, Transmit};
use crate::time::Now;

impl Core {
    /// Whether a channel should be pulled now (override, else policy). Only channels present
    /// in the device's catalog are pulled by policy.
    pub(crate) fn wants(&self, key: &ChannelKey) -> bool {
        if self.relayed(key) {
            return true;
        }
        if let Some(o) = self.overrides.get(key) {
            return *o;
        }
        let Some(ch) = self
            .devices
            .get(&key.device)
            .and_then(|d| d.channels.get(key.channel.as_str()))
        else {
            return false;
        };
        match self.cfg.recording.mode {
            RecordingMode::None => false,
            RecordingMode::All => ch.kind == ItemKind::VideoChannel,
            RecordingMode::List => self.record_list.contains(key.channel.as_str()),
        }
    }

    fn channel_off(&self, key: &ChannelKey) -> bool {
        self.devices
            .get(&key.device)
            .and_then(|d| d.channels.get(key.channel.as_str()))
            .is_some_and(|c| c.item.status == Some(ChannelStatus::Off))
    }

    fn device_online(&self, device: &GbId) -> bool {
        self.registry.device(device).is_some_and(|d| d.online)
    }

    /// Brings every channel of a device in line with the policy.
    pub(crate) fn reconcile_device(&mut self, device: &GbId, now: Instant) {
        let mut keys: Vec<ChannelKey> = self
            .devices
            .get(device)
            .map(|d| {
                d.channels
                    .values()
                    .filter_map(|c| c.id)
                    .map(|channel| ChannelKey {
                        device: *device,
                        channel,
                    })
                    .collect()
            })
            .unwrap_or_default();
        keys.extend(
            self.overrides
                .iter()
                .filter(|(k, on)| k.device == *device && **on)
                .map(|(k, _)| *k),
        );
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            self.reconcile(k, now);
        }
    }

    /// Starts or stops one channel's session according to [`Core::wants`].
    pub(crate) fn reconcile(&mut self, key: ChannelKey, now: Instant) {
        let wanted = self.wants(&key);
        let has_session = self.play.phase(&key).is_some();
        if wanted && !has_session {
            if self.device_online(&key.device) && !self.channel_off(&key) {
                self.start_media(key, now);
            }
        } else if !wanted && has_session {
            self.stop_media(&key, "recording stopped", now);
        }
    }

    /// A channel left the catalog: stop its session.
    pub(crate) fn channel_removed(&mut self, key: ChannelKey, now: Instant) {
        if self.play.phase(&key).is_some() && !self.overrides.get(&key).copied().unwrap_or(false) {
            self.stop_media(&key, "channel removed from the catalog", now);
        }
    }

    pub(crate) fn stop_media(&mut self, key: &ChannelKey, reason: &str, now: Instant) {
        let out = self.play.stop(key, now);
        self.play_output_with_reason(out, None, now, reason);
        self.waiting.retain(|k| k != key);
    }

    /// The device went offline: its sessions end without signalling.
    pub(crate) fn device_gone(&mut self, device: &GbId, reason: OfflineReason, now: Instant) {
        let why = format!("device offline ({reason:?})");
        let events = self.play.forget_device(device);
        self.play_output_with_reason(
            PlayOutput {
                events,
                ..PlayOutput::default()
            },
            None,
            now,
            &why,
        );
        self.waiting.retain(|k| k.device != *device);
    }

    /// Binds a media port and sends the INVITE.
    fn start_media(&mut self, key: ChannelKey, now: Instant) {
        let at = now_ts();
        if self.media.len() >= self.cfg.media.max_sessions {
            if !self.waiting.contains(&key) {
                debug!(channel = %key, "media session limit reached; waiting");
                self.waiting.push_back(key);
            }
            return;
        }
        let Some(peer) = self.registry.device(&key.device).map(|d| d.peer) else {
            return;
        };
        let sink = match self.explicit_sinks.get(&key) {
            Some(s) if !s.is_closed() => Some(s.clone()),
            _ => self.sinks.sink(&key),
        }
        .or_else(|| self.relay_sink(&key));
        let Some(sink) = sink else {
            let why = format!("channel {key}: no recording sink available");
            warn!(channel = %key, "no recording sink; not pulled");
            self.stats.entry(key).or_default().last_error = Some(why);
            return;
        };
        let pref = self
            .cfg
            .media
            .device_transport
            .get(key.device.as_str())
            .copied()
            .unwrap_or(self.cfg.media.transport);
        let transport = pref.media_transport();
        let bind_ip = self.listen_ip;
        let (prebound, port) = match transport {
            MediaTransport::Udp => match self.ports.bind_udp(bind_ip) {
                Ok(s) => {
                    let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
                    (Some(MediaSocket::Udp(s)), port)
                }
                Err(e) => return self.port_error(key, e),
            },
            MediaTransport::TcpPassive => match self.ports.bind_tcp(bind_ip) {
                Ok(l) => {
                    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    (Some(MediaSocket::TcpListen(l)), port)
                }
                Err(e) => return self.port_error(key, e),
            },
            // We connect from an ephemeral port; RFC 4145 says to offer port 9.
            MediaTransport::TcpActive => (None, 9),
        };
        let local_sip = self.local_for(peer);
        let media_ip = self.local_ip_for(peer.addr.ip());
        let params = InviteParams {
            key,
            device_peer: peer,
            local_sip,
            media_ip,
            media_port: port,
            transport,
        };
        match self.play.invite(params, now) {
            Ok((msg, peer)) => {
                let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
                inc(&self.metrics.invites_sent);
                self.media.insert(
                    key,
                    MediaSlot {
                        call_id: call_id.clone(),
                        prebound,
                        sink,
                        stop: None,
                        relay_ctl: None,
                        accepted: false,
                        flowing: false,
                    },
                );
                info!(channel = %key, ?transport, port, "INVITE");
                if let Err(why) = self.send_request(
                    msg,
                    peer,
                    Pending::Play {
                        call_id: call_id.clone(),
                    },
                    now,
                ) {
                    // The transaction layer refused (overloaded): treat as a failed attempt.
                    let out = self.play.media_failed(key, &call_id, why, now);
                    self.play_output(out, None, now);
                    return;
                }
                self.emit(GbEvent::Media {
                    device: key.device,
                    channel: key.channel,
                    state: MediaState::Inviting { transport },
                    at,
                });
            }
            Err(PlayError::Busy { .. }) => {}
            Err(e) => {
                warn!(channel = %key, error = %e, "cannot INVITE");
                self.stats.entry(key).or_default().last_error = Some(e.to_string());
            }
        }
    }

    fn port_error(&mut self, key: ChannelKey, e: std::io::Error) {
        inc(&self.metrics.media_port_errors);
        let why = format!("channel {key}: cannot bind an RTP port: {e}");
        warn!(channel = %key, error = %e, "cannot bind an RTP port");
        self.stats.entry(key).or_default().last_error = Some(why);
    }

    pub(crate) fn play_output(&mut self, out: PlayOutput, ckey: Option<&ClientKey>, now: Instant) {
        self.play_output_with_reason(out, ckey, now, "recording stopped");
    }

    pub(crate) fn play_output_with_reason(
        &mut self,
        out: PlayOutput,
        ckey: Option<&ClientKey>,
        now: Instant,
        stop_reason: &str,
    ) {
        if let Some((ack, peer)) = out.ack {
            let t = ckey.and_then(|k| self.txn.ack_2xx(k, &ack));
            let t = t.unwrap_or(Transmit {
                peer,
                bytes: ack.to_bytes(),
            });
            self.transmit(t);
        }
        for (msg, peer) in out.send {
            let call_id = msg.call_id().map(|c| c.into_owned()).unwrap_or_default();
            let _ = self.send_request(msg, peer, Pending::Play { call_id }, now);
        }
        let at = now_ts();
        for ev in out.events {
            match ev {
                PlayEvent::Started(plan) => {
                    inc(&self.metrics.invites_accepted);
                    self.spawn_media(plan);
                }
                PlayEvent::Failed {
                    key,
                    call_id,
                    error,
                    retry_in,
                } => {
                    match &error {
                        PlayError::Rejected { .. } => inc(&self.metrics.invites_rejected),
                        PlayError::NoAnswer { .. } => inc(&self.metrics.invites_unanswered),
                        PlayError::BadAnswer { .. } => inc(&self.metrics.invites_bad_answer),
                        PlayError::HungUp { .. } => inc(&self.metrics.sessions_hung_up),
                        PlayError::Media { .. } => inc(&self.metrics.media_failures),
                        PlayError::Busy { .. } | PlayError::Ssrc { .. } => {}
                    }
                    warn!(channel = %key, error = %error, ?retry_in, "media session failed");
                    self.release_slot(&key, &call_id, &error.to_string());
                    self.stats.entry(key).or_default().last_error = Some(error.to_string());
                    self.emit(GbEvent::Media {
                        device: key.device,
                        channel: key.channel,
                        state: MediaState::Failed {
                            error: error.to_string(),
                            retry_in,
                        },
                        at,
                    });
                }
                PlayEvent::RetryDue { key } => {
                    if self.wants(&key) && self.device_online(&key.device) {
                        self.start_media_retry(key, now);
                    } else {
                        let out = self.play.stop(&key, now);
                        self.play_output_with_reason(out, None, now, "recording stopped");
                    }
                }
                PlayEvent::Stopped { key, call_id } => {
                    if let Some(c) = call_id {
                        self.release_slot(&key, &c, stop_reason);
                    }
                    self.emit(GbEvent::Media {
                        device: key.device,
                        channel: key.channel,
                        state: MediaState::Stopped {
                            reason: stop_reason.to_owned(),
                        },
                        at,
                    });
                }
            }
        }
    }

    fn start_media_retry(&mut self, key: ChannelKey, now: Instant) {
        if self.channel_off(&key) {
            // Wait for an ON notification or a new catalog; the session stays pending.
            let out = self.play.stop(&key, now);
            self.play_output_with_reason(out, None, now, "channel is off");
            return;
        }
        self.start_media(key, now);
    }

    /// Stops the media task of `call_id` (if it is the channel's current one) and frees its
    /// slot; a waiting channel may take it.
    fn release_slot(&mut self, key: &ChannelKey, call_id: &str, reason: &str) {
        let matches = self.media.get(key).is_some_and(|s| s.call_id == call_id);
        if !matches {
            return;
        }
        if let Some(mut slot) = self.media.remove(key) {
            if let Some(stop) = slot.stop.take() {
                let _ = stop.send(reason.to_owned());
            }
        }
        self.media_tasks.retain(|t| !t.is_finished());
        let now = Instant::now();
        while self.media.len() < self.cfg.media.max_sessions {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            self.reconcile(next, now);
        }
    }

    fn spawn_media(&mut self, plan: MediaPlan) {
        let key = plan.key;
        let at = now_ts();
        let no_rtp = super::config::secs(self.cfg.media.no_rtp_timeout_secs);
        let Some(slot) = self.media.get_mut(&key) else {
            return;
        };
        if slot.call_id != plan.call_id {
            return;
        }
        let socket = match plan.transport {
            MediaTransport::Udp | MediaTransport::TcpPassive => slot.prebound.take(),
            MediaTransport::TcpActive => plan.remote.map(MediaSocket::TcpConnect),
        };
        let Some(socket) = socket else {
            warn!(channel = %key, "no media socket for the session");
            return;
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        slot.stop = Some(stop_tx);
        slot.accepted = true;
        let (relay_ctl, relays_rx) = mpsc::unbounded_channel();
        for (id, tx) in self.relays.get(&key).into_iter().flatten() {
            let _ = relay_ctl.send(RelayCmd::Add {
                id: *id,
                tx: tx.clone(),
            });
        }
        slot.relay_ctl = Some(relay_ctl);
        let sink = slot.sink.clone();
        let stats = self.stats.entry(key).or_default();
        inc(&stats.counters.sessions);
        let counters = SessionCounters {
            metrics: self.metrics.clone(),
            channel: stats.counters.clone(),
            last_frame: stats.last_frame.clone(),
        };
        let cfg = SessionConfig {
            key,
            ssrc: plan.ssrc.rtp(),
            no_rtp_timeout: no_rtp,
        };
        let input = self.input_tx.clone();
        let call_id = plan.call_id.clone();
        let span = tracing::info_span!("gb_media", device = %key.device, channel = %key.channel);
        let task = tokio::spawn(
            async move {
                let (notes_tx, mut notes) = mpsc::unbounded_channel();
                let control = SessionControl {
                    stop: stop_rx,
                    notes: notes_tx,
                    relays: relays_rx,
                };
                let session = run_session(socket, cfg, sink, counters, control);
                tokio::pin!(session);
                let end = loop {
                    tokio::select! {
                        end = &mut session => break end,
                        Some(n) = notes.recv() => {
                            let report = match n {
                                SessionNote::FirstFrame => MediaReport::Flowing { key, call_id: call_id.clone() },
                                SessionNote::Quirk(quirk) => MediaReport::Quirk { key, quirk },
                            };
                            let _ = input.send(Input::Media(report)).await;
                        }
                    }
                };
                info!(reason = %end.reason, frames = end.frames, "media session ended");
                let _ = input
                    .send(Input::Media(MediaReport::Ended { key, call_id, end }))
                    .await;
            }
            .instrument(span),
        );
        self.media_tasks.push(task);
        self.emit(GbEvent::Media {
            device: key.device,
            channel: key.channel,
            state: MediaState::Accepted {
                transport: plan.transport,
                ssrc: plan.ssrc.rtp(),
            },
            at,
        });
    }

    pub(crate) fn media_report(&mut self, report: MediaReport) {
        let now = Instant::now();
        match report {
            MediaReport::Flowing { key, call_id } => {
                let current = match self.media.get_mut(&key) {
                    Some(s) if s.call_id == call_id => {
                        s.flowing = true;
                        true
                    }
                    _ => false,
                };
                if current {
                    self.emit(GbEvent::Media {
                        device: key.device,
                        channel: key.channel,
                        state: MediaState::Streaming,
                        at: now_ts(),
                    });
                }
            }
            MediaReport::Quirk { key, quirk } => {
                let new = self.devices.get_mut(&key.device).is_some_and(|d| {
                    let fresh = !d.quirks.contains(quirk);
                    d.quirks.insert(quirk);
                    fresh
                });
                if new {
                    self.emit(GbEvent::QuirksSeen {
                        device: key.device,
                        quirks: vec![quirk.name()],
                        at: now_ts(),
                    });
                }
            }
            MediaReport::Ended { key, call_id, end } => {
                if end.failure {
                    // Hang up and retry with backoff.
                    let out = self.play.media_failed(key, &call_id, end.reason, now);
                    self.play_output(out, None, now);
                }
            }
        }
    }

    /// BYE from a device: its session ends, a retry follows.
    pub(crate) fn bye(&mut self, key: ServerKey, req: Message, peer: Peer, now: Now) {
        match self.play.on_bye(&req, now.instant) {
            Some(out) => {
                self.reply(&key, &req, peer, 200, now.instant);
                self.play_output(out, None, now.instant);
            }
            None => self.reply(&key, &req, peer, 481, now.instant),
        }
    }
}
