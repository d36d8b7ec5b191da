//! Reading and checking what the caller sent, before anything is forwarded.
//!
//! The body is read whole (the model it names decides where it goes), bounded in size and in
//! time: a declared `Content-Length` over the limit is refused before a byte is read, and a
//! body that trickles in slower than the read timeout is cut off, so a slow client cannot hold
//! a request open.

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use portcullis_core::{ApiError, ErrorKind};
use std::time::Duration;

/// Reads the whole body within `limit` bytes and `timeout`.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::new(
            ErrorKind::RequestTimeout,
            "The request body was not received in time.",
        )
        .with_code("request_timeout")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::body_too_large(limit))
        }
        Ok(Err(_)) => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "The request body could not be read completely.",
        )
        .with_code("incomplete_body")),
    }
}

/// Requests with a body must say it is JSON (or say nothing, as some minimal clients do).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "Request bodies must be JSON, sent with `Content-Type: application/json`.",
        )
        .with_code("unsupported_media_type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn content_type_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(check_content_type(&h).unwrap_err().status(), 415);
    }

    #[tokio::test]
    async fn body_limits_are_enforced() {
        let h = HeaderMap::new();
        let small = read_body(
            &h,
            Full::new(Bytes::from_static(b"abc")),
            3,
            Duration::from_secs(1),
        );
        assert_eq!(small.await.unwrap(), "abc");
        let big = read_body(
            &h,
            Full::new(Bytes::from_static(b"abcd")),
            3,
            Duration::from_secs(1),
        );
        assert_eq!(big.await.unwrap_err().status(), 413);
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "1000".parse().unwrap());
        let early = read_body(
            &declared,
            Full::new(Bytes::new()),
            3,
            Duration::from_secs(1),
        );
        assert_eq!(early.await.unwrap_err().status(), 413);
    }
}
