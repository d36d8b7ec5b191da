//! External identity providers: JWTs from configured issuers, verified against their JWKS.
//!
//! Each issuer's JWKS is fetched at start and every `jwks_refresh_interval`; a token whose
//! `kid` is unknown triggers one extra fetch, at most once per `jwks_min_refresh`, so a
//! provider's key rotation is picked up at once while a flood of made-up `kid`s cannot turn
//! the gateway into a JWKS-fetching amplifier. Only the configured asymmetric algorithms are
//! accepted, and the algorithm must match the key's type, which rules out `none` and HS*
//! tokens "signed" with a public key. The tenant comes from a claim and must exist; roles come
//! from a claim and unknown roles are dropped.

use crate::policy::authz::Roles;
use crate::upstream::client_tls;
use arc_swap::ArcSwap;
use base64::Engine;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_config::Issuer;
use portcullis_core::{Environment, KeyPrincipal};
use portcullis_identity::KeyCache;
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

type JwksClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct ExternalIssuer {
    config: Issuer,
    uri: Uri,
    algorithms: Vec<Algorithm>,
    keys: ArcSwap<HashMap<String, (DecodingKey, jsonwebtoken::AlgorithmFamily)>>,
    last_fetch: Mutex<Option<Instant>>,
}

pub struct ExternalIssuers {
    issuers: Vec<ExternalIssuer>,
    client: JwksClient,
}

/// Why an external token was refused (coarse on purpose, like keys).
#[derive(Debug)]
pub struct Refused;

impl ExternalIssuers {
    pub fn new(configs: &[Issuer]) -> Result<ExternalIssuers, String> {
        let mut issuers = Vec::new();
        for c in configs {
            let uri = c.jwks_url.parse().map_err(|e| format!("jwks_url: {e}"))?;
            let algorithms = c
                .algorithms
                .iter()
                .map(|a| Algorithm::from_str(a).map_err(|_| format!("unknown algorithm {a}")))
                .collect::<Result<_, _>>()?;
            issuers.push(ExternalIssuer {
                config: c.clone(),
                uri,
                algorithms,
                keys: ArcSwap::from_pointee(HashMap::new()),
                last_fetch: Mutex::new(None),
            });
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(ExternalIssuers {
            issuers,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Fetches every JWKS now and then on each issuer's interval, until shutdown.
    pub fn spawn_refresh(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        for index in 0..self.issuers.len() {
            let this = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut ticker =
                    tokio::time::interval(this.issuers[index].config.jwks_refresh_interval.get());
                loop {
                    tokio::select! {
                        _ = ticker.tick() => this.fetch(index).await,
                        _ = shutdown.changed() => return,
                    }
                }
            });
        }
    }

    async fn fetch(&self, index: usize) {
        let issuer = &self.issuers[index];
        *issuer.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        match self.download(&issuer.uri).await {
            Ok(set) => {
                let mut keys = HashMap::new();
                for jwk in &set.keys {
                    let (Some(kid), Ok(key)) =
                        (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
                    else {
                        continue;
                    };
                    let family = match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => {
                            jsonwebtoken::AlgorithmFamily::Rsa
                        }
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                            jsonwebtoken::AlgorithmFamily::Ec
                        }
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => {
                            jsonwebtoken::AlgorithmFamily::Ed
                        }
                        // Symmetric keys in a JWKS are never used to verify.
                        _ => continue,
                    };
                    keys.insert(kid, (key, family));
                }
                tracing::info!(issuer = %issuer.config.issuer, keys = keys.len(), "JWKS refreshed");
                issuer.keys.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::warn!(issuer = %issuer.config.issuer, error = %e, "JWKS fetch failed; keeping the previous keys")
            }
        }
    }

    async fn download(&self, uri: &Uri) -> Result<JwkSet, String> {
        let request = http::Request::get(uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    /// The issuer a token claims to come from, if it is one of ours to check.
    fn issuer_of(&self, token: &str) -> Option<usize> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        // Strictly: claims named twice are refused, not resolved (the last one would win,
        // where another reader might take the first).
        let claims = portcullis_openai::json::parse(&bytes).ok()?;
        let iss = claims.get("iss")?.as_str()?;
        self.issuers.iter().position(|i| i.config.issuer == iss)
    }

    /// The configured issuer a token names (for the request record, once it verified).
    pub fn issuer_name(&self, token: &str) -> Option<&str> {
        self.issuer_of(token)
            .map(|i| self.issuers[i].config.issuer.as_str())
    }

    /// Whether the token names a configured external issuer.
    pub fn handles(&self, token: &str) -> bool {
        !self.issuers.is_empty() && self.issuer_of(token).is_some()
    }

    pub async fn authenticate(
        &self,
        token: &str,
        keys: &KeyCache,
        roles: &Roles,
    ) -> Result<Arc<KeyPrincipal>, Refused> {
        let index = self.issuer_of(token).ok_or(Refused)?;
        let issuer = &self.issuers[index];
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(Refused);
        }
        let kid = header.kid.ok_or(Refused)?;
        if !issuer.keys.load().contains_key(&kid) {
            let due = issuer
                .last_fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|t| t.elapsed() >= issuer.config.jwks_min_refresh.get());
            if due {
                self.fetch(index).await;
            }
        }
        let keys_now = issuer.keys.load();
        let (key, family) = keys_now.get(&kid).ok_or(Refused)?;
        if header.alg.family() != *family {
            return Err(Refused);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
            .map_err(|_| Refused)?
            .claims;
        let tenant = claims
            .get(&issuer.config.tenant_claim)
            .and_then(Value::as_str)
            .ok_or(Refused)?;
        let (audience, plan) = keys.tenant(tenant).ok_or(Refused)?;
        let claimed: Vec<String> = match claims.get(&issuer.config.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
            _ => issuer.config.default_roles.clone(),
        };
        let sub: String = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(64)
            .collect();
        Ok(Arc::new(KeyPrincipal {
            tenant: tenant.to_owned(),
            key_id: format!("ext:{sub}"),
            audience,
            environment: Environment::Live,
            plan,
            roles: claimed.into_iter().filter(|r| roles.exists(r)).collect(),
            models: None,
        }))
    }
}
