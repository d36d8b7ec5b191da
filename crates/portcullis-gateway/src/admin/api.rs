//! The admin API: tenants, keys and the audit log, as JSON under `/admin/v1/`.
//!
//! Only on the admin listener, and only with the admin token (`Authorization: Bearer`),
//! compared in constant time. Every change is written to the audit log with who, what, when
//! and the client address. A new key's secret appears once, in the creation response.

use crate::inbound::read_body;
use crate::listener::PeerAddr;
use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use portcullis_core::{ApiError, Audience, Environment, ErrorKind};
use portcullis_identity::keys::MintedKey;
use portcullis_identity::{new_key, KeyKind, KeyRecord, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use subtle::ConstantTimeEq;

const MAX_ADMIN_BODY: usize = 64 * 1024;

pub async fn serve<B>(
    state: &GatewayState,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let actor = check_token(state, &request).await?;
    let source = request
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let (parts, body) = request.into_parts();
    let body = read_body(
        &parts.headers,
        body,
        MAX_ADMIN_BODY,
        Duration::from_secs(10),
    )
    .await?;
    let segments: Vec<&str> = path.trim_start_matches("/admin/v1/").split('/').collect();
    actor.require(state, permission_for(&segments))?;
    let admin = Admin {
        state,
        source,
        actor: actor.name(),
    };
    match (&method, segments.as_slice()) {
        (&Method::POST, ["tenants"]) => admin.create_tenant(&body).await,
        (&Method::GET, ["tenants"]) => {
            ok(json!({"data": admin.state.store.tenants().await.map_err(store_error)?}))
        }
        (&Method::GET, ["tenants", name]) => {
            match admin.state.store.tenant(name).await.map_err(store_error)? {
                Some(t) => ok(json!(t)),
                None => Err(not_found("tenant")),
            }
        }
        (&Method::POST, ["keys"]) => admin.create_key(&body).await,
        (&Method::GET, ["keys"]) => {
            let tenant = query_param(&query, "tenant");
            ok(
                json!({"data": admin.state.store.keys(tenant.as_deref()).await.map_err(store_error)?}),
            )
        }
        (&Method::GET, ["keys", id]) => {
            match admin.state.store.key(id).await.map_err(store_error)? {
                Some(k) => ok(json!(k)),
                None => Err(not_found("key")),
            }
        }
        (&Method::POST, ["keys", id, "revoke"]) => admin.revoke_key(id, &body).await,
        (&Method::POST, ["keys", id, "rotate"]) => admin.rotate_key(id, &body).await,
        (&Method::POST, ["leaks"]) => admin.report_leaks(&body).await,
        (&Method::GET, ["roles"]) => {
            let roles: Vec<Value> = admin
                .state
                .roles
                .list()
                .into_iter()
                .map(|(name, permissions)| json!({"name": name, "permissions": permissions}))
                .collect();
            ok(json!({"data": roles}))
        }
        (&Method::POST, ["signing-keys", "rotate"]) => {
            let kid = admin
                .state
                .keys
                .rotate_signing_key(&admin.state.store)
                .await
                .map_err(store_error)?;
            admin.audit("signing_key.rotate", &kid, "").await?;
            ok(json!({"kid": kid}))
        }
        (&Method::GET, ["signing-keys"]) => ok(admin.state.keys.jwks()),
        (&Method::GET, ["audit"]) => {
            let limit = query_param(&query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100u32)
                .min(1000);
            ok(json!({"data": admin.state.store.audit_events(limit).await.map_err(store_error)?}))
        }
        (&Method::GET, ["usage"]) => admin.usage(&query).await,
        (&Method::GET, ["risk"]) => {
            let now = portcullis_limits::now_us();
            ok(json!({"data": admin.state.limiter.risk().active(now)}))
        }
        (&Method::PUT, ["risk", subject]) => admin.set_risk(subject, &body).await,
        (&Method::DELETE, ["risk", subject]) => admin.clear_risk(subject).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// Who is calling the admin API: the bootstrap admin token, or an API key (or gateway token)
/// whose roles grant the admin permission of the route.
enum Actor {
    Bootstrap,
    Key(std::sync::Arc<portcullis_core::KeyPrincipal>),
}

impl Actor {
    fn name(&self) -> String {
        match self {
            Actor::Bootstrap => "admin".into(),
            Actor::Key(k) => format!("key:{}", k.key_id),
        }
    }

    fn require(&self, state: &GatewayState, permission: &str) -> Result<(), ApiError> {
        match self {
            Actor::Bootstrap => Ok(()),
            Actor::Key(k) if state.roles.grants(&k.roles, permission) => Ok(()),
            Actor::Key(_) => Err(ApiError::new(
                ErrorKind::Permission,
                format!("This credential's roles do not grant `{permission}`."),
            )
            .with_code("permission_denied")),
        }
    }
}

/// The admin permission each route needs.
fn permission_for(segments: &[&str]) -> &'static str {
    match segments.first() {
        Some(&"tenants") => "admin:tenants",
        Some(&"audit") => "admin:audit",
        Some(&"usage") => "admin:usage",
        Some(&"risk") => "admin:risk",
        _ => "admin:keys",
    }
}

/// The bootstrap admin token, or a credential the one authenticator accepts (with its
/// network, origin and browser rules, exactly as on the public listener).
async fn check_token<B>(state: &GatewayState, request: &Request<B>) -> Result<Actor, ApiError> {
    let presented = crate::policy::authn::bearer(request.headers()).unwrap_or("");
    let expected = state.admin_token.as_bytes();
    if !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(expected)) {
        return Ok(Actor::Bootstrap);
    }
    let refused = || {
        ApiError::new(
            ErrorKind::Authentication,
            "The admin API needs the admin token, or a key whose roles grant admin permissions, \
             as `Authorization: Bearer <token>`.",
        )
        .with_code("invalid_admin_token")
    };
    if presented.is_empty() {
        return Err(refused());
    }
    let mut cx = crate::pipeline::RequestContext::new(
        portcullis_core::RequestId::generate(),
        portcullis_core::ListenerKind::Admin,
        true,
    );
    match crate::policy::authn::identify(state, &mut cx, request).await {
        Ok(identified) => match identified.principal {
            portcullis_core::Principal::Key(key) => Ok(Actor::Key(key)),
            portcullis_core::Principal::Anonymous => Err(refused()),
        },
        // A valid credential used from where it may not be keeps its own reason.
        Err(e) if e.kind == ErrorKind::Permission => Err(e),
        Err(_) => Err(refused()),
    }
}

pub(super) struct Admin<'a> {
    pub(super) state: &'a GatewayState,
    source: String,
    actor: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    audience: String,
    #[serde(default = "default_plan")]
    plan: String,
}

fn default_plan() -> String {
    "default".into()
}

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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Revoke {
    #[serde(default)]
    reason: String,
}

impl Admin<'_> {
    /// Makes this replica's key cache match the store after a change.
    async fn reload_cache(&self) -> Result<(), ApiError> {
        self.state
            .keys
            .reload(&self.state.store)
            .await
            .map_err(store_error)
    }

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

    pub(super) async fn audit(
        &self,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), ApiError> {
        self.state
            .store
            .record_audit(&self.actor, action, target, &self.source, detail)
            .await
            .map_err(store_error)
    }

    async fn create_tenant(&self, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
        let new: NewTenant = parse(body)?;
        let audience = Audience::parse(&new.audience).ok_or_else(|| {
            invalid(
                "audience",
                "`audience` must be internal, partner or customer.",
            )
        })?;
        if !valid_name(&new.name) {
            return Err(invalid(
                "name",
                "`name` must be 1-64 characters of letters, digits, `-`, `_` or `.`.",
            ));
        }
        if self.state.limiter.plan(&new.plan).is_none() {
            let known: Vec<&str> = self.state.limiter.plan_names().collect();
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!("`plan` must be a configured plan: {}.", known.join(", ")),
            )
            .with_param("plan")
            .with_code("invalid_value"));
        }
        let tenant = self
            .state
            .store
            .create_tenant(&new.name, audience, &new.plan)
            .await
            .map_err(store_error)?;
        self.reload_cache().await?;
        self.audit(
            "tenant.create",
            &tenant.name,
            &format!("audience={} plan={}", new.audience, new.plan),
        )
        .await?;
        created(json!(tenant))
    }

    async fn create_key(&self, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
        let new: NewKey = parse(body)?;
        let environment = Environment::parse(&new.environment)
            .ok_or_else(|| invalid("environment", "`environment` must be live or test."))?;
        if new.roles.is_empty() {
            return Err(invalid("roles", "`roles` must name at least one role."));
        }
        if let Some(unknown) = new.roles.iter().find(|r| !self.state.roles.exists(r)) {
            return Err(invalid("roles", &format!("unknown role `{unknown}`.")));
        }
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
        let (minted, mut record) = new_key(
            self.state.keys.pepper(),
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

    async fn revoke_key(&self, id: &str, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
        let revoke: Revoke = if body.is_empty() {
            Revoke::default()
        } else {
            parse(body)?
        };
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
        // Immediate on this replica; others pick it up from the store's key revision.
        self.state.keys.evict(id);
        self.audit("key.revoke", id, &revoke.reason).await?;
        ok(json!({"id": id, "revoked": true}))
    }
}

impl Admin<'_> {
    /// Issues a successor with the same tenant, roles, models, environment, kind and
    /// restrictions, and ends the old key after the grace period, so clients can switch over.
    async fn rotate_key(&self, id: &str, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
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
        let old = self
            .state
            .store
            .key(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("key"))?;
        if !old.is_usable(portcullis_identity::store::now()) {
            return Err(invalid("id", "Only an active key can be rotated."));
        }
        let lifetime = self.state.identity.default_key_lifetime.get().as_secs() as i64;
        let (minted, mut record) = new_key(
            self.state.keys.pepper(),
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
        let now = portcullis_identity::store::now();
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
    async fn report_leaks(&self, body: &[u8]) -> Result<Response<GatewayBody>, ApiError> {
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
            if !genuine || revoked.contains(&record.id) {
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

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field and the problem, never a secret.
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Invalid request body: {e}"),
        )
        .with_code("invalid_request_body")
    })
}

pub(super) fn invalid(param: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param(param)
        .with_code("invalid_value")
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("No such {what}.")).with_code("not_found")
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => {
            ApiError::new(ErrorKind::InvalidRequest, m).with_code("conflict")
        }
        StoreError::NotFound(m) => ApiError::new(ErrorKind::NotFound, m).with_code("not_found"),
        other => {
            tracing::error!(error = %other, "store error in the admin API");
            ApiError::internal()
        }
    }
}

pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(super) fn ok(value: Value) -> Result<Response<GatewayBody>, ApiError> {
    Ok(respond::json(
        StatusCode::OK,
        serde_json::to_vec(&value).unwrap_or_default(),
    ))
}

fn created(value: Value) -> Result<Response<GatewayBody>, ApiError> {
    Ok(respond::json(
        StatusCode::CREATED,
        serde_json::to_vec(&value).unwrap_or_default(),
    ))
}
