//! Upstream failures become the right status, and never leak the upstream's internals.

use crate::common;

use common::Harness;
use http::StatusCode;
use portcullis_sim::{Fault, SimOptions};
use std::time::{Duration, Instant};

fn assert_no_leak(reply: &common::Reply) {
    let text = String::from_utf8_lossy(&reply.body);
    for secret in [
        "CUDA",
        "/opt/vllm",
        "gpu-17",
        "10.3.4.5",
        "sim_internal_fault",
        "127.0.0.1",
    ] {
        assert!(!text.contains(secret), "leaked {secret}: {text}");
    }
}

#[tokio::test]
async fn upstream_error_statuses_are_mapped() {
    let h = Harness::default().await;
    for (upstream, expected, code) in [
        (500, StatusCode::BAD_GATEWAY, "upstream_error"),
        (401, StatusCode::BAD_GATEWAY, "upstream_error"),
        (404, StatusCode::BAD_GATEWAY, "upstream_error"),
        (429, StatusCode::SERVICE_UNAVAILABLE, "upstream_overloaded"),
        (503, StatusCode::SERVICE_UNAVAILABLE, "upstream_overloaded"),
        (504, StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        (400, StatusCode::BAD_REQUEST, "upstream_rejected_request"),
    ] {
        h.sim.set_fault(Fault::Status { status: upstream });
        let reply = h.chat("chat").await;
        assert_eq!(reply.status, expected, "upstream {upstream}");
        assert_eq!(reply.error_code(), code, "upstream {upstream}");
        assert_no_leak(&reply);
        let stream = h
            .post("/v1/chat/completions", &common::stream_body("chat"))
            .await;
        assert_eq!(stream.status, expected, "streaming, upstream {upstream}");
    }
}

#[tokio::test]
async fn a_broken_body_is_a_bad_gateway() {
    let h = Harness::start(
        SimOptions {
            fault: Fault::Garbage,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let reply = h.chat("chat").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.error_code(), "upstream_error");
}

#[tokio::test]
async fn a_refused_connection_is_a_bad_gateway() {
    let closed = common::closed_addr();
    let data = tempfile::tempdir().unwrap();
    let text = common::config_text(closed, data.path(), "");
    let gateway = common::start_gateway(&text).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let resp = client
        .request(
            http::Request::post(format!("http://{}/v1/chat/completions", gateway.public))
                .header("content-type", "application/json")
                .body(r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#.into())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "upstream_unreachable");
    assert!(!String::from_utf8_lossy(&body).contains(&closed.port().to_string()));
}

#[tokio::test]
async fn a_silent_upstream_times_out_with_504() {
    let h = Harness::start(
        SimOptions {
            fault: Fault::Hang,
            ..Default::default()
        },
        "first_byte_timeout = \"300ms\"",
        "",
    )
    .await;
    let started = Instant::now();
    let reply = h.chat("chat").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.error_code(), "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_full_bulkhead_answers_503_at_once() {
    let h = Harness::start(
        SimOptions {
            latency_ms: 800,
            ..Default::default()
        },
        "max_concurrency = 2",
        "",
    )
    .await;
    let h = std::sync::Arc::new(h);
    let mut slow = Vec::new();
    for _ in 0..2 {
        let h = h.clone();
        slow.push(tokio::spawn(async move { h.chat("chat").await.status }));
    }
    assert!(common::eventually(|| h.sim.stats().requests == 2).await);
    let started = Instant::now();
    let refused = h.chat("chat").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "upstream_overloaded");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "did not queue"
    );
    for s in slow {
        assert_eq!(s.await.unwrap(), StatusCode::OK);
    }
    // Permits come back: the next request passes.
    assert_eq!(h.chat("chat").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_upstream_response_is_a_bad_gateway() {
    let h = Harness::start(
        SimOptions {
            output_tokens: 5000,
            ..Default::default()
        },
        "",
        "[http]\nmax_response_bytes = 4096\n",
    )
    .await;
    let reply = h.chat("chat").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.error_code(), "upstream_error");
    // The same request within the limit passes.
    let small = h
        .post(
            "/v1/chat/completions",
            r#"{"model":"chat","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(small.status, StatusCode::OK);
}
