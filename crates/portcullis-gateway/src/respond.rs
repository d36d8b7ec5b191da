//! The one boundary where results become HTTP responses.
//!
//! Every response leaves through here, so every response gets `x-request-id`, and every error
//! gets the OpenAI shape and nothing else.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use portcullis_core::{ApiError, RequestId};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every gateway response.
pub type GatewayBody = BoxBody<Bytes, BoxError>;

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub fn full(bytes: impl Into<Bytes>) -> GatewayBody {
    BoxBody::new(Full::new(bytes.into()).map_err(|never| match never {}))
}

pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<GatewayBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// A JSON response of a serializable value (the gateway's own types always serialize).
pub fn json_value(status: StatusCode, value: &impl serde::Serialize) -> Response<GatewayBody> {
    json(status, serde_json::to_vec(value).unwrap_or_default())
}

pub fn error(err: &ApiError) -> Response<GatewayBody> {
    let mut response = json(err.status(), err.to_json());
    if err.status() == StatusCode::METHOD_NOT_ALLOWED {
        // Only POST and GET routes exist; the precise list is per path, and both are safe to name.
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

/// Stamps the request id on a finished response.
pub fn finish(mut response: Response<GatewayBody>, id: &RequestId) -> Response<GatewayBody> {
    response.headers_mut().insert(
        portcullis_core::request_id::HEADER,
        id.header_value().clone(),
    );
    response
}
