//! Tokens from an external identity provider, with the JWKS served by the test itself.

use crate::common;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use bytes::Bytes;
use common::Harness;
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_sim::SimOptions;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

fn signing_key(kid: &str) -> SigningKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    SigningKey {
        kid: kid.into(),
        pkcs8: pkcs8.as_ref().to_vec(),
        public: pair.public_key().as_ref().to_vec(),
    }
}

fn jwk(key: &SigningKey) -> serde_json::Value {
    json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": key.kid,
        "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key.public),
    })
}

/// A JWKS endpoint whose document the test can change; counts fetches.
struct Idp {
    url: String,
    document: Arc<Mutex<serde_json::Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn idp(keys: &[&SigningKey]) -> Idp {
    let document = Arc::new(Mutex::new(
        json!({"keys": keys.iter().map(|k| jwk(k)).collect::<Vec<_>>()}),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (doc, count) = (document.clone(), fetches.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (doc, count) = (doc.clone(), count.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let body = doc.lock().unwrap().to_string();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Idp {
        url,
        document,
        fetches,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(key: &SigningKey, claims: serde_json::Value) -> String {
    let header = Header {
        kid: Some(key.kid.clone()),
        ..Header::new(Algorithm::EdDSA)
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&key.pkcs8)).unwrap()
}

fn claims() -> serde_json::Value {
    json!({
        "iss": "https://idp.test", "aud": "portcullis-api", "sub": "user-17",
        "tenant": "acme", "roles": ["inference", "root"], "exp": now() + 300, "iat": now(),
    })
}

#[tokio::test]
async fn external_tokens_are_verified_mapped_and_attacks_refused() {
    let first = signing_key("idp-1");
    let idp = idp(&[&first]).await;
    let config = format!(
        "[[identity.issuers]]\nissuer = \"https://idp.test\"\naudience = \"portcullis-api\"\n\
         jwks_url = \"{}\"\nalgorithms = [\"EdDSA\"]\njwks_min_refresh = \"100ms\"\n[plans.pro]\n",
        idp.url
    );
    let h = Harness::start(SimOptions::default(), "", &config).await;
    h.admin(
        Method::POST,
        "/admin/v1/tenants",
        r#"{"name":"acme","audience":"customer","plan":"pro"}"#,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let good = token(&first, claims());
    assert_eq!(
        h.chat_as(h.gateway.public, &good, "chat", &[]).await.status,
        200
    );

    let mut bad = Vec::new();
    let mut c = claims();
    c["aud"] = json!("someone-else");
    bad.push(("wrong audience", token(&first, c)));
    let mut c = claims();
    c["exp"] = json!(now() - 120);
    bad.push(("expired", token(&first, c)));
    let mut c = claims();
    c["nbf"] = json!(now() + 3600);
    bad.push(("not yet valid", token(&first, c)));
    let mut c = claims();
    c["tenant"] = json!("nobody");
    bad.push(("unknown tenant", token(&first, c)));
    let stranger = signing_key("idp-1");
    bad.push((
        "signed by another key with the same kid",
        token(&stranger, claims()),
    ));
    bad.push((
        "kid not in the JWKS",
        token(&signing_key("idp-unknown"), claims()),
    ));
    let x = jwk(&first)["x"].as_str().unwrap().to_owned();
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("idp-1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(),
        &EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    bad.push(("HS256 with the public key", hs));
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    bad.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(json!({"alg":"none","kid":"idp-1"})),
            b64(claims())
        ),
    ));
    // F20: a claim named twice is refused, not resolved (the last one won before).
    let signed_raw = |tenants: &str| {
        let header = b64(json!({"alg": "EdDSA", "typ": "JWT", "kid": "idp-1"}));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"https://idp.test","aud":"portcullis-api","sub":"user-17",{tenants},"roles":["inference"],"exp":{},"iat":{}}}"#,
            now() + 300,
            now()
        ));
        let signature = jsonwebtoken::crypto::sign(
            format!("{header}.{payload}").as_bytes(),
            &EncodingKey::from_ed_der(&first.pkcs8),
            Algorithm::EdDSA,
        )
        .unwrap();
        format!("{header}.{payload}.{signature}")
    };
    let once = signed_raw(r#""tenant":"acme""#);
    assert_eq!(
        h.chat_as(h.gateway.public, &once, "chat", &[]).await.status,
        200
    );
    bad.push((
        "a claim named twice",
        signed_raw(r#""tenant":"nobody","tenant":"acme""#),
    ));
    for (what, t) in bad {
        let reply = h.chat_as(h.gateway.public, &t, "chat", &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what} was accepted"
        );
    }

    // Roles come from the claim; unknown ones (`root`) are dropped, missing ones grant nothing.
    let mut c = claims();
    c["roles"] = json!("root");
    let reply = h
        .chat_as(h.gateway.public, &token(&first, c), "chat", &[])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // A rotated provider key is picked up on first sight of its kid, with one fetch.
    let second = signing_key("idp-2");
    *idp.document.lock().unwrap() = json!({"keys": [jwk(&first), jwk(&second)]});
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let before = idp.fetches.load(Ordering::SeqCst);
    assert_eq!(
        h.chat_as(h.gateway.public, &token(&second, claims()), "chat", &[])
            .await
            .status,
        200
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before + 1);

    // Unknown kids cannot make the gateway hammer the provider: at most one fetch per
    // jwks_min_refresh, however many tokens arrive.
    let before = idp.fetches.load(Ordering::SeqCst);
    for i in 0..20 {
        let t = token(&signing_key(&format!("made-up-{i}")), claims());
        assert_eq!(
            h.chat_as(h.gateway.public, &t, "chat", &[]).await.status,
            401
        );
    }
    assert!(
        idp.fetches.load(Ordering::SeqCst) - before <= 2,
        "refresh was not rate-limited"
    );
    // External tokens cannot be exchanged for gateway tokens.
    let auth = format!("Bearer {good}");
    let reply = h
        .request(
            h.gateway.public,
            Method::POST,
            "/v1/auth/token",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}
