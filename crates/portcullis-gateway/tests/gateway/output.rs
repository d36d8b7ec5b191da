//! Output guards through the real HTTP path: only the fields a caller needs, and personal
//! data and secrets redacted, in whole answers and in streams whose items are split across
//! chunks.

use crate::common;

use common::{Harness, Reply};
use portcullis_sim::SimOptions;
use serde_json::{json, Value};

const ANSWER: &str = "Sure. Write to jane.doe@example.com, pay with 4242 4242 4242 4242, \
and use key sk-proj-Abc123Def456Ghi789Jkl012Mno345 for the API.";
const REDACTED: &str = "Sure. Write to [REDACTED:EMAIL], pay with [REDACTED:CREDIT_CARD], \
and use key [REDACTED:OPENAI_KEY] for the API.";

fn options(chunk_chars: usize) -> SimOptions {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "debug".into(),
        json!({"node": "gpu-7.internal", "queue_ms": 3}),
    );
    extra.insert("provider_meta".into(), json!("shard-12"));
    SimOptions {
        reply: Some(ANSWER.into()),
        chunk_chars,
        extra_fields: extra,
        ..SimOptions::default()
    }
}

async fn ask(h: &Harness, model: &str, stream: bool) -> Reply {
    let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Where do I send it?"}]});
    h.post("/v1/chat/completions", &body.to_string()).await
}

/// The data payloads of a stream, each parsed.
fn chunks(reply: &Reply) -> Vec<Value> {
    String::from_utf8(reply.body.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn whole_answers_are_redacted_and_pruned_to_the_allowed_fields() {
    let h = Harness::start(options(0), "", "").await;
    let reply = ask(&h, "chat", false).await;
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["choices"][0]["message"]["content"], REDACTED);
    for hidden in ["debug", "provider_meta", "system_fingerprint"] {
        assert!(v.get(hidden).is_none(), "{hidden} reached the caller: {v}");
    }
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(v["object"], "chat.completion");
}

#[tokio::test]
async fn streams_are_redacted_even_when_items_are_split_across_chunks() {
    for size in [1, 3, 7, 50] {
        let h = Harness::start(options(size), "", "").await;
        let reply = ask(&h, "chat", true).await;
        assert_eq!(reply.status, 200);
        let chunks = chunks(&reply);
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, REDACTED, "pieces of {size}");
        for c in &chunks {
            assert!(
                c.get("debug").is_none() && c.get("provider_meta").is_none(),
                "{c}"
            );
            assert!(c.get("system_fingerprint").is_none());
        }
        let raw = String::from_utf8_lossy(&reply.body);
        assert!(!raw.contains("jane.doe") && !raw.contains("4242"), "{raw}");
        assert!(raw.ends_with("data: [DONE]\n\n"));
    }
}

#[tokio::test]
async fn block_withholds_the_answer_and_off_passes_it_per_model() {
    let h = Harness::start(
        options(5),
        "\n[[models]]\nname = \"raw\"\nupstream = \"sim\"\nguard = { output = \"off\" }\n",
        "[guard]\noutput = \"block\"\nsystem_fingerprint = true\n",
    )
    .await;
    let reply = ask(&h, "chat", false).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "output_rejected");
    let reply = ask(&h, "chat", true).await;
    let raw = String::from_utf8_lossy(&reply.body).to_string();
    assert!(raw.contains("output_rejected"), "{raw}");
    assert!(!raw.contains("jane.doe"), "{raw}");

    let reply = ask(&h, "raw", false).await;
    let v = reply.json();
    assert_eq!(v["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(v["system_fingerprint"], "fp_sim");
    assert!(
        v.get("debug").is_none(),
        "fields are pruned whatever the redaction policy"
    );
}

#[tokio::test]
async fn a_block_mid_stream_cancels_the_upstream_generation_and_frees_its_bulkhead() {
    // A long, paced answer with an e-mail address near its start: under `block` the stream
    // ends at the item, and the upstream must not be left generating the rest.
    let mut reply = String::from("Write to jane.doe@example.com today. ");
    for i in 0..400 {
        reply.push_str(&format!("word{i} "));
    }
    let h = Harness::start(
        SimOptions {
            reply: Some(reply),
            chunk_chars: 0,
            tokens_per_second: 200.0,
            ..SimOptions::default()
        },
        "max_concurrency = 1\n",
        "[guard]\noutput = \"block\"\n",
    )
    .await;
    let started = std::time::Instant::now();
    let reply = ask(&h, "chat", true).await;
    let raw = String::from_utf8_lossy(&reply.body).to_string();
    assert!(
        raw.contains("output_rejected") && !raw.contains("jane.doe"),
        "{raw}"
    );
    assert!(
        !raw.contains("word300"),
        "the stream went on after the block"
    );
    // 400 words at 200 a second would take two seconds; the caller's stream ended at once.
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert!(
        common::eventually(|| h.sim.stats().streams_cancelled == 1).await,
        "the upstream kept generating: {:?}",
        h.sim.stats()
    );
    // The bulkhead (one slot) is free again: the next request is served, not refused with 503.
    let next = ask(&h, "chat", false).await;
    assert_ne!(
        next.status, 503,
        "the bulkhead permit was held after the block"
    );
}

const SYSTEM: &str =
    "You are Zed, the support assistant of Acme Corp. Internal note: refunds above \
500 EUR need approval from the finance desk.";

async fn ask_with_system(h: &Harness, stream: bool) -> Reply {
    let body = json!({"model": "chat", "stream": stream, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "How do refunds work here?"},
    ]});
    h.post("/v1/chat/completions", &body.to_string()).await
}

fn replying(text: &str, chunk_chars: usize) -> SimOptions {
    SimOptions {
        reply: Some(text.into()),
        chunk_chars,
        ..SimOptions::default()
    }
}

#[tokio::test]
async fn canaries_and_verbatim_system_prompt_spans_are_leaks() {
    // A canary configured for the plan: blocked whole and in a stream split mid-canary.
    let leak = "Sure! My secret marker is zq-canary-4471, as configured.";
    let h = Harness::start(
        replying(leak, 4),
        "",
        "[plans.default.guard]\ncanary = \"zq-canary-4471\"\n",
    )
    .await;
    let reply = ask_with_system(&h, false).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "output_rejected");
    let raw = String::from_utf8_lossy(&ask_with_system(&h, true).await.body).to_string();
    assert!(
        raw.contains("output_rejected") && !raw.contains("4471"),
        "{raw}"
    );

    // Verbatim spans of the system prompt, with prompt_leak = "block".
    let echo = "I was told: refunds above 500 EUR need approval from the finance desk.";
    let h = Harness::start(
        replying(echo, 5),
        "",
        "[guard]\nprompt_leak = \"block\"\nprompt_leak_chars = 30\n",
    )
    .await;
    assert_eq!(ask_with_system(&h, false).await.status, 502);
    let raw = String::from_utf8_lossy(&ask_with_system(&h, true).await.body).to_string();
    assert!(
        raw.contains("output_rejected") && !raw.contains("finance desk"),
        "{raw}"
    );
    // An answer that shares only short phrases passes.
    let h = Harness::start(
        replying("Refunds need approval; ask the finance team.", 0),
        "",
        "[guard]\nprompt_leak = \"block\"\nprompt_leak_chars = 30\n",
    )
    .await;
    assert_eq!(ask_with_system(&h, false).await.status, 200);

    // Flag passes the answer on.
    let h = Harness::start(
        replying(echo, 0),
        "",
        "[guard]\nprompt_leak = \"flag\"\nprompt_leak_chars = 30\n",
    )
    .await;
    assert_eq!(ask_with_system(&h, false).await.status, 200);
}

#[tokio::test]
async fn log_probabilities_never_repeat_what_was_redacted() {
    // F4: logprob tokens (and their alternatives) spelled out what the text redacted.
    for size in [0, 3, 7] {
        let h = Harness::start(options(size), "", "").await;
        let whole = ask_logprobs(&h, false).await;
        assert_eq!(whole.json()["choices"][0]["message"]["content"], REDACTED);
        assert!(
            whole.json()["choices"][0]["logprobs"].is_null(),
            "{}",
            whole.json()
        );
        let streamed = ask_logprobs(&h, true).await;
        let raw = String::from_utf8_lossy(&streamed.body).to_string();
        for secret in ["jane", "doe@", "4242", "sk-proj", "Abc123"] {
            assert!(
                !raw.contains(secret),
                "{secret} leaked with pieces of {size}: {raw}"
            );
        }
    }
    // An answer with nothing to redact keeps its log probabilities, whole and streamed.
    let h = Harness::start(replying("Send it to the front desk. ", 0), "", "").await;
    let whole = ask_logprobs(&h, false).await;
    let tokens = &whole.json()["choices"][0]["logprobs"]["content"];
    assert!(
        tokens.as_array().is_some_and(|t| !t.is_empty()),
        "{}",
        whole.json()
    );
    let streamed = chunks(&ask_logprobs(&h, true).await);
    assert!(streamed
        .iter()
        .any(|c| c["choices"][0]["logprobs"]["content"].is_array()));
}

async fn ask_logprobs(h: &Harness, stream: bool) -> Reply {
    let body = json!({"model": "chat", "stream": stream, "logprobs": true, "top_logprobs": 2,
        "messages": [{"role": "user", "content": "Where do I send it?"}]});
    h.post("/v1/chat/completions", &body.to_string()).await
}

#[tokio::test]
async fn look_alike_characters_and_separators_do_not_slip_items_out() {
    // F11: zero-width and fullwidth characters inside an item, dotted and no-break-spaced
    // cards, a spaced SSN, a key block without its END line.
    let answer = "Mail john.\u{200b}doe@example.com or jane\u{FF20}example.org, card \
4111.1111.1111.1111 or 4111\u{a0}1111\u{a0}1111\u{a0}1111, ssn 078 05 1120, \
key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7";
    let expected = "Mail [REDACTED:EMAIL] or [REDACTED:EMAIL], card [REDACTED:CREDIT_CARD] or \
[REDACTED:CREDIT_CARD], ssn [REDACTED:US_SSN], key [REDACTED:PRIVATE_KEY]";
    for chunk_chars in [0, 1, 3, 7] {
        let h = Harness::start(replying(answer, chunk_chars), "", "").await;
        let reply = ask(&h, "chat", chunk_chars > 0).await;
        assert_eq!(reply.status, 200);
        let text = if chunk_chars == 0 {
            reply.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            chunks(&reply)
                .iter()
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                .collect()
        };
        assert_eq!(text, expected, "in chunks of {chunk_chars}");
    }
}
