//! Health, readiness and graceful shutdown.

use crate::common;

use bytes::Bytes;
use common::Harness;
use http::Method;
use http_body_util::{BodyExt, Full};
use portcullis_sim::SimOptions;
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_and_readyz_report_the_store_and_upstreams() {
    let h = Harness::start(
        SimOptions::default(),
        "health_check_interval = \"50ms\"",
        "",
    )
    .await;
    let health = h
        .request(h.gateway.admin, Method::GET, "/healthz", &[], "")
        .await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let mut ready = None;
    for _ in 0..100 {
        let r = h
            .request(h.gateway.admin, Method::GET, "/readyz", &[], "")
            .await;
        if r.status == 200 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = ready.expect("became ready");
    assert_eq!(ready.json()["checks"]["store"], "ok");
    assert_eq!(ready.json()["checks"]["upstreams"]["sim"], "healthy");
    // The probe carried the upstream credential.
    let probe = h.sim.last_request().unwrap();
    assert_eq!(probe.path, "/v1/models");
    assert_eq!(
        probe.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );
}

#[tokio::test]
async fn readyz_fails_when_no_upstream_answers() {
    let closed = common::closed_addr();
    let data = tempfile::tempdir().unwrap();
    let text = common::config_text(closed, data.path(), "health_check_interval = \"50ms\"");
    let gateway = common::start_gateway(&text).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client
        .get(format!("http://{}/readyz", gateway.admin).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["upstreams"]["sim"], "unhealthy");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_streams_and_stops_accepting() {
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 20.0,
            output_tokens: 10,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let public = h.gateway.public;
    let response = h.open_stream(common::stream_body("chat"), None).await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();

    let Harness { gateway, sim, .. } = h;
    let shutdown = tokio::spawn(gateway.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // No new connections once draining.
    assert!(
        tokio::net::TcpStream::connect(public).await.is_err(),
        "still accepting during shutdown"
    );
    // The stream in flight runs to its end.
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    assert!(shutdown.await.unwrap(), "drained within the grace period");
    assert_eq!(sim.stats().streams_completed, 1);
}

#[tokio::test]
async fn shutdown_gives_up_after_the_grace_period() {
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 2.0,
            output_tokens: 100,
            ..Default::default()
        },
        "",
        "[http]\nshutdown_grace = \"300ms\"\n",
    )
    .await;
    let response = h.open_stream(common::stream_body("chat"), None).await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    let started = Instant::now();
    let Harness { gateway, .. } = h;
    assert!(
        !gateway.shutdown().await,
        "a 50 s stream cannot drain in 300 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_stream_cut_by_the_grace_period_is_billed_and_ends_with_an_error_event() {
    // F12: the stream was dropped without a word and its usage was lost.
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 20.0,
            output_tokens: 1000,
            ..Default::default()
        },
        "",
        "[http]\nshutdown_grace = \"300ms\"\n",
    )
    .await;
    let (key, key_id) = h.key("acme", "customer", "").await;
    let response = h.open_stream(common::stream_body("chat"), Some(&key)).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    let (h, drained) = h.restart_reporting_drain().await;
    assert!(!drained, "a 50 s stream cannot drain in 300 ms");
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.trim_end().ends_with(r#""code":"shutting_down"}}"#),
        "{rest}"
    );
    let usage = h
        .admin(
            Method::GET,
            &format!("/admin/v1/usage?key={key_id}&period=day"),
            "",
        )
        .await
        .json();
    assert_eq!(usage["totals"]["requests"], 1, "{usage}");
    assert!(
        usage["totals"]["output_tokens"].as_i64().unwrap() > 0,
        "what was streamed is billed: {usage}"
    );
}

#[tokio::test]
async fn the_admin_listener_reports_draining_until_the_drain_ends() {
    // F22: during the drain, health checks got a refused connection instead of an answer.
    let h = Harness::start(
        SimOptions {
            tokens_per_second: 20.0,
            output_tokens: 8,
            ..Default::default()
        },
        "",
        "",
    )
    .await;
    let admin = h.gateway.admin;
    let response = h.open_stream(common::stream_body("chat"), None).await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    let client = h.client.clone();
    let Harness { gateway, .. } = h;
    let shutdown = tokio::spawn(gateway.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let request = http::Request::get(format!("http://{admin}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        get("/readyz").await,
        (503, r#"{"status":"draining"}"#.into())
    );
    assert_eq!(
        get("/healthz").await,
        (200, r#"{"status":"draining"}"#.into())
    );
    body.collect().await.unwrap();
    assert!(shutdown.await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(admin).await.is_err(),
        "the admin listener closes once the drain is over"
    );
}
