//! Micro-benchmarks of the per-request work the gateway adds on the hot path.
//!
//! `cargo bench -p portcullis-gateway` (divan). The load benchmark (scripts/bench-load.sh)
//! measures the whole path; these isolate the pieces so a change to one shows up here first.

use portcullis_core::{ApiError, RequestId};
use portcullis_openai::sse::last_event_end;
use portcullis_openai::InferenceRequest;

fn main() {
    divan::main();
}

/// A typical chat request of about 2 KB: a system prompt, a few turns, common parameters.
fn chat_body() -> String {
    let turn = "Please summarise the following paragraph about network gateways and explain \
                which parts matter for security, latency and cost in a production deployment. ";
    let messages: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            serde_json::json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": turn.repeat(2),
            })
        })
        .collect();
    serde_json::json!({
        "model": "chat",
        "messages": messages,
        "temperature": 0.7,
        "max_tokens": 256,
        "stream": false,
    })
    .to_string()
}

#[divan::bench]
fn parse_and_rewrite_2kb_chat(bencher: divan::Bencher) {
    let body = chat_body();
    let target = serde_json::json!("upstream-model");
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench(|| {
            let parsed = InferenceRequest::parse(divan::black_box(body.as_bytes())).unwrap();
            parsed.into_upstream_body(&target)
        });
}

#[divan::bench]
fn sse_event_boundary_scan(bencher: divan::Bencher) {
    // A chunk holding several whole events and a partial one: the relay's slow path.
    let event = "data: {\"choices\":[{\"delta\":{\"content\":\"word \"},\"index\":0}]}\n\n";
    let mut chunk = event.repeat(20);
    chunk.push_str("data: {\"partial\"");
    bencher
        .counter(divan::counter::BytesCount::new(chunk.len()))
        .bench(|| last_event_end(divan::black_box(chunk.as_bytes())));
}

#[divan::bench]
fn request_id_generate() -> RequestId {
    RequestId::generate()
}

#[divan::bench]
fn error_body_serialize() -> bytes::Bytes {
    divan::black_box(ApiError::model_not_found("gpt-imaginary")).to_json()
}
