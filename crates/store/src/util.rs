//! Small shared helpers.

use std::sync::Arc;

use vigil_index::StreamInfo;
use vigil_media::VideoParameters;

/// 64-bit FNV-1a: a hash that is stable across builds and platforms (used for the rotation
/// phase of a camera and for the parameters id stored in the index).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether two parameter sets are the same (pointer first, then by value: sources keep one
/// `Arc` while nothing changes).
pub fn same_params(a: &Arc<VideoParameters>, b: &Arc<VideoParameters>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// The index's summary of a stream's parameters.
pub fn stream_info(p: &VideoParameters) -> StreamInfo {
    StreamInfo {
        codec: p.rfc6381_codec().to_owned(),
        width: p.width(),
        height: p.height(),
        frame_rate: p.frame_rate(),
        params_id: fnv1a(p.sample_entry()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
