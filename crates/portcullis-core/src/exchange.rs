//! The per-request context: what each step of the request path learned, for later steps.
//!
//! Steps never call back into earlier ones; they read what those wrote here.

use crate::RequestId;
use std::time::Instant;

/// Which listener a request arrived on. Decides what a caller may see and reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Callers from outside: public models only.
    Public,
    /// Internal callers: public and internal models.
    Internal,
    /// Operators: admin API, health, metrics. Never serves models.
    Admin,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Public => "public",
            ListenerKind::Internal => "internal",
            ListenerKind::Admin => "admin",
        }
    }
}

/// Who the caller is, as far as the gateway could establish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential, admitted only because `[dev] allow_anonymous` is on (loopback only).
    Anonymous,
}

/// The OpenAI-compatible operation a request invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Models,
}

impl Endpoint {
    /// The path below the API prefix (`/v1`), identical on the gateway and the upstream.
    pub fn suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Models => "/models",
        }
    }
}

/// One request's context.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request_id: RequestId,
    pub listener: ListenerKind,
    pub started: Instant,
    pub principal: Option<Principal>,
    pub endpoint: Option<Endpoint>,
    /// The model the caller named (before any rewrite).
    pub model: Option<String>,
    pub stream: bool,
}

impl Exchange {
    pub fn new(request_id: RequestId, listener: ListenerKind) -> Self {
        Exchange {
            request_id,
            listener,
            started: Instant::now(),
            principal: None,
            endpoint: None,
            model: None,
            stream: false,
        }
    }
}
