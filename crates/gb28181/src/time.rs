//! Time as this crate receives it.
//!
//! State machines never read a clock. Deadlines use the caller's monotonic [`Instant`]; the only
//! wall-clock need is the `Date` header of a 200 OK to REGISTER (GB/T 28181 uses it for device
//! time synchronisation), so inputs that may produce one take a [`Now`] carrying both.

use std::time::Instant;

use vigil_core::time::Timestamp;

/// The current time as seen by the caller: monotonic for deadlines, wall clock for `Date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time for timers and deadlines.
    pub instant: Instant,
    /// Milliseconds since the Unix epoch, UTC (the project's `Timestamp` convention).
    pub unix_ms: i64,
}

impl Now {
    /// Bundles both clocks.
    pub fn new(instant: Instant, unix_ms: i64) -> Self {
        Now { instant, unix_ms }
    }
}

/// Formats a GB/T 28181 `Date` header value, `YYYY-MM-DDTHH:MM:SS.mmm` in the local time given
/// by `utc_offset_minutes` (China Standard Time is +480), as in vectors 02 and 04.
pub fn format_gb_date(unix_ms: i64, utc_offset_minutes: i32) -> String {
    let local = unix_ms + i64::from(utc_offset_minutes) * 60_000;
    let date = Timestamp::from_millis(local).date();
    let (y, mo, d) = (date.year(), date.month(), date.day());
    let ms_of_day = local.rem_euclid(86_400_000);
    let h = ms_of_day / 3_600_000;
    let mi = ms_of_day / 60_000 % 60;
    let s = ms_of_day / 1000 % 60;
    let ms = ms_of_day % 1000;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_vector_04_date() {
        // Vector 04 (eXosip in China): "Date: 2024-05-17T14:07:33.263"; the 401 in vector 02
        // carries nonce 1715926053 = the Unix seconds of the same moment, 30 ms earlier.
        let unix_ms = 1_715_926_053_263;
        assert_eq!(format_gb_date(unix_ms, 480), "2024-05-17T14:07:33.263");
        assert_eq!(format_gb_date(unix_ms, 0), "2024-05-17T06:07:33.263");
    }

    #[test]
    fn handles_epoch_leap_days_and_negative_times() {
        assert_eq!(format_gb_date(0, 0), "1970-01-01T00:00:00.000");
        assert_eq!(
            format_gb_date(951_782_400_000, 0),
            "2000-02-29T00:00:00.000"
        );
        assert_eq!(format_gb_date(-1, 0), "1969-12-31T23:59:59.999");
        assert_eq!(
            format_gb_date(4_107_542_400_000, 0),
            "2100-03-01T00:00:00.000"
        );
    }
}
