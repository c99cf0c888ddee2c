//! Starting and stopping the service (`vigil run`, `vigil demo`).
//!
//! # What a stop means for open status intervals
//! Every status history records what vigil itself observed or did: a camera was *online* while
//! vigil saw it answer, *recording* while vigil wrote its video, *uploading* while video reached
//! vigil; the *uplink* is vigil's own cascade registration. While vigil is stopped it observes
//! and does none of these, so:
//! - **clean stop** (SIGTERM/SIGINT): after the HTTP API has drained, every open interval is
//!   closed at the stop instant, the index is flushed, and `vigil.state` records a clean stop.
//!   Sources that see a camera again after the restart open new intervals, so the downtime shows
//!   as a gap — the honest record.
//! - **crash** (no clean stop recorded): on the next start, intervals still open are closed at
//!   the last heartbeat (`service.heartbeat_secs`), the last instant vigil is known to have been
//!   alive. A crash can therefore understate online/recording time by at most one heartbeat
//!   period, never overstate it.
//!
//! Imported open intervals (history brought from another platform, "online since X") stay open
//! while vigil runs and are closed by the next stop like any other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigil_api::{AppState, Subsystems};
use vigil_core::time::Timestamp;
use vigil_index::Index;

use crate::config::Config;
use crate::datadir::{DataDir, RunState};
use crate::gb28181::{self, Gb28181Service};
use crate::http::HttpServer;
use crate::recording::{self, PullScope, RecordingService};
use crate::supervisor::{self, Run, Subsystem};

/// The wall clock.
pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// A service that is started (index open and recovered, HTTP bound) but not yet serving.
pub struct Started {
    data: Arc<DataDir>,
    index: Arc<Index>,
    http: HttpServer,
    addr: SocketAddr,
    config: Config,
    recording: Option<RecordingService>,
    gb28181: Option<Gb28181Service>,
}

/// Opens the index in `data`, recovers from an unclean stop, and binds the HTTP API on `listen`.
pub async fn start(config: Config, data: DataDir, listen: SocketAddr) -> anyhow::Result<Started> {
    start_scoped(config, data, listen, PullScope::Register).await
}

/// [`start`], pulling the RTSP cameras `scope` selects (`vigil demo` pulls only its own).
pub async fn start_scoped(
    config: Config,
    data: DataDir,
    listen: SocketAddr,
    scope: PullScope,
) -> anyhow::Result<Started> {
    let api = config.api()?;
    let options = config.index.options();
    let data = Arc::new(data);
    let (index, store) = {
        let data = data.clone();
        let recording = config.recording.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let index = Arc::new(data.open_index(&options)?);
            // The store's recovery first: it closes recording intervals exactly (see
            // `recording`), the heartbeat rule below closes what is left.
            let store = recording
                .enabled
                .then(|| recording::open_store(&recording, data.root(), index.clone()))
                .transpose()?;
            recover(&data, &index)?;
            data.set_run_state(&RunState {
                last_alive: now(),
                clean: false,
            })?;
            Ok((index, store))
        })
        .await??
    };
    let recording =
        store.map(|s| RecordingService::new(s, index.clone(), &config.recording, scope));
    // GB/T 28181 channels are recorded into the same store as the RTSP cameras.
    let gb28181 = match config.gb28181.enabled {
        true => {
            let store = recording.as_ref().map(|r| r.handle().store().clone());
            Some(gb28181::start(&config.gb28181, index.clone(), store).await?)
        }
        false => None,
    };
    let subsystems = Subsystems {
        recordings: recording.as_ref().map(RecordingService::handle),
        gb28181: gb28181.as_ref().map(Gb28181Service::handle),
    };
    let state = AppState::new(index.clone(), api, subsystems);
    let http = HttpServer::bind(listen, state).await?;
    let addr = http.local_addr()?;
    Ok(Started {
        data,
        index,
        http,
        addr,
        config,
        recording,
        gb28181,
    })
}

/// After an unclean stop, closes the intervals left open at the last heartbeat.
fn recover(data: &DataDir, index: &Index) -> anyhow::Result<()> {
    match data.run_state()? {
        Some(RunState {
            last_alive,
            clean: false,
        }) => {
            let closed = index
                .close_open_intervals(last_alive)
                .context("closing the status intervals left open by the last run")?;
            tracing::warn!(
                closed,
                last_alive = %last_alive,
                "the previous run did not stop cleanly; closed the status intervals it left open \
                 at its last heartbeat"
            );
        }
        Some(RunState { clean: true, .. }) => {}
        None => tracing::info!(dir = %data.root().display(), "first start in this data directory"),
    }
    Ok(())
}

impl Started {
    /// The address the HTTP API is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The open index (for `vigil demo` to load its city before serving).
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The GB/T 28181 server's SIP UDP address, when it runs (for `vigil demo`'s device).
    pub fn gb28181_sip_addr(&self) -> Option<SocketAddr> {
        self.gb28181.as_ref().map(Gb28181Service::sip_udp_addr)
    }

    /// Serves until `stop` is cancelled (or a subsystem fails), then stops cleanly (see the
    /// module docs).
    pub async fn serve(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Started {
            data,
            index,
            http,
            addr,
            config,
            recording,
            gb28181,
        } = self;
        tracing::info!(%addr, dir = %data.root().display(), "serving the HTTP API");
        let heartbeat = Heartbeat {
            data: data.clone(),
            every: Duration::from_secs(config.service.heartbeat_secs),
        };
        let mut subsystems: Vec<Box<dyn Subsystem>> = vec![Box::new(http), Box::new(heartbeat)];
        if let Some(gb28181) = gb28181 {
            subsystems.push(Box::new(gb28181));
        }
        if let Some(recording) = recording {
            subsystems.push(Box::new(recording));
        }
        let outcome = supervisor::supervise(
            subsystems,
            stop,
            Duration::from_secs(config.service.grace_secs),
        )
        .await;
        let stopped = tokio::task::spawn_blocking(move || stop_cleanly(&data, &index)).await?;
        outcome.and(stopped)
    }
}

/// Closes open intervals at the stop instant, flushes, records the clean stop.
fn stop_cleanly(data: &DataDir, index: &Index) -> anyhow::Result<()> {
    let at = now();
    let closed = index
        .close_open_intervals(at)
        .context("closing open status intervals at the stop")?;
    index.flush().context("flushing the index at the stop")?;
    data.set_run_state(&RunState {
        last_alive: at,
        clean: true,
    })?;
    tracing::info!(closed, at = %at, "stopped cleanly: open status intervals closed, index flushed");
    Ok(())
}

/// Marks the daemon alive every `every` (see the module docs).
struct Heartbeat {
    data: Arc<DataDir>,
    every: Duration,
}

impl Subsystem for Heartbeat {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn run(self: Box<Self>, stop: CancellationToken) -> Run {
        Box::pin(async move {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {
                        let data = self.data.clone();
                        let written = tokio::task::spawn_blocking(move || {
                            data.set_run_state(&RunState { last_alive: now(), clean: false })
                        })
                        .await?;
                        // A missed mark only makes crash recovery more conservative; keep serving.
                        if let Err(e) = written {
                            tracing::error!(error = format!("{e:#}"), "cannot record the heartbeat");
                        }
                    }
                }
            }
        })
    }
}
