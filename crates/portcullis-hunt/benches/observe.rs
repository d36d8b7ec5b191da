//! The detector's cost per request: feature extraction alone, and a whole `observe`, on
//! prompts of about 200, 2,000 and 20,000 tokens.

use portcullis_hunt::{Detector, Endpoint, Limits, Observation, RequestInput};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

fn body(tokens: usize) -> Value {
    let words: Vec<&str> =
        "explain step by step how the compiler lowers a generic function into machine code and why"
            .split(' ')
            .collect();
    let text: Vec<&str> = (0..tokens * 3 / 4)
        .map(|i| words[i % words.len()])
        .collect();
    json!({"model": "m", "messages": [{"role": "user", "content": text.join(" ")}], "max_tokens": 4096})
}

fn input<'a>(body: &'a Value, key: &'a str) -> RequestInput<'a> {
    RequestInput {
        ts: 1.0,
        tenant: "t",
        key,
        ip: "198.51.100.7",
        user_agent: "OpenAI/Python 1.54.3",
        header_order: "",
        tls: "",
        endpoint: Endpoint::Chat,
        body,
        response: None,
        status: 200,
        findings: 0,
    }
}

#[divan::bench(args = [200, 2000, 20000])]
fn features(bencher: divan::Bencher<'_, '_>, tokens: usize) {
    let b = body(tokens);
    bencher.bench(|| Observation::from_request(&input(divan::black_box(&b), "k")));
}

#[divan::bench(args = [200, 2000, 20000])]
fn observe(bencher: divan::Bencher<'_, '_>, tokens: usize) {
    let b = body(tokens);
    let mut d = Detector::new(Limits::default());
    let keys: Vec<String> = (0..1000).map(|i| format!("key-{i}")).collect();
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % keys.len();
        d.observe(&input(divan::black_box(&b), &keys[i]))
    });
}
