//! Authentication: who is calling.
//!
//! A request that carries `Authorization: Bearer <key>` must present a valid key; there is no
//! fallback. A request without credentials is anonymous, admitted only when
//! `[dev] allow_anonymous` is on (which the configuration allows only on loopback listeners).
//! Every refusal says what to fix without revealing whether a key id exists.

use http::HeaderMap;
use portcullis_core::{ApiError, ErrorKind, Principal};
use portcullis_identity::{AuthFailure, Authenticated, Credential, KeyCache, Restrictions};
use std::sync::Arc;

/// What authentication established.
pub struct Identified {
    pub principal: Principal,
    /// `None` for anonymous callers.
    pub credential: Option<Credential>,
    pub restrictions: Option<Arc<Restrictions>>,
}

/// The bearer credential, if the request carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn authenticate(
    headers: &HeaderMap,
    keys: &KeyCache,
    allow_anonymous: bool,
) -> Result<Identified, ApiError> {
    if !headers.contains_key(http::header::AUTHORIZATION) {
        return if allow_anonymous {
            Ok(Identified {
                principal: Principal::Anonymous,
                credential: None,
                restrictions: None,
            })
        } else {
            Err(ApiError::new(
                ErrorKind::Authentication,
                "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
            )
            .with_code("missing_api_key"))
        };
    }
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            ErrorKind::Authentication,
            "The Authorization header must be `Bearer <key>`.",
        )
        .with_code("invalid_authorization_header")
    })?;
    match keys.authenticate(token) {
        Ok(Authenticated {
            principal,
            credential,
            restrictions,
        }) => Ok(Identified {
            principal: Principal::Key(principal),
            credential: Some(credential),
            restrictions: Some(restrictions),
        }),
        Err(AuthFailure::Malformed) => Err(ApiError::new(
            ErrorKind::Authentication,
            "The API key is malformed. Portcullis keys look like `pc_live_...` or `pc_test_...`.",
        )
        .with_code("invalid_api_key")),
        Err(AuthFailure::Invalid) => Err(ApiError::new(
            ErrorKind::Authentication,
            "The API key or token is not valid: it is unknown, revoked or expired.",
        )
        .with_code("invalid_api_key")),
    }
}
