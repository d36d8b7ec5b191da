//! Streaming: chunks flow as they arrive, framing is preserved, failures end the stream with
//! an error event, and a caller who leaves cancels the upstream.

use crate::common;

use common::Harness;
use http_body_util::BodyExt;
use portcullis_sim::{Fault, SimOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Splits an SSE body into its `data:` payloads, asserting every event is whole.
fn events(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "stream ends mid-event: {text:?}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_first_chunk_arrives_before_the_upstream_finishes() {
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 10.0,
            output_tokens: 8,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let started = Instant::now();
    let response = h.open_stream(common::stream_body("chat"), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response.headers().contains_key("x-request-id"));
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let first_at = started.elapsed();
    assert!(first.starts_with(b"data: "), "{first:?}");
    assert_eq!(
        h.sim.stats().streams_completed,
        0,
        "the first chunk must not wait for the end of the upstream stream"
    );
    assert!(
        first_at < Duration::from_millis(500),
        "first chunk after {first_at:?}"
    );
    let mut rest = first.to_vec();
    rest.extend_from_slice(&body.collect().await.unwrap().to_bytes());
    let total = started.elapsed();
    assert!(
        total >= Duration::from_millis(700),
        "paced stream ended after {total:?}"
    );
    let events = events(&rest);
    assert_eq!(events.last().unwrap(), "[DONE]");
    // role chunk + 8 tokens + finish chunk + [DONE]
    assert_eq!(events.len(), 11);
}

#[tokio::test]
async fn usage_is_passed_on_when_asked_for() {
    let h = Harness::default().await;
    let body = r#"{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = h.post("/v1/chat/completions", body).await;
    let events = events(&reply.body);
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        h.sim.last_request().unwrap().body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn a_caller_who_disconnects_cancels_the_upstream_stream() {
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 20.0,
            output_tokens: 200,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let response = h.open_stream(common::stream_body("chat"), None).await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert!(
        common::eventually(|| h.sim.stats().streams_cancelled == 1).await,
        "upstream still streaming: {:?}",
        h.sim.stats()
    );
    assert_eq!(h.sim.stats().streams_completed, 0);
}

fn last_error(body: &[u8]) -> Value {
    let events = events(body);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"].is_object(), "{last}");
    last
}

#[tokio::test]
async fn an_upstream_reset_mid_stream_ends_with_an_error_event() {
    let h = Harness::start(
        SimOptions {
            fault: Fault::ResetMidStream { after_chunks: 3 },
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let reply = h
        .post("/v1/chat/completions", &common::stream_body("chat"))
        .await;
    assert_eq!(reply.status, 200);
    let last = last_error(&reply.body);
    assert_eq!(last["error"]["code"], "upstream_error");
    // The chunks sent before the break reach the caller, each a whole, parseable event.
    let events = events(&reply.body);
    assert_eq!(
        events.len(),
        5,
        "role chunk, three tokens, error: {events:?}"
    );
    for e in &events[..4] {
        assert!(serde_json::from_str::<Value>(e).unwrap()["choices"].is_array());
    }
}

#[tokio::test]
async fn an_upstream_that_goes_silent_mid_stream_times_out() {
    let h = Harness::start(
        SimOptions {
            fault: Fault::HangMidStream { after_chunks: 2 },
            ..Default::default()
        },
        "idle_timeout = \"300ms\"",
        "",
    )
    .await;
    let started = Instant::now();
    let reply = h
        .post("/v1/chat/completions", &common::stream_body("chat"))
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(last_error(&reply.body)["error"]["code"], "upstream_timeout");
    // The gateway let go of the upstream connection.
    assert!(common::eventually(|| h.sim.stats().streams_cancelled == 1).await);
}
