//! The clock the registry reads: injectable, so tests are deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current UNIX time in whole seconds.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now_unix(&self) -> u64;
}

/// The system clock. A clock set before 1970 reads as 0 (every code is then
/// refused as wrong: fail closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that reads what it was set to: for tests, examples and replays.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock stopped at `unix` seconds.
    #[must_use]
    pub fn new(unix: u64) -> Self {
        Self(AtomicU64::new(unix))
    }

    /// Sets the time.
    pub fn set(&self, unix: u64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    /// Moves the time forward by `seconds` (saturating).
    pub fn advance(&self, seconds: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(seconds))
            });
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
