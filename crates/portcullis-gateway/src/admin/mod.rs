//! The operator listener: liveness and readiness today; the admin API, metrics and dashboard
//! will live here too. Nothing here is ever served on a caller-facing listener.

mod api;

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
        let response = match api::serve(state, request).await {
            Ok(r) => r,
            Err(e) => respond::error(&e),
        };
        return respond::finish(response, &id);
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => respond::json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/readyz") => readyz(state).await,
        (_, "/healthz" | "/readyz") => respond::error(&ApiError::method_not_allowed()),
        _ => respond::error(&ApiError::not_found_route()),
    };
    respond::finish(response, &id)
}

/// Ready when the store answers a query and at least one upstream is healthy.
async fn readyz(state: &GatewayState) -> Response<GatewayBody> {
    let store_ok = matches!(
        tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let mut upstreams = Map::new();
    for u in &state.upstreams {
        let status = if u.is_healthy() {
            "healthy"
        } else {
            "unhealthy"
        };
        upstreams.insert(u.name.clone(), Value::from(status));
    }
    let any_upstream = state.upstreams.iter().any(|u| u.is_healthy());
    let ready = store_ok && any_upstream;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "store": if store_ok { "ok" } else { "unreachable" },
            "upstreams": upstreams,
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    respond::json(status, serde_json::to_vec(&body).unwrap_or_default())
}
