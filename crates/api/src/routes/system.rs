//! Service endpoints: health, the caller's identity and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::policy::{self, Permission};
use crate::problem::{ApiResult, Problems};
use crate::state::{AppState, SubsystemHealth};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(me))
        .routes(routes!(openapi))
}

/// Whether the service is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every subsystem is healthy, else `degraded`.
    pub status: String,
    /// vigil's version.
    pub version: String,
    /// The index and every other subsystem the daemon runs.
    pub subsystems: Vec<SubsystemHealth>,
}

/// Liveness and subsystem health (no token needed; says nothing about the data).
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), Problems))]
async fn health(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let index = state
        .blocking(|index| {
            Ok(match index.grid_count() {
                Ok(_) => SubsystemHealth {
                    name: "index".to_owned(),
                    healthy: true,
                    detail: "open".to_owned(),
                },
                Err(e) => SubsystemHealth {
                    name: "index".to_owned(),
                    healthy: false,
                    detail: e.to_string(),
                },
            })
        })
        .await?;
    let mut subsystems = vec![index];
    subsystems.extend(state.subsystems().present().map(|s| s.health()));
    let healthy = subsystems.iter().all(|s| s.healthy);
    Ok(Json(Health {
        status: if healthy { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        subsystems,
    }))
}

/// The caller as the API sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The verified token.
    #[serde(flatten)]
    pub caller: Caller,
    /// What the role may do.
    pub permissions: Vec<Permission>,
}

/// Who the token belongs to and what it may do.
#[utoipa::path(get, path = "/me", tag = "system",
    responses((status = 200, body = Me), Problems), security(("bearer" = [])))]
async fn me(caller: Caller) -> Json<Me> {
    let permissions = policy::permissions(caller.role);
    Json(Me {
        caller,
        permissions,
    })
}

/// The OpenAPI document (JSON) of the endpoints under /api/v1, generated from the same
/// registrations that build the router.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
async fn openapi(Extension(spec): Extension<Arc<String>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.as_str().to_owned(),
    )
        .into_response()
}
