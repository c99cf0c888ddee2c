//! API token format and hashing.
//!
//! A token reads `vigil_<id>_<secret>`: `id` is 12 lowercase hex digits that name the token (it
//! appears in the audit log and in `vigil token list`), `secret` is 64 hex digits (256 random bits).
//! Only SHA-256 of the secret is stored. A slow password hash would add nothing: the secret is
//! random and as long as the hash, so the stored hash cannot be brute-forced, and a fast hash keeps
//! every request cheap. The comparison is constant-time so response timing says nothing about how
//! much of a guessed secret was right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "vigil_";
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// A freshly minted token: the string to hand to the user once, and what to store.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub id: String,
    /// The full token. Shown once, never stored.
    pub token: String,
    pub secret_hash: [u8; 32],
}

/// A presented token split into its parts (the secret is not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    pub id: &'a str,
    secret: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("malformed token: expected vigil_<12 hex>_<64 hex>")]
    Malformed,
}

/// Mints a new random token.
pub fn mint() -> Result<MintedToken, TokenError> {
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    getrandom::fill(&mut id).map_err(|e| TokenError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    Ok(MintedToken {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    })
}

/// Splits a presented token; rejects anything not shaped like one we mint.
pub fn parse(token: &str) -> Result<PresentedToken<'_>, TokenError> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !is_hex(id, ID_HEX) || !is_hex(secret, SECRET_HEX) {
        return Err(TokenError::Malformed);
    }
    Ok(PresentedToken { id, secret })
}

impl PresentedToken<'_> {
    /// Whether this token's secret matches the stored hash, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        let presented = hash_secret(self.secret);
        stored_hash.len() == presented.len() && bool::from(presented.ct_eq(stored_hash))
    }
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_parses_and_matches_its_hash() {
        let minted = mint().unwrap();
        let presented = parse(&minted.token).unwrap();
        assert_eq!(presented.id, minted.id);
        assert!(presented.matches(&minted.secret_hash));
    }

    #[test]
    fn another_tokens_hash_does_not_match() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_ne!(a.id, b.id);
        assert!(!parse(&a.token).unwrap().matches(&b.secret_hash));
        assert!(!parse(&a.token).unwrap().matches(&[]));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good = mint().unwrap().token;
        for bad in [
            "",
            "Bearer x",
            &good[1..],
            &good[..good.len() - 1],
            &good.to_uppercase(),
            &good.replace('_', "-"),
        ] {
            assert_eq!(parse(bad), Err(TokenError::Malformed), "{bad}");
        }
    }
}
