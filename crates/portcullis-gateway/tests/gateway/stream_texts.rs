//! Every text a stream generates goes through the output guards, not only `content` (F4):
//! refusals, tool-call and legacy function-call arguments split across chunks, and tool
//! names. What redaction holds back is never lost: it is released before the chunk that ends
//! its choice, or before the stream's end when the upstream never sends `finish_reason`
//! (F14); nothing after `[DONE]` is relayed.

use crate::common;

use common::{Harness, Reply};
use portcullis_sim::SimOptions;
use serde_json::{json, Value};

fn event(delta: Value, finish: Option<&str>) -> String {
    let value = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {value}\n\n")
}

fn tool_args(args: &str) -> Value {
    json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]})
}

async fn stream(script: Vec<String>, top_extra: &str) -> Reply {
    let h = Harness::start(
        SimOptions {
            raw_stream: Some(script),
            ..SimOptions::default()
        },
        "",
        top_extra,
    )
    .await;
    let body =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    h.post("/v1/chat/completions", &body.to_string()).await
}

/// Every data payload of a stream, `[DONE]` included, in order.
fn payloads(reply: &Reply) -> Vec<String> {
    String::from_utf8_lossy(&reply.body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The concatenation of one delta field of choice 0 across the stream (`pointer` inside the
/// delta), as a client accumulates it.
fn joined(reply: &Reply, pointer: &str) -> String {
    payloads(reply)
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|v| {
            v.pointer(&format!("/choices/0/delta{pointer}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn streamed_tool_call_arguments_split_across_chunks_are_redacted() {
    let reply = stream(
        vec![
            event(
                json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "send_mail", "arguments": ""}}]}),
                None,
            ),
            event(tool_args(r#"{"to":"jane.d"#), None),
            event(tool_args(r#"oe@example.com","body":"call +44 20 7946"#), None),
            event(tool_args(r#" 0958"}"#), None),
            event(json!({}), Some("tool_calls")),
            "data: [DONE]\n\n".into(),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let raw = String::from_utf8_lossy(&reply.body).to_string();
    assert!(!raw.contains("jane.d") && !raw.contains("7946"), "{raw}");
    assert_eq!(
        joined(&reply, "/tool_calls/0/function/arguments"),
        r#"{"to":"[REDACTED:EMAIL]","body":"call [REDACTED:PHONE]"}"#
    );
    assert_eq!(joined(&reply, "/tool_calls/0/function/name"), "send_mail");
    // What was held is released before the chunk that finishes the choice.
    let payloads = payloads(&reply);
    let finish = payloads
        .iter()
        .position(|p| p.contains(r#""finish_reason":"tool_calls""#))
        .unwrap();
    let last_args = payloads
        .iter()
        .rposition(|p| p.contains("arguments"))
        .unwrap();
    assert!(last_args < finish, "{payloads:?}");
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn streamed_refusals_function_calls_and_tool_names_are_redacted() {
    let reply = stream(
        vec![
            event(json!({"refusal": "I will not mail jane."}), None),
            event(json!({"refusal": "doe@example.com, sorry."}), None),
            event(
                json!({"function_call": {"name": "lookup", "arguments": "{\"key\":\"sk-proj-Abc123Def4"}}),
                None,
            ),
            event(
                json!({"function_call": {"arguments": "56Ghi789Jkl012Mno345\"}"}}),
                None,
            ),
            event(
                json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                    "function": {"name": "AKIAIOSFODNN7EXAMPLE", "arguments": "{}"}}]}),
                None,
            ),
            event(json!({}), Some("stop")),
            "data: [DONE]\n\n".into(),
        ],
        "",
    )
    .await;
    let raw = String::from_utf8_lossy(&reply.body).to_string();
    for secret in ["jane", "doe@", "Abc123", "Mno345", "AKIAIOSFODNN7EXAMPLE"] {
        assert!(!raw.contains(secret), "{secret} reached the caller: {raw}");
    }
    assert_eq!(
        joined(&reply, "/refusal"),
        "I will not mail [REDACTED:EMAIL], sorry."
    );
    assert_eq!(
        joined(&reply, "/function_call/arguments"),
        r#"{"key":"[REDACTED:OPENAI_KEY]"}"#
    );
    assert_eq!(
        joined(&reply, "/tool_calls/0/function/name"),
        "[REDACTED:AWS_ACCESS_KEY_ID]"
    );
}

#[tokio::test]
async fn under_block_streamed_tool_arguments_with_an_item_end_the_stream() {
    let reply = stream(
        vec![
            event(tool_args(r#"{"to":"jane.doe@exa"#), None),
            event(tool_args(r#"mple.com"}"#), None),
            event(json!({}), Some("tool_calls")),
            "data: [DONE]\n\n".into(),
        ],
        "[guard]\noutput = \"block\"\n",
    )
    .await;
    let raw = String::from_utf8_lossy(&reply.body).to_string();
    assert!(raw.contains("output_rejected"), "{raw}");
    assert!(!raw.contains("jane") && !raw.contains("[DONE]"), "{raw}");
}

#[tokio::test]
async fn the_held_tail_is_released_when_no_finish_reason_comes() {
    // F14: the last word was lost when the upstream ended without `finish_reason`.
    for end in ["data: [DONE]\n\n", ""] {
        let mut script = vec![
            event(json!({"content": "hello wonderful"}), None),
            event(json!({"content": " world, mail jane.doe@example"}), None),
            event(json!({"content": ".com"}), None),
        ];
        if !end.is_empty() {
            script.push(end.into());
            // Nothing after [DONE] is relayed.
            script.push(event(json!({"content": " AFTER"}), None));
        }
        let reply = stream(script, "").await;
        assert_eq!(
            joined(&reply, "/content"),
            "hello wonderful world, mail [REDACTED:EMAIL]",
            "ending {end:?}"
        );
        let raw = String::from_utf8_lossy(&reply.body).to_string();
        assert!(!raw.contains("AFTER"), "{raw}");
        if !end.is_empty() {
            assert_eq!(payloads(&reply).last().map(String::as_str), Some("[DONE]"));
        }
    }
}

#[tokio::test]
async fn refusals_and_call_arguments_from_the_simulator_are_redacted_whole_and_streamed() {
    use portcullis_sim::ReplyAs;
    let reply =
        "Send it to jane.doe@example.com with key sk-proj-Abc123Def456Ghi789Jkl012Mno345 now";
    let redacted = "Send it to [REDACTED:EMAIL] with key [REDACTED:OPENAI_KEY] now";
    let cases = [
        (ReplyAs::Refusal, "/refusal"),
        (
            ReplyAs::ToolCall {
                name: "send_mail".into(),
            },
            "/tool_calls/0/function/arguments",
        ),
        (
            ReplyAs::FunctionCall {
                name: "lookup".into(),
            },
            "/function_call/arguments",
        ),
    ];
    for (reply_as, pointer) in cases {
        let h = Harness::start(
            SimOptions {
                reply: Some(reply.into()),
                chunk_chars: 3,
                reply_as: reply_as.clone(),
                ..SimOptions::default()
            },
            "",
            "",
        )
        .await;
        let ask = |stream: bool| {
            json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
                .to_string()
        };
        let whole = h.post("/v1/chat/completions", &ask(false)).await.json();
        let message = &whole["choices"][0]["message"];
        assert_eq!(message.pointer(pointer).unwrap(), redacted, "{reply_as:?}");
        let streamed = h.post("/v1/chat/completions", &ask(true)).await;
        let raw = String::from_utf8_lossy(&streamed.body).to_string();
        assert!(!raw.contains("jane") && !raw.contains("Abc123"), "{raw}");
        assert_eq!(joined(&streamed, pointer), redacted, "{reply_as:?}");
    }
}
