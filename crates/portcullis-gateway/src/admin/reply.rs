//! The admin API's request parsing and replies: JSON bodies in, JSON out, and store errors
//! in the caller's terms (never the store's internals).

use crate::respond::{self, GatewayBody};
use http::{Response, StatusCode};
use portcullis_core::{ApiError, ErrorKind};
use portcullis_identity::StoreError;
use serde_json::Value;

/// A tenant name: 1-64 lowercase letters, digits, `-`, `_` or `.`, beginning with a letter
/// or digit. Lowercase only, so `ACME` cannot stand beside `acme` and be taken for it; no
/// `..` or other names that read as paths.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field and the problem, never a secret.
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Invalid request body: {e}"),
        )
        .with_code("invalid_request_body")
    })
}

pub(super) fn invalid(param: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, message)
        .with_param(param)
        .with_code("invalid_value")
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("No such {what}.")).with_code("not_found")
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => {
            ApiError::new(ErrorKind::InvalidRequest, m).with_code("conflict")
        }
        StoreError::NotFound(m) => ApiError::new(ErrorKind::NotFound, m).with_code("not_found"),
        other => {
            tracing::error!(error = %other, "store error in the admin API");
            ApiError::internal()
        }
    }
}

/// A query parameter's value, percent-decoded (`+` is kept: it is a time zone offset's sign
/// more often than a space here). A value that does not decode to UTF-8 is absent.
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        })
}

pub(super) fn ok(value: Value) -> Result<Response<GatewayBody>, ApiError> {
    Ok(respond::json_value(StatusCode::OK, &value))
}

pub(super) fn created(value: Value) -> Result<Response<GatewayBody>, ApiError> {
    Ok(respond::json_value(StatusCode::CREATED, &value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_decoded() {
        let q =
            "a=x%3A1&since=2026-12-04T17%3A00%3A00%2B01%3A00&bad=%FF&raw=2026-12-04T17:00:00+01:00";
        assert_eq!(super::query_param(q, "a").as_deref(), Some("x:1"));
        assert_eq!(
            super::query_param(q, "since").as_deref(),
            Some("2026-12-04T17:00:00+01:00")
        );
        assert_eq!(super::query_param(q, "bad"), None);
        assert_eq!(
            super::query_param(q, "raw").as_deref(),
            Some("2026-12-04T17:00:00+01:00")
        );
        assert_eq!(super::query_param(q, "missing"), None);
    }
}
