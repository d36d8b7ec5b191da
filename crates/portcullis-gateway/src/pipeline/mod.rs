//! The caller-facing API: the request path, read top to bottom.
//!
//! [`serve`] gives every request a context and turns the outcome into the response;
//! [`router`] says which operation the request is; [`inference`] runs the steps of an
//! inference call in order, each from `crate::policy` and each of one shape (services,
//! context, inputs -> result or `ApiError`), then hands the upstream's answer to the response
//! filter chain (`crate::filters`), which the pipeline owns.

mod context;
pub mod record;
pub mod router;
pub(crate) mod token_exchange;

pub use context::RequestContext;

use crate::filters::accounting::Accounting;
use crate::filters::relay::{self, StreamRelay};
use crate::filters::{self, Outcome};
use crate::inbound;
use crate::policy::{admit, authn, authz, bounds, guard_spec, params, rewrite, screen};
use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use crate::upstream;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use portcullis_config::UnknownFields;
use portcullis_core::{request_id, ApiError, Endpoint, ListenerKind, Principal, RequestId};
use portcullis_openai::InferenceRequest;
use router::Operation;

/// Serves one request on the public or internal listener.
pub async fn serve<B>(
    state: &GatewayState,
    listener: ListenerKind,
    request: Request<B>,
) -> Response<GatewayBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let id = RequestId::from_incoming(request.headers().get(request_id::HEADER));
    let arrived = record::arrived(
        state,
        id.as_str(),
        listener,
        request.headers(),
        request.extensions().get::<crate::listener::PeerAddr>(),
    );
    let mut cx = RequestContext::new(id, listener, state.settings(), arrived);
    let mut response = match operation(state, &mut cx, request).await {
        Ok(response) => {
            let size = response.body().size_hint().exact().unwrap_or(0);
            record::finish_here(state, &mut cx, response.status().as_u16(), None, size);
            response
        }
        Err(err) => {
            tracing::debug!(request_id = %cx.request_id.as_str(), status = %err.status(), code = ?err.code, "request refused");
            let response = respond::error(&err);
            let size = response.body().size_hint().exact().unwrap_or(0);
            record::finish_here(state, &mut cx, err.status().as_u16(), Some(&err), size);
            response
        }
    };
    // Errors too: browser code must be able to read why it was refused and when to retry.
    if let Some(origin) = &cx.cors_origin {
        crate::cors::grant(&mut response, origin);
    }
    response
        .headers_mut()
        .extend(std::mem::take(&mut cx.response_headers));
    respond::finish(response, &cx.request_id)
}

/// Routes, authenticates and authorizes, then runs the operation.
async fn operation<B>(
    svc: &GatewayState,
    cx: &mut RequestContext,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let preflight = crate::cors::is_preflight(request.method(), request.headers());
    let operation = router::route(request.method(), request.uri().path(), preflight)?;
    cx.record.endpoint = match operation {
        Operation::Preflight => "preflight",
        Operation::Jwks => "jwks",
        Operation::TokenExchange => "auth.token",
        Operation::Models => "models",
        Operation::Inference(endpoint) => record::endpoint_name(endpoint),
    }
    .to_owned();
    match operation {
        Operation::Preflight => return crate::cors::preflight(&svc.keys, request.headers()),
        Operation::Jwks => return Ok(respond::json_value(StatusCode::OK, &svc.keys.jwks())),
        _ => {}
    }
    let who = authn::identify(svc, cx, &request).await;
    cx.record.timing.authenticated_ms = record::since_start(cx);
    let who = who?;
    match operation {
        Operation::TokenExchange => {
            let key = authz::token_exchange(cx, &who.principal, who.credential)?;
            token_exchange::spend_mint(svc, cx, key)?;
            token_exchange::serve(svc, key, request).await
        }
        Operation::Models => {
            authz::endpoint(cx, &who.principal, Endpoint::Models)?;
            let list = cx.settings.catalog.list(cx.listener, |route| {
                authz::model(&who.principal, route).is_ok()
            });
            Ok(respond::json_value(StatusCode::OK, &list))
        }
        Operation::Inference(endpoint) => {
            authz::endpoint(cx, &who.principal, endpoint)?;
            inference(svc, cx, &who.principal, endpoint, request).await
        }
        Operation::Preflight | Operation::Jwks => Err(ApiError::internal()),
    }
}

/// One inference call: every step, in order.
async fn inference<B>(
    svc: &GatewayState,
    cx: &mut RequestContext,
    principal: &Principal,
    endpoint: Endpoint,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let api = portcullis_openai::api(endpoint).ok_or_else(ApiError::not_found_route)?;
    let mut parsed = read_request(svc, cx, request).await?;
    let settings = cx.settings.clone();
    let route = settings
        .catalog
        .resolve(&parsed.model, cx.listener)
        .ok_or_else(|| ApiError::model_not_found(&parsed.model))?;
    // Only catalogue names reach the record: a made-up model is recorded as none.
    cx.record.model = Some(route.name.clone());
    cx.record.upstream = Some(settings.upstreams[route.upstream].name.clone());
    authz::model(principal, route)?;
    cx.stream = parsed.stream;
    let spec = guard_spec::resolve(&settings, principal, route);
    let strip_unknown = spec.unknown_fields.unwrap_or_default() == UnknownFields::Strip;
    api.validate(&mut parsed.body, strip_unknown)?;
    if cx.guarded {
        params::check(&spec, &parsed.body)?;
        bounds::check(api, &spec, &mut parsed.body)?;
        screen::check(svc, cx, &spec, api, &mut parsed.body)?;
    }
    cx.record.params = record::params(&parsed.body, parsed.stream);
    cx.record.prompt_fingerprint = record::fingerprint(svc, api, &parsed.body);
    let restriction = match principal {
        Principal::Key(key) => svc
            .restrictions
            .get(&key.key_id, portcullis_limits::now_us()),
        Principal::Anonymous => None,
    };
    if let Some(r) = restriction {
        if crate::policy::restrict::apply(api, &mut parsed.body, r) {
            cx.record
                .findings
                .push(portcullis_telemetry::record::Finding {
                    guard: "detect".into(),
                    rule: "restricted".into(),
                    action: "stripped".into(),
                    count: 1,
                    score: None,
                });
        }
    }
    cx.record.timing.screened_ms = record::since_start(cx);
    let admitted = admit::admit(svc, cx, principal, route, api, &parsed.body).await?;
    cx.record.timing.admitted_ms = record::since_start(cx);
    let strip_usage = rewrite::for_upstream(cx, api, &admitted, &mut parsed.body, parsed.stream);
    let accounting = Accounting::new(admitted.reservation, route.encoding, strip_usage);
    let watermark = guard_spec::watermark_keys(&cx.settings, principal, route, &spec)
        .map(|keys| (keys, svc.watermark_shares.clone()));
    let mut chain = filters::for_request(
        cx,
        &spec,
        api,
        &parsed.body,
        &route.name,
        accounting,
        watermark,
    );
    if let Some(keep) = record::keep_content(svc, cx, route, api, &parsed.body) {
        chain = chain.with(Box::new(keep));
    }
    cx.record_taken = true;
    let propagate = record::propagation_headers(&cx.record);
    let chain = chain.recording(
        std::mem::take(&mut cx.record),
        svc.telemetry.clone(),
        cx.started,
    );
    let body = parsed.into_upstream_body(&route.upstream_model);
    let upstream = &settings.upstreams[route.upstream];
    forward(svc, cx, upstream, endpoint, body, &propagate, chain).await
}

/// Content type, size and time limits, strict JSON, `model` and `stream`.
async fn read_request<B>(
    svc: &GatewayState,
    cx: &mut RequestContext,
    request: Request<B>,
) -> Result<InferenceRequest, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    inbound::check_content_type(&parts.headers)?;
    let limit = svc.http.max_body_bytes;
    let timeout = svc.http.body_read_timeout.get();
    let bytes = inbound::read_body(&parts.headers, body, limit, timeout).await?;
    cx.record.bytes_in = bytes.len() as u64;
    if svc.threats.is_some() {
        cx.record.request_body = Some(bytes.clone());
    }
    InferenceRequest::parse(&bytes)
}

/// Sends the body upstream and hands the answer, whole or streamed, to the filter chain. The
/// chain is told how the response ended on every path, the upstream's failures included.
async fn forward(
    svc: &GatewayState,
    cx: &RequestContext,
    upstream: &std::sync::Arc<upstream::Upstream>,
    endpoint: Endpoint,
    body: Bytes,
    propagate: &http::HeaderMap,
    mut chain: filters::Chain,
) -> Result<Response<GatewayBody>, ApiError> {
    let id = &cx.request_id;
    let sent = upstream::send(upstream, endpoint, body, cx.stream, id, propagate).await;
    let response = match sent {
        Ok(response) => response,
        Err(failure) => {
            if let Some(status) = failure.status {
                chain.upstream_answered(status);
            }
            chain.note_error(&failure.error, true);
            chain.end_whole(Outcome::UpstreamFailed).await;
            return Err(failure.error);
        }
    };
    chain.upstream_answered(response.status);
    if cx.stream && response.event_stream {
        let relay = StreamRelay::new(response, id.as_str().to_owned(), chain, &svc.streams_cut);
        let body = GatewayBody::new(relay.map_err(|never| match never {}));
        return Ok(upstream::stream_response(body));
    }
    let bytes = match response.read_whole(svc.http.max_response_bytes, id).await {
        Ok(bytes) => bytes,
        Err(error) => {
            chain.note_error(&error, true);
            chain.end_whole(Outcome::UpstreamFailed).await;
            return Err(error);
        }
    };
    let bytes = relay::whole(chain, bytes).await?;
    Ok(respond::json(StatusCode::OK, bytes))
}
