//! The OpenAI-shaped error: `{"error":{"message","type","param","code"}}` with its status.
//!
//! Errors are values converted to responses at one boundary (the gateway's response writer),
//! never formatted ad hoc. Messages are written for the caller: they say what to fix and never
//! carry an upstream's body, an address, a path or a stack trace. Internal detail goes to logs.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

/// The error families of the OpenAI API, which fix both the status and the `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed or asks for something invalid.
    InvalidRequest,
    /// 401: no credential, or one that is not valid.
    Authentication,
    /// 403: a valid credential that may not do this.
    Permission,
    /// 404: no such model or route.
    NotFound,
    /// 405: the route exists with another method.
    MethodNotAllowed,
    /// 408: the client did not send its request in time.
    RequestTimeout,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 429: a rate limit or quota refused the request.
    RateLimit,
    /// 500: a bug or an internal failure of the gateway.
    Internal,
    /// 502: the upstream refused the connection or answered something broken.
    BadGateway,
    /// 503: the gateway or the upstream is at capacity or not ready.
    Unavailable,
    /// 504: the upstream did not answer in time.
    GatewayTimeout,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::Permission => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RateLimit => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `type` field, as the official SDKs map it to exception classes.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest
            | ErrorKind::NotFound
            | ErrorKind::MethodNotAllowed
            | ErrorKind::RequestTimeout
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UnsupportedMediaType => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Internal
            | ErrorKind::BadGateway
            | ErrorKind::Unavailable
            | ErrorKind::GatewayTimeout => "api_error",
        }
    }
}

/// An error on its way to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The field at fault: a fixed name, or a path built for this request
    /// (`messages[2].content`).
    pub param: Option<std::borrow::Cow<'static, str>>,
    pub code: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'static str>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(std::borrow::Cow::Borrowed(param));
        self
    }

    /// A `param` built at run time, such as the path of a nested field.
    pub fn with_param_owned(mut self, param: String) -> Self {
        self.param = Some(std::borrow::Cow::Owned(param));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The JSON body, as the OpenAI API writes it.
    pub fn to_json(&self) -> Bytes {
        let envelope = Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind.type_name(),
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        // Serializing plain strings and options into a Vec cannot fail.
        Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
    }

    // Constructors for the errors the request path raises most, so their wording stays uniform.

    pub fn model_not_found(model: &str) -> Self {
        // The caller's own model name is echoed, truncated, so a hostile name cannot bloat errors.
        let shown: String = model.chars().take(128).collect();
        ApiError::new(
            ErrorKind::NotFound,
            format!("The model `{shown}` does not exist or you do not have access to it."),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    pub fn not_found_route() -> Self {
        ApiError::new(
            ErrorKind::NotFound,
            "Unknown request URL. Check the path and method.",
        )
        .with_code("unknown_url")
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            ErrorKind::MethodNotAllowed,
            "This method is not allowed on this URL.",
        )
        .with_code("method_not_allowed")
    }

    pub fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("The request body is larger than the limit of {limit} bytes."),
        )
        .with_code("request_too_large")
    }

    pub fn upstream_unreachable() -> Self {
        ApiError::new(
            ErrorKind::BadGateway,
            "The model server could not be reached. Retry later.",
        )
        .with_code("upstream_unreachable")
    }

    pub fn upstream_bad_response() -> Self {
        ApiError::new(
            ErrorKind::BadGateway,
            "The model server returned an invalid response.",
        )
        .with_code("upstream_error")
    }

    /// A stream still open when the gateway's shutdown grace elapsed.
    pub fn shutting_down() -> Self {
        ApiError::new(
            ErrorKind::Unavailable,
            "The gateway is restarting; the answer was cut short. Please retry.",
        )
        .with_code("shutting_down")
    }

    pub fn upstream_timeout() -> Self {
        ApiError::new(
            ErrorKind::GatewayTimeout,
            "The model server did not respond in time.",
        )
        .with_code("upstream_timeout")
    }

    pub fn upstream_overloaded() -> Self {
        ApiError::new(
            ErrorKind::Unavailable,
            "The model server is at capacity. Retry later.",
        )
        .with_code("upstream_overloaded")
    }

    pub fn internal() -> Self {
        ApiError::new(
            ErrorKind::Internal,
            "The gateway failed to process the request. Retry later, and quote the x-request-id if it persists.",
        )
        .with_code("internal_error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status(),
            self.kind.type_name(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_the_openai_shape() {
        let err = ApiError::model_not_found("gpt-9");
        let v: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn absent_param_and_code_are_null() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::new(ErrorKind::Internal, "x").to_json()).unwrap();
        assert!(v["error"]["param"].is_null());
        assert!(v["error"]["code"].is_null());
        assert_eq!(v["error"]["type"], "api_error");
    }

    #[test]
    fn hostile_model_names_are_truncated() {
        let long = "m".repeat(10_000);
        assert!(ApiError::model_not_found(&long).message.len() < 300);
    }
}
