//! Usage control end to end: rate limits with the headers OpenAI clients parse, quotas and
//! budgets, clamping, concurrency, risk factors, and reconciliation of every reservation with
//! what the upstream really produced, on every path (success, stream, upstream error before
//! and during a stream, timeout, caller gone).

use crate::common;

use bytes::Bytes;
use common::{Harness, Reply};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use portcullis_sim::{Fault, SimOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Prompt tokens of `{"role":"user","content":"hi"}` with the chat overhead (3 + "user" +
/// "hi" + 3 reply priming), in o200k_base.
const HI_PROMPT: u64 = 8;
/// What the simulator reports for that prompt: it counts words, not tokens.
const SIM_PROMPT: i64 = 7;

async fn start(plan: &str, options: SimOptions) -> Harness {
    Harness::start(options, "", &format!("[plans.default]\n{plan}\n")).await
}

fn chat_body(max_tokens: Option<u64>, stream: bool) -> String {
    let mut body = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    if let Some(m) = max_tokens {
        body["max_tokens"] = json!(m);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body.to_string()
}

async fn call(h: &Harness, key: &str, body: &str) -> Reply {
    let auth = format!("Bearer {key}");
    h.request(
        h.gateway.public,
        Method::POST,
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body,
    )
    .await
}

fn header(reply: &Reply, name: &str) -> String {
    reply
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Today's usage of one key, from the admin API.
async fn key_usage(h: &Harness, key_id: &str) -> Value {
    let reply = h
        .admin(
            Method::GET,
            &format!("/admin/v1/usage?key={key_id}&period=day"),
            "",
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["totals"].clone()
}

/// Waits until the key's recorded requests reach `n`, and returns its totals.
async fn settled_usage(h: &Harness, key_id: &str, n: i64) -> Value {
    for _ in 0..100 {
        let totals = key_usage(h, key_id).await;
        if totals["requests"] == n {
            return totals;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "usage of {key_id} never reached {n} requests: {}",
        key_usage(h, key_id).await
    );
}

#[tokio::test]
async fn rate_limits_speak_the_openai_headers_and_refuse_with_429() {
    let h = start(
        "[plans.default.key]\nrequests_per_minute = 3\ntokens_per_minute = 100000",
        SimOptions::default(),
    )
    .await;
    let (key, _) = h.key("acme", "customer", "").await;
    for remaining in ["2", "1", "0"] {
        let reply = call(&h, &key, &chat_body(Some(20), false)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(header(&reply, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header(&reply, "x-ratelimit-remaining-requests"), remaining);
        assert!(header(&reply, "x-ratelimit-reset-requests").ends_with('s'));
        assert_eq!(header(&reply, "x-ratelimit-limit-tokens"), "100000");
        let remaining_tokens: u64 = header(&reply, "x-ratelimit-remaining-tokens")
            .parse()
            .unwrap();
        assert!(remaining_tokens < 100000);
        assert!(!header(&reply, "x-ratelimit-reset-tokens").is_empty());
    }
    let refused = call(&h, &key, &chat_body(Some(20), false)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let error = refused.json();
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((15..=21).contains(&retry), "{retry}");
    let retry_ms: u64 = header(&refused, "retry-after-ms").parse().unwrap();
    assert!(retry_ms > 15_000 && retry_ms <= 20_000, "{retry_ms}");
    assert_eq!(header(&refused, "x-should-retry"), "true");
    assert_eq!(header(&refused, "x-ratelimit-remaining-requests"), "0");
    assert!(!header(&refused, "x-request-id").is_empty());
    assert_eq!(
        h.sim.stats().requests,
        3,
        "the refused request never reached the model"
    );

    // A request larger than the whole token allowance can never fit: no retry.
    let too_big = call(&h, &key, &chat_body(Some(200_000), false)).await;
    assert_eq!(too_big.status, 429);
    assert_eq!(header(&too_big, "x-should-retry"), "false");
}

#[tokio::test]
async fn quotas_and_spend_caps_refuse_for_good_and_count_real_usage() {
    let h = Harness::start(
        SimOptions::default(),
        "",
        "[plans.default.key]\ntokens_per_day = 100\n",
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    // Each call reserves 8 + 20 tokens and uses 7 + 16 (the simulator's report).
    for _ in 0..4 {
        assert_eq!(
            call(&h, &key, &chat_body(Some(20), false)).await.status,
            200
        );
    }
    let refused = call(&h, &key, &chat_body(Some(20), false)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "insufficient_quota");
    assert_eq!(header(&refused, "x-should-retry"), "false");
    let totals = key_usage(&h, &key_id).await;
    assert_eq!(totals["requests"], 4);
    assert_eq!(totals["tokens"], 4 * (SIM_PROMPT + 16));

    // A tenant spend cap, on a priced model: 1000 per million tokens = 0.001 a token.
    let h = Harness::start(
        SimOptions::default(),
        "\n[[models]]\nname = \"priced\"\nupstream = \"sim\"\ninput_price = 1000.0\noutput_price = 1000.0\n",
        "[tenant_limits.capped]\nspend_cap = 0.06\n",
    )
    .await;
    let (key, _) = h.key("capped", "customer", "").await;
    let body = |m: u64| {
        json!({"model": "priced", "max_tokens": m, "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
    };
    // 0.028 reserved, 0.023 used, each.
    assert_eq!(call(&h, &key, &body(20)).await.status, 200);
    assert_eq!(call(&h, &key, &body(20)).await.status, 200);
    let refused = call(&h, &key, &body(20)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "budget_exceeded");
    assert_eq!(header(&refused, "x-should-retry"), "false");
    let usage = h
        .admin(
            Method::GET,
            "/admin/v1/usage?tenant=capped&period=total",
            "",
        )
        .await
        .json();
    let cost = usage["totals"]["cost"].as_f64().unwrap();
    assert!((cost - 0.046).abs() < 1e-9, "{cost}");
    assert_eq!(usage["currency"], "USD");
}

#[tokio::test]
async fn a_plan_that_clamps_lowers_max_tokens_to_what_the_budget_pays_for() {
    let h = start(
        "clamp_max_tokens = true\nmin_output_tokens = 5\n[plans.default.key]\ntokens_per_minute = 100",
        SimOptions::default(),
    )
    .await;
    let (key, _) = h.key("acme", "customer", "").await;
    let reply = call(&h, &key, &chat_body(Some(500), false)).await;
    assert_eq!(reply.status, 200);
    let clamped = 100 - HI_PROMPT;
    assert_eq!(
        header(&reply, "x-portcullis-max-tokens-clamped"),
        clamped.to_string()
    );
    assert_eq!(h.sim.last_request().unwrap().body["max_tokens"], clamped);
    // Without max_tokens the reservation itself becomes the limit sent upstream.
    let reply = call(&h, &key, &chat_body(None, false)).await;
    assert_eq!(reply.status, 200);
    let sent = h.sim.last_request().unwrap().body["max_tokens"]
        .as_u64()
        .unwrap();
    assert!((5..100).contains(&sent), "{sent}");
}

#[tokio::test]
async fn concurrent_requests_beyond_the_cap_are_refused_until_one_ends() {
    let options = SimOptions {
        tokens_per_second: 40.0,
        ..SimOptions::default()
    };
    let h = start("[plans.default.key]\nconcurrent_requests = 1", options).await;
    let (key, _) = h.key("acme", "customer", "").await;
    let request = http::Request::post(format!("http://{}/v1/chat/completions", h.gateway.public))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(chat_body(None, true))))
        .unwrap();
    let stream = h.client.request(request).await.unwrap();
    assert_eq!(stream.status(), 200);
    let second = call(&h, &key, &chat_body(None, false)).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.error_code(), "concurrency_exceeded");
    assert_eq!(header(&second, "x-should-retry"), "true");
    stream.into_body().collect().await.unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if call(&h, &key, &chat_body(None, false)).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the slot was never released");
}

#[tokio::test]
async fn streams_are_charged_what_the_upstream_reports_and_hide_usage_nobody_asked_for() {
    let h = start(
        "[plans.default.key]\ntokens_per_minute = 10000",
        SimOptions::default(),
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let started = Instant::now();
    let reply = call(&h, &key, &chat_body(Some(50), true)).await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(
        !text.contains("\"usage\""),
        "usage leaked to a caller who did not ask: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    let upstream = h.sim.last_request().unwrap().body;
    assert_eq!(upstream["stream_options"]["include_usage"], true);
    let totals = settled_usage(&h, &key_id, 1).await;
    assert_eq!(totals["input_tokens"], SIM_PROMPT);
    assert_eq!(totals["output_tokens"], 16);

    // A caller who asked gets the usage chunk.
    let body = json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let reply = call(&h, &key, &body.to_string()).await;
    assert!(String::from_utf8_lossy(&reply.body).contains("\"completion_tokens\":16"));
    settled_usage(&h, &key_id, 2).await;

    // The refund is real: after settling, the token allowance is back to the limit minus
    // what was used, not minus what was reserved.
    let reply = call(&h, &key, &chat_body(Some(50), false)).await;
    let remaining: u64 = header(&reply, "x-ratelimit-remaining-tokens")
        .parse()
        .unwrap();
    let used_before = 2 * (SIM_PROMPT as u64 + 16);
    let reserved_now = HI_PROMPT + 50;
    let expected = 10_000 - used_before - reserved_now;
    // The allowance refills at 10,000 a minute while the test runs (more on a busy machine).
    let refilled = (started.elapsed().as_secs_f64() * 10_000.0 / 60.0).ceil() as u64;
    assert!(
        remaining + 2 >= expected && remaining <= expected + refilled + 2,
        "{remaining} vs {expected} (+ up to {refilled} refilled)"
    );
}

#[tokio::test]
async fn without_reported_usage_the_gateway_counts_what_was_produced() {
    let options = SimOptions {
        report_usage: false,
        ..SimOptions::default()
    };
    let h = start("[plans.default.key]\ntokens_per_minute = 10000", options).await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let reply = call(&h, &key, &chat_body(Some(50), false)).await;
    let content = reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let totals = settled_usage(&h, &key_id, 1).await;
    assert_eq!(totals["input_tokens"], HI_PROMPT);
    assert_eq!(
        totals["output_tokens"],
        portcullis_openai::Encoding::O200kBase.count(&content)
    );

    let reply = call(&h, &key, &chat_body(Some(50), true)).await;
    let mut streamed = String::new();
    for event in String::from_utf8(reply.body.to_vec())
        .unwrap()
        .split("\n\n")
    {
        if let Some(Ok(chunk)) = event
            .strip_prefix("data: ")
            .filter(|d| *d != "[DONE]")
            .map(serde_json::from_str::<Value>)
        {
            streamed.push_str(
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or(""),
            );
        }
    }
    let totals = settled_usage(&h, &key_id, 2).await;
    let expected = 2 * portcullis_openai::Encoding::O200kBase.count(&content);
    assert_eq!(streamed, content);
    assert_eq!(totals["output_tokens"].as_u64().unwrap(), expected);
}

#[tokio::test]
async fn every_error_path_settles_exactly_what_was_produced() {
    let h = start(
        "[plans.default.key]\ntokens_per_minute = 10000",
        SimOptions::default(),
    )
    .await;

    // Upstream error before anything is produced: the request counts, no tokens do, and the
    // whole token reservation comes back.
    let (key, key_id) = h.key("acme", "customer", "").await;
    h.sim.set_fault(Fault::Status { status: 500 });
    assert_eq!(
        call(&h, &key, &chat_body(Some(500), false)).await.status,
        502
    );
    assert_eq!(
        call(&h, &key, &chat_body(Some(500), true)).await.status,
        502
    );
    h.sim.set_fault(Fault::None);
    let totals = settled_usage(&h, &key_id, 2).await;
    assert_eq!(totals["tokens"], 0);
    let reply = call(&h, &key, &chat_body(Some(500), false)).await;
    let remaining: u64 = header(&reply, "x-ratelimit-remaining-tokens")
        .parse()
        .unwrap();
    assert_eq!(remaining, 10_000 - HI_PROMPT - 500);

    // The upstream breaks mid-stream: what reached the caller is charged, nothing more.
    let (key, key_id) = h.key("acme", "customer", "").await;
    h.sim.set_fault(Fault::ResetMidStream { after_chunks: 5 });
    let reply = call(&h, &key, &chat_body(Some(50), true)).await;
    assert!(String::from_utf8_lossy(&reply.body).contains("\"error\""));
    h.sim.set_fault(Fault::None);
    let totals = settled_usage(&h, &key_id, 1).await;
    assert_eq!(totals["input_tokens"], HI_PROMPT);
    // Five words of the simulator's text: "the gateway checks every request ".
    assert_eq!(
        totals["output_tokens"],
        portcullis_openai::Encoding::O200kBase.count("the gateway checks every request ")
    );

    // No answer before the first-byte timeout: nothing produced, nothing charged.
    let h2 = Harness::start(
        SimOptions::default(),
        "first_byte_timeout = \"200ms\"",
        "[plans.default.key]\ntokens_per_minute = 10000\n",
    )
    .await;
    let (key, key_id) = h2.key("acme", "customer", "").await;
    h2.sim.set_fault(Fault::Hang);
    assert_eq!(
        call(&h2, &key, &chat_body(Some(50), false)).await.status,
        504
    );
    let totals = settled_usage(&h2, &key_id, 1).await;
    assert_eq!(totals["tokens"], 0);

    // The caller leaves mid-stream: charged for what was produced until then.
    let options = SimOptions {
        tokens_per_second: 50.0,
        output_tokens: 200,
        ..SimOptions::default()
    };
    let h3 = start("[plans.default.key]\ntokens_per_minute = 10000", options).await;
    let (key, key_id) = h3.key("acme", "customer", "").await;
    let request = http::Request::post(format!("http://{}/v1/chat/completions", h3.gateway.public))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(chat_body(Some(200), true))))
        .unwrap();
    let mut body = h3.client.request(request).await.unwrap().into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    drop(body);
    let totals = settled_usage(&h3, &key_id, 1).await;
    let output = totals["output_tokens"].as_u64().unwrap();
    assert!((1..200).contains(&output), "{output}");
    assert_eq!(totals["input_tokens"], HI_PROMPT);
    assert!(common::eventually(|| h3.sim.stats().streams_cancelled == 1).await);
}

#[tokio::test]
async fn risk_factors_scale_limits_down_and_suspend() {
    let h = start(
        "[plans.default.key]\nrequests_per_minute = 10",
        SimOptions::default(),
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let reply = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(header(&reply, "x-ratelimit-limit-requests"), "10");

    let set = h
        .admin(
            Method::PUT,
            &format!("/admin/v1/risk/key:{key_id}"),
            r#"{"factor":0.5,"ttl_seconds":60,"reason":"probing"}"#,
        )
        .await;
    assert_eq!(set.status, 200, "{}", String::from_utf8_lossy(&set.body));
    let reply = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(header(&reply, "x-ratelimit-limit-requests"), "5");

    h.admin(
        Method::PUT,
        "/admin/v1/risk/tenant:acme",
        r#"{"factor":0,"ttl_seconds":60,"reason":"suspended"}"#,
    )
    .await;
    let refused = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused, "x-should-retry"), "false");
    let listed = h.admin(Method::GET, "/admin/v1/risk", "").await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    let bad = h
        .admin(
            Method::PUT,
            "/admin/v1/risk/tenant:acme",
            r#"{"factor":2,"ttl_seconds":60}"#,
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        h.admin(
            Method::PUT,
            "/admin/v1/risk/nobody",
            r#"{"factor":0.5,"ttl_seconds":60}"#
        )
        .await
        .status,
        400
    );

    h.admin(Method::DELETE, "/admin/v1/risk/tenant:acme", "")
        .await;
    h.admin(Method::DELETE, &format!("/admin/v1/risk/key:{key_id}"), "")
        .await;
    let reply = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(header(&reply, "x-ratelimit-limit-requests"), "10");
    let audit = h.admin(Method::GET, "/admin/v1/audit", "").await.json();
    assert!(audit.to_string().contains("risk.set"));
}

#[tokio::test]
async fn quotas_survive_a_gateway_restart() {
    let h = start(
        "[plans.default.key]\ntokens_per_day = 60",
        SimOptions::default(),
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    // 23 used each; the third (needing 28 more than 46) does not fit.
    assert_eq!(
        call(&h, &key, &chat_body(Some(20), false)).await.status,
        200
    );
    let h = h.restart().await;
    assert_eq!(
        call(&h, &key, &chat_body(Some(20), false)).await.status,
        200
    );
    let refused = call(&h, &key, &chat_body(Some(20), false)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "insufficient_quota");
    assert_eq!(key_usage(&h, &key_id).await["requests"], 2);
}

#[tokio::test]
async fn unknown_plans_are_refused_at_tenant_creation() {
    let h = Harness::default().await;
    let reply = h
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            r#"{"name":"x","audience":"customer","plan":"platinum"}"#,
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("default"));
}

#[tokio::test]
async fn with_fail_closed_a_redis_outage_refuses_and_recovery_is_automatic() {
    let mut redis = portcullis_testkit::RedisServer::start();
    let h = Harness::start(
        SimOptions::default(),
        "",
        &format!(
            "[limits]\nbackend = \"redis\"\nredis_url = \"{}\"\nredis_timeout = \"100ms\"\n\
             [plans.default.key]\nrequests_per_minute = 100\n",
            redis.url()
        ),
    )
    .await;
    let (key, _) = h.key("acme", "customer", "").await;
    let mut served = false;
    for _ in 0..100 {
        if call(&h, &key, &chat_body(Some(10), false)).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "redis never came into use");
    assert_eq!(readyz(&h).await.json()["checks"]["limits"]["status"], "ok");

    redis.kill();
    let refused = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "rate_limiter_unavailable");
    assert!(!String::from_utf8_lossy(&refused.body).contains("127.0.0.1"));
    let readiness = readyz(&h).await;
    assert_eq!(readiness.status, 503);
    assert_eq!(
        readiness.json()["checks"]["limits"]["status"],
        "unavailable"
    );
    assert!(
        readiness.json()["checks"]["limits"]["outage_decisions"]
            .as_u64()
            .unwrap()
            >= 1
    );

    redis.restart();
    let mut recovered = false;
    for _ in 0..200 {
        if call(&h, &key, &chat_body(Some(10), false)).await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(recovered, "the gateway did not return to redis by itself");
    assert_eq!(readyz(&h).await.status, 200);
}

async fn readyz(h: &Harness) -> Reply {
    h.request(h.gateway.admin, Method::GET, "/readyz", &[], "")
        .await
}

#[tokio::test]
async fn concurrent_requests_for_many_answers_cannot_overshoot_a_quota() {
    // F2: reservations ignored `n`, so 2,000 daily tokens reached 12,075 with `n = 8`. The
    // simulator answers `n` choices and reports `n x` the tokens, as OpenAI and vLLM do.
    let options = SimOptions {
        output_tokens: 100,
        ..SimOptions::default()
    };
    let h = start("[plans.default.key]\ntokens_per_day = 2000", options).await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let body = json!({"model": "chat", "n": 8, "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let calls = (0..16).map(|_| call(&h, &key, &body));
    let replies = futures_join_all(calls).await;
    let admitted = replies.iter().filter(|r| r.status == 200).count() as i64;
    assert!(admitted >= 1, "nothing was admitted");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    let totals = settled_usage(&h, &key_id, admitted).await;
    // Each admitted request reserved 8 + 8 x 100 and used 7 + 8 x 100: no request used more
    // than it reserved, so the quota holds exactly.
    assert!(
        totals["tokens"].as_i64().unwrap() <= 2000,
        "the quota was overshot: {totals}"
    );
    assert_eq!(totals["output_tokens"], admitted * 800);
    // The larger of two output limits is the one reserved, and both are capped upstream.
    let body = json!({"model": "chat", "max_completion_tokens": 1, "max_tokens": 5000,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let reply = call(&h, &key, &body).await;
    assert_eq!(
        reply.status, 429,
        "5,000 output tokens do not fit what is left"
    );
}

/// Runs the calls concurrently and returns their replies in order.
async fn futures_join_all<F: std::future::Future<Output = Reply>>(
    calls: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let mut set = Vec::new();
    for call in calls {
        set.push(Box::pin(call));
    }
    let mut out = Vec::with_capacity(set.len());
    // Poll them together: each is a request over its own connection.
    let results = std::sync::Mutex::new(Vec::new());
    let mut pending: Vec<_> = set.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(reply) => {
                results.lock().unwrap().push((*i, reply));
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    out.extend(results.into_iter().map(|(_, r)| r));
    out
}

#[tokio::test]
async fn an_upstream_that_ignores_the_output_limit_is_stopped() {
    // F15: a runaway upstream was relayed (348 MB) and billed without end.
    let h = start(
        "",
        SimOptions {
            output_tokens: 20_000,
            ignore_max_tokens: true,
            report_usage: false,
            ..SimOptions::default()
        },
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let streamed = call(&h, &key, &chat_body(Some(10), true)).await;
    let raw = String::from_utf8_lossy(&streamed.body).to_string();
    assert!(
        raw.trim_end()
            .ends_with(r#""code":"output_limit_exceeded"}}"#),
        "status {}, {} bytes, ending {}",
        streamed.status,
        raw.len(),
        &raw[raw.len().saturating_sub(300)..]
    );
    // 20,000 tokens would be some 3.5 MB of events; the cap (2 x 10 + 256) stops it early.
    assert!(
        raw.len() < 100_000,
        "stopped near the cap: {} bytes",
        raw.len()
    );
    assert!(common::eventually(|| h.sim.stats().streams_cancelled == 1).await);
    let whole = call(&h, &key, &chat_body(Some(10), false)).await;
    assert_eq!(whole.status, 502);
    assert_eq!(whole.error_code(), "output_limit_exceeded");
    // What was produced up to the stop is billed.
    let totals = settled_usage(&h, &key_id, 2).await;
    assert!(totals["output_tokens"].as_i64().unwrap() > 276, "{totals}");
}
