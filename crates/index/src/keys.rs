//! Key layout and value encodings. Everything lives in sled's default tree so that one
//! `apply_batch` is atomic across record kinds (a camera import writes records and credentials in
//! one batch).
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `m:schema` | — | schema version, u32 big-endian |
//! | `t:targets` | — | JSON `Targets` |
//! | `g:` | grid code | JSON `Grid` |
//! | `s:` | site id | JSON `KeySite` |
//! | `c:` | camera id (20 B) + effective-from (8 B, ordered) | JSON `Camera` |
//! | `r:` | camera id | JSON RTSP credentials |
//! | `h:` | camera id + kind (`o`/`r`/`u`) + chunk (u32 BE) | packed intervals |
//! | `d:` | camera id + chunk | packed diagnoses |
//! | `u:` | platform id + chunk | packed intervals (uplink) |
//! | `k:` | token id | JSON token |
//! | `a:` | time (8 B, ordered) + sequence (u64 BE) | JSON audit entry |
//! | `v:` | camera id + segment start (8 B, ordered, 90 kHz) | binary segment record (`recordings.rs`) |
//! | `q:` | state byte (`w`/`d`) + camera id + segment start | empty: segments recovery must visit |
//! | `y:` | camera id | JSON retention policy |
//! | `m:store` | — | identity of the segment store |
//! | `x:` | camera id | JSON report of the camera's latest RTSP access test (接入检测) |
//!
//! Histories are stored in chunks of [`CHUNK`] entries (chunk `k` holds entries `k·C … k·C+C−1`
//! of the in-memory sequence), so a live transition rewrites one small value, not the camera's
//! whole history, and loading reads few keys. Camera, history and diagnosis keys all start with
//! the camera ID, so loading merges three ID-ordered scans without intermediate maps.

use vigil_core::id::GbId;
use vigil_core::status::{Diagnosis, QualityCheck, StatusKind};
use vigil_core::time::{Interval, Timestamp};

/// Entries per stored history chunk.
pub(crate) const CHUNK: usize = 64;

pub(crate) const SCHEMA_KEY: &[u8] = b"m:schema";
pub(crate) const TARGETS_KEY: &[u8] = b"t:targets";
pub(crate) const GRID: &[u8] = b"g:";
pub(crate) const SITE: &[u8] = b"s:";
pub(crate) const CAMERA: &[u8] = b"c:";
pub(crate) const CREDENTIALS: &[u8] = b"r:";
pub(crate) const HISTORY: &[u8] = b"h:";
pub(crate) const DIAGNOSIS: &[u8] = b"d:";
pub(crate) const UPLINK: &[u8] = b"u:";
pub(crate) const TOKEN: &[u8] = b"k:";
pub(crate) const AUDIT: &[u8] = b"a:";
pub(crate) const SEGMENT: &[u8] = b"v:";
pub(crate) const SEGMENT_MARKER: &[u8] = b"q:";
pub(crate) const RETENTION: &[u8] = b"y:";
pub(crate) const STORE_ID_KEY: &[u8] = b"m:store";
pub(crate) const ACCESS_TEST: &[u8] = b"x:";

/// Big-endian bytes of an i64 with the sign bit flipped, so byte order = numeric order.
pub(crate) fn ord_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn unord_i64(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    k.extend_from_slice(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub(crate) fn grid_key(code: &str) -> Vec<u8> {
    key(GRID, &[code.as_bytes()])
}

pub(crate) fn site_key(id: &str) -> Vec<u8> {
    key(SITE, &[id.as_bytes()])
}

pub(crate) fn camera_prefix(id: &GbId) -> Vec<u8> {
    key(CAMERA, &[id.as_bytes()])
}

pub(crate) fn camera_key(id: &GbId, from: Timestamp) -> Vec<u8> {
    key(CAMERA, &[id.as_bytes(), &ord_i64(from.as_millis())])
}

pub(crate) fn credentials_key(id: &GbId) -> Vec<u8> {
    key(CREDENTIALS, &[id.as_bytes()])
}

pub(crate) fn access_test_key(id: &GbId) -> Vec<u8> {
    key(ACCESS_TEST, &[id.as_bytes()])
}

pub(crate) fn kind_byte(kind: StatusKind) -> u8 {
    match kind {
        StatusKind::Online => b'o',
        StatusKind::Recording => b'r',
        StatusKind::Upload => b'u',
    }
}

pub(crate) fn kind_from_byte(b: u8) -> Option<StatusKind> {
    match b {
        b'o' => Some(StatusKind::Online),
        b'r' => Some(StatusKind::Recording),
        b'u' => Some(StatusKind::Upload),
        _ => None,
    }
}

pub(crate) fn history_prefix(id: &GbId) -> Vec<u8> {
    key(HISTORY, &[id.as_bytes()])
}

pub(crate) fn history_key(id: &GbId, kind: StatusKind, chunk: u32) -> Vec<u8> {
    key(
        HISTORY,
        &[id.as_bytes(), &[kind_byte(kind)], &chunk.to_be_bytes()],
    )
}

pub(crate) fn diagnosis_prefix(id: &GbId) -> Vec<u8> {
    key(DIAGNOSIS, &[id.as_bytes()])
}

pub(crate) fn diagnosis_key(id: &GbId, chunk: u32) -> Vec<u8> {
    key(DIAGNOSIS, &[id.as_bytes(), &chunk.to_be_bytes()])
}

pub(crate) fn uplink_key(platform: &GbId, chunk: u32) -> Vec<u8> {
    key(UPLINK, &[platform.as_bytes(), &chunk.to_be_bytes()])
}

pub(crate) fn token_key(id: &str) -> Vec<u8> {
    key(TOKEN, &[id.as_bytes()])
}

pub(crate) fn audit_key(at: Timestamp, seq: u64) -> Vec<u8> {
    key(AUDIT, &[&ord_i64(at.as_millis()), &seq.to_be_bytes()])
}

/// The camera/platform ID right after a 2-byte prefix.
pub(crate) fn id_after_prefix(k: &[u8]) -> Option<GbId> {
    k.get(2..22).and_then(|b| GbId::from_bytes(b).ok())
}

/// A key as text for error messages (non-printable bytes escaped).
pub(crate) fn printable(k: &[u8]) -> String {
    k.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// 16 bytes per interval: start, end (i64 BE; end `i64::MAX` = open).
pub(crate) fn encode_intervals(items: &[Interval]) -> Vec<u8> {
    let mut v = Vec::with_capacity(items.len() * 16);
    for iv in items {
        v.extend_from_slice(&iv.start().as_millis().to_be_bytes());
        v.extend_from_slice(&iv.end().as_millis().to_be_bytes());
    }
    v
}

pub(crate) fn decode_intervals(b: &[u8], out: &mut Vec<Interval>) -> Result<(), String> {
    if b.len() % 16 != 0 {
        return Err(format!(
            "interval chunk length {} is not a multiple of 16",
            b.len()
        ));
    }
    for c in b.chunks_exact(16) {
        let s = i64::from_be_bytes(c[..8].try_into().map_err(|_| "short start")?);
        let e = i64::from_be_bytes(c[8..].try_into().map_err(|_| "short end")?);
        let iv = Interval::new(Timestamp::from_millis(s), Timestamp::from_millis(e))
            .map_err(|err| err.to_string())?;
        out.push(iv);
    }
    Ok(())
}

/// 10 bytes per diagnosis: time (i64 BE), check (u8), passed (u8 0/1).
pub(crate) fn encode_diagnoses(items: &[Diagnosis]) -> Vec<u8> {
    let mut v = Vec::with_capacity(items.len() * 10);
    for d in items {
        v.extend_from_slice(&d.at.as_millis().to_be_bytes());
        v.push(d.check.to_u8());
        v.push(u8::from(d.passed));
    }
    v
}

pub(crate) fn decode_diagnoses(b: &[u8], out: &mut Vec<Diagnosis>) -> Result<(), String> {
    if b.len() % 10 != 0 {
        return Err(format!(
            "diagnosis chunk length {} is not a multiple of 10",
            b.len()
        ));
    }
    for c in b.chunks_exact(10) {
        let at = i64::from_be_bytes(c[..8].try_into().map_err(|_| "short time")?);
        let check = QualityCheck::from_u8(c[8]).ok_or_else(|| format!("unknown check {}", c[8]))?;
        let passed = match c[9] {
            0 => false,
            1 => true,
            other => return Err(format!("bad passed flag {other}")),
        };
        out.push(Diagnosis {
            at: Timestamp::from_millis(at),
            check,
            passed,
        });
    }
    Ok(())
}

/// Writes the chunks covering `tail` = entries `base..` of a sequence (`base` is a multiple of
/// [`CHUNK`]) and removes chunks that existed for `old_len` entries but lie beyond the new end.
pub(crate) fn write_chunks<T>(
    batch: &mut sled::Batch,
    tail: &[T],
    base: usize,
    old_len: usize,
    key_of: impl Fn(u32) -> Vec<u8>,
    encode: impl Fn(&[T]) -> Vec<u8>,
) {
    debug_assert_eq!(base % CHUNK, 0);
    let new_len = base + tail.len();
    for (i, chunk) in tail.chunks(CHUNK).enumerate() {
        batch.insert(key_of((base / CHUNK + i) as u32), encode(chunk));
    }
    for k in new_len.div_ceil(CHUNK)..old_len.div_ceil(CHUNK) {
        batch.remove(key_of(k as u32));
    }
}

/// The first index of the chunk holding entry `index`.
pub(crate) fn chunk_base(index: usize) -> usize {
    (index / CHUNK) * CHUNK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_i64_sorts_numerically() {
        let vals = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in vals.windows(2) {
            assert!(ord_i64(w[0]) < ord_i64(w[1]));
            assert_eq!(unord_i64(&ord_i64(w[0])), Some(w[0]));
        }
    }

    #[test]
    fn interval_and_diagnosis_codecs_round_trip_and_reject_garbage() {
        let items = vec![
            Interval::new(Timestamp::from_millis(1), Timestamp::from_millis(5)).unwrap(),
            Interval::open(Timestamp::from_millis(9)),
        ];
        let mut out = Vec::new();
        decode_intervals(&encode_intervals(&items), &mut out).unwrap();
        assert_eq!(out, items);
        assert!(decode_intervals(&[0; 15], &mut Vec::new()).is_err());
        let mut reversed = encode_intervals(&items[..1]);
        reversed.swap(7, 15);
        assert!(decode_intervals(&reversed, &mut Vec::new()).is_err());
        let diags = vec![Diagnosis {
            at: Timestamp::from_millis(-3),
            check: QualityCheck::Occlusion,
            passed: false,
        }];
        let mut out = Vec::new();
        decode_diagnoses(&encode_diagnoses(&diags), &mut out).unwrap();
        assert_eq!(out, diags);
        let mut bad = encode_diagnoses(&diags);
        bad[9] = 7;
        assert!(decode_diagnoses(&bad, &mut Vec::new()).is_err());
    }
}
