//! Sending one request upstream. The transport knows nothing of policy: it returns the raw
//! answer, and the pipeline's filter chain decides what the caller sees.
//!
//! The caller's headers are not forwarded: the upstream request is built from scratch with the
//! body, the upstream's own credential and the request id. Upstream failures become errors
//! that say what happened in the caller's terms (502 broken or unreachable, 503 at capacity,
//! 504 too slow) and never carry the upstream's body, which may name hosts, paths or devices.

use super::idle::{BodyFailure, IdleTimeout};
use super::Upstream;
use crate::respond::{self, GatewayBody};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use portcullis_core::{ApiError, Endpoint, ErrorKind, RequestId};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION")));
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// An upstream's successful answer, before anything reads it. Holds the bulkhead permit:
/// dropping it (or its body) closes the upstream connection and frees the slot.
pub struct UpstreamResponse {
    pub body: Pin<Box<IdleTimeout<Incoming>>>,
    /// The upstream answered with `text/event-stream`.
    pub event_stream: bool,
    /// The upstream's (successful) status.
    pub status: u16,
    upstream: Arc<Upstream>,
    _permit: OwnedSemaphorePermit,
}

impl UpstreamResponse {
    /// Reads a whole (non-streamed) answer within `max_bytes`; the permit is released after.
    pub async fn read_whole(
        self,
        max_bytes: usize,
        request_id: &RequestId,
    ) -> Result<Bytes, ApiError> {
        let UpstreamResponse {
            body,
            upstream,
            _permit,
            ..
        } = self;
        match Limited::new(body, max_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => {
                let idle = e
                    .downcast_ref::<BodyFailure>()
                    .is_some_and(|f| matches!(f, BodyFailure::Idle));
                tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream body failed");
                Err(if idle {
                    ApiError::upstream_timeout()
                } else {
                    ApiError::upstream_bad_response()
                })
            }
        }
    }
}

/// Why no answer came: the caller's error, and the upstream's status when it sent one.
#[derive(Debug)]
pub struct SendFailure {
    pub error: ApiError,
    pub status: Option<u16>,
}

impl From<ApiError> for SendFailure {
    fn from(error: ApiError) -> SendFailure {
        SendFailure {
            error,
            status: None,
        }
    }
}

/// Sends a checked request body for `endpoint` to `upstream`; the answer's status is checked,
/// its body is not read.
pub async fn send(
    upstream: &Arc<Upstream>,
    endpoint: Endpoint,
    body: Bytes,
    stream: bool,
    request_id: &RequestId,
    propagate: &http::HeaderMap,
) -> Result<UpstreamResponse, SendFailure> {
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
    // The trace continues upstream (`traceparent`, `tracestate`): the upstream's spans become
    // children of the gateway's upstream span.
    for (name, value) in propagate {
        headers.insert(name, value.clone());
    }
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
            return Err(ApiError::upstream_timeout().into());
        }
        Ok(Err(e)) if e.is_connect() => {
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream unreachable");
            upstream.set_healthy(false);
            return Err(ApiError::upstream_unreachable().into());
        }
        Ok(Err(e)) => {
            tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), error = %e, "upstream request failed");
            return Err(ApiError::upstream_bad_response().into());
        }
        Ok(Ok(response)) => response,
    };
    upstream.set_healthy(!response.status().is_server_error());

    let status = response.status();
    if !status.is_success() {
        tracing::warn!(upstream = %upstream.name, request_id = %request_id.as_str(), %status, "upstream answered with an error");
        return Err(SendFailure {
            error: map_upstream_status(status),
            status: Some(status.as_u16()),
        });
    }
    let event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    Ok(UpstreamResponse {
        body: Box::pin(IdleTimeout::new(
            response.into_body(),
            upstream.idle_timeout,
        )),
        event_stream,
        status: status.as_u16(),
        upstream: Arc::clone(upstream),
        _permit: permit,
    })
}

/// Headers of a streamed answer to the caller.
pub fn stream_response(body: GatewayBody) -> Response<GatewayBody> {
    let mut out = Response::new(body);
    out.headers_mut().insert(header::CONTENT_TYPE, EVENT_STREAM);
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out
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
