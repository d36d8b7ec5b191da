//! The threat detector live: a sybil campaign and legitimate personas (the traffic
//! simulator's) driven through the real HTTP path with real keys; the campaign's keys are
//! throttled, then suspended, by the ladder; the legitimate keys are untouched; an
//! operator can see why, and clear a key.

use crate::common;

use common::Harness;
use http::Method;
use portcullis_hunt::simulate::{accounts, live_request, Scenario};
use portcullis_sim::SimOptions;
use serde_json::Value;
use std::time::Duration;

const LADDER: &str = r#"
[detect]
[[detect.ladder]]
risk = 0.8
actions = ["record", "throttle"]
factor = 0.25
hold = "10m"
[[detect.ladder]]
risk = 0.99
actions = ["suspend_key"]
hold = "10m"
"#;

const SCENARIO: &str = r#"
days = 1
[personas]
chat = 4
student = 2
app_backend = 2
coding_agent = 1
eval_harness = 1
[[campaigns]]
kind = "sybil"
accounts = 8
budget = 240
"#;

async fn send(h: &Harness, key: &str, endpoint: &str, body: &Value, agent: &str) -> u16 {
    let auth = format!("Bearer {key}");
    let path = format!("/v1/{}", endpoint.replace('.', "/"));
    let mut body = body.clone();
    body["model"] = Value::String(
        if endpoint == "embeddings" {
            "embed"
        } else {
            "chat"
        }
        .into(),
    );
    h.request(
        h.gateway.public,
        Method::POST,
        &path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
            ("user-agent", agent),
        ],
        &body.to_string(),
    )
    .await
    .status
    .as_u16()
}

/// A plain "hi" from `key`: its status.
async fn hi(h: &Harness, key: &str) -> u16 {
    let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
    send(h, key, "chat.completions", &body, "x").await
}

#[tokio::test]
async fn a_sybil_campaign_is_throttled_then_suspended_and_people_are_untouched() {
    let h = Harness::start(SimOptions::default(), "", LADDER).await;
    let scenario = Scenario::from_toml(SCENARIO).unwrap();
    let sim = accounts(&scenario, 3);
    let mut keys = Vec::new();
    for a in &sim {
        let (key, id) = h.key(&a.tenant, "customer", "").await;
        keys.push((key, id, a.campaign.is_some()));
    }
    // Round-robin, 30 requests each: the campaign's accounts each look like a modest user.
    for n in 0..30 {
        for (a, (key, _, _)) in sim.iter().zip(&keys) {
            let r = live_request(a, n, 3);
            send(&h, key, r.endpoint, &r.body, &r.user_agent).await;
        }
    }
    // The detector drains its queue on a timer, beside the path.
    let mut risk = Value::Null;
    for _ in 0..100 {
        risk = h.admin(Method::GET, "/admin/v1/risk", "").await.json();
        let suspended = risk["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["factor"] == 0.0)
            .count();
        if suspended == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let factors = risk["data"].as_array().unwrap();
    let threats = h.admin(Method::GET, "/admin/v1/threats", "").await.json();
    for (key, id, attack) in &keys {
        let factor = factors.iter().find(|f| f["subject"]["id"] == id.as_str());
        if *attack {
            let f = factor.unwrap_or_else(|| panic!("{id} not acted on: {threats:#}"));
            assert_eq!(f["factor"], 0.0, "{f}");
            assert!(f["reason"].as_str().unwrap().contains("threat detector"));
            let actions: Vec<&str> = threats["actions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["subject"] == format!("key:{id}").as_str())
                .map(|a| a["action"].as_str().unwrap())
                .collect();
            assert_eq!(actions, ["record", "throttle", "suspend_key"], "{id}");
            let status = hi(&h, key).await;
            assert!(
                status == 429 || status == 403,
                "a suspended key is refused: {status}"
            );
        } else {
            assert!(factor.is_none(), "legitimate {id} acted on: {factor:?}");
            let status = hi(&h, key).await;
            assert_eq!(status, 200, "legitimate {id}");
        }
    }
    // The operator sees why, per key, and the campaign as one cluster.
    let (_, first_attack, _) = keys.iter().find(|k| k.2).unwrap();
    let verdict = h
        .admin(
            Method::GET,
            &format!("/admin/v1/threats/{first_attack}"),
            "",
        )
        .await
        .json();
    assert_eq!(verdict["flagged"], true, "{verdict}");
    assert!(
        verdict["reason_codes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("campaign")),
        "{verdict}"
    );
    assert!(verdict["cluster_size"].as_u64().unwrap() >= 2, "{verdict}");
    // Clearing a key lifts its suspension (and is audited).
    let cleared = h
        .admin(
            Method::DELETE,
            &format!("/admin/v1/threats/key:{first_attack}"),
            "",
        )
        .await;
    assert_eq!(cleared.status, 200);
    let (key, _, _) = keys.iter().find(|k| &k.1 == first_attack).unwrap();
    let status = hi(&h, key).await;
    assert_eq!(status, 200);
    let audit = h
        .admin(Method::GET, "/admin/v1/audit?limit=1000", "")
        .await
        .json();
    let text = audit.to_string();
    assert!(
        text.contains("threat.suspend_key") && text.contains("threat.clear"),
        "{text}"
    );
}

#[tokio::test]
async fn threats_need_their_permission_and_bad_subjects_are_refused() {
    let h = Harness::start(SimOptions::default(), "", "").await;
    let bad = h
        .admin(Method::DELETE, "/admin/v1/threats/nobody", "")
        .await;
    assert_eq!(bad.status, 400);
    let bad = h
        .admin(Method::GET, "/admin/v1/threats?min_risk=7", "")
        .await;
    assert_eq!(bad.status, 400);
    let unknown = h.admin(Method::GET, "/admin/v1/threats/key-none", "").await;
    assert_eq!(unknown.status, 404);
    let list = h.admin(Method::GET, "/admin/v1/threats", "").await;
    assert_eq!(list.status, 200);
    assert!(list.json()["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_restricted_key_loses_logprobs_samples_and_long_answers_and_is_still_served() {
    let ladder =
        "[detect]\n[[detect.ladder]]\nrisk = 0.8\nactions = [\"restrict\"]\nmax_tokens = 64\n";
    let h = Harness::start(SimOptions::default(), "", ladder).await;
    let scenario =
        Scenario::from_toml("days = 1\n[[campaigns]]\nkind = \"bulk\"\nbudget = 40\n").unwrap();
    let sim = accounts(&scenario, 5);
    let (key, id) = h.key(&sim[0].tenant, "customer", "").await;
    for n in 0..40 {
        let r = live_request(&sim[0], n, 5);
        send(&h, &key, r.endpoint, &r.body, &r.user_agent).await;
    }
    let ask = serde_json::json!({
        "messages": [{"role": "user", "content": "Explain step by step how tides work."}],
        "logprobs": true, "top_logprobs": 5, "n": 3, "max_tokens": 4000
    });
    let mut seen = None;
    for _ in 0..100 {
        assert_eq!(
            send(&h, &key, "chat.completions", &ask, "x").await,
            200,
            "still served"
        );
        let last = h.sim.last_request().unwrap().body;
        if last.get("logprobs").is_none() {
            seen = Some(last);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.expect("the key was never restricted");
    assert!(
        seen.get("top_logprobs").is_none() && seen.get("logit_bias").is_none(),
        "{seen}"
    );
    assert_eq!(seen["n"], 1, "{seen}");
    assert!(seen["max_tokens"].as_u64().unwrap() <= 64, "{seen}");
    // Clearing lifts it.
    let cleared = h
        .admin(Method::DELETE, &format!("/admin/v1/threats/key:{id}"), "")
        .await;
    assert_eq!(cleared.status, 200);
    send(&h, &key, "chat.completions", &ask, "x").await;
    assert_eq!(h.sim.last_request().unwrap().body["top_logprobs"], 5);
}

/// `POST /v1/auth/token` with `key`: the token.
async fn mint(h: &Harness, key: &str) -> String {
    let minted = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/auth/token",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("content-type", "application/json"),
            ],
            "{}",
        )
        .await;
    assert_eq!(
        minted.status,
        200,
        "{}",
        String::from_utf8_lossy(&minted.body)
    );
    minted.json()["access_token"].as_str().unwrap().to_owned()
}

/// `reexchange` refuses the tokens a flagged key minted so far (a thief holding only a
/// token loses it; the key's owner exchanges again); the holds are stored, so a restarted
/// (or another) replica applies them too; clearing the key lifts them everywhere.
#[tokio::test]
async fn reexchange_refuses_older_tokens_and_the_holds_survive_a_restart() {
    let ladder = "[detect]\n[[detect.ladder]]\nrisk = 0.8\nactions = [\"restrict\", \"reexchange\"]\nmax_tokens = 64\nhold = \"10m\"\n";
    let h = Harness::start(SimOptions::default(), "", ladder).await;
    let scenario =
        Scenario::from_toml("days = 1\n[[campaigns]]\nkind = \"bulk\"\nbudget = 40\n").unwrap();
    let sim = accounts(&scenario, 9);
    let (key, id) = h.key(&sim[0].tenant, "customer", "").await;
    let token = mint(&h, &key).await;
    assert_eq!(hi(&h, &token).await, 200);
    for n in 0..40 {
        let r = live_request(&sim[0], n, 9);
        send(&h, &key, r.endpoint, &r.body, &r.user_agent).await;
    }
    let mut refused = false;
    for _ in 0..100 {
        if hi(&h, &token).await == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the old token was never refused");
    let reply = h.chat_as(h.gateway.public, &token, "chat", &[]).await;
    assert_eq!(reply.error_code(), "token_reexchange_required");
    assert_eq!(hi(&h, &key).await, 200, "the key itself is still served");
    // A token minted from now on is good (tokens carry whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = mint(&h, &key).await;
    assert_eq!(hi(&h, &fresh).await, 200);

    // Stored: a restarted gateway (the same store) still refuses the old token and still
    // restricts the key, before the detector has seen anything.
    let h = h.restart().await;
    assert_eq!(hi(&h, &token).await, 401);
    assert_eq!(hi(&h, &fresh).await, 200);
    let ask = serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "max_tokens": 4000});
    assert_eq!(send(&h, &key, "chat.completions", &ask, "x").await, 200);
    let seen = h.sim.last_request().unwrap().body;
    assert!(
        seen.get("logprobs").is_none() && seen["max_tokens"] == 64,
        "{seen}"
    );

    let cleared = h
        .admin(Method::DELETE, &format!("/admin/v1/threats/key:{id}"), "")
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.json()["cleared"], true);
    assert_eq!(hi(&h, &token).await, 200, "clearing lifts the re-exchange");
    send(&h, &key, "chat.completions", &ask, "x").await;
    assert_eq!(h.sim.last_request().unwrap().body["max_tokens"], 4000);
    let h = h.restart().await;
    assert_eq!(hi(&h, &token).await, 200, "and the store forgot it");
}
