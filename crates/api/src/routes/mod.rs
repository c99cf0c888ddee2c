//! The routes under `/api/v1`, one module per resource. Every route is registered with
//! `utoipa_axum::routes!` on an `OpenApiRouter`, so the router and the OpenAPI document come
//! from the same registrations (a test in `crate::openapi` checks that nothing bypasses this).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use crate::reports::CSV_MEDIA_TYPE;
use crate::state::AppState;

pub mod acceptance;
pub mod audit;
pub mod cameras;
pub mod gb28181;
pub mod grids;
pub mod imports;
pub mod recordings;
pub mod reports;
pub mod sites;
pub mod status;
pub mod system;
pub mod tokens;

/// Every route of `/api/v1` (paths relative to it).
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(system::router())
        .merge(grids::router())
        .merge(sites::router())
        .merge(cameras::router())
        .merge(status::router())
        .merge(imports::router())
        .merge(reports::router())
        .merge(audit::router())
        .merge(tokens::router())
        .merge(recordings::router())
        .merge(acceptance::router())
        .merge(gb28181::router())
}

/// A CSV file answer.
pub(crate) fn csv_answer(bytes: Vec<u8>, filename: &str) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (header::CONTENT_TYPE, CSV_MEDIA_TYPE.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}
