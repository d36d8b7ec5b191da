//! Authentication: who is calling.
//!
//! API keys and tokens arrive with the identity work. Until then the only principal the gateway
//! can establish is the anonymous one, admitted when `[dev] allow_anonymous` is on (which the
//! configuration allows only on loopback listeners). Everything else is refused: the gateway
//! fails closed, and a credential it cannot verify is never treated as valid.

use http::HeaderMap;
use portcullis_core::{ApiError, ErrorKind, Principal};

pub fn authenticate(headers: &HeaderMap, allow_anonymous: bool) -> Result<Principal, ApiError> {
    let presented = headers.contains_key(http::header::AUTHORIZATION);
    match (presented, allow_anonymous) {
        (_, true) => Ok(Principal::Anonymous),
        (false, false) => Err(ApiError::new(
            ErrorKind::Authentication,
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
        )
        .with_code("missing_api_key")),
        (true, false) => Err(ApiError::new(
            ErrorKind::Authentication,
            "The API key or token provided is not valid.",
        )
        .with_code("invalid_api_key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_without_anonymous_mode() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            authenticate(&headers, false).unwrap_err().code,
            Some("missing_api_key")
        );
        headers.insert("authorization", "Bearer pc_live_x".parse().unwrap());
        assert_eq!(
            authenticate(&headers, false).unwrap_err().code,
            Some("invalid_api_key")
        );
        assert_eq!(authenticate(&headers, true), Ok(Principal::Anonymous));
    }
}
