//! Unpredictable tokens (tags, branches, Call-IDs, nonces) without reading an OS source.
//!
//! Sans-IO code must not reach for randomness on its own, and tests need reproducible output.
//! [`TokenGen`] is seeded once by the caller (the server seeds it from the OS RNG) and derives
//! each token as HMAC-SHA-256(seed, counter): unpredictable to anyone without the seed,
//! deterministic for a given seed, never repeating within 2^64 tokens.

use sha2::{Digest, Sha256};

/// HMAC-SHA-256 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keyed generator of SIP tokens.
#[derive(Clone)]
pub struct TokenGen {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for TokenGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TokenGen")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl TokenGen {
    /// A generator keyed by `seed` (use 32 bytes from the OS RNG in production).
    pub fn new(seed: [u8; 32]) -> Self {
        TokenGen {
            key: seed,
            counter: 0,
        }
    }

    /// 32 fresh pseudo-random bytes.
    pub fn next_bytes(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        hmac_sha256(&self.key, &[b"token", &self.counter.to_be_bytes()])
    }

    /// A fresh u64.
    pub fn next_u64(&mut self) -> u64 {
        let b = self.next_bytes();
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// A From/To tag. Decimal, like the tags GB devices generate themselves (vectors 01-53),
    /// because some device stacks store tags in integer fields.
    pub fn tag(&mut self) -> String {
        (self.next_u64() % 4_000_000_000 + 100_000_000).to_string()
    }

    /// A Via branch with the RFC 3261 magic cookie.
    pub fn branch(&mut self) -> String {
        let b = self.next_bytes();
        format!("z9hG4bK{}", hex(&b[..10]))
    }

    /// A Call-ID, optionally qualified by our host.
    pub fn call_id(&mut self, host: Option<&str>) -> String {
        let b = self.next_bytes();
        match host {
            Some(h) => format!("{}@{}", hex(&b[..12]), h),
            None => hex(&b[..12]),
        }
    }

    /// A digest client nonce.
    pub fn cnonce(&mut self) -> String {
        let b = self.next_bytes();
        hex(&b[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_long_key_is_hashed_first() {
        // RFC 4231 test case 6: 131-byte key of 0xaa.
        let key = [0xaau8; 131];
        let mac = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tokens_are_deterministic_per_seed_and_distinct() {
        let mut a = TokenGen::new([7; 32]);
        let mut b = TokenGen::new([7; 32]);
        let mut c = TokenGen::new([8; 32]);
        let ta = a.branch();
        assert_eq!(ta, b.branch());
        assert_ne!(ta, c.branch());
        assert!(ta.starts_with("z9hG4bK"));
        assert_ne!(a.tag(), a.tag());
        assert!(a.tag().bytes().all(|x| x.is_ascii_digit()));
        assert!(a.call_id(Some("10.0.0.1")).ends_with("@10.0.0.1"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
