//! Routing, rewriting and credential handling, over real sockets against the simulator.

use crate::common;

use common::Harness;
use http::{Method, StatusCode};
use portcullis_sim::SimOptions;

#[tokio::test]
async fn chat_is_routed_with_the_model_rewritten_and_the_upstream_key_injected() {
    let h = Harness::default().await;
    let (key, _) = h.key("acme", "customer", "").await;
    let auth = format!("Bearer {key}");
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
                ("cookie", "session=caller"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            r#"{"model":"chat","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let seen = h.sim.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body["model"], "sim-chat-large", "model rewritten");
    assert_eq!(seen.body["temperature"], 0.5, "other fields preserved");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-upstream-secret"),
        "the upstream's own key is injected"
    );
    let all_headers = format!("{:?}", seen.headers);
    assert!(
        !all_headers.contains("caller-secret-key"),
        "caller key forwarded: {all_headers}"
    );
    assert!(seen.header("cookie").is_none());
    assert!(seen.header("x-forwarded-for").is_none());
    assert_eq!(
        seen.header("x-request-id"),
        reply.headers.get("x-request-id").unwrap().to_str().ok()
    );
    // Nothing of the upstream's own headers or key reaches the caller.
    assert!(!format!("{:?}", reply.headers).contains("sk-upstream-secret"));
}

#[tokio::test]
async fn completions_and_embeddings_reach_their_endpoints() {
    let h = Harness::default().await;
    let reply = h
        .post("/v1/completions", r#"{"model":"chat","prompt":"Say hi"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["object"], "text_completion");
    assert_eq!(h.sim.last_request().unwrap().path, "/v1/completions");

    let reply = h
        .post("/v1/embeddings", r#"{"model":"embed","input":["a","b"]}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 2);
    let seen = h.sim.last_request().unwrap();
    assert_eq!(seen.path, "/v1/embeddings");
    assert_eq!(seen.body["model"], "embed", "no upstream_model: name kept");
}

#[tokio::test]
async fn unknown_and_internal_models_are_not_found_on_the_public_listener() {
    let h = Harness::default().await;
    for model in ["gpt-nope", "secret-model"] {
        let reply = h.chat(model).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{model}");
        assert_eq!(reply.error_code(), "model_not_found");
        assert_eq!(reply.json()["error"]["param"], "model");
    }
    assert_eq!(h.sim.stats().requests, 0, "nothing reached the upstream");

    // The internal listener serves internal models.
    let internal = h.gateway.internal.unwrap();
    let reply = h
        .request(
            internal,
            Method::POST,
            "/v1/chat/completions",
            &[("content-type", "application/json")],
            r#"{"model":"secret-model","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn model_list_shows_only_what_the_listener_serves() {
    let h = Harness::default().await;
    let ids = |reply: common::Reply| -> Vec<String> {
        reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let public = h
        .request(h.gateway.public, Method::GET, "/v1/models", &[], "")
        .await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(ids(public), ["chat", "embed"]);
    let internal = h
        .request(
            h.gateway.internal.unwrap(),
            Method::GET,
            "/v1/models",
            &[],
            "",
        )
        .await;
    assert_eq!(ids(internal), ["chat", "embed", "secret-model"]);
}

#[tokio::test]
async fn bad_requests_get_openai_shaped_errors_and_reach_nothing() {
    let h = Harness::default().await;
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        StatusCode,
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        (
            "/v1/chat/completions",
            "{not json",
            &[],
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages":[]}"#,
            &[],
            StatusCode::BAD_REQUEST,
            "missing_required_parameter",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"chat","stream":"yes"}"#,
            &[],
            StatusCode::BAD_REQUEST,
            "invalid_type",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"chat"}"#,
            &[("content-type", "text/plain")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/v1/nothing-here",
            "{}",
            &[],
            StatusCode::NOT_FOUND,
            "unknown_url",
        ),
        (
            "/admin/v1/tenants",
            "{}",
            &[],
            StatusCode::NOT_FOUND,
            "unknown_url",
        ),
        ("/healthz", "{}", &[], StatusCode::NOT_FOUND, "unknown_url"),
    ];
    for (path, body, headers, status, code) in cases {
        let reply = h
            .request(h.gateway.public, Method::POST, path, headers, body)
            .await;
        assert_eq!(reply.status, *status, "{path} {body}");
        assert_eq!(reply.error_code(), *code, "{path} {body}");
        let error = &reply.json()["error"];
        assert!(error["message"].is_string() && error["type"].is_string());
        assert!(reply.headers.contains_key("x-request-id"));
    }
    let reply = h
        .request(
            h.gateway.public,
            Method::GET,
            "/v1/chat/completions",
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h.sim.stats().requests, 0);
}

#[tokio::test]
async fn request_ids_are_echoed_when_well_formed_and_generated_otherwise() {
    let h = Harness::default().await;
    let echo = h
        .request(
            h.gateway.public,
            Method::GET,
            "/v1/models",
            &[("x-request-id", "trace-42")],
            "",
        )
        .await;
    assert_eq!(echo.headers["x-request-id"], "trace-42");
    let replaced = h
        .request(
            h.gateway.public,
            Method::GET,
            "/v1/models",
            &[("x-request-id", "bad id;drop")],
            "",
        )
        .await;
    let id = replaced.headers["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_") && id.len() > 10, "{id}");
    let admin = h
        .request(h.gateway.admin, Method::GET, "/healthz", &[], "")
        .await;
    assert!(admin.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn without_anonymous_mode_every_call_needs_a_credential() {
    // A gateway with the dev switch off refuses callers, with or without a key.
    let sim = portcullis_sim::Simulator::new(SimOptions::default());
    let sim_addr = sim.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let text = common::config_text(sim_addr, data.path(), "")
        .replace("allow_anonymous = true", "allow_anonymous = false");
    let gateway = common::start_gateway(&text).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for auth in [
        None,
        Some("Bearer pc_live_guess"),
        Some("Basic dXNlcjpwYXNz"),
    ] {
        let mut req = http::Request::post(format!("http://{}/v1/chat/completions", gateway.public))
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = client
            .request(req.body(common::stream_body("chat").into()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sim.stats().requests, 0);
}
