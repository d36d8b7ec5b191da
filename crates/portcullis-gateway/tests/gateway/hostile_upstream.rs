//! What a misbehaving or compromised upstream sends mid-stream, through the real relay: the
//! gateway passes on nothing it could not read strictly (F3), and nothing of the upstream's
//! own (F5: its error text, SSE comments and fields, its model name).

use crate::common;

use common::{Harness, Reply};
use portcullis_sim::SimOptions;
use serde_json::{json, Value};

fn chunk(content: &str) -> String {
    let value = json!({"id": "c", "object": "chat.completion.chunk", "model": "internal-llama-70b@10.1.2.3",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    format!("data: {value}\n\n")
}

async fn stream_with(script: Vec<String>) -> (Harness, Reply) {
    let h = Harness::start(
        SimOptions {
            raw_stream: Some(script),
            ..SimOptions::default()
        },
        "",
        "",
    )
    .await;
    let body =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let reply = h.post("/v1/chat/completions", &body.to_string()).await;
    (h, reply)
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[tokio::test]
async fn events_the_gateway_cannot_read_end_the_stream_with_its_own_error() {
    let first = chunk("Hello there ");
    let leak = r#"{"choices":[{"index":0,"delta":{"content":"mail jane.doe@example.com"}}]}"#;
    for (name, bad) in [
        (
            "NaN",
            r#"data: {"choices":[{"index":0,"delta":{"content":"x"}}],"n":NaN}"#.to_owned()
                + "\n\n",
        ),
        (
            "1e400",
            r#"data: {"choices":[{"index":0,"delta":{"content":"x"}}],"n":1e400}"#.to_owned()
                + "\n\n",
        ),
        (
            "lone surrogate",
            r#"data: {"choices":[{"index":0,"delta":{"content":"\ud800"}}]}"#.to_owned() + "\n\n",
        ),
        ("two data lines", format!("data: {{}}\ndata: {leak}\n\n")),
        ("trailing bytes", format!("data: {leak} trailing\n\n")),
        ("an array", format!("data: [{leak}]\n\n")),
        ("a byte-order mark", format!("\u{feff}data: {leak}\n\n")),
        ("a lone CR", format!("data: {{}}\rdata: {leak}\n\n")),
        ("CR-only lines", format!("data: {leak}\r\r")),
    ] {
        let (_h, reply) = stream_with(vec![first.clone(), bad, chunk(" after")]).await;
        assert_eq!(reply.status, 200, "{name}");
        let body = text(&reply);
        assert!(body.contains("Hello"), "{name}: {body}");
        assert!(
            !body.contains("jane.doe") && !body.contains("after"),
            "{name}: {body}"
        );
        assert!(
            body.trim_end().ends_with(r#""code":"upstream_error"}}"#),
            "{name}: the stream must end with the gateway's error event: {body}"
        );
    }
}

#[tokio::test]
async fn upstream_errors_comments_fields_and_model_names_stay_upstream() {
    let error = r#"data: {"error":{"message":"upstream at 10.1.2.3:8000 failed, /srv/models/llama","type":"server_error"}}"#;
    let (_h, reply) = stream_with(vec![
        ": key=sk-upstream-SECRET-abc123XYZ\n\n".into(),
        format!(
            "id: AKIAIOSFODNN7EXAMPLE\nretry: 10\n{}",
            chunk("Hello there ")
        ),
        error.to_owned() + "\n\n",
    ])
    .await;
    let body = text(&reply);
    for secret in [
        "sk-upstream",
        "AKIA",
        "retry:",
        "10.1.2.3",
        "/srv/models",
        "internal-llama",
    ] {
        assert!(
            !body.contains(secret),
            "{secret} reached the caller: {body}"
        );
    }
    assert!(body.contains("Hello"), "{body}");
    assert!(body.contains(r#""code":"upstream_error""#), "{body}");
    let models: Vec<Value> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.get("model").cloned())
        .collect();
    assert!(
        !models.is_empty() && models.iter().all(|m| m == "chat"),
        "{models:?}"
    );
}

#[tokio::test]
async fn whole_answers_name_the_model_as_the_caller_did() {
    let h = Harness::start(SimOptions::default(), "", "").await;
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let reply = h.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(reply.json()["model"], "chat");
    // The upstream was asked for its own name, and answered with it.
    assert_eq!(
        h.sim.last_request().unwrap().body["model"],
        "sim-chat-large"
    );
}

#[tokio::test]
async fn a_200_that_carries_an_error_is_an_upstream_failure() {
    // F16: it used to become a 200 `{}`.
    let h = Harness::start(
        SimOptions {
            raw_body: Some(
                r#"{"error":{"message":"worker 10.1.2.3 out of memory","type":"server_error"}}"#
                    .into(),
            ),
            ..SimOptions::default()
        },
        "",
        "",
    )
    .await;
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let reply = h.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "upstream_error");
    assert!(!text(&reply).contains("10.1.2.3"));
}
