//! How often the upstream itself writes each variant. The watermark keeps each variant's
//! share of the output equal to the upstream's own (CATER's lesson: a shifted word frequency
//! gives the watermark away), so the share must be the upstream's, not a dictionary's. The
//! gateway counts the variant the upstream wrote at every slot before choosing; the lexicon's
//! estimate is only the prior (worth `PRIOR` observations). Counts are per process and
//! lock-free; a response reads them as they are when each slot is reached.

use crate::lexicon::{Lexicon, Member};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Observations the prior counts for.
const PRIOR: f64 = 20.0;

#[derive(Debug)]
pub struct Shares {
    counts: Vec<[AtomicU64; 2]>,
    /// Per family: slots whose preferred variant was A, of all slots.
    preferred: Vec<[AtomicU64; 2]>,
    /// Whether slots update the counts (false: a fixed estimate, for tests and tools).
    learning: bool,
}

impl Shares {
    /// Shares that learn from the slots they are asked about.
    pub fn learning() -> Shares {
        Shares::with_learning(true)
    }

    /// The lexicon's estimates, never updated.
    pub fn fixed() -> Shares {
        Shares::with_learning(false)
    }

    fn with_learning(learning: bool) -> Shares {
        let zeros = || {
            Lexicon::builtin()
                .families()
                .iter()
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect()
        };
        Shares {
            counts: zeros(),
            preferred: zeros(),
            learning,
        }
    }

    /// The upstream wrote `member`'s variant at a slot whose key prefers `preferred`.
    pub fn observe(&self, member: Member, preferred: u8) {
        if self.learning {
            let family = usize::from(member.family);
            self.counts[family][usize::from(member.variant)].fetch_add(1, Relaxed);
            self.preferred[family][usize::from(preferred & 1)].fetch_add(1, Relaxed);
        }
    }

    /// The share of slots whose key prefers variant A (a half a priori).
    pub fn preferred_share_a(&self, family: u16) -> f64 {
        let [a, b] = &self.preferred[usize::from(family)];
        let (a, b) = (a.load(Relaxed) as f64, b.load(Relaxed) as f64);
        ((a + PRIOR * 0.5) / (a + b + PRIOR)).clamp(0.02, 0.98)
    }

    /// The share of variant A in the family, prior included.
    pub fn share_a(&self, family: u16) -> f64 {
        let prior = Lexicon::builtin().family(family).share_a;
        let [a, b] = &self.counts[usize::from(family)];
        let (a, b) = (a.load(Relaxed) as f64, b.load(Relaxed) as f64);
        // Kept away from 0 and 1: a variant never seen keeps a small chance, so a rare
        // variant is never written where the upstream never would, nor forced out entirely.
        ((a + PRIOR * prior) / (a + b + PRIOR)).clamp(0.02, 0.98)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_moves_from_the_prior_to_what_was_seen() {
        let shares = Shares::learning();
        let member = Lexicon::builtin().single("don't").unwrap();
        let family = member.family;
        let prior = shares.share_a(family);
        for _ in 0..1000 {
            shares.observe(member, 0);
        }
        assert!(shares.share_a(family) < 0.05 && prior > 0.5);
        let fixed = Shares::fixed();
        fixed.observe(member, 0);
        assert_eq!(fixed.share_a(family), prior);
    }
}
