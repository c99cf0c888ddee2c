//! Authentication: `Authorization: Bearer vigil_<id>_<secret>` → the caller (token ID, role,
//! name), and issuing tokens (the CLI and `POST /api/v1/tokens` share [`issue`]).
//!
//! The token is looked up by its ID; its secret is hashed and compared with the stored hash in
//! constant time ([`crate::token`]). A missing, malformed, unknown or wrong token gets the same
//! 401 answer, so the response says nothing about which part was wrong; only a token whose
//! secret matched learns that it was revoked.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa::ToSchema;
use vigil_core::role::Role;
use vigil_core::time::Timestamp;
use vigil_index::{Index, IndexError, TokenRecord};

use crate::policy::{self, Permission};
use crate::problem::Problem;
use crate::state::AppState;
use crate::token::{self, TokenError};

/// Who is calling: the verified token's ID, role and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Caller {
    /// The token's public ID (what the audit log records as the actor).
    pub token_id: String,
    /// The token's role.
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
    /// Who holds the token.
    pub name: String,
}

impl Caller {
    /// Passes if the caller's role holds `permission` (see [`crate::policy`]), else 403.
    pub fn require(self, permission: Permission) -> Result<Caller, Problem> {
        if policy::allows(self.role, permission) {
            Ok(self)
        } else {
            Err(Problem::forbidden(format!(
                "role {} does not have permission {permission}",
                self.role
            )))
        }
    }

    /// The actor string recorded in the audit log.
    pub fn actor(&self) -> String {
        format!("token:{}", self.token_id)
    }
}

const INVALID: &str =
    "missing or invalid API token; send Authorization: Bearer vigil_<id>_<secret>";

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized(INVALID))?;
        let text = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Problem::unauthorized(INVALID))?
            .trim()
            .to_owned();
        state.blocking(move |index| verify(index, &text)).await
    }
}

/// Verifies a presented token against the index.
pub fn verify(index: &Index, presented: &str) -> Result<Caller, Problem> {
    let parsed = token::parse(presented).map_err(|_| Problem::unauthorized(INVALID))?;
    let record = index
        .token(parsed.id)?
        .ok_or_else(|| Problem::unauthorized(INVALID))?;
    if !parsed.matches(&record.secret_hash) {
        return Err(Problem::unauthorized(INVALID));
    }
    if let Some(at) = record.revoked_at {
        return Err(Problem::unauthorized(format!(
            "API token {} was revoked at {at}",
            record.id
        )));
    }
    Ok(Caller {
        token_id: record.id,
        role: record.role,
        name: record.name,
    })
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Minting failed (no randomness).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Storing failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The holder's name is empty or too long.
    #[error("token name must be 1-200 characters and not blank")]
    BadName,
}

/// Mints a token for `role`, stores its hash and returns the record and the token text (shown
/// once, never stored).
pub fn issue(
    index: &Index,
    role: Role,
    name: &str,
    now: Timestamp,
) -> Result<(TokenRecord, String), IssueError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(IssueError::BadName);
    }
    let minted = token::mint()?;
    let record = TokenRecord {
        id: minted.id,
        role,
        name: name.to_owned(),
        secret_hash: minted.secret_hash.to_vec(),
        created_at: now,
        revoked_at: None,
    };
    index.create_token(&record)?;
    Ok((record, minted.token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn issued_tokens_verify_until_revoked() {
        let index = Index::temporary().unwrap();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let (record, text) = issue(&index, Role::Integrator, "集成商 A", now).unwrap();
        let caller = verify(&index, &text).unwrap();
        assert_eq!(caller.role, Role::Integrator);
        assert_eq!(caller.token_id, record.id);
        assert!(caller.clone().require(Permission::RegisterCameras).is_ok());
        let denied = caller.require(Permission::SetTargets).unwrap_err();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);

        // A token with the right ID and a wrong secret is refused like an unknown one.
        let forged = format!(
            "{}{}",
            &text[..text.len() - 1],
            if text.ends_with('0') { '1' } else { '0' }
        );
        let e = verify(&index, &forged).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(e.detail.as_deref(), Some(INVALID));

        index.revoke_token(&record.id, now).unwrap();
        let e = verify(&index, &text).unwrap_err();
        assert!(e.detail.unwrap_or_default().contains("revoked"));
    }

    #[test]
    fn names_are_required() {
        let index = Index::temporary().unwrap();
        assert!(matches!(
            issue(&index, Role::Admin, "  ", Timestamp::EPOCH),
            Err(IssueError::BadName)
        ));
    }
}
