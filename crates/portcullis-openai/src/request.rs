//! The fields of an inference request that routing needs, read from a strictly parsed body.

use crate::json;
use bytes::Bytes;
use portcullis_core::{ApiError, ErrorKind};
use serde_json::{Map, Value};

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
}
