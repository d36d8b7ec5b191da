//! A clock tests move by hand: key expiry and rotation grace are tested by advancing it, not by
//! sleeping through them.

use portcullis_core::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Starts at the system's time and moves only when told.
#[derive(Debug)]
pub struct ManualClock {
    secs: AtomicI64,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock {
            secs: AtomicI64::new(portcullis_core::SystemClock.now_secs()),
        }
    }

    /// Moves time forward by `by` (whole seconds, rounded up).
    pub fn advance(&self, by: Duration) {
        let secs = by.as_secs() as i64 + i64::from(by.subsec_nanos() > 0);
        self.secs.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> i64 {
        self.secs.load(Ordering::Relaxed)
    }
}
