//! Authentication: who is calling.
//!
//! A request that carries `Authorization: Bearer <key>` must present a valid key; there is no
//! fallback. A request without credentials is anonymous, admitted only when
//! `[dev] allow_anonymous` is on (which the configuration allows only on loopback listeners).
//! Every refusal says what to fix without revealing whether a key id exists.

use super::browser::browser_signal;
use crate::pipeline::RequestContext;
use crate::state::GatewayState;
use http::HeaderMap;
use portcullis_core::{ApiError, ErrorKind, Principal};
use portcullis_identity::{
    AuthFailure, Authenticated, Credential, KeyCache, KeyKind, Restrictions,
};
use std::sync::Arc;

/// What authentication established.
pub struct Identified {
    pub principal: Principal,
    /// `None` for anonymous callers.
    pub credential: Option<Credential>,
    pub restrictions: Option<Arc<Restrictions>>,
}

/// The one authenticator of every listener (public, internal and admin): an external
/// identity provider's JWT, or the gateway's own key or token; then the credential's network
/// and origin restrictions, and the rule that a secret key is never used from a browser.
pub async fn identify<B>(
    state: &GatewayState,
    cx: &mut RequestContext,
    request: &http::Request<B>,
) -> Result<Identified, ApiError> {
    let headers = request.headers();
    one_of_each(headers)?;
    let external = bearer(headers)
        .filter(|t| {
            !state.issuers.is_empty() && !state.keys.is_own_token(t) && state.issuers.handles(t)
        })
        .map(str::to_owned);
    let issuer = external
        .as_deref()
        .and_then(|t| state.issuers.issuer_name(t));
    let identified = match &external {
        Some(token) => Identified {
            principal: Principal::Key(
                state
                    .issuers
                    .authenticate(token, &state.keys, &cx.settings.roles)
                    .await
                    .map_err(|_| invalid_key())?,
            ),
            credential: Some(Credential::Token),
            restrictions: None,
        },
        None => match authenticate(headers, &state.keys, state.allow_anonymous) {
            Ok(identified) => identified,
            Err(error) => {
                // The id of a well-formed key is no secret; a revoked one still in use is
                // worth an alert.
                cx.record.presented_key_id = bearer(headers)
                    .and_then(portcullis_identity::keys::parse)
                    .map(|k| k.id.to_owned());
                return Err(error);
            }
        },
    };
    cx.record.principal = Some(crate::pipeline::record::principal(
        &identified.principal,
        identified.credential,
        issuer,
    ));
    // The browser origin to grant in CORS headers (publishable keys from allowed origins).
    cx.cors_origin = crate::cors::check_restrictions(
        identified.credential,
        identified.restrictions.as_deref(),
        headers,
        request.extensions().get::<crate::listener::PeerAddr>(),
    )?;
    if let (Principal::Key(key), Some(Credential::Key(KeyKind::Secret))) =
        (&identified.principal, identified.credential)
    {
        if let Some(signal) = browser_signal(request.method(), headers) {
            state.record_browser_use(&key.key_id, signal);
            return Err(ApiError::new(
                ErrorKind::Permission,
                "Secret API keys must not be used from browsers: anyone who loads the page can \
                 read them. Call the API from your server, and rotate this key.",
            )
            .with_code("secret_key_in_browser"));
        }
    }
    Ok(identified)
}

/// Two `Authorization` (or `Origin`) headers are refused, not resolved: a proxy in front that
/// reads the other one would decide about a different caller than the gateway does.
fn one_of_each(headers: &HeaderMap) -> Result<(), ApiError> {
    let repeated = |name| headers.get_all(name).iter().nth(1).is_some();
    if repeated(http::header::AUTHORIZATION) {
        return Err(ApiError::new(
            ErrorKind::Authentication,
            "Send one Authorization header, not several.",
        )
        .with_code("invalid_authorization_header"));
    }
    if repeated(http::header::ORIGIN) {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "A request may carry one Origin header, not several.",
        )
        .with_code("invalid_origin_header"));
    }
    Ok(())
}

fn invalid_key() -> ApiError {
    ApiError::new(
        ErrorKind::Authentication,
        "The API key or token is not valid: it is unknown, revoked or expired.",
    )
    .with_code("invalid_api_key")
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
        Err(AuthFailure::Invalid) => Err(invalid_key()),
        Err(AuthFailure::Reexchange) => Err(ApiError::new(
            ErrorKind::Authentication,
            "This token is no longer accepted: exchange the API key for a new token \
             (`POST /v1/auth/token`).",
        )
        .with_code("token_reexchange_required")),
    }
}
