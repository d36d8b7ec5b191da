//! The admin API, as JSON under `/admin/v1/`: one route table, then a file per resource
//! (`tenants`, `keys`, `signing`, `audit`, `usage`, `risk`). Only on the admin listener. Every
//! change is written to the audit log with who, what, when and the client address; a new
//! key's secret appears once, in the creation response.

use super::actor::Actor;
use super::reply::{ok, query_param, store_error};
use crate::inbound::read_body;
use crate::listener::PeerAddr;
use crate::respond::GatewayBody;
use crate::state::GatewayState;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use portcullis_core::ApiError;
use serde_json::{json, Value};
use std::time::Duration;

const MAX_ADMIN_BODY: usize = 64 * 1024;
/// A suspect model's outputs for watermark detection: thousands of answers.
const MAX_WATERMARK_BODY: usize = 32 * 1024 * 1024;

/// One admin request, on behalf of one actor.
pub(super) struct Admin<'a> {
    pub(super) state: &'a GatewayState,
    pub(super) actor: Actor,
    source: String,
}

/// The admin permission each route needs.
fn permission_for(segments: &[&str]) -> &'static str {
    match segments.first() {
        Some(&"tenants") => "admin:tenants",
        Some(&"audit" | &"requests" | &"alerts") => "admin:audit",
        Some(&"usage") => "admin:usage",
        Some(&"risk") => "admin:risk",
        Some(&"config") => "admin:config",
        Some(&"watermark") => "admin:watermark",
        Some(&"threats") => "admin:threats",
        _ => "admin:keys",
    }
}

pub(super) async fn serve<B>(
    state: &GatewayState,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let actor = Actor::authenticate(state, &request).await?;
    let source = request
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let (parts, body) = request.into_parts();
    let timeout = Duration::from_secs(10);
    let segments: Vec<&str> = path.trim_start_matches("/admin/v1/").split('/').collect();
    actor.require(state, permission_for(&segments))?;
    let limit = if segments.first() == Some(&"watermark") {
        MAX_WATERMARK_BODY
    } else {
        MAX_ADMIN_BODY
    };
    let body = read_body(&parts.headers, body, limit, timeout).await?;
    let admin = Admin {
        state,
        actor,
        source,
    };
    match (&method, segments.as_slice()) {
        (&Method::POST, ["tenants"]) => admin.create_tenant(&body).await,
        (&Method::GET, ["tenants"]) => admin.list_tenants().await,
        (&Method::GET, ["tenants", name]) => admin.show_tenant(name).await,
        (&Method::POST, ["keys"]) => admin.create_key(&body).await,
        (&Method::GET, ["keys"]) => admin.list_keys(&query).await,
        (&Method::GET, ["keys", id]) => admin.show_key(id).await,
        (&Method::POST, ["keys", id, "revoke"]) => admin.revoke_key(id, &body).await,
        (&Method::POST, ["keys", id, "rotate"]) => admin.rotate_key(id, &body).await,
        (&Method::POST, ["leaks"]) => admin.report_leaks(&body).await,
        (&Method::GET, ["roles"]) => admin.list_roles(),
        (&Method::POST, ["signing-keys", "rotate"]) => admin.rotate_signing_key().await,
        (&Method::GET, ["signing-keys"]) => ok(admin.state.keys.jwks()),
        (&Method::GET, ["audit"]) => admin.audit_events(&query).await,
        (&Method::GET, ["requests"]) => admin.requests(&query).await,
        (&Method::GET, ["alerts"]) => admin.alerts(),
        (&Method::GET, ["config"]) => admin.config_status().await,
        (&Method::POST, ["config", "reload"]) => admin.reload_config().await,
        (&Method::GET, ["usage"]) => admin.usage(&query).await,
        (&Method::GET, ["risk"]) => admin.list_risk(),
        (&Method::PUT, ["risk", subject]) => admin.set_risk(subject, &body).await,
        (&Method::DELETE, ["risk", subject]) => admin.clear_risk(subject).await,
        (&Method::POST, ["watermark", "detect"]) => admin.watermark_detect(&body).await,
        (&Method::GET, ["watermark", "probes"]) => admin.watermark_probes(&query),
        (&Method::GET, ["threats"]) => admin.list_threats(&query),
        (&Method::GET, ["threats", key]) => admin.show_threat(key),
        (&Method::DELETE, ["threats", subject]) => admin.clear_threat(subject).await,
        (&Method::POST, ["threats", subject, "allow"]) => admin.allow_threat(subject).await,
        _ => Err(ApiError::not_found_route()),
    }
}

impl Admin<'_> {
    /// Makes this replica's key cache match the store after a change.
    pub(super) async fn reload_cache(&self) -> Result<(), ApiError> {
        self.state
            .keys
            .reload(&self.state.store)
            .await
            .map_err(store_error)
    }

    pub(super) async fn audit(
        &self,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), ApiError> {
        self.state
            .store
            .record_audit(&self.actor.name(), action, target, &self.source, detail)
            .await
            .map_err(store_error)?;
        self.state
            .telemetry
            .admin(portcullis_telemetry::AdminEvent {
                time: jiff::Timestamp::now().to_string(),
                actor: self.actor.name(),
                action: action.to_owned(),
                target: target.to_owned(),
                source: self.source.clone(),
            });
        Ok(())
    }

    fn list_roles(&self) -> Result<Response<GatewayBody>, ApiError> {
        let roles: Vec<Value> = self
            .state
            .settings()
            .roles
            .list()
            .into_iter()
            .map(|(name, permissions)| json!({"name": name, "permissions": permissions}))
            .collect();
        ok(json!({"data": roles}))
    }

    /// A new token signing key; the old one verifies until its tokens expire. Operators only.
    async fn rotate_signing_key(&self) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let kid = self
            .state
            .keys
            .rotate_signing_key(&self.state.store)
            .await
            .map_err(store_error)?;
        self.audit("signing_key.rotate", &kid, "").await?;
        ok(json!({"kid": kid}))
    }

    /// The most recent audit events (`?limit=`, at most 1000). Operators only: events are not
    /// kept per tenant.
    async fn audit_events(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let limit = match query_param(query, "limit") {
            None => 100,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| {
                    super::reply::invalid("limit", "`limit` must be a number from 1 to 1000.")
                })?,
        };
        let events = self
            .state
            .store
            .audit_events(limit)
            .await
            .map_err(store_error)?;
        ok(json!({"data": events}))
    }
}
