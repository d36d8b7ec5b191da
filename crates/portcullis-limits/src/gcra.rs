//! The generic cell rate algorithm (GCRA), weighted, kept exact in integers.
//!
//! Why GCRA: it is exact (no window edges where twice the limit slips through, unlike fixed
//! windows), keeps constant state per limit (unlike sliding logs), takes weighted costs (a
//! request of 900 tokens spends 900 units at once), and says precisely when the next unit
//! fits, which is what `Retry-After` and `x-ratelimit-reset-*` need.
//!
//! It is used here in its continuous-state leaky-bucket form, which ITU-T I.371 shows to be
//! equivalent to the virtual-scheduling form (a theoretical arrival time): a bucket of
//! capacity `burst` drains at `limit` units per `period`. The level is kept multiplied by the
//! period (in microseconds), so draining `limit` per microsecond and adding `amount * period`
//! per request are both exact integer operations: no rounding ever admits a unit too many or
//! refuses one that fits. Over any window of length `w`, at most `burst + limit * w / period`
//! units are admitted (property-tested against a reference model).
//!
//! Times are microseconds since 1970, the unit the Redis script uses too (Lua numbers are
//! doubles, exact to 2^53: microseconds fit, nanoseconds do not).

/// `limit` units per `period_us`, with up to `burst` units at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub period_us: u64,
    pub burst: u64,
}

/// A rate limit's state: the level (units times the period) at `at`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    pub level: u128,
    pub at: u64,
}

impl Rate {
    fn capacity(&self) -> u128 {
        self.burst as u128 * self.period_us as u128
    }

    fn scaled(&self, amount: u64) -> u128 {
        amount as u128 * self.period_us as u128
    }

    /// The level at `now`, after draining since the last update.
    pub fn level(&self, bucket: Bucket, now: u64) -> u128 {
        let drained = now.saturating_sub(bucket.at) as u128 * self.limit as u128;
        bucket.level.saturating_sub(drained)
    }

    /// Units that fit right now.
    pub fn room(&self, bucket: Bucket, now: u64) -> u64 {
        let free = self.capacity().saturating_sub(self.level(bucket, now));
        (free / self.period_us.max(1) as u128).min(u64::MAX as u128) as u64
    }

    /// Time until the bucket is empty (the limit whole again).
    pub fn reset_after(&self, bucket: Bucket, now: u64) -> u64 {
        let level = self.level(bucket, now);
        level
            .div_ceil(self.limit.max(1) as u128)
            .min(u64::MAX as u128) as u64
    }

    /// Spends `amount` units if they fit; otherwise returns how long until they would.
    /// `None` inside the error means they never will (more than the burst).
    pub fn spend(&self, bucket: &mut Bucket, now: u64, amount: u64) -> Result<(), Option<u64>> {
        if amount > self.burst {
            return Err(None);
        }
        let next = self.level(*bucket, now) + self.scaled(amount);
        if next > self.capacity() {
            let excess = next - self.capacity();
            let wait = excess.div_ceil(self.limit.max(1) as u128);
            return Err(Some(wait.min(u64::MAX as u128) as u64));
        }
        *bucket = Bucket {
            level: next,
            at: now,
        };
        Ok(())
    }

    /// Charges (positive) or refunds (negative) units after the fact, without a check: a
    /// charge beyond the limit is a debt that later requests wait for; a refund never makes
    /// more room than an empty bucket.
    pub fn adjust(&self, bucket: &mut Bucket, now: u64, delta: i64) {
        let level = self.level(*bucket, now);
        let level = if delta >= 0 {
            level + self.scaled(delta as u64)
        } else {
            level.saturating_sub(self.scaled(delta.unsigned_abs()))
        };
        *bucket = Bucket { level, at: now };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000_000;

    #[test]
    fn admits_the_burst_then_the_rate() {
        let rate = Rate {
            limit: 60,
            period_us: MINUTE,
            burst: 10,
        };
        let mut b = Bucket::default();
        let now = 1_000_000_000;
        for _ in 0..10 {
            rate.spend(&mut b, now, 1).unwrap();
        }
        // The 11th waits one emission interval (1 s).
        assert_eq!(rate.spend(&mut b, now, 1), Err(Some(1_000_000)));
        assert_eq!(rate.room(b, now), 0);
        assert_eq!(rate.reset_after(b, now), 10_000_000);
        rate.spend(&mut b, now + 1_000_000, 1).unwrap();
        assert_eq!(rate.spend(&mut b, now, 11), Err(None));
    }

    #[test]
    fn limits_that_do_not_divide_the_period_are_exact() {
        let rate = Rate {
            limit: 7,
            period_us: MINUTE,
            burst: 7,
        };
        let mut b = Bucket::default();
        for _ in 0..7 {
            rate.spend(&mut b, 5, 1).unwrap();
        }
        assert!(rate.spend(&mut b, 5, 1).is_err());
    }

    #[test]
    fn refunds_restore_room_but_never_beyond_full() {
        let rate = Rate {
            limit: 1000,
            period_us: MINUTE,
            burst: 1000,
        };
        let now = 5 * MINUTE;
        let mut b = Bucket::default();
        rate.spend(&mut b, now, 800).unwrap();
        assert_eq!(rate.room(b, now), 200);
        rate.adjust(&mut b, now, -500);
        assert_eq!(rate.room(b, now), 700);
        rate.adjust(&mut b, now, -5000);
        assert_eq!(rate.room(b, now), 1000);
        rate.adjust(&mut b, now, 1500);
        assert_eq!(rate.room(b, now), 0);
        assert!(rate.spend(&mut b, now, 1).is_err());
    }
}
