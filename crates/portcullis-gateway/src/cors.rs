//! CORS for publishable keys, and the per-key network and origin restrictions.
//!
//! Publishable keys are the only keys made for browsers, and only from the origins they list
//! (exact `scheme://host[:port]` matches). A preflight carries no credentials, so it is
//! answered for any origin that some usable publishable key allows; the real request is then
//! checked against its own key's list. Responses to allowed origins name that origin (never
//! `*`) and `Vary: Origin`.

use crate::listener::PeerAddr;
use crate::respond::{self, GatewayBody};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use portcullis_core::{ApiError, ErrorKind};
use portcullis_identity::{Credential, KeyCache, KeyKind, Restrictions};

const ALLOWED_METHODS: HeaderValue = HeaderValue::from_static("GET, POST");
const EXPOSED: HeaderValue = HeaderValue::from_static(
    "x-request-id, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, \
     x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, \
     x-ratelimit-reset-tokens, retry-after",
);

/// Answers a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`).
pub fn preflight(keys: &KeyCache, headers: &HeaderMap) -> Result<Response<GatewayBody>, ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| keys.origin_known(o)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Permission,
                "This origin may not call the API from a browser.",
            )
            .with_code("origin_not_allowed")
        })?;
    let mut response = respond::json(StatusCode::NO_CONTENT, bytes::Bytes::new());
    response.headers_mut().remove(header::CONTENT_TYPE);
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS);
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("authorization, content-type"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("origin"));
    Ok(response)
}

pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
    method == http::Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Checks the credential's network and origin restrictions; returns the origin to grant.
pub fn check_restrictions(
    credential: Option<Credential>,
    restrictions: Option<&Restrictions>,
    headers: &HeaderMap,
    peer: Option<&PeerAddr>,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(restrictions) = restrictions else {
        return Ok(None);
    };
    let ip_allowed =
        restrictions.ips.is_empty() || peer.is_some_and(|p| restrictions.allows_ip(p.0.ip()));
    if !ip_allowed {
        return Err(ApiError::new(
            ErrorKind::Permission,
            "This key may not be used from this network address.",
        )
        .with_code("ip_not_allowed"));
    }
    // A publishable key is used from its origins only, and so is every token minted from it
    // (only publishable keys have origins).
    let browser_only = match credential {
        Some(Credential::Key(KeyKind::Publishable)) => true,
        Some(Credential::Token) => !restrictions.origins.is_empty(),
        _ => false,
    };
    if !browser_only {
        return Ok(None);
    }
    let origin = headers.get(header::ORIGIN);
    match origin.and_then(|o| o.to_str().ok()) {
        Some(o) if restrictions.allows_origin(o) => Ok(origin.cloned()),
        _ => Err(ApiError::new(
            ErrorKind::Permission,
            "This publishable key may only be used from its allowed browser origins.",
        )
        .with_code("origin_not_allowed")),
    }
}

/// Adds the CORS response headers for a granted origin.
pub fn grant(response: &mut Response<GatewayBody>, origin: &HeaderValue) {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
    h.insert(header::VARY, HeaderValue::from_static("origin"));
}
