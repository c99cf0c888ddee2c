//! Reconnect delays: exponential with jitter, reset after a healthy session.

use std::time::Duration;

use crate::error::{ErrorKind, PullError};

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Delay after the first failure.
    pub min: Duration,
    /// Ceiling of the doubling.
    pub max: Duration,
    /// Fraction (0..=1) of each delay that is randomised away: the delay is drawn from
    /// `[d × (1 − jitter), d]`. After a switch reboots, hundreds of cameras fail at once;
    /// jitter spreads their reconnects instead of hitting the NVRs in lockstep.
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.3,
        }
    }
}

/// The failure count of one camera and the delays it implies.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Consecutive failures since the last reset.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// A session streamed long enough to count as healthy: the next failure starts again at
    /// the minimum delay.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Records a failure and returns the delay before the next attempt. `random` is uniform
    /// in `[0, 1)`.
    ///
    /// Policy `AuthFailureWaitsLongest`: after a 401 the delay is the maximum straight away.
    /// Retrying a wrong password quickly cannot succeed, and many cameras lock the account
    /// (or the client IP) after a handful of failed logins, which would then also lock out
    /// the installer fixing the password.
    pub(crate) fn next_delay(&mut self, error: &PullError, random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let base = if error.kind() == ErrorKind::AuthFailed {
            self.policy.max
        } else {
            let doublings = self.failures.saturating_sub(1).min(30);
            self.policy
                .min
                .saturating_mul(1u32 << doublings)
                .min(self.policy.max)
        };
        let jitter = self.policy.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        // `mul_f64` panics when rounding overflows a huge delay; such a delay stays as is.
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 - jitter))
            .map_or(base, |d| d.min(base))
    }
}

/// A uniform random number in `[0, 1)` for jitter.
pub(crate) fn jitter_random() -> f64 {
    // When the OS has no randomness to give, no jitter is still a valid delay.
    getrandom::u64().map_or(0.0, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> PullError {
        PullError::Refused {
            authority: "h:554".into(),
        }
    }

    #[test]
    fn doubles_up_to_the_maximum_then_resets() {
        let mut b = Backoff::new(BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.0,
        });
        let delays: Vec<u64> = (0..9)
            .map(|_| b.next_delay(&refused(), 0.5).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.failures(), 9);
        b.reset();
        assert_eq!(b.next_delay(&refused(), 0.5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let policy = BackoffPolicy {
            min: Duration::from_secs(10),
            max: Duration::from_secs(60),
            jitter: 0.3,
        };
        let at = |r| Backoff::new(policy).next_delay(&refused(), r);
        assert_eq!(at(0.0), Duration::from_secs(10));
        assert_eq!(at(1.0), Duration::from_secs(7));
        assert_eq!(at(0.5), Duration::from_millis(8500));
        for _ in 0..100 {
            let d = at(jitter_random());
            assert!(
                d >= Duration::from_secs(7) && d <= Duration::from_secs(10),
                "{d:?}"
            );
        }
    }

    #[test]
    fn auth_failure_waits_longest() {
        let mut b = Backoff::new(BackoffPolicy {
            jitter: 0.0,
            ..BackoffPolicy::default()
        });
        let delay = b.next_delay(&PullError::AuthFailed { user: None }, 0.0);
        assert_eq!(delay, Duration::from_secs(60));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(BackoffPolicy {
            min: Duration::from_secs(u64::MAX / 4),
            max: Duration::MAX,
            jitter: 0.0,
        });
        for _ in 0..100 {
            let _ = b.next_delay(&refused(), 0.0);
        }
    }
}
