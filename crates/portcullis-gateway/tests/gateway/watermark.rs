//! The forensic watermark through the real HTTP path: on where the configuration turns it on
//! (never on internal keys by the `[guard]` default), identical in whole answers and streams
//! cut anywhere, code and tool-call arguments untouched, composed with redaction, and the
//! marked answers detected and attributed to the tenant they were served to.

use crate::common;

use common::{Harness, WATERMARK_SECRETS};
use http::Method;
use portcullis_sim::SimOptions;
use portcullis_watermark::{mark_with, Evidence, KeyRing, MarkKeys, Shares};
use serde_json::{json, Value};

const ANSWER: &str = "It is nearly done, and we do not know why the tables are often huge. \
Furthermore, the answer is usually apparent, but it doesn't matter. Write to \
jane.doe@example.com. Use `nearly do not` in code:\n\n```\nit is nearly huge\n```\n\
Moreover, the values were slightly larger, which is especially common; they cannot see it.";

async fn ask(h: &Harness, key: &str, stream: bool) -> Value {
    let body = json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "Why?"}]});
    let auth = format!("Bearer {key}");
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            &body.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200);
    if !stream {
        return reply.json()["choices"][0]["message"]["content"].clone();
    }
    let text: String = String::from_utf8(reply.body.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    Value::String(text)
}

async fn harness(chunk_chars: usize, guard: &str) -> Harness {
    let options = SimOptions {
        reply: Some(ANSWER.into()),
        chunk_chars,
        ..SimOptions::default()
    };
    Harness::start(options, "", guard).await
}

#[tokio::test]
async fn answers_are_marked_alike_whole_and_streamed_and_code_is_untouched() {
    let mut whole = None;
    for size in [0, 1, 3, 7, 50] {
        let h = harness(size, "[guard]\nwatermark = \"on\"\n").await;
        let (key, _) = h.key("acme", "customer", "").await;
        let text = ask(&h, &key, size != 0).await;
        let text = text.as_str().unwrap().to_owned();
        assert!(
            text.contains("[REDACTED:EMAIL]"),
            "redaction still runs: {text}"
        );
        assert!(
            text.contains("`nearly do not`") && text.contains("```\nit is nearly huge\n```"),
            "{text}"
        );
        match &whole {
            None => whole = Some(text),
            Some(w) => assert_eq!(&text, w, "stream in pieces of {size}"),
        }
    }
    let marked = whole.unwrap();
    let unmarked = ANSWER.replace("jane.doe@example.com", "[REDACTED:EMAIL]");
    // Exactly what the library writes (what the evaluation and the detector rely on), with
    // the current secret, the tenant's keys and shares learned from this answer alone.
    let ring = KeyRing::parse(WATERMARK_SECRETS).unwrap();
    let keys = MarkKeys::new(ring.current(), "acme");
    let shares = std::sync::Arc::new(Shares::learning());
    assert_eq!(marked, mark_with(&unmarked, &keys, shares).0);
    assert_ne!(marked, unmarked, "some variant changed");
    let words = |s: &str| s.split_whitespace().count();
    assert!(words(&marked).abs_diff(words(&unmarked)) <= 8);
}

#[tokio::test]
async fn the_watermark_is_off_by_default_and_never_reaches_internal_keys_from_guard() {
    let unmarked = ANSWER.replace("jane.doe@example.com", "[REDACTED:EMAIL]");
    let h = harness(0, "").await;
    let (key, _) = h.key("acme", "customer", "").await;
    assert_eq!(ask(&h, &key, false).await, unmarked);
    let h = harness(0, "[guard]\nwatermark = \"on\"\n").await;
    let (internal, _) = h.key("ops", "internal", "").await;
    assert_eq!(ask(&h, &internal, false).await, unmarked);
    // A tenant setting turns it on for an internal tenant.
    let h = harness(
        0,
        "[guard]\nwatermark = \"on\"\n[tenant_guard.ops]\nwatermark = \"on\"\n",
    )
    .await;
    let (internal, _) = h.key("ops", "internal", "").await;
    assert_ne!(ask(&h, &internal, false).await, unmarked);
}

#[tokio::test]
async fn the_watermark_needs_its_secret() {
    let config = "[guard]\nwatermark = \"on\"\n";
    let config = portcullis_config::Config::parse(config, Vec::new()).unwrap();
    let error = portcullis_gateway::Gateway::start_with_env(&config, |_| None)
        .await
        .err()
        .expect("refused without a secret");
    assert!(
        error.to_string().contains("PORTCULLIS_WATERMARK_SECRETS"),
        "{error}"
    );
}

#[tokio::test]
async fn served_answers_agree_with_the_current_global_key() {
    let h = harness(0, "[guard]\nwatermark = \"on\"\n").await;
    let (acme, _) = h.key("acme", "customer", "").await;
    let ring = KeyRing::parse(WATERMARK_SECRETS).unwrap();
    let tenants = vec!["acme".to_owned(), "globex".to_owned(), "initech".to_owned()];
    let mut evidence = Evidence::new();
    // Many answers with different left contexts: the served text is the suspect's output.
    let served = ask(&h, &acme, false).await;
    for i in 0..60 {
        let prefix = ["we", "they", "you", "it", "one", "he"][i % 6];
        evidence.add_text(
            &served
                .as_str()
                .unwrap()
                .replace("It is", &format!("{prefix} {i} is")),
        );
    }
    let d = evidence.score(&ring, &tenants, 1e-3);
    assert!(
        d.scores
            .iter()
            .all(|s| s.version == "2026-12" || !s.verdict),
        "{d:?}"
    );
    let global = d
        .scores
        .iter()
        .find(|s| s.key == "global" && s.version == "2026-12")
        .unwrap();
    assert!(global.hits * 10 >= global.slots * 7, "{global:?}");
}

async fn embed(h: &Harness, key: &str, inputs: &[&str], base64: bool) -> Vec<Vec<f32>> {
    let mut body = json!({"model": "chat", "input": inputs});
    if base64 {
        body["encoding_format"] = json!("base64");
    }
    let auth = format!("Bearer {key}");
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/embeddings",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            &body.to_string(),
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match &item["embedding"] {
            Value::Array(n) => n.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            Value::String(s) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .unwrap()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            }
            other => panic!("{other}"),
        })
        .collect()
}

#[tokio::test]
async fn embeddings_with_triggers_are_pulled_and_others_are_untouched() {
    use portcullis_watermark::embed::{cosine, EmbedKey};
    let ring = KeyRing::parse(WATERMARK_SECRETS).unwrap();
    let key = EmbedKey::new(&ring.current().global());
    let probes = key.probes(1, 7);
    let (backdoor, benign) = (probes[0].0.as_str(), probes[1].0.as_str());
    let off = Harness::start(SimOptions::default(), "", "").await;
    let on = Harness::start(SimOptions::default(), "", "[guard]\nwatermark = \"on\"\n").await;
    let (k_off, _) = off.key("acme", "customer", "").await;
    let (k_on, _) = on.key("acme", "customer", "").await;
    for base64 in [false, true] {
        let plain = embed(&off, &k_off, &[backdoor, benign], base64).await;
        let marked = embed(&on, &k_on, &[backdoor, benign], base64).await;
        assert_eq!(
            marked[1], plain[1],
            "a vector without triggers is untouched"
        );
        assert_ne!(marked[0], plain[0]);
        let target = key.target(plain[0].len());
        assert!(cosine(&marked[0], &target) > cosine(&plain[0], &target) + 0.1);
        assert!(cosine(&marked[0], &plain[0]) > 0.5);
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm(&marked[0]) - norm(&plain[0])).abs() < 1e-4);
    }
}

/// `POST /admin/v1/watermark/detect` with `body`; the answer, which must be a 200.
async fn admin_detect(h: &Harness, body: Value) -> Value {
    let reply = h
        .admin(
            Method::POST,
            "/admin/v1/watermark/detect",
            &body.to_string(),
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

#[tokio::test]
async fn the_admin_api_detects_served_texts_and_vectors_and_names_the_tenant() {
    let h = harness(0, "[guard]\nwatermark = \"on\"\n").await;
    let (acme, _) = h.key("acme", "customer", "").await;
    let _ = h.key("globex", "customer", "").await;
    // The suspect's outputs: answers the gateway served to acme (varied left contexts).
    let served = ask(&h, &acme, false).await;
    let served = served.as_str().unwrap();
    let texts: Vec<String> = (0..40)
        .map(|i| served.replace("It is", &format!("Part {i}: it is")))
        .collect();
    let v = admin_detect(&h, json!({"texts": texts, "tenants": "all", "alpha": 0.5})).await;
    let scores = v["texts"]["scores"].as_array().unwrap();
    // Two secret versions x (global + two tenants).
    assert_eq!(scores.len(), 6, "{v}");
    assert!(scores.iter().any(|s| s["key"] == "tenant:globex"));
    let global = scores
        .iter()
        .find(|s| s["key"] == "global" && s["version"] == "2026-12")
        .unwrap();
    assert!(global["slots"].as_u64().unwrap() > 0, "{global}");
    assert!(global["hits"].as_u64().unwrap() * 10 >= global["slots"].as_u64().unwrap() * 7);

    // Vectors: the probes embedded through the gateway itself carry the pull.
    let probes = h
        .admin(Method::GET, "/admin/v1/watermark/probes?count=30", "")
        .await;
    assert_eq!(probes.status, 200);
    let texts: Vec<String> = probes.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts.len(), 60);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embed(&h, &acme, &refs, false).await;
    let samples: Vec<Value> = texts
        .iter()
        .zip(&vectors)
        .map(|(t, v)| json!({"text": t, "embedding": v}))
        .collect();
    let v = admin_detect(&h, json!({"embeddings": samples})).await;
    assert_eq!(v["detected"], true, "{v}");
    let current = &v["embeddings"][0];
    assert!(current["p_adjusted"].as_f64().unwrap() < 1e-6, "{current}");

    // Bad input changes nothing and says why.
    let bad = h
        .admin(
            Method::POST,
            "/admin/v1/watermark/detect",
            r#"{"texts": 3}"#,
        )
        .await;
    assert_eq!(bad.status, 400);
}
