//! `POST /v1/auth/token`: exchange an API key for a short-lived token.
//!
//! The token may say less than the key (fewer roles, fewer models, a shorter life), never
//! more. Only keys can be exchanged: a token cannot mint tokens, so a stolen token cannot be
//! stretched past its expiry.

use crate::respond::{self, GatewayBody};
use crate::state::GatewayState;
use http::{Response, StatusCode};
use portcullis_core::{ApiError, ErrorKind, KeyPrincipal};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// A subset of the key's roles; default all of them.
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// A subset of the models the key may use; default the key's own list.
    #[serde(default)]
    models: Option<Vec<String>>,
    /// Seconds; default and maximum `identity.token_lifetime`.
    #[serde(default)]
    expires_in: Option<u64>,
}

fn invalid(param: &'static str, message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param(param)
        .with_code("invalid_scope")
}

/// Counts a mint against the key's `identity.token_mints_per_minute`: minting is cheap for
/// the caller and each token sits in the verified-token cache until it expires.
pub fn spend_mint(
    state: &GatewayState,
    cx: &mut crate::pipeline::RequestContext,
    key: &KeyPrincipal,
) -> Result<(), ApiError> {
    let Err(wait_us) = state
        .token_mints
        .spend(&key.key_id, portcullis_limits::now_us())
    else {
        return Ok(());
    };
    crate::policy::rate_headers::retry_headers(&mut cx.response_headers, Some(wait_us), true);
    Err(ApiError::new(
        ErrorKind::RateLimit,
        "This key has minted too many tokens in the last minute; reuse a token until it \
         nears its expiry.",
    )
    .with_code("token_rate_limit_exceeded"))
}

/// Reads the request (64 KiB at most) and issues the token.
pub async fn serve<B>(
    state: &GatewayState,
    key: &KeyPrincipal,
    request: http::Request<B>,
) -> Result<Response<GatewayBody>, ApiError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    crate::inbound::check_content_type(&parts.headers)?;
    let timeout = state.http.body_read_timeout.get();
    let bytes = crate::inbound::read_body(&parts.headers, body, 64 * 1024, timeout).await?;
    exchange(state, key, &bytes)
}

fn exchange(
    state: &GatewayState,
    key: &KeyPrincipal,
    body: &[u8],
) -> Result<Response<GatewayBody>, ApiError> {
    let request: TokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!("Invalid request body: {e}"),
            )
            .with_code("invalid_request_body")
        })?
    };
    let roles = match request.roles {
        None => key.roles.clone(),
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|r| !key.roles.contains(r)) {
                return Err(invalid(
                    "roles",
                    format!("The key does not hold the role `{extra}`; a token can only narrow."),
                ));
            }
            if asked.is_empty() {
                return Err(invalid("roles", "`roles` must not be empty.".into()));
            }
            asked
        }
    };
    let models = match (request.models, &key.models) {
        (None, own) => own.clone(),
        (Some(asked), Some(own)) => {
            if let Some(extra) = asked.iter().find(|m| !own.contains(m)) {
                return Err(invalid(
                    "models",
                    format!("The key may not use `{extra}`; a token can only narrow."),
                ));
            }
            Some(asked)
        }
        (Some(asked), None) => Some(asked),
    };
    let max = state.identity.token_lifetime.get().as_secs();
    let lifetime = request.expires_in.unwrap_or(max);
    if lifetime == 0 || lifetime > max {
        return Err(invalid(
            "expires_in",
            format!("`expires_in` must be between 1 and {max} seconds."),
        ));
    }
    let (token, expires_at) = state
        .keys
        .mint_token(
            key,
            roles.clone(),
            state.settings().roles.permissions_of(&roles),
            models,
            lifetime as i64,
        )
        .ok_or_else(ApiError::internal)?;
    let body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "expires_at": expires_at,
    });
    Ok(respond::json(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

/// How many tokens each key may mint: a GCRA bucket per key, in this process.
pub struct TokenMints {
    rate: portcullis_limits::gcra::Rate,
    buckets: std::sync::Mutex<std::collections::HashMap<String, portcullis_limits::gcra::Bucket>>,
}

/// Keys tracked before buckets that have drained are dropped.
const TOKEN_MINT_KEYS: usize = 10_000;

impl TokenMints {
    pub fn new(per_minute: u32) -> TokenMints {
        TokenMints {
            rate: portcullis_limits::gcra::Rate {
                limit: per_minute.into(),
                period_us: 60_000_000,
                burst: per_minute.into(),
            },
            buckets: Default::default(),
        }
    }

    /// Spends one mint of `key_id`; `Err` with the microseconds until one fits.
    pub fn spend(&self, key_id: &str, now_us: u64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= TOKEN_MINT_KEYS && !buckets.contains_key(key_id) {
            let rate = self.rate;
            buckets.retain(|_, b| rate.level(*b, now_us) > 0);
        }
        let bucket = buckets.entry(key_id.to_owned()).or_default();
        self.rate
            .spend(bucket, now_us, 1)
            .map_err(|wait| wait.unwrap_or(60_000_000))
    }
}
