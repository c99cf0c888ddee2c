//! The HTTP API (axum) under `/api/v1`: resources, imports, reports, auth and the OpenAPI
//! document.
//!
//! Map of the crate:
//! - [`router`] builds the service: routes ([`routes`]), fallbacks and layers (body limit,
//!   panic catching, request tracing);
//! - [`state`]: what handlers reach (index, settings, handles to other subsystems);
//! - [`auth`], [`token`], [`policy`]: tokens, the caller, the role → permission table;
//! - [`problem`], [`error`], [`extract`], [`params`]: problem documents and the extractors and
//!   parameter parsers that produce them;
//! - [`text`], [`ingest`], [`imports`]: reading UTF-8/GB18030 CSV/JSON files and running imports
//!   (shared with `vigil import`);
//! - [`recording`]: the recording subsystem's handle (store, RTSP pullers, access test,
//!   snapshots) and each camera's recording state;
//! - [`gb28181`]: the GB/T 28181 subsystem's handle (SIP server views and control) and what
//!   the daemon filed from each device's catalog;
//! - [`reports`]: the report questions and their CSV renderings (shared with `vigil report`);
//! - [`audit`]: writing the audit log; [`views`]: the API's own response shapes;
//! - [`openapi`]: the document's metadata (paths come from the route registrations).

pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod gb28181;
pub mod imports;
pub mod ingest;
pub mod openapi;
pub mod params;
pub mod policy;
pub mod problem;
pub mod recording;
pub mod reports;
pub mod routes;
pub mod state;
pub mod text;
pub mod token;
pub mod views;

use std::any::Any;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::problem::Problem;
pub use crate::state::{ApiConfig, AppState, SubsystemHandle, SubsystemHealth, Subsystems};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";

fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(PREFIX, routes::v1())
        .split_for_parts()
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The whole HTTP service over `state`.
pub fn router(state: AppState) -> Router {
    let (router, api) = parts();
    let spec = Arc::new(api.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document cannot be serialised");
        "{}".to_owned()
    }));
    let limit = state.config().max_body_bytes;
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(spec))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn no_route(OriginalUri(uri): OriginalUri) -> Problem {
    Problem::no_route(uri.path())
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Problem {
    Problem::method_not_allowed(method.as_str(), uri.path())
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    Problem::internal(&format!("a handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests;
