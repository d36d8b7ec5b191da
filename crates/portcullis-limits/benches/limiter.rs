//! Micro-benchmarks of usage control on the hot path: one limiter decision in memory, a whole
//! admission (checks built from the plan, decided, settled), and prompt token counting.
//!
//!   cargo bench -p portcullis-limits

use portcullis_limits::backend::MemoryBackend;
use portcullis_limits::check::{Check, CheckKind, Demand, Label};
use portcullis_limits::gcra::Rate;
use portcullis_limits::{now_us, Estimate, Ledger, Limiter, Price, QuotaSeed, Subject, Usage};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

fn main() {
    divan::main();
}

fn rate(key: &str, label: Label, limit: u64, base: u64, per_out: u64) -> Check {
    Check {
        scope: "key",
        key: key.into(),
        kind: CheckKind::Rate(Rate {
            limit,
            period_us: 60_000_000,
            burst: limit,
        }),
        label,
        base,
        per_out,
    }
}

/// A typical request's decision: requests, tokens and cost per minute for the key, requests
/// and tokens for the tenant, and a concurrency slot, across 1000 active keys.
#[divan::bench]
fn memory_decision(bencher: divan::Bencher) {
    let backend = MemoryBackend::new();
    let demands: Vec<Demand> = (0..1000)
        .map(|i| Demand {
            checks: vec![
                rate(
                    &format!("pc:r:k:{i}:req"),
                    Label::Requests,
                    u64::MAX / 4,
                    1,
                    0,
                ),
                rate(
                    &format!("pc:r:k:{i}:tok"),
                    Label::Tokens,
                    u64::MAX / 4,
                    500,
                    1,
                ),
                rate(
                    &format!("pc:r:k:{i}:cost"),
                    Label::Cost,
                    u64::MAX / 4,
                    1_000,
                    10,
                ),
                rate(
                    &format!("pc:r:t:{}:req", i % 10),
                    Label::Requests,
                    u64::MAX / 4,
                    1,
                    0,
                ),
                rate(
                    &format!("pc:r:t:{}:tok", i % 10),
                    Label::Tokens,
                    u64::MAX / 4,
                    500,
                    1,
                ),
                Check {
                    scope: "key",
                    key: format!("pc:c:k:{i}"),
                    kind: CheckKind::Concurrency { max: u64::MAX },
                    label: Label::Concurrency,
                    base: 1,
                    per_out: 0,
                },
            ],
            out_min: 256,
            out_max: 256,
            lease: i,
        })
        .collect();
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % demands.len();
        backend.admit(&demands[i], now_us())
    });
}

struct NoLedger;
impl Ledger for NoLedger {
    fn total<'a>(
        &'a self,
        _: &'a QuotaSeed,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async { Ok(0) })
    }
}

/// A whole admission through the `Limiter`: plan lookup, building the checks, the decision,
/// and settling with the actual usage (refund), with a daily token quota as well.
#[divan::bench]
fn limiter_admit_and_settle(bencher: divan::Bencher) {
    let config = portcullis_config::Config::parse(
        "[plans.default.key]\nrequests_per_minute = 100000000\ntokens_per_minute = 100000000000\n\
         concurrent_requests = 100000\ntokens_per_day = 100000000000\n\
         [plans.default.tenant]\nrequests_per_minute = 100000000\n",
        Vec::new(),
    )
    .unwrap();
    let limiter: Arc<Limiter> = Limiter::new(&config).unwrap();
    let plans = portcullis_limits::PlanBook::new(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let subject = Subject {
        tenant: "acme".into(),
        key_id: "0123456789abcdef".into(),
        plan: "default".into(),
        model: "gpt".into(),
    };
    let estimate = Estimate {
        input_tokens: 500,
        out_min: 256,
        out_max: 256,
    };
    let price = Price::per_million(2.5, 10.0);
    bencher.bench_local(|| {
        runtime.block_on(async {
            let reservation = limiter
                .admit(&plans, &subject, estimate, price, &NoLedger)
                .await
                .unwrap();
            reservation.settle(Usage {
                input_tokens: 500,
                output_tokens: 100,
            });
        })
    });
}
