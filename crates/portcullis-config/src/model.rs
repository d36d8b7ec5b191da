//! The configuration's fields, each documented where it is declared.

use crate::Duration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole configuration. Every section is optional; the defaults run a loopback-only
/// gateway with an embedded store.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub listeners: Listeners,
    #[serde(default)]
    pub http: HttpLimits,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    #[serde(default)]
    pub models: Vec<Model>,
    #[serde(default)]
    pub identity: Identity,
    /// Roles by name, each a list of permissions. `inference` and `admin` exist by default.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, Role>,
    #[serde(default)]
    pub dev: Dev,
    #[serde(default)]
    pub log: Log,
    /// Metrics and the audit trail.
    #[serde(default)]
    pub telemetry: crate::Telemetry,
    /// Where limit state lives and how quotas are counted.
    #[serde(default)]
    pub limits: crate::Limits,
    /// Guards: schema, Unicode sanitation, injection screening, output filtering.
    #[serde(default)]
    pub guard: crate::Guard,
    /// Per-tenant guard settings (e.g. a tenant's canary), by tenant name, over the plan's.
    #[serde(default)]
    pub tenant_guard: std::collections::BTreeMap<String, crate::GuardSpec>,
    /// Plans by name. A tenant's plan must be listed here; `default` is built in (600
    /// requests and 1M tokens a minute, 64 concurrent requests per tenant) unless redefined.
    #[serde(default)]
    pub plans: std::collections::BTreeMap<String, crate::Plan>,
    /// Per-tenant overrides of their plan's tenant limits, by tenant name.
    #[serde(default)]
    pub tenant_limits: std::collections::BTreeMap<String, crate::LimitSpec>,
    /// Per-key overrides of their plan's key limits, by key id.
    #[serde(default)]
    pub key_limits: std::collections::BTreeMap<String, crate::LimitSpec>,
    /// The extraction and distillation detector, and its response ladder.
    #[serde(default)]
    pub detect: crate::Detect,
}

/// Where the gateway listens. The admin listener is never the public one.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// Address for callers (OpenAI-compatible API). Default `127.0.0.1:8080`.
    #[serde(default = "defaults::public")]
    pub public: SocketAddr,
    /// Address for the admin API, `/healthz` and `/readyz`. Default `127.0.0.1:8081`.
    #[serde(default = "defaults::admin")]
    pub admin: SocketAddr,
    /// Optional address for internal callers; the only listener that serves internal models.
    #[serde(default)]
    pub internal: Option<SocketAddr>,
    /// TLS for every listener, when set. Reloaded from disk on SIGHUP.
    #[serde(default)]
    pub tls: Option<Tls>,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            public: defaults::public(),
            admin: defaults::admin(),
            internal: None,
            tls: None,
        }
    }
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Limits on the wire, applied to every listener before any parsing.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Largest request body accepted; larger ones get 413. Default 4 MiB.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) accepted. Default 16 KiB.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Largest non-streaming upstream response the gateway reads. Default 32 MiB.
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: usize,
    /// Time a client has to send a request's head once it starts one. Default 10s.
    #[serde(default = "defaults::header_read_timeout")]
    pub header_read_timeout: Duration,
    /// Time a client has to send the whole request body. Default 30s.
    #[serde(default = "defaults::body_read_timeout")]
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed.
    /// Default 60s.
    #[serde(default = "defaults::client_idle_timeout")]
    pub idle_timeout: Duration,
    /// Most client connections open at once, per listener; more are closed on accept.
    /// Default 10000.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish. Default 30s.
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: defaults::max_body_bytes(),
            max_header_bytes: defaults::max_header_bytes(),
            max_response_bytes: defaults::max_response_bytes(),
            header_read_timeout: defaults::header_read_timeout(),
            body_read_timeout: defaults::body_read_timeout(),
            idle_timeout: defaults::client_idle_timeout(),
            max_connections: defaults::max_connections(),
            shutdown_grace: defaults::shutdown_grace(),
        }
    }
}

/// The control-plane store.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// `sqlite://PATH` (embedded; relative paths are relative to the working directory).
    /// Default `sqlite://portcullis-data/portcullis.db`.
    /// `postgres://user:password@host:port/database` (shared by several replicas; the
    /// password may also come from `PORTCULLIS_STORE__URL`).
    #[serde(default = "defaults::store_url")]
    pub url: String,
    /// Directory for the generated key pepper and admin token. Default: the SQLite file's
    /// directory, or `portcullis-data` with PostgreSQL.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            url: defaults::store_url(),
            data_dir: None,
        }
    }
}

/// A model server (or a pool behind one address) that speaks the OpenAI API.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Name that models refer to.
    pub name: String,
    /// Base URL including the API prefix, e.g. `http://127.0.0.1:9000/v1`; `http` or `https`.
    pub base_url: String,
    /// Environment variable holding the upstream's API key, sent as `Authorization: Bearer`.
    /// Callers never see it, and their own credentials are never forwarded.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Bulkhead: most requests in flight to this upstream; more get 503. Default 512.
    #[serde(default = "defaults::max_concurrency")]
    pub max_concurrency: usize,
    /// Time to establish a TCP (and TLS) connection. Default 2s.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout: Duration,
    /// Time until the upstream's response headers arrive; then 504. Default 60s.
    #[serde(default = "defaults::first_byte_timeout")]
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of a response body. Default 30s.
    #[serde(default = "defaults::upstream_idle_timeout")]
    pub idle_timeout: Duration,
    /// How often the upstream is probed for `/readyz`; "0s" disables probing (then only
    /// request outcomes count). Default 5s.
    #[serde(default = "defaults::health_interval")]
    pub health_check_interval: Duration,
    /// Path under `base_url` that the probe requests with GET. Default `/models`.
    #[serde(default = "defaults::health_path")]
    pub health_check_path: String,
    /// `test` makes every model of this upstream a test model (live keys never reach it).
    /// Default live.
    #[serde(default)]
    pub environment: ModelEnvironment,
}

/// API key policy.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Lifetime of a key created without an explicit one. Default 90 days: long enough for a
    /// server-side integration to run between planned rotations, finite so that a forgotten
    /// or leaked key stops working on its own.
    #[serde(default = "defaults::default_key_lifetime")]
    pub default_key_lifetime: Duration,
    /// Longest lifetime a key may be given. Default 365 days.
    #[serde(default = "defaults::max_key_lifetime")]
    pub max_key_lifetime: Duration,
    /// How often each replica checks the store for key changes (revocations made on another
    /// replica take at most this long to apply here). Default 500ms.
    #[serde(default = "defaults::key_refresh_interval")]
    pub key_refresh_interval: Duration,
    /// Lifetime of tokens from `POST /v1/auth/token` (callers may ask for less). Default 15m.
    #[serde(default = "defaults::token_lifetime")]
    pub token_lifetime: Duration,
    /// The `iss` claim of the gateway's tokens. Default `portcullis`.
    #[serde(default = "defaults::token_issuer")]
    pub token_issuer: String,
    /// Tokens one key may mint per minute (`POST /v1/auth/token`), with that many at once.
    /// Default 60: a browser app mints one per page load or per expiry, not thousands; each
    /// minted token also sits in the verified-token cache until it expires.
    #[serde(default = "defaults::token_mints_per_minute")]
    pub token_mints_per_minute: u32,
    /// External identity providers whose JWTs are accepted.
    #[serde(default)]
    pub issuers: Vec<Issuer>,
}

/// An external identity provider: its tokens are verified against its JWKS and mapped to a
/// tenant (which must exist) and roles.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The exact `iss` claim.
    pub issuer: String,
    /// The `aud` claim required.
    pub audience: String,
    /// Where the provider publishes its keys (http or https).
    pub jwks_url: String,
    /// Accepted algorithms: asymmetric only (RS256/384/512, PS256/384/512, ES256/384, EdDSA).
    #[serde(default = "defaults::issuer_algorithms")]
    pub algorithms: Vec<String>,
    /// Claim holding the tenant name. Default `tenant`.
    #[serde(default = "defaults::tenant_claim")]
    pub tenant_claim: String,
    /// Claim holding roles (an array, or a space-separated string). Default `roles`.
    #[serde(default = "defaults::roles_claim")]
    pub roles_claim: String,
    /// Roles when the claim is absent. Default none (then nothing is permitted).
    #[serde(default)]
    pub default_roles: Vec<String>,
    /// How often the JWKS is refreshed; an unknown `kid` also triggers a refresh, at most
    /// once per `jwks_min_refresh`. Default 10m.
    #[serde(default = "defaults::jwks_refresh")]
    pub jwks_refresh_interval: Duration,
    /// Shortest time between two fetches of the JWKS. Default 10s.
    #[serde(default = "defaults::jwks_min_refresh")]
    pub jwks_min_refresh: Duration,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            default_key_lifetime: defaults::default_key_lifetime(),
            max_key_lifetime: defaults::max_key_lifetime(),
            key_refresh_interval: defaults::key_refresh_interval(),
            token_lifetime: defaults::token_lifetime(),
            token_issuer: defaults::token_issuer(),
            token_mints_per_minute: defaults::token_mints_per_minute(),
            issuers: Vec::new(),
        }
    }
}

/// A role: what a credential holding it may do.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Permissions such as `chat:invoke`, `completions:invoke`, `embeddings:invoke`,
    /// `models:list`, `admin:tenants`, `admin:keys`, `admin:audit`; `*` grants all.
    pub permissions: Vec<String>,
}

/// Whether a model is offered to everyone or only on the internal listener.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Internal,
}

/// A model that callers can name.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name callers put in `model`.
    pub name: String,
    /// The upstream that serves it.
    pub upstream: String,
    /// The name sent upstream; defaults to `name`.
    #[serde(default)]
    pub upstream_model: Option<String>,
    /// `public` (every listener) or `internal` (only the internal listener). Default public.
    #[serde(default)]
    pub visibility: Visibility,
    /// `live` or `test`: test keys reach only test models, live keys only live ones.
    /// Default: the upstream's environment (live unless the upstream says test).
    #[serde(default)]
    pub environment: Option<ModelEnvironment>,
    /// The vocabulary prompts are counted in: `o200k_base` (default) or `cl100k_base`.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Price of one million input tokens, in `[limits] currency`. Default 0.
    #[serde(default)]
    pub input_price: f64,
    /// Price of one million output tokens. Default 0.
    #[serde(default)]
    pub output_price: f64,
    /// Input guard settings for this model, over the plan's and the global ones.
    #[serde(default)]
    pub guard: crate::GuardSpec,
    /// Prompts and completions of this model are never kept, whatever a tenant's
    /// `log_content` says. Default false.
    #[serde(default)]
    pub sensitive: bool,
}

/// The environment a model belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelEnvironment {
    #[default]
    Live,
    Test,
}

impl Model {
    pub fn upstream_model(&self) -> &str {
        self.upstream_model.as_deref().unwrap_or(&self.name)
    }
}

/// Development switches. None of them is safe in production; all are off by default.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Dev {
    /// Serve callers that present no credential. Refused unless every caller-facing listener
    /// is on a loopback address.
    #[serde(default)]
    pub allow_anonymous: bool,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// Filter in `tracing` syntax, e.g. `info` or `portcullis_gateway=debug`. Default `info`;
    /// the `RUST_LOG` variable wins when set.
    #[serde(default = "defaults::log_level")]
    pub level: String,
    /// `text` or `json`. Default `text`.
    #[serde(default = "defaults::log_format")]
    pub format: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: defaults::log_level(),
            format: defaults::log_format(),
        }
    }
}

mod defaults {
    use super::*;

    pub fn public() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn admin() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8081))
    }
    pub fn max_body_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub fn max_header_bytes() -> usize {
        16 * 1024
    }
    pub fn max_response_bytes() -> usize {
        32 * 1024 * 1024
    }
    pub fn header_read_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn body_read_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn client_idle_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn max_connections() -> usize {
        10_000
    }
    pub fn shutdown_grace() -> Duration {
        Duration::from_secs(30)
    }
    pub fn store_url() -> String {
        "sqlite://portcullis-data/portcullis.db".into()
    }
    pub fn max_concurrency() -> usize {
        512
    }
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn first_byte_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn upstream_idle_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn health_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn health_path() -> String {
        "/models".into()
    }
    pub fn default_key_lifetime() -> Duration {
        Duration::from_secs(90 * 24 * 3600)
    }
    pub fn max_key_lifetime() -> Duration {
        Duration::from_secs(365 * 24 * 3600)
    }
    pub fn key_refresh_interval() -> Duration {
        Duration::from_millis(500)
    }
    pub fn token_lifetime() -> Duration {
        Duration::from_secs(15 * 60)
    }
    pub fn token_mints_per_minute() -> u32 {
        60
    }
    pub fn token_issuer() -> String {
        "portcullis".into()
    }
    pub fn issuer_algorithms() -> Vec<String> {
        vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
    }
    pub fn tenant_claim() -> String {
        "tenant".into()
    }
    pub fn roles_claim() -> String {
        "roles".into()
    }
    pub fn jwks_refresh() -> Duration {
        Duration::from_secs(600)
    }
    pub fn jwks_min_refresh() -> Duration {
        Duration::from_secs(10)
    }
    pub fn log_level() -> String {
        "info".into()
    }
    pub fn log_format() -> String {
        "text".into()
    }
}
