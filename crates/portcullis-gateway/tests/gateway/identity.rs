//! Keys, roles and the admin API, attacked the way callers would.

use crate::common;

use common::Harness;
use http::{Method, StatusCode};
use portcullis_sim::SimOptions;
use std::time::{Duration, Instant};

const ROLES: &str = r#"
[roles.embed-only]
permissions = ["embeddings:invoke", "models:list"]

[roles.tenant-admin]
permissions = ["admin:tenants"]
"#;

/// A harness whose config adds a test model and a restricted role.
async fn harness() -> Harness {
    Harness::start(SimOptions::default(), "", ROLES).await
}

/// A harness whose key expiry follows a clock the test moves.
async fn clocked_harness() -> (Harness, std::sync::Arc<portcullis_testkit::ManualClock>) {
    let clock = std::sync::Arc::new(portcullis_testkit::ManualClock::new());
    let h = Harness::start_clocked(SimOptions::default(), "", ROLES, clock.clone()).await;
    (h, clock)
}

fn assert_invalid_key(reply: &common::Reply) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn bad_keys_are_refused_without_saying_whether_the_id_exists() {
    let h = harness().await;
    let (key, id) = h.key("acme", "customer", "").await;
    assert_eq!(
        h.chat_as(h.gateway.public, &key, "chat", &[]).await.status,
        200
    );

    let mut wrong_checksum = key.clone().into_bytes();
    let last = wrong_checksum.len() - 1;
    wrong_checksum[last] = if wrong_checksum[last] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let wrong_checksum = String::from_utf8(wrong_checksum).unwrap();
    // Same id, different secret, valid checksum: shaped right, fails verification.
    let forged = {
        let body = format!("pc_live_{id}_{}", "A".repeat(32));
        let sum = crc_checksum(&body);
        format!("{body}{sum}")
    };
    let unknown = {
        let body = format!("pc_live_{}_{}", "B".repeat(16), "A".repeat(32));
        format!("{body}{}", crc_checksum(&body))
    };
    let mut messages = Vec::new();
    for bad in [
        "sk-not-ours",
        "pc_live_short",
        wrong_checksum.as_str(),
        forged.as_str(),
        unknown.as_str(),
    ] {
        let reply = h.chat_as(h.gateway.public, bad, "chat", &[]).await;
        assert_invalid_key(&reply);
        messages.push(reply.json()["error"]["message"].clone());
    }
    // A wrong secret for a real id and an unknown id read exactly the same.
    assert_eq!(messages[3], messages[4]);
    let no_key = h.chat("chat").await;
    assert_eq!(
        no_key.status,
        StatusCode::OK,
        "anonymous dev mode still serves keyless calls"
    );
    assert_eq!(h.sim.stats().requests, 2);
}

/// The key checksum, computed the way the gateway does, to forge well-shaped keys.
fn crc_checksum(body: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = crc32(body.as_bytes()) as u64;
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn expired_and_revoked_keys_stop_working() {
    let (h, clock) = clocked_harness().await;
    let (short, _) = h.key("acme", "customer", r#""expires_in":"1s""#).await;
    let (key, id) = h.key("acme", "customer", "").await;
    assert_eq!(
        h.chat_as(h.gateway.public, &key, "chat", &[]).await.status,
        200
    );
    let revoked = h
        .admin(
            Method::POST,
            &format!("/admin/v1/keys/{id}/revoke"),
            r#"{"reason":"test"}"#,
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert_invalid_key(&h.chat_as(h.gateway.public, &key, "chat", &[]).await);
    assert_eq!(
        h.chat_as(h.gateway.public, &short, "chat", &[])
            .await
            .status,
        200
    );
    clock.advance(Duration::from_secs(2));
    assert_invalid_key(&h.chat_as(h.gateway.public, &short, "chat", &[]).await);
}

#[tokio::test]
async fn revocation_reaches_another_replica_within_a_second() {
    let h = harness().await;
    let (key, id) = h.key("acme", "customer", "").await;
    // A second gateway on the same store (SQLite file or PostgreSQL database), as a replica.
    let replica = common::start_gateway(&h.config).await;
    assert_eq!(
        h.chat_as(replica.public, &key, "chat", &[]).await.status,
        200
    );

    h.admin(Method::POST, &format!("/admin/v1/keys/{id}/revoke"), "")
        .await;
    let revoked_at = Instant::now();
    loop {
        if h.chat_as(replica.public, &key, "chat", &[]).await.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "replica still accepts the key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn test_keys_reach_only_test_models_and_live_keys_only_live_ones() {
    let sim = portcullis_sim::Simulator::new(SimOptions::default());
    let sim_addr = sim.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    // One test model on the live upstream, and a whole test upstream.
    let text = format!(
        "{}\n[[models]]\nname = \"sandbox\"\nupstream = \"sim\"\nenvironment = \"test\"\n\
         [[upstreams]]\nname = \"staging\"\nbase_url = \"http://{sim_addr}/v1\"\nenvironment = \"test\"\n\
         health_check_interval = \"0s\"\n[[models]]\nname = \"staging-chat\"\nupstream = \"staging\"\n",
        common::config_text(sim_addr, data.path(), "")
    );
    let gateway = common::start_gateway(&text).await;
    let h = Harness::wrap(sim, sim_addr, gateway, data);
    let (live, _) = h.key("acme", "customer", "").await;
    let (test, _) = h.key("acme", "customer", r#""environment":"test""#).await;
    assert_eq!(
        h.chat_as(h.gateway.public, &live, "chat", &[]).await.status,
        200
    );
    assert_eq!(
        h.chat_as(h.gateway.public, &test, "sandbox", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        h.chat_as(h.gateway.public, &test, "staging-chat", &[])
            .await
            .status,
        200
    );
    for (key, model) in [(&test, "chat"), (&live, "sandbox"), (&live, "staging-chat")] {
        let reply = h.chat_as(h.gateway.public, key, model, &[]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.error_code(), "environment_mismatch");
    }
    let auth = format!("Bearer {test}");
    let models = h
        .request(
            h.gateway.public,
            Method::GET,
            "/v1/models",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(models.json()["data"][0]["id"], "sandbox");
    assert_eq!(models.json()["data"][1]["id"], "staging-chat");
    assert_eq!(models.json()["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn secret_keys_are_refused_from_browsers_and_the_event_is_recorded() {
    let h = harness().await;
    let (key, id) = h.key("acme", "customer", "").await;
    for header in [
        ("origin", "https://app.example.com"),
        ("sec-fetch-mode", "cors"),
        ("x-stainless-runtime", "browser:chrome"),
        ("anthropic-dangerous-direct-browser-access", "true"),
    ] {
        let reply = h.chat_as(h.gateway.public, &key, "chat", &[header]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{header:?}");
        assert_eq!(reply.error_code(), "secret_key_in_browser");
        assert!(reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("browsers"));
    }
    assert_eq!(h.sim.stats().requests, 0);
    let mut recorded = false;
    for _ in 0..50 {
        let audit = h.admin(Method::GET, "/admin/v1/audit", "").await.json();
        recorded = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "key.browser_use" && e["target"] == id.as_str());
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recorded, "browser use not in the audit log");
}

#[tokio::test]
async fn roles_model_lists_and_audiences_limit_what_a_key_can_do() {
    let h = harness().await;
    let (embed_only, _) = h.key("acme", "customer", r#""roles":["embed-only"]"#).await;
    let reply = h.chat_as(h.gateway.public, &embed_only, "chat", &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "permission_denied");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("chat:invoke"));

    let (one_model, _) = h.key("acme", "customer", r#""models":["embed"]"#).await;
    let reply = h.chat_as(h.gateway.public, &one_model, "chat", &[]).await;
    assert_eq!(reply.error_code(), "model_not_allowed");

    // Partner traffic is never served on the internal listener; internal tenants are.
    let internal = h.gateway.internal.unwrap();
    let (partner, _) = h.key("partner-co", "partner", "").await;
    let reply = h.chat_as(internal, &partner, "chat", &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "audience_not_allowed");
    let (staff, _) = h.key("staff", "internal", "").await;
    assert_eq!(
        h.chat_as(internal, &staff, "secret-model", &[])
            .await
            .status,
        200
    );
    // ...and internal models stay invisible on the public listener, even to internal keys.
    assert_eq!(
        h.chat_as(h.gateway.public, &staff, "secret-model", &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_audits_every_change() {
    let h = harness().await;
    for token in [None, Some("Bearer wrong"), Some("Bearer ")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("authorization", t));
        }
        let reply = h
            .request(
                h.gateway.admin,
                Method::GET,
                "/admin/v1/tenants",
                &headers,
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // A caller key without admin roles cannot use the admin API.
    let (key, id) = h.key("acme", "customer", "").await;
    let auth = format!("Bearer {key}");
    let reply = h
        .request(
            h.gateway.admin,
            Method::GET,
            "/admin/v1/keys",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "permission_denied");

    // Keys with admin roles can, within their permissions, and are named in the audit log.
    let (tenant_admin, tenant_admin_id) = h
        .key("ops", "internal", r#""roles":["tenant-admin"]"#)
        .await;
    let auth = format!("Bearer {tenant_admin}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let made = h
        .request(
            h.gateway.admin,
            Method::POST,
            "/admin/v1/tenants",
            &headers,
            r#"{"name":"newco","audience":"partner"}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let keys = h
        .request(h.gateway.admin, Method::GET, "/admin/v1/keys", &headers, "")
        .await;
    assert_eq!(keys.status, StatusCode::FORBIDDEN);
    let audit = h
        .admin(Method::GET, "/admin/v1/audit?limit=1", "")
        .await
        .json();
    assert_eq!(audit["data"][0]["actor"], format!("key:{tenant_admin_id}"));
    assert_eq!(audit["data"][0]["action"], "tenant.create");
    // Admin endpoints do not exist on the public listener, whatever the credential.
    let public = h
        .request(
            h.gateway.public,
            Method::GET,
            "/admin/v1/tenants",
            &headers,
            "",
        )
        .await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);

    let roles = h.admin(Method::GET, "/admin/v1/roles", "").await.json();
    let names: Vec<&str> = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "embed-only", "inference", "tenant-admin"]);
    assert_eq!(
        roles["data"][1]["permissions"],
        serde_json::json!(["embeddings:invoke", "models:list"])
    );

    let keys = h.admin(Method::GET, "/admin/v1/keys?tenant=acme", "").await;
    assert_eq!(keys.status, 200);
    let text = String::from_utf8_lossy(&keys.body).to_string();
    assert!(text.contains(&id));
    assert!(!text.contains(&key[25..]), "a listing shows the secret");
    assert!(!text.contains("secret_hash"));

    let bad = [
        (
            "/admin/v1/tenants",
            r#"{"name":"x","audience":"alien"}"#,
            "audience",
        ),
        (
            "/admin/v1/tenants",
            r#"{"name":"bad name!","audience":"partner"}"#,
            "name",
        ),
        (
            "/admin/v1/keys",
            r#"{"tenant":"acme","roles":["root"]}"#,
            "roles",
        ),
        (
            "/admin/v1/keys",
            r#"{"tenant":"acme","expires_in":"900d"}"#,
            "expires_in",
        ),
        (
            "/admin/v1/keys",
            r#"{"tenant":"acme","environment":"prod"}"#,
            "environment",
        ),
    ];
    for (path, body, param) in bad {
        let reply = h.admin(Method::POST, path, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json()["error"]["param"], param, "{body}");
    }
    let missing = h
        .admin(Method::POST, "/admin/v1/keys", r#"{"tenant":"nobody"}"#)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let dup = h
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            r#"{"name":"acme","audience":"customer"}"#,
        )
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert_eq!(dup.error_code(), "conflict");

    h.admin(Method::POST, &format!("/admin/v1/keys/{id}/revoke"), "")
        .await;
    let audit = h.admin(Method::GET, "/admin/v1/audit", "").await.json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in ["tenant.create", "key.create", "key.revoke"] {
        assert!(actions.contains(&expected), "{actions:?}");
    }
    assert!(audit["data"][0]["source"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn reported_leaks_revoke_real_keys_and_reveal_nothing_else() {
    let h = harness().await;
    let (leaked, leaked_id) = h.key("acme", "customer", "").await;
    let (safe, _) = h.key("acme", "customer", "").await;
    let (_, other_id) = h.key("acme", "customer", "").await;
    // A forged key with a real id but the wrong secret must not revoke that key.
    let forged = {
        let body = format!("pc_live_{other_id}_{}", "Z".repeat(32));
        format!("{body}{}", crc_checksum(&body))
    };
    let body = serde_json::json!({
        "keys": [leaked, leaked.clone(), forged, "pc_live_garbage", "sk-something-else"],
        "source": "https://github.com/example/repo/blob/main/.env",
    });
    let reply = h
        .admin(Method::POST, "/admin/v1/leaks", &body.to_string())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"revoked": [leaked_id]}));
    assert_invalid_key(&h.chat_as(h.gateway.public, &leaked, "chat", &[]).await);
    assert_eq!(
        h.chat_as(h.gateway.public, &safe, "chat", &[]).await.status,
        200
    );
    let other = h
        .admin(Method::GET, &format!("/admin/v1/keys/{other_id}"), "")
        .await;
    assert!(
        other.json()["revoked_at"].is_null(),
        "a forged report revoked a key"
    );
    let record = h
        .admin(Method::GET, &format!("/admin/v1/keys/{leaked_id}"), "")
        .await;
    assert!(record.json()["revoked_reason"]
        .as_str()
        .unwrap()
        .contains("github.com/example"));
}

async fn mint(h: &Harness, key: &str, body: &str) -> common::Reply {
    let auth = format!("Bearer {key}");
    h.request(
        h.gateway.public,
        Method::POST,
        "/v1/auth/token",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn keys_exchange_for_narrower_tokens_that_die_with_the_key() {
    let h = harness().await;
    let (key, id) = h
        .key("acme", "customer", r#""roles":["inference","embed-only"]"#)
        .await;
    let reply = mint(&h, &key, r#"{"roles":["embed-only"],"expires_in":60}"#).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(reply.json()["token_type"], "Bearer");
    assert_eq!(reply.json()["expires_in"], 60);
    let claims = {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&payload).unwrap()
    };
    assert_eq!(
        claims["scopes"],
        serde_json::json!(["embeddings:invoke", "models:list"])
    );
    assert_eq!(claims["roles"], serde_json::json!(["embed-only"]));
    assert_eq!(claims["aud"], "portcullis");
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    // The token works where its narrowed scope allows, and only there.
    let embed = h.embed_as(&token).await;
    assert_eq!(embed.status, 200);
    let chat = h.chat_as(h.gateway.public, &token, "chat", &[]).await;
    assert_eq!(chat.status, StatusCode::FORBIDDEN);
    assert_eq!(chat.error_code(), "permission_denied");

    // Widening is refused; tokens cannot mint tokens.
    for (body, param) in [
        (r#"{"roles":["admin"]}"#, "roles"),
        (r#"{"expires_in":86400}"#, "expires_in"),
    ] {
        let reply = mint(&h, &key, body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["error"]["param"], param);
    }
    let (narrow, _) = h.key("acme", "customer", r#""models":["chat"]"#).await;
    let reply = mint(&h, &narrow, r#"{"models":["embed"]}"#).await;
    assert_eq!(reply.json()["error"]["param"], "models");
    let reply = mint(&h, &token, "").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code(), "token_exchange_requires_key");

    // Tampered tokens are refused.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_invalid_key(&h.chat_as(h.gateway.public, &tampered, "embed", &[]).await);

    // Revoking the key kills the token at once.
    h.admin(Method::POST, &format!("/admin/v1/keys/{id}/revoke"), "")
        .await;
    let embed = h.embed_as(&token).await;
    assert_invalid_key(&embed);
}

#[tokio::test]
async fn signing_keys_rotate_and_the_jwks_publishes_them() {
    let h = harness().await;
    let (key, _) = h.key("acme", "customer", "").await;
    let jwks = h
        .request(
            h.gateway.public,
            Method::GET,
            "/.well-known/jwks.json",
            &[],
            "",
        )
        .await;
    assert_eq!(jwks.status, 200);
    let first = jwks.json()["keys"].as_array().unwrap().clone();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["alg"], "EdDSA");
    assert!(first[0].get("d").is_none(), "the private key is published");

    let old = mint(&h, &key, "").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = h
        .admin(Method::POST, "/admin/v1/signing-keys/rotate", "")
        .await;
    assert_eq!(rotated.status, 200);
    let new = mint(&h, &key, "").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = |t: &str| {
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].clone()
    };
    assert_ne!(kid(&old), kid(&new));
    assert_eq!(kid(&new), rotated.json()["kid"]);
    for token in [&old, &new] {
        assert_eq!(
            h.chat_as(h.gateway.public, token, "chat", &[]).await.status,
            200
        );
    }
    let jwks = h
        .request(
            h.gateway.public,
            Method::GET,
            "/.well-known/jwks.json",
            &[],
            "",
        )
        .await;
    assert_eq!(jwks.json()["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn publishable_keys_work_from_their_origins_only_with_cors() {
    let h = harness().await;
    let (key, _) = h
        .key(
            "acme",
            "customer",
            r#""kind":"publishable","allowed_origins":["https://app.example.com"]"#,
        )
        .await;
    let allowed = h
        .chat_as(
            h.gateway.public,
            &key,
            "chat",
            &[
                ("origin", "https://app.example.com"),
                ("sec-fetch-mode", "cors"),
            ],
        )
        .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(allowed.headers["vary"], "origin");
    // F18: errors carry the grant too, so browser code can read them (and `retry-after`).
    let refused = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("content-type", "application/json"),
                ("origin", "https://app.example.com"),
                ("sec-fetch-mode", "cors"),
            ],
            "{not json",
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    for origin in [Some("https://evil.example.com"), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let reply = h.chat_as(h.gateway.public, &key, "chat", &headers).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert_eq!(reply.error_code(), "origin_not_allowed");
        assert!(!reply.headers.contains_key("access-control-allow-origin"));
    }

    // F19: a token minted from a publishable key keeps the key's origins.
    let minted = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/auth/token",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("content-type", "application/json"),
                ("origin", "https://app.example.com"),
            ],
            "{}",
        )
        .await;
    assert_eq!(minted.status, 200);
    let token = minted.json()["access_token"].as_str().unwrap().to_owned();
    let from_app = h
        .chat_as(
            h.gateway.public,
            &token,
            "chat",
            &[("origin", "https://app.example.com")],
        )
        .await;
    assert_eq!(from_app.status, 200);
    for origin in [Some("https://evil.example.com"), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let reply = h.chat_as(h.gateway.public, &token, "chat", &headers).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "token, {origin:?}");
        assert_eq!(reply.error_code(), "origin_not_allowed");
    }

    // Preflights are answered for known origins only.
    async fn preflight(h: &Harness, origin: &str) -> common::Reply {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ];
        h.request(
            h.gateway.public,
            Method::OPTIONS,
            "/v1/chat/completions",
            &headers,
            "",
        )
        .await
    }
    let ok = preflight(&h, "https://app.example.com").await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(ok.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        preflight(&h, "https://evil.example.com").await.status,
        StatusCode::FORBIDDEN
    );

    // Secret keys cannot be given origins; publishable keys need them.
    for body in [
        r#"{"tenant":"acme","allowed_origins":["https://a.example"]}"#,
        r#"{"tenant":"acme","kind":"publishable"}"#,
        r#"{"tenant":"acme","kind":"publishable","allowed_origins":["javascript:alert(1)"]}"#,
    ] {
        let reply = h.admin(Method::POST, "/admin/v1/keys", body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["error"]["param"], "allowed_origins");
    }
}

#[tokio::test]
async fn ip_allow_lists_limit_where_a_key_and_its_tokens_work() {
    let h = harness().await;
    let (here, _) = h
        .key("acme", "customer", r#""allowed_ips":["127.0.0.0/8"]"#)
        .await;
    let (elsewhere, _) = h
        .key(
            "acme",
            "customer",
            r#""allowed_ips":["10.0.0.0/8","2001:db8::/32"]"#,
        )
        .await;
    assert_eq!(
        h.chat_as(h.gateway.public, &here, "chat", &[]).await.status,
        200
    );
    let refused = h.chat_as(h.gateway.public, &elsewhere, "chat", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "ip_not_allowed");
    // X-Forwarded-For is not trusted to get around it.
    let spoofed = h
        .chat_as(
            h.gateway.public,
            &elsewhere,
            "chat",
            &[("x-forwarded-for", "10.1.2.3")],
        )
        .await;
    assert_eq!(spoofed.status, StatusCode::FORBIDDEN);
    let bad = h
        .admin(
            Method::POST,
            "/admin/v1/keys",
            r#"{"tenant":"acme","allowed_ips":["10.0.0.0/33"]}"#,
        )
        .await;
    assert_eq!(bad.json()["error"]["param"], "allowed_ips");
}

/// Rotates a key through the admin API, the old one to stop after `grace`.
async fn rotate(h: &Harness, id: &str, grace: &str) -> common::Reply {
    let body = format!(r#"{{"grace":"{grace}"}}"#);
    h.admin(Method::POST, &format!("/admin/v1/keys/{id}/rotate"), &body)
        .await
}

#[tokio::test]
async fn rotation_issues_a_successor_and_ends_the_old_key_after_its_grace() {
    let (h, clock) = clocked_harness().await;
    let (old, old_id) = h
        .key(
            "acme",
            "customer",
            r#""roles":["embed-only"],"models":["embed"],"allowed_ips":["127.0.0.0/8"]"#,
        )
        .await;
    let reply = rotate(&h, &old_id, "1s").await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let successor = reply.json();
    assert_eq!(successor["replaces"], old_id.as_str());
    assert_eq!(successor["roles"], serde_json::json!(["embed-only"]));
    assert_eq!(successor["models"], serde_json::json!(["embed"]));
    assert_eq!(successor["allowed_ips"], serde_json::json!(["127.0.0.0/8"]));
    let new = successor["key"].as_str().unwrap().to_owned();

    assert_eq!(
        h.embed_as(&old).await.status,
        200,
        "the old key works during the grace"
    );
    assert_eq!(h.embed_as(&new).await.status, 200);
    clock.advance(Duration::from_secs(2));
    assert_invalid_key(&h.embed_as(&old).await);
    assert_eq!(h.embed_as(&new).await.status, 200);

    // Last use is recorded (in batches, not per request); the flush runs at shutdown too.
    let state = h.gateway.state.clone();
    state.keys.flush_last_used(&state.store).await.unwrap();
    let record = h
        .admin(
            Method::GET,
            &format!("/admin/v1/keys/{}", successor["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert!(record.json()["last_used_at"].as_i64().unwrap() > 0);

    // A zero grace ends the old key at once.
    let (old, old_id) = h
        .key(
            "acme",
            "customer",
            r#""roles":["embed-only"],"models":["embed"]"#,
        )
        .await;
    let reply = rotate(&h, &old_id, "0s").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_invalid_key(&h.embed_as(&old).await);
}

/// Two replicas sharing one PostgreSQL database: keys made on one work on the other, and a
/// revocation on one reaches the other within a second. Needs PostgreSQL (scripts/test.sh
/// starts one).
#[tokio::test]
async fn replicas_share_a_postgres_control_plane() {
    let Some(server) = common::PgDatabase::required() else {
        return;
    };
    let database = common::PgDatabase::create_in(&server).await;
    let url = database.url();

    let sim = portcullis_sim::Simulator::new(SimOptions::default());
    let sim_addr = sim.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    let text = common::config_text(sim_addr, std::path::Path::new("/unused"), "").replace(
        "url = \"sqlite:///unused/portcullis.db\"",
        &format!(
            "url = \"{url}\"\ndata_dir = \"{}\"",
            shared.path().display()
        ),
    );
    let first = common::start_gateway(&text).await;
    // Polling every 30 s on the second replica: only LISTEN/NOTIFY can deliver in time.
    let slow_poll = text.replace(
        "[dev]",
        "[identity]\nkey_refresh_interval = \"30s\"\n\n[dev]",
    );
    let second = common::start_gateway(&slow_poll).await;
    assert_eq!(first.state.store.backend(), "postgres");
    let h = Harness::wrap(sim, sim_addr, first, tempfile::tempdir().unwrap());
    let (key, id) = h.key("acme", "customer", "").await;
    assert_eq!(
        h.chat_as(h.gateway.public, &key, "chat", &[]).await.status,
        200
    );
    let mut accepted_on_second = false;
    for _ in 0..100 {
        if h.chat_as(second.public, &key, "chat", &[]).await.status == StatusCode::OK {
            accepted_on_second = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        accepted_on_second,
        "a key made on one replica never worked on the other"
    );

    h.admin(Method::POST, &format!("/admin/v1/keys/{id}/revoke"), "")
        .await;
    let revoked_at = Instant::now();
    while h.chat_as(second.public, &key, "chat", &[]).await.status != StatusCode::UNAUTHORIZED {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the other replica still accepts the key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_admin_listener_enforces_a_keys_network_and_browser_rules() {
    // One authenticator serves every listener: an admin-role key restricted to another
    // network is refused on the admin listener too, as is a secret admin key from a browser.
    let h = harness().await;
    let (elsewhere, _) = h
        .key(
            "ops",
            "internal",
            r#""roles":["admin"],"allowed_ips":["10.0.0.0/8"]"#,
        )
        .await;
    let (here, _) = h
        .key(
            "ops",
            "internal",
            r#""roles":["admin"],"allowed_ips":["127.0.0.0/8"]"#,
        )
        .await;
    let refused = admin_get(&h, &elsewhere, "/admin/v1/tenants", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "ip_not_allowed");
    assert_eq!(
        admin_get(&h, &here, "/admin/v1/tenants", &[]).await.status,
        StatusCode::OK
    );
    let browser = admin_get(
        &h,
        &here,
        "/admin/v1/tenants",
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-mode", "cors"),
        ],
    )
    .await;
    assert_eq!(browser.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.error_code(), "secret_key_in_browser");
}

/// `POST /admin/v1/keys` with a key as the actor.
async fn create_key_as(h: &Harness, actor: &str, body: &str) -> common::Reply {
    let auth = format!("Bearer {actor}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    h.request(
        h.gateway.admin,
        Method::POST,
        "/admin/v1/keys",
        &headers,
        body,
    )
    .await
}

#[tokio::test]
async fn a_key_manager_never_grants_what_it_lacks_nor_reaches_other_tenants() {
    // F1: a key with `admin:keys` could mint an `admin` key, for any tenant.
    let h = Harness::start(
        SimOptions::default(),
        "",
        "[roles.keymgr]\npermissions = [\"admin:keys\"]\n",
    )
    .await;
    let (_, other_key_id) = h.key("globex", "customer", "").await;
    let (manager, _) = h
        .key(
            "acme",
            "customer",
            r#""roles":["inference","keymgr"],"models":["chat"]"#,
        )
        .await;
    for (body, code) in [
        (
            r#"{"tenant":"acme","roles":["admin"]}"#,
            "privilege_escalation_denied",
        ),
        (
            r#"{"tenant":"acme","roles":["keymgr","admin"]}"#,
            "privilege_escalation_denied",
        ),
        (
            r#"{"tenant":"acme","roles":["inference"]}"#,
            "privilege_escalation_denied",
        ),
        (
            r#"{"tenant":"acme","roles":["inference"],"models":["chat","embed"]}"#,
            "privilege_escalation_denied",
        ),
        (
            r#"{"tenant":"globex","roles":["inference"],"models":["chat"]}"#,
            "cross_tenant_denied",
        ),
    ] {
        let reply = create_key_as(&h, &manager, body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(reply.error_code(), code, "{body}");
    }
    // Within what it holds, in its own tenant, it works.
    let made = create_key_as(
        &h,
        &manager,
        r#"{"tenant":"acme","roles":["inference"],"models":["chat"]}"#,
    )
    .await;
    assert_eq!(
        made.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&made.body)
    );
    // Other tenants' keys do not exist for it; operator-wide actions are refused.
    assert_eq!(
        admin_get(&h, &manager, &format!("/admin/v1/keys/{other_key_id}"), &[])
            .await
            .status,
        404
    );
    let listed = admin_get(&h, &manager, "/admin/v1/keys", &[]).await.json();
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["tenant"] == "acme"),
        "{listed}"
    );
    let auth = format!("Bearer {manager}");
    let revoke = h
        .request(
            h.gateway.admin,
            Method::POST,
            &format!("/admin/v1/keys/{other_key_id}/revoke"),
            &[("authorization", auth.as_str())],
            "",
        )
        .await;
    assert_eq!(revoke.status, 404);
    let rotate = h
        .request(
            h.gateway.admin,
            Method::POST,
            "/admin/v1/signing-keys/rotate",
            &[("authorization", auth.as_str())],
            "",
        )
        .await;
    assert_eq!(rotate.status, StatusCode::FORBIDDEN);
    assert_eq!(rotate.error_code(), "cross_tenant_denied");
}

#[tokio::test]
async fn admin_keys_are_global_only_for_internal_tenants() {
    let h = harness().await;
    let (tenant_admin, _) = h.key("acme", "customer", r#""roles":["admin"]"#).await;
    let (operator, _) = h.key("ops", "internal", r#""roles":["admin"]"#).await;
    h.key("globex", "customer", "").await;
    // A customer tenant's admin key sees its own tenant and cannot create tenants.
    let tenants = admin_get(&h, &tenant_admin, "/admin/v1/tenants", &[])
        .await
        .json();
    let names: Vec<&str> = tenants["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme"]);
    assert_eq!(
        admin_get(&h, &tenant_admin, "/admin/v1/tenants/globex", &[])
            .await
            .status,
        404
    );
    assert_eq!(
        admin_get(&h, &tenant_admin, "/admin/v1/audit", &[])
            .await
            .status,
        403
    );
    let reply = create_key_as(&h, &tenant_admin, r#"{"tenant":"globex"}"#).await;
    assert_eq!(reply.error_code(), "cross_tenant_denied");
    // The operators' admin key manages every tenant.
    let reply = create_key_as(&h, &operator, r#"{"tenant":"globex"}"#).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let tenants = admin_get(&h, &operator, "/admin/v1/tenants", &[])
        .await
        .json();
    assert!(tenants["data"].as_array().unwrap().len() >= 3);
}

/// `GET path` on the admin listener with a key (and `extra` headers).
async fn admin_get(h: &Harness, key: &str, path: &str, extra: &[(&str, &str)]) -> common::Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    h.request(h.gateway.admin, Method::GET, path, &headers, "")
        .await
}

#[tokio::test]
async fn two_authorization_or_origin_headers_are_refused_not_resolved() {
    // F17: the first of two Authorization headers won, so a valid key followed by garbage
    // passed here while a proxy in front reading the last one would have seen garbage.
    let h = harness().await;
    let (key, _) = h.key("acme", "customer", "").await;
    let auth = format!("Bearer {key}");
    let body = r#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#;
    for headers in [
        vec![
            ("authorization", auth.as_str()),
            ("authorization", "Bearer garbage"),
        ],
        vec![
            ("authorization", "Bearer garbage"),
            ("authorization", auth.as_str()),
        ],
        vec![
            ("authorization", auth.as_str()),
            ("authorization", auth.as_str()),
        ],
    ] {
        let mut all = vec![("content-type", "application/json")];
        all.extend(headers);
        let reply = h
            .request(
                h.gateway.public,
                Method::POST,
                "/v1/chat/completions",
                &all,
                body,
            )
            .await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.error_code(), "invalid_authorization_header");
    }
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", auth.as_str()),
                ("origin", "https://app.example.com"),
                ("origin", "https://evil.example"),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error_code(), "invalid_origin_header");
    // One of each still works.
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("authorization", auth.as_str()),
            ],
            body,
        )
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn admin_input_is_checked_before_it_changes_anything() {
    // F21: impossible dates and reversed ranges gave empty 200s, 1e-400 read as 0 and
    // suspended, `..` and `ACME` were tenant names, any audit limit and unknown models passed.
    let h = harness().await;
    let (_, _) = h.key("acme", "customer", "").await;
    let status = |reply: common::Reply| (reply.status.as_u16(), reply.error_code().to_owned());
    for name in ["..", "ACME", ".hidden", "a/b"] {
        let body = format!(r#"{{"name":"{name}","audience":"customer","plan":"default"}}"#);
        let reply = h.admin(Method::POST, "/admin/v1/tenants", &body).await;
        assert_eq!(status(reply), (400, "invalid_value".into()), "{name}");
    }
    for query in [
        "from=2026-13-45&to=2026-13-46",
        "from=2026-02-10&to=2026-02-01",
        "from=2026-02-28&to=2026-02-29",
        "from=26-1-1&to=2026-01-02",
    ] {
        let reply = h
            .admin(Method::GET, &format!("/admin/v1/usage?{query}"), "")
            .await;
        assert_eq!(status(reply), (400, "invalid_value".into()), "{query}");
    }
    let reply = h
        .admin(
            Method::GET,
            "/admin/v1/usage?from=2028-02-01&to=2028-02-29",
            "",
        )
        .await;
    assert_eq!(reply.status, 200);
    for factor in ["1e-400", "0.00001", "2", "-1"] {
        let body = format!(r#"{{"factor":{factor},"ttl_seconds":60}}"#);
        let reply = h
            .admin(Method::PUT, "/admin/v1/risk/tenant:acme", &body)
            .await;
        assert_eq!(status(reply), (400, "invalid_value".into()), "{factor}");
    }
    let active = h.admin(Method::GET, "/admin/v1/risk", "").await.json();
    assert_eq!(active["data"], serde_json::json!([]), "nothing was set");
    for limit in ["-1", "0", "99999999999", "x"] {
        let reply = h
            .admin(Method::GET, &format!("/admin/v1/audit?limit={limit}"), "")
            .await;
        assert_eq!(status(reply), (400, "invalid_value".into()), "{limit}");
    }
    assert_eq!(
        h.admin(Method::GET, "/admin/v1/audit?limit=5", "")
            .await
            .status,
        200
    );
    let reply = h
        .admin(
            Method::POST,
            "/admin/v1/keys",
            r#"{"tenant":"acme","roles":["customer"],"models":["no-such-model"]}"#,
        )
        .await;
    assert_eq!(status(reply), (400, "invalid_value".into()));
}

#[tokio::test]
async fn token_mints_are_limited_per_key() {
    // F19: 3,000 mints took 0.7 s, each token kept in the verified-token cache.
    let h = Harness::start(
        SimOptions::default(),
        "",
        "[identity]\ntoken_mints_per_minute = 2\n",
    )
    .await;
    let (key, _) = h.key("acme", "customer", "").await;
    let (other, _) = h.key("acme", "customer", "").await;
    let mint = |key: String| {
        let h = &h;
        async move {
            h.request(
                h.gateway.public,
                Method::POST,
                "/v1/auth/token",
                &[
                    ("authorization", &format!("Bearer {key}")),
                    ("content-type", "application/json"),
                ],
                "{}",
            )
            .await
        }
    };
    assert_eq!(mint(key.clone()).await.status, 200);
    assert_eq!(mint(key.clone()).await.status, 200);
    let refused = mint(key.clone()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.error_code(), "token_rate_limit_exceeded");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Per key: another key of the same tenant still mints.
    assert_eq!(mint(other).await.status, 200);
}
