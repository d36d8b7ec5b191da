//! Property tests of the rate limiter against a reference model: whatever the arrivals and
//! costs, the admitted total over any window of length `w` never exceeds
//! `burst + limit * w / period`, and nothing that fits is refused.

use portcullis_limits::backend::MemoryBackend;
use portcullis_limits::check::{Check, CheckKind, Demand, Label, Verdict};
use portcullis_limits::gcra::Rate;
use proptest::prelude::*;

fn demand(rate: Rate, cost: u64) -> Demand {
    Demand {
        checks: vec![Check {
            scope: "key",
            key: "r".into(),
            kind: CheckKind::Rate(rate),
            label: Label::Tokens,
            base: cost,
            per_out: 0,
        }],
        out_min: 0,
        out_max: 0,
        lease: 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn admitted_never_exceeds_limit_plus_burst(
        limit in 1u64..5_000,
        period_s in 1u64..120,
        burst_pct in 1u64..=100,
        arrivals in prop::collection::vec((0u64..3_000_000, 1u64..200), 1..300),
    ) {
        let period_us = period_s * 1_000_000;
        let burst = (limit * burst_pct).div_ceil(100).max(1);
        let rate = Rate { limit, period_us, burst };
        let backend = MemoryBackend::new();
        let mut now = 1_700_000_000_000_000u64;
        let mut admitted: Vec<(u64, u64)> = Vec::new();
        for (gap, cost) in arrivals {
            now += gap;
            if let Verdict::Admitted { .. } = backend.admit(&demand(rate, cost), now) {
                admitted.push((now, cost));
            }
        }
        // Every window that starts at an admission, of every length up to the run's span.
        for (i, &(start, _)) in admitted.iter().enumerate() {
            let mut total = 0u64;
            for &(t, cost) in &admitted[i..] {
                total += cost;
                let window = t - start;
                // limit * window / period, rounded up: the reference allowance.
                let allowance = burst as u128 + (limit as u128 * window as u128).div_ceil(period_us as u128);
                prop_assert!(total as u128 <= allowance,
                    "{total} admitted in {window} us; allowance {allowance} (limit {limit}/{period_us} us, burst {burst})");
            }
        }
    }

    #[test]
    fn a_request_that_fits_the_reference_bucket_is_admitted(
        limit in 1u64..1_000,
        costs in prop::collection::vec(1u64..50, 1..50),
    ) {
        // With no time passing, a bucket of `burst` units admits exactly the prefix of
        // requests whose running total fits, then refuses each one that does not.
        let rate = Rate { limit, period_us: 60_000_000, burst: limit };
        let backend = MemoryBackend::new();
        let now = 1_700_000_000_000_000u64;
        let mut used = 0;
        for cost in costs {
            let verdict = backend.admit(&demand(rate, cost), now);
            let fits = used + cost <= limit;
            prop_assert_eq!(matches!(verdict, Verdict::Admitted { .. }), fits);
            if fits { used += cost; }
        }
    }
}
