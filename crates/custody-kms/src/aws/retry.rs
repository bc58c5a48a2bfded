//! [`RetryPolicy`]: the one retry loop every KMS call goes through.

use std::time::Duration;

/// How a KMS call is retried and timed out.
///
/// Each call is made at most [`RetryPolicy::max_attempts`] times; only
/// throttling (`ThrottlingException`, `LimitExceededException`, HTTP 429)
/// and transient failures (timeouts, connection failures, HTTP 5xx,
/// `KMSInternalException`, `DependencyTimeoutException`,
/// `KeyUnavailableException`) are retried, never an access denial, a
/// validation error, a disabled key or a decryption failure. Between tries
/// the call sleeps for a "full jitter" exponential back-off: a uniformly
/// random time in `0..=min(max_delay, base_delay · 2^(try-1))`, which
/// spreads many throttled signers apart instead of retrying in lockstep.
/// Each try is bounded by [`RetryPolicy::attempt_timeout`], so a call never
/// takes longer than about `max_attempts · (attempt_timeout + max_delay)`.
///
/// The SDK's own retry loop is switched off on the client the backends use
/// (one attempt per SDK call), so this loop is the only one and the bound
/// is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 50 ms base delay, 2 s largest delay, 10 s per attempt.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The default policy (see [`RetryPolicy::default`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` tries per call (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The back-off's first cap and its ceiling.
    #[must_use]
    pub fn with_backoff(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay.max(base_delay);
        self
    }

    /// The time one try may take, connecting included.
    #[must_use]
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Tries per call.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time one try may take.
    #[must_use]
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The sleep after failed try number `tries` (1-based): full jitter.
    pub(crate) fn backoff(&self, tries: u32) -> Duration {
        let cap = self.cap(tries);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if cap_nanos == 0 {
            return Duration::ZERO;
        }
        let mut bytes = [0u8; 8];
        // A failed OS generator only costs the jitter: sleep the whole cap.
        let r = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => return cap,
        };
        Duration::from_nanos(r % cap_nanos.saturating_add(1))
    }

    /// `min(max_delay, base_delay · 2^(tries-1))`.
    fn cap(&self, tries: u32) -> Duration {
        let shift = tries.saturating_sub(1).min(31);
        self.base_delay
            .checked_mul(1u32 << shift)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_by_the_exponential_cap() {
        let p =
            RetryPolicy::new().with_backoff(Duration::from_millis(10), Duration::from_millis(100));
        assert_eq!(p.cap(1), Duration::from_millis(10));
        assert_eq!(p.cap(2), Duration::from_millis(20));
        assert_eq!(p.cap(4), Duration::from_millis(80));
        assert_eq!(p.cap(5), Duration::from_millis(100));
        assert_eq!(p.cap(1000), Duration::from_millis(100));
        for tries in 1..10 {
            for _ in 0..50 {
                assert!(p.backoff(tries) <= p.cap(tries));
            }
        }
        // Full jitter: the sleeps spread out instead of all being the cap.
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|_| p.backoff(5)).collect();
        assert!(distinct.len() > 1);
        assert_eq!(RetryPolicy::new().with_max_attempts(0).max_attempts(), 1);
    }
}
