//! Who and what a request is about: listeners, audiences, environments, principals and the
//! OpenAI-compatible endpoints. (The per-request context itself is the gateway's
//! `pipeline::RequestContext`.)

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

/// Which kind of organisation a tenant is; internal traffic is kept apart from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    Internal,
    Partner,
    Customer,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Internal => "internal",
            Audience::Partner => "partner",
            Audience::Customer => "customer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "internal" => Some(Audience::Internal),
            "partner" => Some(Audience::Partner),
            "customer" => Some(Audience::Customer),
            _ => None,
        }
    }
}

/// Live credentials reach live models; test credentials only test models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}

/// A caller identified by an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrincipal {
    pub tenant: String,
    pub key_id: String,
    pub audience: Audience,
    pub environment: Environment,
    pub plan: String,
    pub roles: Vec<String>,
    /// Models the key may use; `None` is every model its tenant may use.
    pub models: Option<Vec<String>>,
}

/// Who the caller is, as far as the gateway could establish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential, admitted only because `[dev] allow_anonymous` is on (loopback only).
    Anonymous,
    /// An API key, verified against the store.
    Key(std::sync::Arc<KeyPrincipal>),
}

/// The OpenAI-compatible operation a request invokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    Models,
}

impl Endpoint {
    /// The path below the API prefix (`/v1`), identical on the gateway and the upstream.
    pub fn suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::Models => "/models",
        }
    }
}
