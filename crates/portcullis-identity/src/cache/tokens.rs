//! The key cache's tokens: minted for a key (narrowed, never widened), verified once per token
//! (an Ed25519 check costs about 40 us; later uses are a map lookup) and checked against their
//! key on every use; the signing keyring, its rotation and the JWKS.

use super::{AuthFailure, Authenticated, Credential, KeyCache};
use crate::keys;
use crate::store::{Store, StoreError};
use crate::tokens::{generate_signing_key, Claims, AUDIENCE};
use portcullis_core::KeyPrincipal;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A token may only narrow the key it came from: its roles among the key's, its models
/// within the key's (a model-restricted key's token names models), and a lifetime no longer
/// than tokens are given. Checked on every use, so a token signed by anyone who got hold of
/// the signing key still cannot say more than its key.
fn narrows(key: &KeyPrincipal, claims: &Claims, max_lifetime: i64, now: i64) -> bool {
    let roles = claims.roles.iter().all(|r| key.roles.contains(r));
    let models = match (&key.models, &claims.models) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(allowed), Some(asked)) => asked.iter().all(|m| allowed.contains(m)),
    };
    let lifetime = claims.exp - claims.iat <= max_lifetime && claims.iat <= now + 60;
    roles && models && lifetime
}

/// Most verified tokens remembered; beyond it expired ones are dropped, then all.
const VERIFIED_CAPACITY: usize = 100_000;

impl KeyCache {
    /// Starts signing tokens with a new key; the old one verifies until its tokens expire.
    pub async fn rotate_signing_key(&self, store: &Store) -> Result<String, StoreError> {
        let key = generate_signing_key();
        let kid = key.kid.clone();
        store.rotate_signing_key(key).await?;
        self.reload(store).await?;
        Ok(kid)
    }

    /// The public signing keys, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.keyring.load().jwks().clone()
    }

    /// Mints a token for `principal`, narrowed to `roles` and `models`, living `lifetime`
    /// seconds (capped by the configured maximum). Returns the token and its expiry.
    pub fn mint_token(
        &self,
        principal: &KeyPrincipal,
        roles: Vec<String>,
        scopes: Vec<String>,
        models: Option<Vec<String>>,
        lifetime: i64,
    ) -> Option<(String, i64)> {
        let iat = self.now();
        let exp = iat + lifetime.clamp(1, self.tokens.max_lifetime);
        let claims = Claims {
            iss: self.tokens.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: principal.key_id.clone(),
            tenant: principal.tenant.clone(),
            roles,
            scopes,
            models,
            env: principal.environment.as_str().into(),
            jti: keys::random_base62(22),
            iat,
            exp,
        };
        self.keyring.load().sign(&claims).map(|t| (t, exp))
    }

    pub(super) fn verified_claims(&self, token: &str) -> Result<Arc<Claims>, AuthFailure> {
        let cached = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        if let Some(claims) = cached {
            return Ok(claims);
        }
        let claims = Arc::new(
            self.keyring
                .load()
                .verify(token)
                .map_err(|_| AuthFailure::Invalid)?,
        );
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            let now = self.now();
            verified.retain(|_, c| c.exp > now);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    pub(super) fn authenticate_token(&self, token: &str) -> Result<Authenticated, AuthFailure> {
        let claims = self.verified_claims(token)?;
        if claims.exp <= self.now() {
            return Err(AuthFailure::Invalid);
        }
        let entries = self.entries.load();
        // The key the token came from must still be valid: revoking a key kills its tokens.
        let entry = entries.get(&claims.sub).ok_or(AuthFailure::Invalid)?;
        if entry.expires_at <= self.now()
            || entry.principal.tenant != claims.tenant
            || entry.principal.environment.as_str() != claims.env
            || !narrows(
                &entry.principal,
                &claims,
                self.tokens.max_lifetime,
                self.now(),
            )
        {
            return Err(AuthFailure::Invalid);
        }
        if self
            .reexchange
            .load()
            .get(&claims.sub)
            .is_some_and(|&minted_by| claims.iat <= minted_by)
        {
            return Err(AuthFailure::Reexchange);
        }
        entry.last_used.store(self.now(), Ordering::Relaxed);
        let principal = KeyPrincipal {
            roles: claims.roles.clone(),
            models: claims.models.clone(),
            ..(*entry.principal).clone()
        };
        Ok(Authenticated {
            principal: Arc::new(principal),
            credential: Credential::Token,
            restrictions: entry.restrictions.clone(),
        })
    }

    /// Whether `token` was signed by one of the gateway's own signing keys.
    pub fn is_own_token(&self, token: &str) -> bool {
        self.keyring.load().knows(token)
    }
}
