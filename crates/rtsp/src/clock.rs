//! Wall-clock time for `received_at` and states.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_core::time::Timestamp;

/// Now, as a domain timestamp (milliseconds since the epoch, UTC).
pub(crate) fn now() -> Timestamp {
    // A clock before 1970 is a broken host; the epoch is as good an answer as any.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// `at` plus `d`, saturating.
pub(crate) fn after(at: Timestamp, d: Duration) -> Timestamp {
    at.add_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
