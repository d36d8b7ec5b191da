//! Sending one request upstream and turning the answer into the caller's response.
//!
//! The caller's headers are not forwarded: the upstream request is built from scratch with the
//! body, the upstream's own credential and the request id. Upstream failures become errors
//! that say what happened in the caller's terms (502 broken or unreachable, 503 at capacity,
//! 504 too slow) and never carry the upstream's body, which may name hosts, paths or devices.

use super::idle::{BodyFailure, IdleTimeout};
use super::sse::SseRelay;
use super::Upstream;
use crate::output::{OutputPolicy, StreamFilter};
use crate::respond::{self, GatewayBody};
use crate::usage::Accounting;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use portcullis_core::{ApiError, Endpoint, ErrorKind, RequestId};

const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// What watches and filters the upstream's answer on its way to the caller.
pub struct AfterResponse {
    /// Settles the request's reservation with what was produced.
    pub accounting: Accounting,
    /// Field allow-list and redaction; `None` passes the answer through.
    pub output: Option<OutputPolicy>,
}

/// Forwards a checked request body to `upstream` and returns the caller's response.
pub async fn forward(
    upstream: &Upstream,
    endpoint: Endpoint,
    body: Bytes,
    stream: bool,
    request_id: &RequestId,
    max_response_bytes: usize,
    after: AfterResponse,
) -> Result<Response<GatewayBody>, ApiError> {
    let AfterResponse {
        mut accounting,
        output,
    } = after;
    // The bulkhead refuses at once when full: queueing would only move the overload into the
    // gateway's memory and the caller's latency.
    let permit = upstream
        .bulkhead
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::upstream_overloaded())?;

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(upstream.uri(endpoint).clone())
        .body(Full::new(body))
        .map_err(|_| ApiError::internal())?;
    let headers = request.headers_mut();
    headers.insert(header::CONTENT_TYPE, respond::JSON);
    headers.insert(
        header::ACCEPT,
        if stream { EVENT_STREAM } else { respond::JSON },
    );
    headers.insert(header::USER_AGENT, USER_AGENT);
    headers.insert(
        portcullis_core::request_id::HEADER,
        request_id.header_value().clone(),
    );
    if let Some(authorization) = &upstream.authorization {
        headers.insert(header::AUTHORIZATION, authorization.clone());
    }

    let response = match tokio::time::timeout(
        upstream.first_byte_timeout,
        upstream.client.request(request),
    )
    .await
    {
        Err(_) => {
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), "upstream did not answer before first_byte_timeout");
            return Err(ApiError::upstream_timeout());
        }
        Ok(Err(e)) if e.is_connect() => {
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream unreachable");
            upstream.set_healthy(false);
            return Err(ApiError::upstream_unreachable());
        }
        Ok(Err(e)) => {
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream request failed");
            return Err(ApiError::upstream_bad_response());
        }
        Ok(Ok(response)) => response,
    };
    upstream.set_healthy(!response.status().is_server_error());

    let status = response.status();
    if !status.is_success() {
        tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), %status, "upstream answered with an error");
        return Err(map_upstream_status(status));
    }
    let is_event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = IdleTimeout::new(response.into_body(), upstream.idle_timeout);

    if stream && is_event_stream {
        let relay = SseRelay::new(
            body,
            permit,
            request_id.as_str().to_owned(),
            accounting,
            output.map(StreamFilter::new),
        );
        let mut out = Response::new(GatewayBody::new(relay.map_err(|never| match never {})));
        out.headers_mut().insert(header::CONTENT_TYPE, EVENT_STREAM);
        out.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(out);
    }

    let bytes = match Limited::new(body, max_response_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let idle = e
                .downcast_ref::<BodyFailure>()
                .is_some_and(|f| matches!(f, BodyFailure::Idle));
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream body failed");
            return Err(if idle {
                ApiError::upstream_timeout()
            } else {
                ApiError::upstream_bad_response()
            });
        }
    };
    drop(permit);
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), "upstream answered something that is not JSON");
        return Err(ApiError::upstream_bad_response());
    }
    accounting.observe_body(&bytes);
    accounting.settle().await;
    let bytes = match output {
        Some(policy) => policy.filter_body(&bytes)?,
        None => bytes,
    };
    Ok(respond::json(StatusCode::OK, bytes))
}

/// What an upstream's error status means for the caller.
fn map_upstream_status(status: StatusCode) -> ApiError {
    match status.as_u16() {
        400 | 413 | 422 => ApiError::new(
            ErrorKind::InvalidRequest,
            "The model server rejected the request. Check its parameters and size.",
        )
        .with_code("upstream_rejected_request"),
        408 | 504 => ApiError::upstream_timeout(),
        429 | 503 => ApiError::upstream_overloaded(),
        // 401/403/404 from the upstream mean the gateway's own credential or configuration is
        // wrong: not the caller's fault, and nothing the caller should learn details of.
        _ => ApiError::upstream_bad_response(),
    }
}
