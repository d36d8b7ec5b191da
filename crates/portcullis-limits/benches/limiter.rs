//! Micro-benchmarks of usage control on the hot path: one limiter decision in memory, a whole
//! admission (checks built from the plan, decided, settled), and prompt token counting.
//!
//!   cargo bench -p portcullis-limits

use portcullis_limits::backend::MemoryBackend;
use portcullis_limits::check::{Check, CheckKind, Demand, Label};
use portcullis_limits::gcra::Rate;
use portcullis_limits::{
    now_us, Encoding, Estimate, Ledger, Limiter, Price, QuotaSeed, Subject, Usage,
};
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
                .admit(&subject, estimate, price, &NoLedger)
                .await
                .unwrap();
            reservation.settle(Usage {
                input_tokens: 500,
                output_tokens: 100,
            });
        })
    });
}

fn corpus() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/corpora/dev/benign.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prompt counting on a typical 2 KB prompt (the first 2 KB of the benign corpus).
#[divan::bench(args = [Encoding::O200kBase, Encoding::Cl100kBase])]
fn count_2kb_prompt(bencher: divan::Bencher, encoding: Encoding) {
    let text = corpus();
    let mut end = 2048;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let prompt = &text[..end];
    encoding.warm_up();
    bencher
        .counter(divan::counter::BytesCount::new(prompt.len()))
        .bench_local(|| encoding.count(divan::black_box(prompt)));
}

/// Throughput on the whole benign corpus (about 1 MB), the same text `scripts/bench-tokenizer.sh`
/// gives the `tiktoken` Python package.
#[divan::bench(args = [Encoding::O200kBase, Encoding::Cl100kBase], sample_count = 10, sample_size = 1)]
fn count_corpus(bencher: divan::Bencher, encoding: Encoding) {
    let text = corpus();
    encoding.warm_up();
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench_local(|| encoding.count(divan::black_box(&text)));
}
