//! Request schema validation over HTTP: every malformed body gets 400 with `param` naming
//! the field, and never reaches the model.

use crate::common;

use common::Harness;
use portcullis_sim::SimOptions;
use serde_json::{json, Value};

fn chat(extra: Value) -> String {
    let mut body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[tokio::test]
async fn malformed_requests_name_the_field_and_change_nothing() {
    let h = Harness::default().await;
    let cases: Vec<(String, &str, &str)> = vec![
        (
            chat(json!({"temperature": 3})),
            "temperature",
            "invalid_value",
        ),
        (
            chat(json!({"temperature": "hot"})),
            "temperature",
            "invalid_type",
        ),
        (chat(json!({"top_p": 1.5})), "top_p", "invalid_value"),
        (chat(json!({"n": 0})), "n", "invalid_value"),
        (chat(json!({"n": 2.5})), "n", "invalid_type"),
        (
            chat(json!({"max_tokens": -1})),
            "max_tokens",
            "invalid_value",
        ),
        (chat(json!({"stop": [1, 2]})), "stop", "invalid_type"),
        (chat(json!({"stream": "yes"})), "stream", "invalid_type"),
        (chat(json!({"messages": []})), "messages", "invalid_value"),
        (chat(json!({"messages": "hi"})), "messages", "invalid_type"),
        (
            chat(json!({"messages": [{"role": "wizard", "content": "hi"}]})),
            "messages[0].role",
            "invalid_value",
        ),
        (
            chat(json!({"messages": [{"content": "hi"}]})),
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            chat(json!({"messages": [{"role": "user"}]})),
            "messages[0].content",
            "missing_required_parameter",
        ),
        (
            chat(json!({"messages": [{"role": "user", "content": 5}]})),
            "messages[0].content",
            "invalid_type",
        ),
        (
            chat(json!({"messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            chat(json!({"debug_mode": true})),
            "debug_mode",
            "unknown_parameter",
        ),
        (
            json!({"model": "chat"}).to_string(),
            "messages",
            "missing_required_parameter",
        ),
    ];
    for (body, param, code) in cases {
        let reply = h.post("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 400, "{body}");
        let error = &reply.json()["error"];
        assert_eq!(error["param"], param, "{body}: {error}");
        assert_eq!(error["code"], code, "{body}: {error}");
    }
    // Duplicate keys, deep nesting and non-JSON: 400 invalid_json.
    let duplicate = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0.1,"temperature":9}"#;
    let deep = format!(
        r#"{{"model":"chat","messages":[{{"role":"user","content":"hi"}}],"metadata":{}{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    for body in [duplicate.to_owned(), deep, "{\"model\":".to_owned()] {
        let reply = h.post("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.error_code(), "invalid_json");
    }
    // Other endpoints have their own models.
    let reply = h
        .post(
            "/v1/embeddings",
            &json!({"model": "embed", "input": []}).to_string(),
        )
        .await;
    assert_eq!(reply.json()["error"]["param"], "input");
    let reply = h
        .post("/v1/completions", &json!({"model": "chat"}).to_string())
        .await;
    assert_eq!(reply.json()["error"]["param"], "prompt");
    assert_eq!(
        h.sim.stats().requests,
        0,
        "nothing malformed reached the model"
    );

    // A well-formed request with every common parameter passes.
    let full = chat(
        json!({"temperature": 0.7, "top_p": 0.9, "n": 1, "max_tokens": 20,
        "stop": ["\n"], "presence_penalty": 0.5, "user": "u-1", "seed": 3,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
    );
    assert_eq!(h.post("/v1/chat/completions", &full).await.status, 200);
}

#[tokio::test]
async fn unknown_fields_can_be_stripped_instead() {
    let h = Harness::start(
        SimOptions::default(),
        "",
        "[guard]\nunknown_fields = \"strip\"\n",
    )
    .await;
    let reply = h
        .post(
            "/v1/chat/completions",
            &chat(json!({"debug_mode": true, "temperature": 0.2})),
        )
        .await;
    assert_eq!(reply.status, 200);
    let sent = h.sim.last_request().unwrap().body;
    assert!(sent.get("debug_mode").is_none());
    assert_eq!(sent["temperature"], 0.2);
}
