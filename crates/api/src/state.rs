//! What every handler can reach: the index, the API settings, and handles to the subsystems the
//! daemon runs next to the API.
//!
//! # Extension point for other subsystems
//! The recording store with its RTSP pullers and the GB/T 28181 server are wired in by the
//! daemon as separate modules. Each hands the API a handle through [`Subsystems`]: the API asks
//! every handle for its [`SubsystemHealth`] (shown by `GET /api/v1/health`); a subsystem that
//! serves routes (playback, export, device lists) adds its own router module under `routes/`
//! and reads its handle from [`AppState::subsystems`]. The recording handle is the concrete
//! [`crate::recording::Recording`] (`routes/recordings.rs`, `routes/acceptance.rs`), the GB/T 28181
//! handle the concrete [`crate::gb28181::Gb28181`] (`routes/gb28181.rs`). A field
//! that is `None` means the daemon does not run that subsystem, and its routes answer 503.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::compliance::ComplianceOptions;
use vigil_core::time::{Timestamp, DAY_MS};
use vigil_index::{Index, RtspIdPolicy};

use crate::problem::{ApiResult, Problem};

/// API settings (the daemon fills them from its configuration).
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest accepted request body; larger bodies get a 413 problem.
    pub max_body_bytes: usize,
    /// How to give IDs to RTSP cameras registered without one; `None` = such rows are refused.
    pub rtsp_ids: Option<RtspIdPolicy>,
    /// Recording scope, ranking weights, report threads.
    pub compliance: ComplianceOptions,
    /// Report window when a request gives none (ms).
    pub default_window_ms: i64,
    /// Page size of lists when a request gives none.
    pub default_page_size: usize,
    /// Largest page size a request may ask for.
    pub max_page_size: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 64 << 20,
            rtsp_ids: None,
            compliance: ComplianceOptions::default(),
            default_window_ms: DAY_MS,
            default_page_size: 100,
            max_page_size: 10_000,
        }
    }
}

/// How a subsystem is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SubsystemHealth {
    /// Which subsystem (`index`, `recordings`, `gb28181`, …).
    pub name: String,
    /// Whether it is working.
    pub healthy: bool,
    /// A short human-readable state (e.g. "312 of 320 cameras pulling").
    pub detail: String,
}

/// What the API can ask of a subsystem the daemon runs (see the module docs).
pub trait SubsystemHandle: Send + Sync {
    /// Its current health.
    fn health(&self) -> SubsystemHealth;
}

/// Handles to the subsystems running next to the API (see the module docs).
#[derive(Clone, Default)]
pub struct Subsystems {
    /// Recording store and RTSP pullers.
    pub recordings: Option<Arc<crate::recording::Recording>>,
    /// GB/T 28181 SIP server and cascade uplink.
    pub gb28181: Option<Arc<crate::gb28181::Gb28181>>,
}

impl Subsystems {
    /// The handles that are present, in a fixed order.
    pub fn present(&self) -> impl Iterator<Item = &dyn SubsystemHandle> + '_ {
        let recordings = self
            .recordings
            .as_deref()
            .map(|r| r as &dyn SubsystemHandle);
        let gb28181 = self.gb28181.as_deref().map(|g| g as &dyn SubsystemHandle);
        recordings.into_iter().chain(gb28181)
    }
}

struct Inner {
    index: Arc<Index>,
    config: ApiConfig,
    subsystems: Subsystems,
    /// Serialises the API's read-modify-write sequences (existence check, change, audit entry)
    /// so that the before/after an audit entry records is exactly what the change did.
    writes: tokio::sync::Mutex<()>,
}

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// State over an open index.
    pub fn new(index: Arc<Index>, config: ApiConfig, subsystems: Subsystems) -> AppState {
        AppState(Arc::new(Inner {
            index,
            config,
            subsystems,
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    /// The index.
    pub fn index(&self) -> &Arc<Index> {
        &self.0.index
    }

    /// The API settings.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// Handles to the other subsystems.
    pub fn subsystems(&self) -> &Subsystems {
        &self.0.subsystems
    }

    /// The current instant (the wall clock; reports take an explicit `at` when reproducibility
    /// matters).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }

    /// Runs index work on the blocking pool: index calls take locks, may fsync, and reports
    /// over a city take tens of milliseconds, none of which may stall the async workers.
    pub async fn blocking<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&Index) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let index = self.0.index.clone();
        tokio::task::spawn_blocking(move || f(&index))
            .await
            .map_err(|e| Problem::internal(&e))?
    }

    /// Takes the API's write lock (see [`Inner::writes`]).
    pub async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.writes.lock().await
    }

    /// Clamps a requested page size.
    pub fn page_size(&self, requested: Option<usize>) -> usize {
        requested
            .unwrap_or(self.0.config.default_page_size)
            .clamp(1, self.0.config.max_page_size)
    }
}
