//! API tokens. The API crate hashes secrets; the index stores the hash bytes as given and
//! never sees a secret. Token changes are fsynced before returning.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigil_core::role::Role;
use vigil_core::time::Timestamp;

use crate::error::IndexError;
use crate::{encode_json, keys, Index};

/// A stored API token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public identifier (shown in the audit log), 1–64 characters `A–Z a–z 0–9 - _ .`.
    pub id: String,
    /// What the token may do.
    pub role: Role,
    /// Who or what holds it.
    pub name: String,
    /// Hash of the secret (algorithm chosen by the API crate), stored as hex in JSON.
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub secret_hash: Vec<u8>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("name", &self.name)
            .field("secret_hash", &"***")
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

fn hex_ser<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.serialize_str(&text)
}

fn hex_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    if text.len() % 2 != 0 {
        return Err(serde::de::Error::custom("odd number of hex digits"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| serde::de::Error::custom("bad hex digit"))
        })
        .collect()
}

fn check_id(id: &str) -> Result<(), IndexError> {
    let reason = if id.is_empty() || id.len() > 64 {
        Some("must be 1-64 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("only A-Z, a-z, 0-9, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IndexError::BadTokenId {
            id: id.chars().take(64).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

impl Index {
    /// Stores a new token; fails if the ID is taken.
    pub fn create_token(&self, token: &TokenRecord) -> Result<(), IndexError> {
        check_id(&token.id)?;
        let _w = self.lock_writer()?;
        let key = keys::token_key(&token.id);
        let value = encode_json(&format!("token {}", token.id), token)?;
        let swapped = self
            .db
            .compare_and_swap(&key, None as Option<&[u8]>, Some(value))
            .map_err(|e| IndexError::storage(format!("creating token {}", token.id), e))?;
        if swapped.is_err() {
            return Err(IndexError::TokenExists {
                id: token.id.clone(),
            });
        }
        self.flush()
    }

    /// One token.
    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, IndexError> {
        let key = keys::token_key(id);
        let Some(v) = self
            .db
            .get(&key)
            .map_err(|e| IndexError::storage(format!("reading token {id}"), e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| IndexError::corrupt(&key, e))
    }

    /// Every token, by ID.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, IndexError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(keys::TOKEN) {
            let (k, v) = kv.map_err(|e| IndexError::storage("listing tokens", e))?;
            out.push(serde_json::from_slice(&v).map_err(|e| IndexError::corrupt(&k, e))?);
        }
        Ok(out)
    }

    /// Marks a token revoked at `at` (kept for the audit trail). Revoking twice keeps the
    /// first time.
    pub fn revoke_token(&self, id: &str, at: Timestamp) -> Result<TokenRecord, IndexError> {
        let _w = self.lock_writer()?;
        let mut token = self
            .token(id)?
            .ok_or_else(|| IndexError::UnknownToken { id: id.to_owned() })?;
        if token.revoked_at.is_none() {
            token.revoked_at = Some(at);
            let value = encode_json(&format!("token {id}"), &token)?;
            self.db
                .insert(keys::token_key(id), value)
                .map_err(|e| IndexError::storage(format!("revoking token {id}"), e))?;
            self.flush()?;
        }
        Ok(token)
    }
}
