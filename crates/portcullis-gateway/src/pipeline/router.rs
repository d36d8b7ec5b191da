//! Which operation a request is, from its method and path: routing decided in one table.

use http::Method;
use portcullis_core::{ApiError, Endpoint};

/// What the public and internal listeners serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A CORS preflight for an API path.
    Preflight,
    /// `GET /.well-known/jwks.json`: the keys that verify the gateway's tokens.
    Jwks,
    /// `POST /v1/auth/token`.
    TokenExchange,
    /// `GET /v1/models`.
    Models,
    /// An inference endpoint.
    Inference(Endpoint),
}

/// The operation for `method` and `path`, or 404 / 405.
pub fn route(method: &Method, path: &str, preflight: bool) -> Result<Operation, ApiError> {
    if preflight && path.starts_with("/v1/") {
        return Ok(Operation::Preflight);
    }
    let (operation, expected) = match path {
        "/v1/chat/completions" => (
            Operation::Inference(Endpoint::ChatCompletions),
            Method::POST,
        ),
        "/v1/completions" => (Operation::Inference(Endpoint::Completions), Method::POST),
        "/v1/embeddings" => (Operation::Inference(Endpoint::Embeddings), Method::POST),
        "/v1/responses" => (Operation::Inference(Endpoint::Responses), Method::POST),
        "/v1/models" => (Operation::Models, Method::GET),
        "/v1/auth/token" => (Operation::TokenExchange, Method::POST),
        "/.well-known/jwks.json" => (Operation::Jwks, Method::GET),
        _ => return Err(ApiError::not_found_route()),
    };
    if *method == expected {
        Ok(operation)
    } else {
        Err(ApiError::method_not_allowed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_then_method() {
        assert_eq!(
            route(&Method::POST, "/v1/responses", false).unwrap(),
            Operation::Inference(Endpoint::Responses)
        );
        assert_eq!(
            route(&Method::GET, "/v1/models", false).unwrap(),
            Operation::Models
        );
        assert_eq!(
            route(&Method::OPTIONS, "/v1/models", true).unwrap(),
            Operation::Preflight
        );
        assert_eq!(
            route(&Method::GET, "/v1/responses", false)
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            route(&Method::GET, "/v2/x", false).unwrap_err().status(),
            404
        );
    }
}
