//! The caller-facing API: which operation a request is, and the request path for it.

use crate::authorize::{authorize_endpoint, authorize_model};
use crate::filters::accounting::Accounting;
use crate::filters::relay::{self, StreamRelay};
use crate::filters::{self, Outcome};
use crate::inbound;
use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use crate::upstream;
use crate::usage::admit::{admit, rewrite_for_upstream};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use portcullis_config::UnknownFields;
use portcullis_core::{
    request_id, ApiError, Endpoint, ErrorKind, Exchange, ListenerKind, Principal, RequestId,
};
use portcullis_identity::Credential;
use portcullis_openai::InferenceRequest;

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
    let mut exchange = Exchange::new(id, listener);
    let mut response = match api(state, &mut exchange, request).await {
        Ok(mut response) => {
            if let Some(origin) = &exchange.cors_origin {
                crate::cors::grant(&mut response, origin);
            }
            response
        }
        Err(err) => {
            tracing::debug!(request_id = %exchange.request_id.as_str(), status = %err.status(), code = ?err.code, "request refused");
            respond::error(&err)
        }
    };
    response
        .headers_mut()
        .extend(std::mem::take(&mut exchange.response_headers));
    respond::finish(response, &exchange.request_id)
}

fn endpoint(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let (endpoint, expected) = match path {
        "/v1/chat/completions" => (Endpoint::ChatCompletions, Method::POST),
        "/v1/completions" => (Endpoint::Completions, Method::POST),
        "/v1/embeddings" => (Endpoint::Embeddings, Method::POST),
        "/v1/responses" => (Endpoint::Responses, Method::POST),
        "/v1/models" => (Endpoint::Models, Method::GET),
        _ => return Err(ApiError::not_found_route()),
    };
    if *method == expected {
        Ok(endpoint)
    } else {
        Err(ApiError::method_not_allowed())
    }
}

async fn api<B>(
    state: &GatewayState,
    exchange: &mut Exchange,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path();
    if crate::cors::is_preflight(request.method(), request.headers()) && path.starts_with("/v1/") {
        return crate::cors::preflight(&state.keys, request.headers());
    }
    if path == "/.well-known/jwks.json" {
        if request.method() != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        let jwks = serde_json::to_vec(&state.keys.jwks()).unwrap_or_default();
        return Ok(respond::json(StatusCode::OK, jwks));
    }
    let token_exchange = path == "/v1/auth/token";
    let endpoint = if token_exchange {
        if request.method() != Method::POST {
            return Err(ApiError::method_not_allowed());
        }
        None
    } else {
        Some(endpoint(request.method(), path)?)
    };
    exchange.endpoint = endpoint;
    let identified = crate::authenticate::identify(state, &request).await?;
    exchange.cors_origin = identified.cors_origin;
    let (principal, credential) = (identified.principal, identified.credential);
    let Some(endpoint) = endpoint else {
        return exchange_token(state, exchange.listener, &principal, credential, request).await;
    };
    authorize_endpoint(&state.roles, &principal, endpoint, exchange.listener)?;
    let principal = exchange.principal.insert(principal);
    if endpoint == Endpoint::Models {
        let list = state.catalog.list(exchange.listener, |route| {
            authorize_model(principal, route).is_ok()
        });
        return Ok(respond::json(
            StatusCode::OK,
            serde_json::to_vec(&list).unwrap_or_default(),
        ));
    }

    let api = portcullis_openai::api(endpoint).ok_or_else(ApiError::not_found_route)?;
    let (parts, body) = request.into_parts();
    inbound::check_content_type(&parts.headers)?;
    let bytes = inbound::read_body(
        &parts.headers,
        body,
        state.http.max_body_bytes,
        state.http.body_read_timeout.get(),
    )
    .await?;
    let mut parsed = InferenceRequest::parse(&bytes)?;
    let route = state
        .catalog
        .resolve(&parsed.model, exchange.listener)
        .ok_or_else(|| ApiError::model_not_found(&parsed.model))?;
    authorize_model(principal, route)?;
    exchange.stream = parsed.stream;
    exchange.model = Some(parsed.model.clone());
    let principal = principal.clone();
    let guard = crate::screen::effective(state, &principal, route);
    let strip_unknown = guard.unknown_fields.unwrap_or_default() == UnknownFields::Strip;
    api.validate(&mut parsed.body, strip_unknown)?;
    crate::screen::screen(state, exchange, &guard, api, &mut parsed.body)?;
    let admitted = admit(state, exchange, &principal, route, api, &parsed.body).await?;
    let strip_usage =
        rewrite_for_upstream(exchange, api, &admitted, &mut parsed.body, parsed.stream);
    let accounting = Accounting::new(admitted.reservation, route.encoding, strip_usage);
    let mut chain = filters::for_request(state, exchange, &guard, api, &parsed.body, accounting);
    let upstream_body = parsed.into_upstream_body(&route.upstream_model);
    let upstream = &state.upstreams[route.upstream];
    let id = &exchange.request_id;
    let sent = upstream::send(upstream, endpoint, upstream_body, exchange.stream, id).await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            chain.end_whole(Outcome::UpstreamFailed).await;
            return Err(error);
        }
    };
    if exchange.stream && response.event_stream {
        let relay = StreamRelay::new(response, id.as_str().to_owned(), chain);
        let body = GatewayBody::new(relay.map_err(|never| match never {}));
        return Ok(upstream::stream_response(body));
    }
    let bytes = match response.read_whole(state.http.max_response_bytes, id).await {
        Ok(bytes) => bytes,
        Err(error) => {
            chain.end_whole(Outcome::UpstreamFailed).await;
            return Err(error);
        }
    };
    let bytes = relay::whole(chain, bytes).await?;
    Ok(respond::json(StatusCode::OK, bytes))
}

/// `POST /v1/auth/token`, for principals authenticated by an API key.
async fn exchange_token<B>(
    state: &GatewayState,
    listener: ListenerKind,
    principal: &Principal,
    credential: Option<Credential>,
    request: Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (Principal::Key(key), Some(Credential::Key(_))) = (principal, credential) else {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "Tokens are issued for API keys only: authenticate with a key, not a token.",
        )
        .with_code("token_exchange_requires_key"));
    };
    if listener == ListenerKind::Internal && key.audience != portcullis_core::Audience::Internal {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "This listener serves internal callers only.",
        )
        .with_code("audience_not_allowed"));
    }
    if !state.roles.grants(&key.roles, "tokens:exchange") {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "This key's roles do not grant `tokens:exchange`.",
        )
        .with_code("permission_denied"));
    }
    let (parts, body) = request.into_parts();
    inbound::check_content_type(&parts.headers)?;
    let bytes = inbound::read_body(
        &parts.headers,
        body,
        64 * 1024,
        state.http.body_read_timeout.get(),
    )
    .await?;
    crate::token_exchange::exchange(state, key, &bytes)
}
