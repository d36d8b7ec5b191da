//! Configuration reload without a restart: what a reload puts in force, what it refuses, and
//! that requests in flight and under load never notice.

use crate::common::{self, Harness};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use portcullis_sim::SimOptions;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Limits far above anything these tests send, so only the configuration decides.
const ROOMY_PLAN: &str = "[plans.default.key]\nrequests_per_minute = 10000000\n\
    tokens_per_minute = 10000000000\nconcurrent_requests = 10000\n\
    [plans.default.tenant]\nrequests_per_minute = 10000000\ntokens_per_minute = 10000000000\n\
    concurrent_requests = 10000\n";

async fn reload(h: &Harness) -> (StatusCode, Value) {
    let reply = h.admin(Method::POST, "/admin/v1/config/reload", "").await;
    (reply.status, reply.json())
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

async fn audit_actions(h: &Harness) -> Vec<(String, String)> {
    let audit = h.admin(Method::GET, "/admin/v1/audit", "").await.json();
    audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn two_messages() -> &'static str {
    r#"{"model":"chat","messages":[{"role":"user","content":"one"},{"role":"user","content":"two"}]}"#
}

#[tokio::test]
async fn a_reload_puts_models_plans_guards_and_alert_rules_in_force_and_names_what_needs_a_restart()
{
    let h = Harness::default().await;
    h.write_config_file(&h.config).await;
    let status = h.admin(Method::GET, "/admin/v1/config", "").await.json();
    assert_eq!(status["version"], 1);
    assert!(status["file"]
        .as_str()
        .unwrap()
        .ends_with("portcullis.toml"));

    // Before: no such model, no such plan, two messages pass, no rule.
    assert_eq!(h.chat("added").await.status, StatusCode::NOT_FOUND);
    let gold_tenant = r#"{"name":"goldco","audience":"customer","plan":"gold"}"#;
    let refused = h
        .admin(Method::POST, "/admin/v1/tenants", gold_tenant)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let two = h.post("/v1/chat/completions", two_messages()).await;
    assert_eq!(two.status, StatusCode::OK);

    let next = format!(
        "{}\n[[models]]\nname = \"added\"\nupstream = \"sim\"\n\
         [guard]\nmax_messages = 1\n\
         [plans.gold.key]\nrequests_per_minute = 5\n\
         [[telemetry.alerts]]\nname = \"errors-after-reload\"\nkind = \"error_ratio\"\nthreshold = 0.5\n\
         [http]\nmax_body_bytes = 1000000\n",
        h.config
    );
    h.write_config_file(&next).await;
    let (status, done) = reload(&h).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["version"], 2);
    assert_eq!(
        names(&done["applied"]),
        ["models", "plans", "guard", "telemetry.alerts"]
    );
    assert_eq!(names(&done["restart_needed"]), ["http"]);

    // After: each in force for the next request.
    assert_eq!(h.chat("added").await.status, StatusCode::OK);
    let models = h
        .request(h.gateway.public, Method::GET, "/v1/models", &[], "")
        .await
        .json();
    assert!(models["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "added"));
    let created = h
        .admin(Method::POST, "/admin/v1/tenants", gold_tenant)
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let two = h.post("/v1/chat/completions", two_messages()).await;
    assert_eq!(
        two.status,
        StatusCode::BAD_REQUEST,
        "max_messages not applied"
    );
    let alerts = h.admin(Method::GET, "/admin/v1/alerts", "").await.json();
    assert_eq!(alerts["rules"][0]["name"], "errors-after-reload");
    let status = h.admin(Method::GET, "/admin/v1/config", "").await.json();
    assert_eq!(status["version"], 2);
    assert!(audit_actions(&h)
        .await
        .contains(&("config.reload".to_owned(), "version 2".to_owned())));

    // The same file again changes nothing but the version.
    let (_, again) = reload(&h).await;
    assert_eq!(again["version"], 3);
    assert!(names(&again["applied"]).is_empty());
    assert!(names(&again["restart_needed"]).is_empty());
}

#[tokio::test]
async fn a_file_that_does_not_load_changes_nothing_and_says_why() {
    let h = Harness::default().await;
    // Started from code, not a file: nothing to re-read.
    let (status, refused) = reload(&h).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], "no_configuration_file");

    h.write_config_file(&h.config).await;
    let broken = [
        // Not TOML.
        (format!("{}\n[[models]\n", h.config), "invalid TOML"),
        // A model on an upstream that does not exist.
        (
            format!(
                "{}\n[[models]]\nname = \"orphan\"\nupstream = \"nowhere\"\n",
                h.config
            ),
            "models[3].upstream",
        ),
        // An upstream whose credential is not in the environment.
        (
            format!(
                "{}\n[[upstreams]]\nname = \"other\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                 api_key_env = \"NOT_SET_ANYWHERE\"\n",
                h.config
            ),
            "NOT_SET_ANYWHERE is not set",
        ),
    ];
    for (text, why) in broken {
        h.write_config_file(&text).await;
        let (status, refused) = reload(&h).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(refused["error"]["code"], "invalid_configuration");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
        assert!(message.contains("the one in force is kept"), "{message}");
        // Nothing changed: same version, same models.
        let status = h.admin(Method::GET, "/admin/v1/config", "").await.json();
        assert_eq!(status["version"], 1);
        assert_eq!(h.chat("chat").await.status, StatusCode::OK);
    }
    let refusals = audit_actions(&h)
        .await
        .into_iter()
        .filter(|(action, _)| action == "config.reload_refused")
        .count();
    assert_eq!(refusals, 4);
}

#[tokio::test]
async fn a_stream_started_before_a_reload_finishes_under_the_version_it_started_with() {
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
    h.write_config_file(&h.config).await;
    let response = h.open_stream(common::stream_body("chat"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();

    // The next version has no `chat` and another bulkhead (so another upstream object).
    let next = h
        .config
        .replace("name = \"chat\"", "name = \"chat-v2\"")
        .replace(
            "api_key_env = \"SIM_KEY\"",
            "api_key_env = \"SIM_KEY\"\nmax_concurrency = 7",
        );
    h.write_config_file(&next).await;
    let (status, done) = reload(&h).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(names(&done["applied"]), ["upstreams", "models"]);
    assert_eq!(h.chat("chat").await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.chat("chat-v2").await.status, StatusCode::OK);

    // The stream opened before runs to its end, on the model and upstream it started with.
    let rest = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("error"), "{text}");
    assert_eq!(h.sim.stats().streams_completed, 1);
    // It was recorded as a success, under the old model's name.
    let mut recorded = false;
    for _ in 0..50 {
        let metrics = h.admin(Method::GET, "/metrics", "").await;
        recorded = String::from_utf8_lossy(&metrics.body).lines().any(|l| {
            l.starts_with("portcullis_requests_total")
                && l.contains("model=\"chat\"")
                && l.contains("status_class=\"2xx\"")
        });
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        recorded,
        "the stream was not recorded as a success of `chat`"
    );
}

#[tokio::test]
async fn no_request_fails_while_the_configuration_is_reloaded_under_load() {
    let h = Arc::new(Harness::start(SimOptions::default(), "", ROOMY_PLAN).await);
    h.write_config_file(&h.config).await;
    // Two versions that both serve `chat`: the second rebuilds the upstream (another
    // bulkhead), adds a model and a plan, and tightens a guard bound.
    let first = h.config.clone();
    let second = format!(
        "{}\n[[models]]\nname = \"extra\"\nupstream = \"sim\"\n\
         [plans.gold.key]\nrequests_per_minute = 5\n[guard]\nmax_message_chars = 10000\n",
        h.config.replace(
            "api_key_env = \"SIM_KEY\"",
            "api_key_env = \"SIM_KEY\"\nmax_concurrency = 300"
        )
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..8 {
        let h = h.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = if i % 2 == 0 {
                    h.chat("chat").await
                } else {
                    h.post("/v1/chat/completions", &common::stream_body("chat"))
                        .await
                };
                statuses.push(reply.status);
            }
            statuses
        }));
    }
    for round in 0..20 {
        let text = if round % 2 == 0 { &second } else { &first };
        h.write_config_file(text).await;
        let (status, done) = reload(&h).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    let failed: Vec<_> = all.iter().filter(|s| **s != StatusCode::OK).collect();
    assert!(all.len() >= 100, "only {} requests ran", all.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        all.len()
    );
    let status = h.admin(Method::GET, "/admin/v1/config", "").await.json();
    assert_eq!(status["version"], 21);
}
