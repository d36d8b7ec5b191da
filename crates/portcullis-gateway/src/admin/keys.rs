//! `/admin/v1/keys`: create, list, show, revoke and rotate keys, and `/admin/v1/leaks`
//! (revoke what a secret scanner found). A tenant-scoped actor manages its own tenant's keys
//! only, and no actor grants a key more than it holds (`actor.rs`).

use super::reply::{created, invalid, not_found, ok, parse, query_param, store_error};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, Environment};
use portcullis_identity::keys::MintedKey;
use portcullis_identity::{KeyKind, KeyRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    tenant: String,
    #[serde(default = "default_environment")]
    environment: String,
    #[serde(default = "default_roles")]
    roles: Vec<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    description: String,
    /// Like "30d" or "12h"; the configured default when absent.
    #[serde(default)]
    expires_in: Option<String>,
    /// `secret` (default) or `publishable` (for browsers, from `allowed_origins` only).
    #[serde(default)]
    kind: Option<String>,
    /// CIDRs the key may be used from.
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
    /// Exact origins (`https://app.example.com`) a publishable key may be used from.
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
}

fn default_environment() -> String {
    "live".into()
}

fn default_roles() -> Vec<String> {
    vec!["inference".into()]
}

/// Candidate key strings, as a secret scanner reports them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeakReport {
    keys: Vec<String>,
    /// Where they were found, e.g. a repository URL; recorded with each revocation.
    #[serde(default)]
    source: String,
}

/// Most candidates one report may carry.
const MAX_LEAK_CANDIDATES: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old key keeps working, like "1h" or "0s". Default 1h.
    #[serde(default)]
    grace: Option<String>,
    /// The successor's lifetime. Default: the old key's own (a 1-day key's successor is a
    /// 1-day key).
    #[serde(default)]
    expires_in: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Revoke {
    #[serde(default)]
    reason: String,
}

impl Admin<'_> {
    /// Stores a new key and returns its record with the one-time key text.
    async fn issue(&self, minted: &MintedKey, record: &KeyRecord) -> Result<Value, ApiError> {
        self.state
            .store
            .insert_key(record.clone())
            .await
            .map_err(store_error)?;
        self.reload_cache().await?;
        let mut shown = json!(record);
        shown["key"] = Value::from(minted.text.clone());
        Ok(shown)
    }

    /// The key `id`, if it exists within the actor's scope.
    async fn scoped_key(&self, id: &str) -> Result<KeyRecord, ApiError> {
        let key = self
            .state
            .store
            .key(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("key"))?;
        self.actor.may_see(&key.tenant, "key")?;
        Ok(key)
    }

    pub(super) async fn list_keys(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        let asked = query_param(query, "tenant");
        let tenant = match (self.actor.scope(), asked) {
            (Some(own), Some(asked)) if asked != own => return ok(json!({"data": []})),
            (Some(own), _) => Some(own.to_owned()),
            (None, asked) => asked,
        };
        let keys = self
            .state
            .store
            .keys(tenant.as_deref())
            .await
            .map_err(store_error)?;
        ok(json!({"data": keys}))
    }

    pub(super) async fn show_key(&self, id: &str) -> Result<Response<GatewayBody>, ApiError> {
        ok(json!(self.scoped_key(id).await?))
    }

    pub(super) async fn create_key(&self, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
        let new: NewKey = parse(body)?;
        self.actor.may_create_in(&new.tenant)?;
        let environment = Environment::parse(&new.environment)
            .ok_or_else(|| invalid("environment", "`environment` must be live or test."))?;
        if new.roles.is_empty() {
            return Err(invalid("roles", "`roles` must name at least one role."));
        }
        let settings = self.state.settings();
        if let Some(unknown) = new.roles.iter().find(|r| !settings.roles.exists(r)) {
            return Err(invalid("roles", &format!("unknown role `{unknown}`.")));
        }
        if let Some(unknown) = new
            .models
            .iter()
            .flatten()
            .find(|m| !settings.catalog.contains(m))
        {
            return Err(invalid("models", &format!("unknown model `{unknown}`.")));
        }
        self.actor.may_grant(self.state, &new.roles, &new.models)?;
        let identity = &self.state.identity;
        let lifetime = match &new.expires_in {
            None => identity.default_key_lifetime.get(),
            Some(text) => humantime::parse_duration(text).map_err(|_| {
                invalid(
                    "expires_in",
                    "`expires_in` must be a duration like \"30d\".",
                )
            })?,
        };
        if lifetime.is_zero() || lifetime > identity.max_key_lifetime.get() {
            return Err(invalid(
                "expires_in",
                &format!(
                    "`expires_in` must be above 0 and at most {}.",
                    identity.max_key_lifetime
                ),
            ));
        }
        let kind = match new.kind.as_deref() {
            None | Some("secret") => KeyKind::Secret,
            Some("publishable") => KeyKind::Publishable,
            Some(_) => return Err(invalid("kind", "`kind` must be secret or publishable.")),
        };
        if let Some(ips) = &new.allowed_ips {
            if let Some(bad) = ips.iter().find(|c| c.parse::<ipnet::IpNet>().is_err()) {
                return Err(invalid(
                    "allowed_ips",
                    &format!("`{bad}` is not a CIDR like 10.0.0.0/8 or 2001:db8::/32."),
                ));
            }
        }
        match (&kind, &new.allowed_origins) {
            (KeyKind::Publishable, Some(origins)) if !origins.is_empty() => {
                if let Some(bad) = origins.iter().find(|o| !valid_origin(o)) {
                    return Err(invalid("allowed_origins", &format!("`{bad}` is not an origin like https://app.example.com.")));
                }
            }
            (KeyKind::Publishable, _) => {
                return Err(invalid("allowed_origins", "A publishable key needs at least one allowed origin."))
            }
            (KeyKind::Secret, Some(_)) => {
                return Err(invalid("allowed_origins", "Only publishable keys have allowed origins: secret keys are never used from browsers."))
            }
            (KeyKind::Secret, None) => {}
        }
        let (minted, mut record) = self.state.keys.new_key(
            &new.tenant,
            environment,
            new.roles,
            new.models,
            new.description,
            lifetime.as_secs() as i64,
        );
        record.kind = kind;
        record.allowed_ips = new.allowed_ips;
        record.allowed_origins = new.allowed_origins;
        let shown = self.issue(&minted, &record).await?;
        self.audit(
            "key.create",
            &record.id,
            &format!("tenant={}", record.tenant),
        )
        .await?;
        created(shown)
    }

    pub(super) async fn revoke_key(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        let revoke: Revoke = if body.is_empty() {
            Revoke::default()
        } else {
            parse(body)?
        };
        self.scoped_key(id).await?;
        let revoked = self
            .state
            .store
            .revoke_key(id, &revoke.reason)
            .await
            .map_err(store_error)?;
        if !revoked {
            return match self.state.store.key(id).await.map_err(store_error)? {
                Some(_) => ok(json!({"id": id, "revoked": true, "already": true})),
                None => Err(not_found("key")),
            };
        }
        // Immediate on this replica; others pick it up from the store's key revision. The
        // reload after the eviction outlasts any refresh that read the store before the revoke
        // (reloads run one at a time), so none can bring the key back.
        self.state.keys.evict(id);
        self.reload_cache().await?;
        self.audit("key.revoke", id, &revoke.reason).await?;
        ok(json!({"id": id, "revoked": true}))
    }

    /// Issues a successor with the same tenant, roles, models, environment, kind and
    /// restrictions, and ends the old key after the grace period, so clients can switch over.
    pub(super) async fn rotate_key(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        let rotate: Rotate = if body.is_empty() {
            Rotate::default()
        } else {
            parse(body)?
        };
        let grace = match rotate.grace.as_deref() {
            None => Duration::from_secs(3600),
            Some(text) => humantime::parse_duration(text).map_err(|_| {
                invalid("grace", "`grace` must be a duration like \"1h\" or \"0s\".")
            })?,
        };
        let old = self.scoped_key(id).await?;
        self.actor.may_grant(self.state, &old.roles, &old.models)?;
        if !old.is_usable(self.state.keys.now()) {
            return Err(invalid("id", "Only an active key can be rotated."));
        }
        let identity = &self.state.identity;
        let lifetime = match rotate.expires_in.as_deref() {
            Some(text) => humantime::parse_duration(text)
                .ok()
                .filter(|l| !l.is_zero() && *l <= identity.max_key_lifetime.get())
                .ok_or_else(|| {
                    invalid(
                        "expires_in",
                        &format!(
                            "`expires_in` must be a duration above 0 and at most {}.",
                            identity.max_key_lifetime
                        ),
                    )
                })?
                .as_secs() as i64,
            None if old.expires_at > old.created_at => old.expires_at - old.created_at,
            None => identity.default_key_lifetime.get().as_secs() as i64,
        };
        let (minted, mut record) = self.state.keys.new_key(
            &old.tenant,
            old.environment,
            old.roles.clone(),
            old.models.clone(),
            old.description.clone(),
            lifetime,
        );
        record.kind = old.kind;
        record.allowed_ips = old.allowed_ips.clone();
        record.allowed_origins = old.allowed_origins.clone();
        // Expiry is kept in whole seconds and a key is usable while now < expiry, with now
        // truncated: a plain now + grace could leave less than the grace asked for (none at
        // all for "1s" just before a second ticks over). The grace is rounded up, plus the
        // second already begun, so the old key lasts at least as long as asked (and under a
        // second longer); a zero grace ends it at once.
        let now = self.state.keys.now();
        let ends = if grace.is_zero() {
            now
        } else {
            let whole_seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
            now + whole_seconds as i64 + 1
        };
        self.state
            .store
            .expire_key_at(id, ends)
            .await
            .map_err(store_error)?;
        let mut shown = self.issue(&minted, &record).await?;
        self.audit(
            "key.rotate",
            id,
            &format!("successor={} grace={}s", record.id, grace.as_secs()),
        )
        .await?;
        shown["replaces"] = Value::from(id);
        shown["replaced_key_expires_at"] = Value::from(ends.min(old.expires_at));
        created(shown)
    }

    /// Revokes every candidate that is a real, still-active key. The answer lists only the ids
    /// revoked: nothing is said about strings that are not valid keys, so the endpoint cannot
    /// be used to test guesses.
    pub(super) async fn report_leaks(
        &self,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        let report: LeakReport = parse(body)?;
        if report.keys.len() > MAX_LEAK_CANDIDATES {
            return Err(invalid("keys", "At most 1000 candidate keys per report."));
        }
        let source: String = report.source.chars().take(500).collect();
        let reason = format!("leak reported: {source}");
        let mut revoked = Vec::new();
        for candidate in &report.keys {
            let Some(presented) = portcullis_identity::keys::parse(candidate.trim()) else {
                continue;
            };
            let Some(record) = self
                .state
                .store
                .key(presented.id)
                .await
                .map_err(store_error)?
            else {
                continue;
            };
            let genuine = portcullis_identity::keys::verify_secret(
                self.state.keys.pepper(),
                presented.id,
                presented.secret,
                &record.secret_hash,
            );
            let in_scope = self.actor.may_see(&record.tenant, "key").is_ok();
            if !genuine || !in_scope || revoked.contains(&record.id) {
                continue;
            }
            if self
                .state
                .store
                .revoke_key(&record.id, &reason)
                .await
                .map_err(store_error)?
            {
                self.state.keys.evict(&record.id);
                self.audit("key.leak_revoke", &record.id, &source).await?;
                revoked.push(record.id);
            }
        }
        if !revoked.is_empty() {
            self.reload_cache().await?;
        }
        ok(json!({"revoked": revoked}))
    }
}

/// `scheme://host[:port]` with nothing after it, as browsers send in `Origin`.
fn valid_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 253
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}
