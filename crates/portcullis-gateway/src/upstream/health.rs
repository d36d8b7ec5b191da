//! Active health probes: each upstream is asked for `health_check_path` every interval.
//!
//! A probe that connects and gets anything below 500 marks the upstream healthy; a refused
//! connection, a timeout or a 5xx marks it unhealthy. Request outcomes update the same flag in
//! between. `/readyz` reads it.

use super::Upstream;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::Full;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Starts one probe task per upstream that has an interval. A probe stops at shutdown, or
/// once its upstream is gone: it holds the upstream weakly, so an upstream that a
/// configuration reload removed is probed until the last request using it finishes.
pub fn spawn_probes(upstreams: &[Arc<Upstream>], shutdown: CancellationToken) {
    for upstream in upstreams.iter().filter(|u| !u.health_interval.is_zero()) {
        let interval = upstream.health_interval;
        let upstream = Arc::downgrade(upstream);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let Some(upstream) = upstream.upgrade() else { return };
                        upstream.set_healthy(probe(&upstream).await);
                    }
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
}

async fn probe(upstream: &Upstream) -> bool {
    let mut request = match Request::builder()
        .method(Method::GET)
        .uri(upstream.health_uri.clone())
        .body(Full::new(Bytes::new()))
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    if let Some(authorization) = &upstream.authorization {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, authorization.clone());
    }
    let deadline = upstream.health_interval.min(upstream.first_byte_timeout);
    match tokio::time::timeout(deadline, upstream.client.request(request)).await {
        Ok(Ok(response)) => !response.status().is_server_error(),
        _ => false,
    }
}
