//! `GET /metrics` on the admin listener: Prometheus text, or OpenMetrics when the scraper asks
//! for it. It needs the admin token or a key granting `admin:metrics` (metrics name tenants);
//! Prometheus sends one with `authorization: credentials_file`.

mod quotas;

use crate::respond::GatewayBody;
use crate::state::GatewayState;
use http::{header, HeaderValue, Response, StatusCode};
use portcullis_core::ApiError;
use std::time::Duration;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The store is given this long to answer before `portcullis_store_up` says 0.
const STORE_CHECK: Duration = Duration::from_millis(500);

pub(super) async fn serve<B>(
    state: &GatewayState,
    request: http::Request<B>,
) -> Result<Response<GatewayBody>, ApiError> {
    let actor = super::actor::Actor::authenticate(state, &request).await?;
    actor.require(state, "admin:metrics")?;
    // Metrics cover every tenant: operators only.
    actor.require_global()?;
    let Some(metrics) = state.telemetry.metrics() else {
        return Err(ApiError::not_found_route());
    };
    refresh_gauges(state, metrics).await;
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (metrics.encode_openmetrics(), OPENMETRICS)
    } else {
        (metrics.encode_prometheus(), PROMETHEUS_TEXT)
    };
    let mut response = Response::new(crate::respond::full(body));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// State that is read, not counted: set just before each scrape.
async fn refresh_gauges(state: &GatewayState, metrics: &portcullis_telemetry::Metrics) {
    use portcullis_telemetry::metrics::{BackendLabel, UpstreamLabel};
    let g = &metrics.gauges;
    let settings = state.settings();
    for (upstream, capacity) in settings.upstreams.iter().zip(&settings.upstream_capacity) {
        let label = UpstreamLabel {
            upstream: upstream.name.clone(),
        };
        g.upstream_in_flight
            .get_or_create(&label)
            .set(upstream.in_flight(*capacity) as i64);
        g.upstream_healthy
            .get_or_create(&label)
            .set(i64::from(upstream.is_healthy()));
    }
    let limits = state.limiter.status();
    let backend = BackendLabel {
        backend: limits.backend.to_owned(),
    };
    g.limits_backend_healthy
        .get_or_create(&backend)
        .set(i64::from(limits.healthy));
    g.limits_outage_decisions
        .get_or_create(&backend)
        .set(limits.outage_decisions as i64);
    let store_up = matches!(
        tokio::time::timeout(STORE_CHECK, state.store.ping()).await,
        Ok(Ok(()))
    );
    g.store_up.set(i64::from(store_up));
    quotas::refresh_if_due(state, metrics).await;
}
