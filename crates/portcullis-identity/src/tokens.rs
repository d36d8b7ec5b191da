//! Short-lived tokens: a key exchanged for an EdDSA-signed JWT that says the same or less.
//!
//! Claims: `iss`, `aud`, `sub` (the key id it came from), `tenant`, `roles`, `models`, `env`,
//! `jti`, `iat`, `exp`; the header names the signing key (`kid`). Verification accepts EdDSA
//! only (never `none`, never an HMAC algorithm), requires `exp`, `iss` and `aud`, and looks
//! the `kid` up among the store's signing keys. A token is only as good as its key: it is
//! refused once the key it came from is revoked or expired.

use crate::store::{now, SigningKeyRecord, Store, StoreError};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The audience every Portcullis token carries.
pub const AUDIENCE: &str = "portcullis";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// The permissions the roles grant, for relying parties that read scopes; the gateway
    /// itself authorizes by `roles`.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    pub env: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing and verifying keys loaded from the store.
pub struct Keyring {
    issuer: String,
    signer: Option<(String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    Invalid,
}

impl Keyring {
    pub fn empty(issuer: &str) -> Keyring {
        Keyring {
            issuer: issuer.to_owned(),
            signer: None,
            verifiers: HashMap::new(),
            jwks: serde_json::json!({"keys": []}),
        }
    }

    /// Loads the keys that can still have live tokens (`max_token_lifetime` seconds).
    pub async fn load(
        store: &Store,
        issuer: &str,
        max_token_lifetime: i64,
    ) -> Result<Keyring, StoreError> {
        let records = store.signing_keys(now() - max_token_lifetime).await?;
        let mut ring = Keyring::empty(issuer);
        let mut jwks = Vec::new();
        for r in &records {
            ring.verifiers
                .insert(r.kid.clone(), DecodingKey::from_ed_der(&r.public_key));
            jwks.push(serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": r.kid,
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&r.public_key),
            }));
        }
        ring.signer = records
            .iter()
            .find(|r| r.retired_at.is_none())
            .map(|r| (r.kid.clone(), EncodingKey::from_ed_der(&r.private_pkcs8)));
        ring.jwks = serde_json::json!({"keys": jwks});
        Ok(ring)
    }

    /// Whether the token's header names one of these keys (no signature check).
    pub fn knows(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|kid| self.verifiers.contains_key(&kid))
    }

    pub fn has_signer(&self) -> bool {
        self.signer.is_some()
    }

    /// `GET /.well-known/jwks.json`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn sign(&self, claims: &Claims) -> Option<String> {
        let (kid, key) = self.signer.as_ref()?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).ok()
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenFailure::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenFailure::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(TokenFailure::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenFailure::Invalid)
    }
}

/// A fresh Ed25519 signing key.
pub fn generate_signing_key() -> SigningKeyRecord {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key generation");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a freshly generated key parses");
    SigningKeyRecord {
        kid: format!("pck_{}", crate::keys::random_base62(16)),
        private_pkcs8: pkcs8.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now(),
        retired_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "portcullis".into(),
            aud: AUDIENCE.into(),
            sub: "keyid".into(),
            tenant: "acme".into(),
            roles: vec!["inference".into()],
            scopes: vec!["chat:invoke".into()],
            models: None,
            env: "live".into(),
            jti: "j1".into(),
            iat: now(),
            exp,
        }
    }

    async fn ring() -> (tempfile::TempDir, Store, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        store
            .rotate_signing_key(generate_signing_key())
            .await
            .unwrap();
        let ring = Keyring::load(&store, "portcullis", 3600).await.unwrap();
        (dir, store, ring)
    }

    #[tokio::test]
    async fn signs_verifies_and_survives_rotation() {
        let (_dir, store, ring) = ring().await;
        let token = ring.sign(&claims(now() + 60)).unwrap();
        assert_eq!(ring.verify(&token).unwrap().tenant, "acme");
        assert_eq!(
            ring.verify(&ring.sign(&claims(now() - 60)).unwrap()),
            Err(TokenFailure::Invalid)
        );

        store
            .rotate_signing_key(generate_signing_key())
            .await
            .unwrap();
        let rotated = Keyring::load(&store, "portcullis", 3600).await.unwrap();
        assert!(
            rotated.verify(&token).is_ok(),
            "old tokens verify until they expire"
        );
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
        let new = rotated.sign(&claims(now() + 60)).unwrap();
        assert!(
            ring.verify(&new).is_err(),
            "the old ring does not know the new kid"
        );
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let (_dir, _store, ring) = ring().await;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let body = b64(serde_json::to_value(claims(now() + 60)).unwrap());
        let none = format!(
            "{}.{body}.",
            b64(serde_json::json!({"alg":"none","typ":"JWT"}))
        );
        assert!(ring.verify(&none).is_err());
        // HS256 "signed" with the public key, the classic algorithm confusion.
        let kid = ring.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
        let public = ring.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some(kid),
                ..Header::new(Algorithm::HS256)
            },
            &claims(now() + 60),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert!(ring.verify(&hs).is_err());
        // Wrong audience and issuer.
        let mut other = claims(now() + 60);
        other.aud = "someone-else".into();
        assert!(ring.verify(&ring.sign(&other).unwrap()).is_err());
        let mut other = claims(now() + 60);
        other.iss = "evil".into();
        assert!(ring.verify(&ring.sign(&other).unwrap()).is_err());
        // A tampered payload.
        let good = ring.sign(&claims(now() + 60)).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims(now() + 60);
        c.roles = vec!["admin".into()];
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::to_value(c).unwrap()),
            parts[2]
        );
        assert!(ring.verify(&tampered).is_err());
    }
}
