//! Handle commands: status views and control.

use std::time::Instant;

use super::core::Core;
use super::devices::instant_to_wall;
use super::handle::{ChannelView, Command, DeviceView, HandleError, RecordingView, SessionView};
use crate::gbid::GbId;
use crate::manscdp::CmdType;
use crate::play::{ChannelKey, PlayPhase};

impl Core {
    pub(crate) fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Devices(r) => {
                let mut v: Vec<DeviceView> = self
                    .devices
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .filter_map(|id| self.device_view(&id))
                    .collect();
                v.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
                let _ = r.send(v);
            }
            Command::Device(id, r) => {
                let _ = r.send(self.device_view(&id));
            }
            Command::Channels(device, r) => {
                let mut ids: Vec<GbId> = match device {
                    Some(d) => vec![d],
                    None => self.devices.keys().copied().collect(),
                };
                ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                let v = ids.iter().flat_map(|d| self.channel_views(d)).collect();
                let _ = r.send(v);
            }
            Command::RefreshCatalog(id, r) => {
                let _ = r.send(self.query(id, CmdType::Catalog, now));
            }
            Command::QueryDeviceInfo(id, r) => {
                let _ = r.send(self.query(id, CmdType::DeviceInfo, now));
            }
            Command::QueryDeviceStatus(id, r) => {
                let _ = r.send(self.query(id, CmdType::DeviceStatus, now));
            }
            Command::StartRecording { key, sink, reply } => {
                let result = self.start_recording(key, sink, now);
                let _ = reply.send(result);
            }
            Command::StopRecording(key, r) => {
                if !self.devices.contains_key(&key.device) {
                    let _ = r.send(Err(HandleError::UnknownDevice(key.device)));
                    return;
                }
                self.overrides.insert(key, false);
                self.explicit_sinks.remove(&key);
                self.reconcile(key, now);
                let _ = r.send(Ok(()));
            }
            Command::ResetRecording(key, r) => {
                if !self.devices.contains_key(&key.device) {
                    let _ = r.send(Err(HandleError::UnknownDevice(key.device)));
                    return;
                }
                self.overrides.remove(&key);
                self.explicit_sinks.remove(&key);
                self.reconcile(key, now);
                let _ = r.send(Ok(()));
            }
            Command::Reconcile(device, r) => {
                self.reconcile_device(&device, now);
                let _ = r.send(());
            }
            Command::SetSharedCatalog(items, r) => {
                self.shared = items;
                let _ = r.send(());
            }
            Command::Uplinks(r) => {
                let _ = r.send(self.uplink_views());
            }
        }
    }

    fn start_recording(
        &mut self,
        key: ChannelKey,
        sink: Option<tokio::sync::mpsc::Sender<vigil_store::SourceEvent>>,
        now: Instant,
    ) -> Result<(), HandleError> {
        if !self.devices.contains_key(&key.device) {
            return Err(HandleError::UnknownDevice(key.device));
        }
        match sink {
            Some(s) => {
                self.explicit_sinks.insert(key, s);
            }
            None => {
                if self.sinks.sink(&key).is_none() {
                    return Err(HandleError::NoSink(key));
                }
            }
        }
        self.overrides.insert(key, true);
        if !self.registry.device(&key.device).is_some_and(|d| d.online) {
            // Recorded as soon as the device is back.
            return Err(HandleError::DeviceOffline(key.device));
        }
        self.reconcile(key, now);
        Ok(())
    }

    fn device_view(&self, id: &GbId) -> Option<DeviceView> {
        let d = self.devices.get(id)?;
        let reg = self.registry.device(id);
        let mut quirks: Vec<&'static str> = d.quirks.iter().map(|q| q.name()).collect();
        if let Some(r) = reg {
            for q in r.quirks.iter() {
                if !quirks.contains(&q.name()) {
                    quirks.push(q.name());
                }
            }
        }
        Some(DeviceView {
            id: *id,
            addr: reg.map_or(d.addr, |r| r.peer.addr),
            transport: reg.map_or(d.transport, |r| r.peer.transport),
            version: d.version,
            x_gb_ver: d.x_gb_ver.clone(),
            user_agent: d.user_agent.clone(),
            registered: reg.is_some(),
            online: reg.is_some_and(|r| r.online),
            registered_at: d.registered_at,
            last_keepalive: reg.map(|r| instant_to_wall(r.last_seen)),
            last_error: d.last_error.clone(),
            quirks,
            info: d.info.clone(),
            channels: d.channels.len(),
            catalog_at: d.catalog_at,
            subscription: self.subscription_text(id),
        })
    }

    fn channel_views(&self, device: &GbId) -> Vec<ChannelView> {
        let Some(d) = self.devices.get(device) else {
            return Vec::new();
        };
        d.channels
            .values()
            .map(|c| {
                let key = c.id.map(|channel| ChannelKey {
                    device: *device,
                    channel,
                });
                let stats = key.and_then(|k| self.stats.get(&k));
                let session = match key.and_then(|k| self.play.phase(&k)) {
                    None => SessionView::Idle,
                    Some(PlayPhase::Inviting { .. }) => SessionView::Inviting,
                    Some(PlayPhase::Established { .. }) => {
                        let flowing = key
                            .and_then(|k| self.media.get(&k))
                            .is_some_and(|s| s.flowing);
                        if flowing {
                            SessionView::Streaming
                        } else {
                            SessionView::Accepted
                        }
                    }
                    Some(PlayPhase::Backoff { .. } | PlayPhase::RetryPending) => {
                        SessionView::Backoff
                    }
                };
                ChannelView {
                    device: *device,
                    id: c.item.device_id.clone(),
                    kind: c.kind,
                    name: c.item.name.clone(),
                    civil_code: c.item.civil_code.as_ref().map(|cc| cc.as_str().to_owned()),
                    status: c.item.status.clone(),
                    recording: RecordingView {
                        wanted: key.is_some_and(|k| self.wants(&k)),
                        overridden: key.and_then(|k| self.overrides.get(&k).copied()),
                    },
                    session,
                    last_media_error: stats.and_then(|s| s.last_error.clone()),
                    last_frame_at: stats
                        .and_then(|s| s.last_frame.get())
                        .map(vigil_core::time::Timestamp::from_millis),
                    counters: stats.map(|s| s.counters.snapshot()).unwrap_or_default(),
                }
            })
            .collect()
    }
}
