//! Domain types and rules, no I/O: GB/T 28181 IDs, grids, key sites, cameras, targets, status
//! intervals and the compliance figures.
//!
//! Map of the crate, from the smallest pieces up:
//! - [`time`]: `Timestamp` (ms since the epoch, UTC), half-open `Interval`s, `IntervalSet`
//!   histories with binary-search queries;
//! - [`id`]: the only GB/T 28181 ID / domain / CivilCode parser;
//! - [`civil`]: the one place a CivilCode is mapped to a grid;
//! - [`geo`], [`grid`], [`site`], [`camera`], [`status`], [`role`]: the records;
//! - [`ratio`], [`target`]: exact figures, exact targets, deadline progress;
//! - [`model`]: the in-memory model (cheap snapshots) and its validated changes;
//! - [`compliance`]: the one place figures are computed;
//! - [`import`]: the import-file row shapes shared by generator, index and API;
//! - `openapi` (feature `openapi`): OpenAPI schemas of the public shapes, for the API's document.

pub mod camera;
mod chunked;
pub mod civil;
pub mod compliance;
pub mod geo;
pub mod grid;
pub mod id;
pub mod import;
mod key;
pub mod model;
#[cfg(feature = "openapi")]
mod openapi;
pub mod ratio;
pub mod role;
pub mod site;
pub mod status;
pub mod target;
pub mod time;
