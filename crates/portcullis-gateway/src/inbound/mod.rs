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
use serde_json::{Map, Value};
use std::time::Duration;

pub mod json;
pub mod schema;

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

/// A parsed inference request: the JSON object plus the fields routing needs.
#[derive(Debug)]
pub struct InferenceRequest {
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
}

impl InferenceRequest {
    pub fn parse(bytes: &[u8]) -> Result<InferenceRequest, ApiError> {
        let value: Value = json::parse(bytes).map_err(|problem| {
            let message = match problem {
                json::JsonProblem::Syntax => {
                    "We could not parse the JSON body of your request. Send a valid JSON object."
                        .to_owned()
                }
                json::JsonProblem::DuplicateKey(key) => {
                    format!("The field `{key}` appears more than once in an object.")
                }
                json::JsonProblem::TooDeep => format!(
                    "The JSON body is nested more than {} levels deep.",
                    json::MAX_DEPTH
                ),
                json::JsonProblem::StringTooLong => format!(
                    "A string in the JSON body is longer than {} bytes.",
                    json::MAX_STRING
                ),
            };
            ApiError::new(ErrorKind::InvalidRequest, message).with_code("invalid_json")
        })?;
        let Value::Object(body) = value else {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                "The request body must be a JSON object.",
            )
            .with_code("invalid_json"));
        };
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            Some(_) => {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    "`model` must be a non-empty string.",
                )
                .with_param("model")
                .with_code("invalid_type"))
            }
            None => {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    "You must provide a model parameter.",
                )
                .with_param("model")
                .with_code("missing_required_parameter"))
            }
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(
                    ApiError::new(ErrorKind::InvalidRequest, "`stream` must be a boolean.")
                        .with_param("stream")
                        .with_code("invalid_type"),
                )
            }
        };
        Ok(InferenceRequest {
            body,
            model,
            stream,
        })
    }

    /// The body to send upstream, with the model renamed.
    pub fn into_upstream_body(mut self, upstream_model: &Value) -> Bytes {
        self.body.insert("model".to_owned(), upstream_model.clone());
        // A map of JSON values always serializes.
        Bytes::from(serde_json::to_vec(&self.body).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use serde_json::json;

    #[test]
    fn parses_model_and_stream() {
        let r = InferenceRequest::parse(br#"{"model":"m","stream":true,"messages":[]}"#).unwrap();
        assert_eq!(r.model, "m");
        assert!(r.stream);
        let out: Value = serde_json::from_slice(&r.into_upstream_body(&json!("up"))).unwrap();
        assert_eq!(out["model"], "up");
        assert_eq!(out["messages"], json!([]));
    }

    #[test]
    fn rejects_bad_bodies_with_a_param() {
        for (body, param) in [
            (&br#"{"messages":[]}"#[..], Some("model")),
            (br#"{"model":5}"#, Some("model")),
            (br#"{"model":"m","stream":"yes"}"#, Some("stream")),
            (br#"[1,2]"#, None),
            (b"{not json", None),
            (b"\xff\xfe", None),
            (br#"{"model":"m","model":"n"}"#, None),
        ] {
            let err = InferenceRequest::parse(body).unwrap_err();
            assert_eq!(err.status(), 400);
            assert_eq!(err.param.as_deref(), param);
        }
    }

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
