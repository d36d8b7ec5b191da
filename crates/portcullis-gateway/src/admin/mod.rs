//! The operator listener: liveness (`/healthz`), readiness (`/readyz`), metrics (`/metrics`),
//! the dashboard (`/dashboard`) and the admin API (`router`, with a file per resource). Nothing here is ever served on a
//! caller-facing listener.

mod actor;
mod alerts;
mod config;
mod dashboard;
mod keys;
mod metrics;
mod reply;
mod requests;
mod risk;
mod router;
mod tenants;
mod threats;
mod usage;
mod watermark;

use router::Admin;

pub use dashboard::session::Sessions as DashboardSessions;

use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use http::{Method, Request, Response, StatusCode};
use portcullis_core::{request_id, ApiError, RequestId};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How long `/readyz` waits for the store before calling it unreachable.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn serve<B>(state: &GatewayState, request: Request<B>) -> Response<GatewayBody>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let id = RequestId::from_incoming(request.headers().get(request_id::HEADER));
    if request.uri().path().starts_with("/admin/v1/") {
        let response = match router::serve(state, request).await {
            Ok(r) => r,
            Err(e) => respond::error(&e),
        };
        return respond::finish(response, &id);
    }
    if request.uri().path() == "/dashboard" || request.uri().path().starts_with("/dashboard/") {
        let response = dashboard::serve(state, request).await;
        return respond::finish(response, &id);
    }
    if request.uri().path() == "/metrics" {
        let response = match request.method() {
            &Method::GET => match metrics::serve(state, request).await {
                Ok(r) => r,
                Err(e) => respond::error(&e),
            },
            _ => respond::error(&ApiError::method_not_allowed()),
        };
        return respond::finish(response, &id);
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") if draining(state) => {
            respond::json(StatusCode::OK, r#"{"status":"draining"}"#)
        }
        (&Method::GET, "/healthz") => respond::json(StatusCode::OK, r#"{"status":"ok"}"#),
        // Draining: alive, but no new work belongs here.
        (&Method::GET, "/readyz") if draining(state) => {
            respond::json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
        }
        (&Method::GET, "/readyz") => readyz(state).await,
        (_, "/healthz" | "/readyz") => respond::error(&ApiError::method_not_allowed()),
        _ => respond::error(&ApiError::not_found_route()),
    };
    respond::finish(response, &id)
}

fn draining(state: &GatewayState) -> bool {
    state.draining.load(std::sync::atomic::Ordering::Relaxed)
}

/// Ready when the store answers a query and at least one upstream is healthy.
async fn readyz(state: &GatewayState) -> Response<GatewayBody> {
    let store_ok = matches!(
        tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let mut upstreams = Map::new();
    let settings = state.settings();
    for u in &settings.upstreams {
        let status = if u.is_healthy() {
            "healthy"
        } else {
            "unhealthy"
        };
        upstreams.insert(u.name.clone(), Value::from(status));
    }
    let any_upstream = settings.upstreams.iter().any(|u| u.is_healthy());
    let limits = state.limiter.status();
    // Redis down with `fail_closed` means every request is refused: not ready. With `local`
    // the gateway serves on per-replica limits: ready, and the status says degraded.
    let limits_serving =
        limits.healthy || state.limits.on_redis_failure == portcullis_config::OutagePolicy::Local;
    let ready = store_ok && any_upstream && limits_serving;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "store": if store_ok { "ok" } else { "unreachable" },
            "upstreams": upstreams,
            "limits": {
                "backend": limits.backend,
                "status": if limits.healthy { "ok" } else if limits_serving { "degraded" } else { "unavailable" },
                "outage_decisions": limits.outage_decisions,
                "redis_failures": limits.redis_failures,
            },
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    respond::json(status, serde_json::to_vec(&body).unwrap_or_default())
}
