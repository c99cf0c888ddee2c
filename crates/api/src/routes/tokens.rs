//! API tokens (admin). The first admin token comes from the CLI (`vigil token create`); later
//! ones can be made here while the daemon runs. A token's secret is shown once, in the answer
//! that creates it; only its SHA-256 is stored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_core::role::Role;
use vigil_core::time::Timestamp;
use vigil_index::TokenRecord;

use crate::audit::{self, Change};
use crate::auth::{self, Caller, IssueError};
use crate::extract::{JsonBody, PathParam};
use crate::policy::Permission;
use crate::problem::{ApiResult, FieldError, Problem, Problems};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token as listed (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Public ID (the actor in the audit log).
    pub id: String,
    /// `admin`, `operator`, `integrator` or `auditor`.
    #[schema(value_type = String)]
    pub role: Role,
    /// Who holds it.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        TokenView {
            id: t.id.clone(),
            role: t.role,
            name: t.name.clone(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// Every token, by ID.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), Problems), security(("bearer" = [])))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    caller.require(Permission::ManageTokens)?;
    let tokens = state.blocking(|index| Ok(index.tokens()?)).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// A new token's role and holder.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// `admin`, `operator`, `integrator` or `auditor`.
    pub role: String,
    /// Who will hold it.
    pub name: String,
}

/// A created token: the only time its text is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token record.
    #[serde(flatten)]
    pub record: TokenView,
    /// `vigil_<id>_<secret>`: send as `Authorization: Bearer <token>`. Not stored; keep it.
    pub token: String,
}

/// Create a token (the answer holds its text, shown this once).
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), Problems), security(("bearer" = [])))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let caller = caller.require(Permission::ManageTokens)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: vigil_core::status::UnknownName| {
            Problem::invalid(
                e.to_string(),
                vec![FieldError::new(e.to_string()).field("role")],
            )
        })?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let (record, token) =
                auth::issue(index, role, &body.name, now).map_err(|e| match e {
                    IssueError::BadName => Problem::invalid(
                        e.to_string(),
                        vec![FieldError::new(e.to_string()).field("name")],
                    ),
                    IssueError::Index(e) => e.into(),
                    IssueError::Token(e) => Problem::internal(&e),
                })?;
            let view = TokenView::from(&record);
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "token.create",
                    target: record.id.clone(),
                    before: None,
                    after: audit::json(&view),
                },
            )?;
            Ok((
                StatusCode::CREATED,
                Json(CreatedToken {
                    record: view,
                    token,
                }),
            ))
        })
        .await
}

/// Revoke a token (kept, marked revoked, for the audit trail). Revoking twice keeps the first
/// time.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token ID (12 hex digits)")),
    responses((status = 200, body = TokenView), Problems), security(("bearer" = [])))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam,
) -> ApiResult<Json<TokenView>> {
    let caller = caller.require(Permission::ManageTokens)?;
    let _w = state.write_lock().await;
    let now = state.now();
    state
        .blocking(move |index| {
            let before = index
                .token(&id)?
                .ok_or_else(|| Problem::not_found(format!("API token {id} does not exist")))?;
            let after = index.revoke_token(&id, now)?;
            audit::append(
                index,
                now,
                Change {
                    actor: caller.actor(),
                    action: "token.revoke",
                    target: id.clone(),
                    before: audit::json(&TokenView::from(&before)),
                    after: audit::json(&TokenView::from(&after)),
                },
            )?;
            Ok(Json(TokenView::from(&after)))
        })
        .await
}
