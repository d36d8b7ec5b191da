//! Upstreams: the model servers behind the gateway, and how requests reach them.
//!
//! Each upstream has its own pooled HTTP client (keep-alive, TCP_NODELAY, its own connect
//! timeout), its own bulkhead (a semaphore: when it is full the request gets 503 at once rather
//! than queueing), its own credential (read once from the environment, injected on every
//! request, never shown to callers), and a health flag fed by probes and by request outcomes.

mod forward;
mod health;
mod idle;

pub use forward::{send, stream_response, UpstreamResponse};
pub use health::spawn_probes;
pub use idle::BodyFailure;

use bytes::Bytes;
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_core::Endpoint;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One configured upstream, ready to take requests.
pub struct Upstream {
    pub name: String,
    client: HttpClient,
    chat: Uri,
    completions: Uri,
    embeddings: Uri,
    responses: Uri,
    models: Uri,
    health_uri: Uri,
    authorization: Option<HeaderValue>,
    bulkhead: Arc<Semaphore>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    health_interval: Duration,
    healthy: AtomicBool,
}

impl Upstream {
    /// Builds the client and reads the credential. `api_key` is the value of the variable
    /// named by `api_key_env`, looked up by the caller so tests can supply it directly.
    pub fn new(
        config: &portcullis_config::Upstream,
        api_key: Option<String>,
    ) -> Result<Upstream, String> {
        let base = config.base_url.trim_end_matches('/');
        let uri = |suffix: &str| -> Result<Uri, String> {
            format!("{base}{suffix}")
                .parse::<Uri>()
                .map_err(|e| format!("base_url is not a valid URL: {e}"))
        };
        let authorization = match api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| "the API key contains characters not allowed in a header")?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout.get()));
        http.set_keepalive(Some(Duration::from_secs(60)));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(Upstream {
            name: config.name.clone(),
            client,
            chat: uri(Endpoint::ChatCompletions.suffix())?,
            completions: uri(Endpoint::Completions.suffix())?,
            embeddings: uri(Endpoint::Embeddings.suffix())?,
            responses: uri(Endpoint::Responses.suffix())?,
            models: uri(Endpoint::Models.suffix())?,
            health_uri: uri(&config.health_check_path)?,
            authorization,
            bulkhead: Arc::new(Semaphore::new(config.max_concurrency)),
            first_byte_timeout: config.first_byte_timeout.get(),
            idle_timeout: config.idle_timeout.get(),
            health_interval: config.health_check_interval.get(),
            // Without probes, an upstream is presumed healthy until a request says otherwise;
            // with probes, it is healthy once the first probe succeeds.
            healthy: AtomicBool::new(config.health_check_interval.is_zero()),
        })
    }

    fn uri(&self, endpoint: Endpoint) -> &Uri {
        match endpoint {
            Endpoint::ChatCompletions => &self.chat,
            Endpoint::Completions => &self.completions,
            Endpoint::Embeddings => &self.embeddings,
            Endpoint::Responses => &self.responses,
            Endpoint::Models => &self.models,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            tracing::info!(upstream = %self.name, healthy, "upstream health changed");
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self, capacity: usize) -> usize {
        capacity.saturating_sub(self.bulkhead.available_permits())
    }
}

/// TLS to upstreams verifies against the operating system's roots (none on a machine without
/// a CA bundle, in which case only plain-HTTP upstreams work, and https ones fail closed).
pub(crate) fn client_tls() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs_or_empty();
    roots.add_parsable_certificates(native);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn rustls_native_certs_or_empty() -> Vec<rustls_pki_types::CertificateDer<'static>> {
    // The system bundle, when present, in its usual Debian/RHEL/Alpine places.
    use rustls_pki_types::pem::PemObject;
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        if let Ok(iter) = rustls_pki_types::CertificateDer::pem_file_iter(path) {
            let certs: Vec<_> = iter.filter_map(Result::ok).collect();
            if !certs.is_empty() {
                return certs;
            }
        }
    }
    Vec::new()
}
