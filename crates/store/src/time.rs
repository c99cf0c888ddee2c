//! Wall-clock time inside the store: 90 kHz ticks since the Unix epoch (`i64`), the media
//! clock of every stream, so that sample durations and wall-clock instants share one unit and
//! nothing is rounded inside a recording. [`Timestamp`] (milliseconds) is used at the store's
//! boundary: status history, listings, export requests.

use vigil_core::time::Timestamp;

/// Ticks per second.
pub const TICKS_PER_SEC: i64 = 90_000;
/// Ticks per millisecond.
pub const TICKS_PER_MS: i64 = 90;

/// Seconds between the NTP epoch (1900-01-01) and the Unix epoch.
const NTP_UNIX_OFFSET_SECS: i64 = 2_208_988_800;

/// A [`Timestamp`] in ticks (saturating).
pub fn ticks(t: Timestamp) -> i64 {
    t.as_millis().saturating_mul(TICKS_PER_MS)
}

/// Ticks as a [`Timestamp`], rounded down to the millisecond.
pub fn timestamp(ticks: i64) -> Timestamp {
    Timestamp::from_millis(ticks.div_euclid(TICKS_PER_MS))
}

/// Ticks as a [`Timestamp`], rounded up to the millisecond (for exclusive ends: a recording
/// that ends 1 tick into a millisecond covers that millisecond).
pub fn timestamp_ceil(ticks: i64) -> Timestamp {
    Timestamp::from_millis(-((-ticks).div_euclid(TICKS_PER_MS)))
}

/// Ticks since the Unix epoch as a 64-bit NTP timestamp (32.32 fixed point since 1900).
/// Instants from 2036-02-07 on use NTP era 1 and wrap the seconds field, as RFC 4330 §3
/// prescribes; [`from_ntp`] undoes that.
pub fn to_ntp(ticks: i64) -> u64 {
    let secs = ticks.div_euclid(TICKS_PER_SEC) + NTP_UNIX_OFFSET_SECS;
    let rem = ticks.rem_euclid(TICKS_PER_SEC) as u64;
    let frac = (rem << 32) / TICKS_PER_SEC as u64;
    ((secs as u64 & 0xffff_ffff) << 32) | frac
}

/// The inverse of [`to_ntp`] for instants between 1968 and 2104 (seconds with the top bit
/// clear are era 1, RFC 4330 §3). Exact for every value [`to_ntp`] produces.
pub fn from_ntp(ntp: u64) -> i64 {
    let secs_field = (ntp >> 32) as i64;
    let secs = if secs_field & 0x8000_0000 == 0 {
        secs_field + (1 << 32)
    } else {
        secs_field
    };
    let frac = ntp & 0xffff_ffff;
    // to_ntp rounds the fraction down, so rounding up here restores the tick exactly.
    let rem = ((frac * TICKS_PER_SEC as u64) + 0xffff_ffff) >> 32;
    (secs - NTP_UNIX_OFFSET_SECS) * TICKS_PER_SEC + rem as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_round() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(ticks(t)), t);
        assert_eq!(timestamp(ticks(t) + 89), t);
        assert_eq!(timestamp_ceil(ticks(t)), t);
        assert_eq!(timestamp_ceil(ticks(t) + 1), t.add_ms(1));
        assert_eq!(timestamp(-1), Timestamp::from_millis(-1));
    }

    #[test]
    fn ntp_round_trips_every_tick_of_a_second_and_both_eras() {
        let base = ticks(Timestamp::from_millis(1_700_000_000_000));
        for d in 0..TICKS_PER_SEC {
            assert_eq!(from_ntp(to_ntp(base + d)), base + d, "tick {d}");
        }
        // 2040: NTP era 1.
        let later = ticks(Timestamp::from_millis(2_215_000_000_000)) + 12_345;
        assert!(to_ntp(later) >> 63 == 0);
        assert_eq!(from_ntp(to_ntp(later)), later);
        // 1_700_000_000 Unix seconds are 0xE8FE6F80 NTP seconds.
        assert_eq!(to_ntp(base) >> 32, 0xe8fe_6f80);
    }
}
