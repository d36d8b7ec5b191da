//! Small fixed-size sketches that keep per-account state bounded: a CUSUM of a binary
//! event's log-likelihood ratio, a Bloom filter of recent hashes, a bitmap distinct
//! counter, and running moments.

/// A one-sided CUSUM test that an event's rate rose from `p0` to `p1`: the statistic
/// `S = max(0, S + llr)` forgets benign history (a long clean record does not buy a later
/// campaign any credit) and crosses its threshold after a few dozen events once the rate
/// is high, wherever in the account's life that happens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cusum {
    pub s: f32,
}

/// The log-likelihood ratios of a CUSUM's two outcomes.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    hit: f32,
    miss: f32,
}

impl Rates {
    /// Ratios for a rise of the event rate from `p0` (what benign traffic shows at most,
    /// long-run) to `p1` (what extraction shows at least).
    pub fn new(p0: f64, p1: f64) -> Rates {
        Rates {
            hit: (p1 / p0).ln() as f32,
            miss: ((1.0 - p1) / (1.0 - p0)).ln() as f32,
        }
    }
}

impl Cusum {
    pub fn step(&mut self, hit: bool, rates: Rates) {
        self.s = (self.s + if hit { rates.hit } else { rates.miss }).max(0.0);
    }

    /// Adds another group's evidence (clusters merging: their requests are disjoint).
    pub fn absorb(&mut self, other: Cusum) {
        self.s += other.s;
    }
}

/// A Bloom filter of 4,096 bits with two probes, forgetting everything once it holds
/// `CAPACITY` items (the false positive rate stays under 12%).
#[derive(Clone)]
pub struct RecentSet {
    bits: Box<[u64; 64]>,
    items: u16,
}

impl RecentSet {
    const CAPACITY: u16 = 1200;

    pub fn new() -> RecentSet {
        RecentSet {
            bits: Box::new([0; 64]),
            items: 0,
        }
    }

    /// Inserts `hash`; returns whether it was (probably) there already.
    pub fn insert(&mut self, hash: u64) -> bool {
        let a = (hash & 4095) as usize;
        let b = ((hash >> 32) & 4095) as usize;
        let seen = self.get(a) && self.get(b);
        if !seen {
            if self.items >= Self::CAPACITY {
                self.bits.fill(0);
                self.items = 0;
            }
            self.bits[a / 64] |= 1 << (a % 64);
            self.bits[b / 64] |= 1 << (b % 64);
            self.items += 1;
        }
        seen
    }

    fn get(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }
}

impl Default for RecentSet {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RecentSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecentSet({} items)", self.items)
    }
}

/// Distinct values counted in a 1,024-bit bitmap (linear counting): exact enough up to a
/// few thousand, 128 bytes always.
#[derive(Clone, Default)]
pub struct DistinctCount {
    bits: Box<[u64; 16]>,
}

impl DistinctCount {
    pub fn insert(&mut self, hash: u64) {
        let i = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// The estimated number of distinct values inserted.
    pub fn estimate(&self) -> f64 {
        let m: f64 = 1024.0;
        let zeros = self.bits.iter().map(|w| w.count_zeros()).sum::<u32>() as f64;
        if zeros == 0.0 {
            return m * m.ln();
        }
        -m * (zeros / m).ln()
    }
}

impl std::fmt::Debug for DistinctCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DistinctCount(~{:.0})", self.estimate())
    }
}

/// Running mean and variance (Welford).
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    pub n: u32,
    mean: f32,
    m2: f32,
}

impl Moments {
    pub fn push(&mut self, x: f32) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f32;
        self.m2 += d * (x - self.mean);
    }

    pub fn mean(&self) -> f32 {
        self.mean
    }

    pub fn std(&self) -> f32 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f32).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cusum_rises_on_a_high_rate_and_stays_low_on_the_benign_rate() {
        let rates = Rates::new(0.1, 0.6);
        let mut attack = Cusum::default();
        let mut benign = Cusum::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            attack.step(rng.f64() < 0.8, rates);
            benign.step(rng.f64() < 0.1, rates);
        }
        assert!(attack.s > 1000.0, "{}", attack.s);
        assert!(benign.s < 12.0, "{}", benign.s);
    }

    #[test]
    fn recent_set_remembers_and_forgets() {
        let mut s = RecentSet::new();
        assert!(!s.insert(42));
        assert!(s.insert(42));
        for i in 0..5000u64 {
            s.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert!(s.items <= RecentSet::CAPACITY);
    }

    proptest! {
        #[test]
        fn distinct_count_is_within_ten_percent_up_to_a_thousand(n in 1u64..1000, seed in any::<u64>()) {
            let mut d = DistinctCount::default();
            for i in 0..n {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), seed);
                d.insert(h);
                d.insert(h);
            }
            let e = d.estimate();
            prop_assert!((e - n as f64).abs() <= 0.1 * n as f64 + 3.0, "{} vs {}", e, n);
        }

        #[test]
        fn cusum_never_goes_negative(events in prop::collection::vec(any::<bool>(), 0..300)) {
            let mut c = Cusum::default();
            for e in events {
                c.step(e, Rates::new(0.05, 0.5));
                prop_assert!(c.s >= 0.0);
            }
        }
    }
}
