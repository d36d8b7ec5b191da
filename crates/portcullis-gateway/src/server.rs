//! Start-up and shutdown: build the shared state, bind the listeners, run until told to stop,
//! then drain.

use crate::listener::{self, tls::ReloadableTls, AcceptContext, ConnectionLimits};
use crate::state::GatewayState;
use crate::{admin, pipeline, upstream};
use portcullis_config::{Config, ConfigError};
use portcullis_core::ListenerKind;
use portcullis_identity::{secrets, KeyCache, Store, TokenSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] portcullis_identity::StoreError),
    #[error("cannot listen on {addr} (`{field}`): {source}")]
    Bind {
        field: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("`listeners.tls`: {0}")]
    Tls(String),
    #[error("{0}")]
    Secrets(String),
    #[error("cannot start the audit trail in {dir}: {source}")]
    Audit {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The gateway before it listens.
pub struct Gateway;

/// How long streams cut at the end of the shutdown grace get to send their final event.
const CUT_STREAMS_FLUSH: Duration = Duration::from_millis(500);

/// A gateway that is serving; dropping it does not stop it, `shutdown` does.
pub struct RunningGateway {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub internal: Option<SocketAddr>,
    pub state: Arc<GatewayState>,
    tls: Option<Arc<ReloadableTls>>,
    shutdown: watch::Sender<bool>,
    /// Stops the admin listener, after everything else.
    admin_shutdown: watch::Sender<bool>,
    drained: mpsc::Receiver<()>,
    grace: Duration,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Opens the store, builds the upstreams, binds every listener and starts serving.
    /// Upstream credentials are read from the process environment.
    pub async fn start(config: &Config) -> Result<RunningGateway, GatewayError> {
        Gateway::start_with_env(config, |var| std::env::var(var).ok()).await
    }

    /// As [`Gateway::start`], resolving `api_key_env` variables with `env`.
    pub async fn start_with_env(
        config: &Config,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<RunningGateway, GatewayError> {
        Gateway::start_with(config, env, portcullis_core::clock::system()).await
    }

    /// As [`Gateway::start_with_env`], deciding key and token expiry by `clock` (tests move a
    /// manual clock instead of sleeping).
    pub async fn start_with(
        config: &Config,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        clock: portcullis_core::SharedClock,
    ) -> Result<RunningGateway, GatewayError> {
        let store = Store::open(&config.store.url)
            .await?
            .with_data_dir(config.store.data_dir.clone());
        let data_dir = store.data_dir();
        let secret_error = |what: &str, e: std::io::Error| {
            GatewayError::Secrets(format!(
                "cannot read or create the {what} in {}: {e}",
                data_dir.display()
            ))
        };
        let pepper = secrets::key_pepper(&data_dir).map_err(|e| secret_error("key pepper", e))?;
        let (telemetry, stored_trail, threat_records) =
            start_telemetry(config, &data_dir, &pepper, store.backend())?;
        let admin_token =
            secrets::admin_token(&data_dir).map_err(|e| secret_error("admin token", e))?;
        let token_settings = TokenSettings {
            issuer: config.identity.token_issuer.clone(),
            max_lifetime: config.identity.token_lifetime.get().as_secs() as i64,
        };
        let keys =
            Arc::new(KeyCache::load_with_clock(&store, pepper, token_settings, clock).await?);
        let mut state =
            GatewayState::new(config, store, keys, admin_token, Arc::new(env), telemetry)?;
        state.stored_trail = stored_trail;
        let state = Arc::new(state);
        let tls = match &config.listeners.tls {
            Some(t) => Some(Arc::new(ReloadableTls::load(t).map_err(GatewayError::Tls)?)),
            None => None,
        };

        let public = bind("listeners.public", config.listeners.public).await?;
        let admin = bind("listeners.admin", config.listeners.admin).await?;
        let internal = match config.listeners.internal {
            Some(addr) => Some(bind("listeners.internal", addr).await?),
            None => None,
        };

        let (shutdown, shutdown_rx) = watch::channel(false);
        let (drain, drained) = mpsc::channel(1);
        // The admin listener stops last, after the drain: health checks and operators see
        // "draining" instead of a refused connection. Its connections are not waited for.
        let (admin_shutdown, admin_shutdown_rx) = watch::channel(false);
        let (admin_drain, _) = mpsc::channel(1);
        let limits = Arc::new(ConnectionLimits::from_config(&config.http));
        let local = |l: &TcpListener| l.local_addr().expect("a bound socket has an address");
        let running = RunningGateway {
            public: local(&public),
            admin: local(&admin),
            internal: internal.as_ref().map(local),
            state: state.clone(),
            tls: tls.clone(),
            shutdown,
            admin_shutdown,
            drained,
            grace: config.http.shutdown_grace.get(),
            background: Vec::new(),
        };

        let context = |name: &'static str| AcceptContext {
            name,
            limits: limits.clone(),
            tls: tls.clone(),
            shutdown: shutdown_rx.clone(),
            drain: drain.clone(),
            handler: (),
        };
        spawn_api(public, ListenerKind::Public, context("public"), &state);
        if let Some(internal) = internal {
            spawn_api(
                internal,
                ListenerKind::Internal,
                context("internal"),
                &state,
            );
        }
        let admin_state = state.clone();
        let admin_context = AcceptContext {
            shutdown: admin_shutdown_rx,
            drain: admin_drain,
            ..context("admin")
        }
        .with_handler(move |request| {
            let state = admin_state.clone();
            async move { admin::serve(&state, request).await }
        });
        tokio::spawn(listener::accept_loop(admin, admin_context));
        upstream::spawn_probes(&state.settings().upstreams, state.stopping.clone());
        state.issuers.spawn_refresh(shutdown_rx.clone());
        crate::background::keys::spawn_refresh_and_last_used_flush(
            &state,
            config.identity.key_refresh_interval.get(),
            shutdown_rx.clone(),
        );
        crate::background::ledger::refresh_risk(&state).await;
        crate::background::alerts::spawn(
            &state,
            config.telemetry.alert_interval.get(),
            shutdown_rx.clone(),
        );
        let mut background = vec![
            tokio::spawn(state.limiter.clone().maintain(Duration::from_millis(500))),
            tokio::spawn(crate::background::ledger::run(
                state.clone(),
                config.limits.flush_interval.get(),
                config
                    .identity
                    .key_refresh_interval
                    .get()
                    .max(Duration::from_millis(500)),
            )),
        ];
        if state.stored_trail.is_some() {
            background.push(tokio::spawn(crate::background::stored_trail::run(
                state.clone(),
            )));
        }
        if let Some(records) = threat_records {
            background.push(crate::background::threats::spawn(
                state.clone(),
                records,
                shutdown_rx.clone(),
            ));
        }
        background.push(tokio::task::spawn_blocking(|| {
            portcullis_guard::Detector::builtin();
        }));
        for encoding in state.settings().catalog.encodings() {
            background.push(tokio::task::spawn_blocking(move || encoding.warm_up()));
        }
        drop(drain);

        if state.store.backend() == "postgres"
            && config.limits.backend == portcullis_config::LimitsBackend::Memory
        {
            // Replicas sharing a store but not a limiter each enforce the whole of every
            // limit and quota: N replicas admit N times what a plan allows.
            tracing::warn!(
                "the store is shared (PostgreSQL) but limits are kept in memory: every replica \
                 enforces full limits and quotas on its own; set [limits] backend = \"redis\" \
                 when running more than one replica"
            );
        }
        tracing::info!(
            public = %running.public,
            admin = %running.admin,
            internal = ?running.internal,
            tls = tls.is_some(),
            models = config.models.len(),
            "portcullis is serving"
        );
        Ok(RunningGateway {
            background,
            ..running
        })
    }
}

/// The telemetry, the store's copy of the trail (when kept), and the detector's records.
type StartedTelemetry = (
    Arc<portcullis_telemetry::Telemetry>,
    Option<crate::background::stored_trail::StoredTrail>,
    Option<tokio::sync::mpsc::Receiver<Arc<portcullis_telemetry::RequestRecord>>>,
);

/// Metrics and the audit trail, as configured. The prompt fingerprint key is derived from the
/// key pepper: stable across restarts and replicas sharing a data directory or pepper.
fn start_telemetry(
    config: &Config,
    data_dir: &std::path::Path,
    pepper: &[u8],
    store_backend: &str,
) -> Result<StartedTelemetry, GatewayError> {
    use portcullis_telemetry::audit::files::Rotation;
    let t = &config.telemetry;
    let audit = t
        .audit
        .enabled
        .then(|| portcullis_telemetry::AuditSettings {
            dir: t
                .audit
                .dir
                .clone()
                .unwrap_or_else(|| data_dir.join("audit")),
            rotation: Rotation {
                max_file_bytes: t.audit.max_file_bytes,
                max_file_age: t.audit.max_file_age.get(),
                retention: Duration::from_secs(u64::from(t.audit.retention_days) * 86_400),
            },
            queue: t.audit.queue,
        });
    let dir = audit.as_ref().map(|a| a.dir.clone()).unwrap_or_default();
    let settings = portcullis_telemetry::Settings {
        metrics: t.metrics,
        per_key_metrics: t.per_key_metrics,
        audit,
        fingerprint_secret: [b"portcullis prompt fingerprint:".as_slice(), pepper].concat(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        otlp: otlp_settings(t, |var| std::env::var(var).ok())?,
        tracing: portcullis_telemetry::TraceSettings {
            trust_incoming: t.trust_incoming_trace,
            sample_ratio: t.trace_sample_ratio,
        },
        alerts: alert_rules(t),
        webhooks: webhooks(t, |var| std::env::var(var).ok())?,
        http_client: Some(telemetry_client()),
        content: portcullis_telemetry::ContentPolicy {
            tenants: t
                .tenants
                .iter()
                .filter(|(_, policy)| policy.log_content)
                .map(|(name, _)| name.clone())
                .collect(),
            max_chars: t.audit.content_max_chars,
        },
    };
    // The writer thread ends on its own once the state (and so the sink) is dropped.
    let (mut telemetry, _writer) = portcullis_telemetry::Telemetry::start(settings)
        .map_err(|source| GatewayError::Audit { dir, source })?;
    // The store keeps a copy by default when it is shared by replicas.
    let in_store = t.audit.store.unwrap_or(store_backend == "postgres");
    let stored = in_store.then(|| {
        crate::background::stored_trail::StoredTrail::new(
            telemetry.tap(t.audit.queue),
            t.audit.queue,
            Duration::from_secs(u64::from(t.audit.retention_days) * 86_400),
        )
    });
    // The threat detector reads every record through its own bounded tap.
    let threats = config
        .detect
        .enabled
        .then(|| telemetry.tap(config.detect.queue));
    Ok((Arc::new(telemetry), stored, threats))
}

/// The client spans and webhooks are sent with: HTTP or HTTPS with the system's roots.
fn telemetry_client() -> portcullis_telemetry::HttpClient {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(upstream::client_tls())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

/// The configured alert rules (checked at load: every kind parses).
pub(crate) fn alert_rules(
    t: &portcullis_config::Telemetry,
) -> Vec<portcullis_telemetry::alerts::AlertRule> {
    use portcullis_telemetry::alerts::{AlertKind, AlertRule};
    t.alerts
        .iter()
        .filter_map(|rule| {
            let kind = AlertKind::parse(&rule.kind)?;
            Some(AlertRule {
                name: rule.name.clone(),
                kind,
                threshold: rule.threshold,
                window: rule.window.map_or(kind.default_window(), |w| w.get()),
                for_: rule.for_.map_or(Duration::ZERO, |f| f.get()),
                tenant: rule.tenant.clone(),
                min_requests: rule.min_requests,
            })
        })
        .collect()
}

/// The webhooks, with their secrets read from the environment.
fn webhooks(
    t: &portcullis_config::Telemetry,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<portcullis_telemetry::alerts::webhook::WebhookTarget>, GatewayError> {
    t.webhooks
        .iter()
        .enumerate()
        .map(|(i, hook)| {
            let secret = match &hook.secret_env {
                Some(var) => Some(env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                    GatewayError::Config(ConfigError::new(
                        format!("telemetry.webhooks[{i}].secret_env"),
                        format!("the environment variable {var} is not set"),
                    ))
                })?),
                None => None,
            };
            let url = hook.url.parse::<http::Uri>().map_err(|_| {
                GatewayError::Config(ConfigError::new(
                    format!("telemetry.webhooks[{i}].url"),
                    "is not a URL",
                ))
            })?;
            Ok(portcullis_telemetry::alerts::webhook::WebhookTarget {
                url,
                secret: secret.map(String::into_bytes),
            })
        })
        .collect()
}

/// Where spans go: the configured endpoint, else the standard OpenTelemetry variables.
fn otlp_settings(
    t: &portcullis_config::Telemetry,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<portcullis_telemetry::trace::OtlpSettings>, GatewayError> {
    let endpoint = t
        .otlp_endpoint
        .clone()
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| {
            env("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })
        .filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    let uri = endpoint
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .ok_or_else(|| {
            GatewayError::Config(ConfigError::new(
                "telemetry.otlp_endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL"),
            ))
        })?;
    Ok(Some(portcullis_telemetry::trace::OtlpSettings {
        endpoint: uri,
        service_name: t
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "portcullis".to_owned()),
        queue: 8192,
    }))
}

fn spawn_api(
    listener: TcpListener,
    kind: ListenerKind,
    context: AcceptContext<()>,
    state: &Arc<GatewayState>,
) {
    let state = state.clone();
    let context = context.with_handler(move |request| {
        let state = state.clone();
        async move { pipeline::serve(&state, kind, request).await }
    });
    tokio::spawn(listener::accept_loop(listener, context));
}

async fn bind(field: &'static str, addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind {
            field,
            addr,
            source,
        })
}

impl RunningGateway {
    /// Re-reads the TLS certificate and key (SIGHUP); true when there was one to re-read.
    pub fn reload_tls(&self) -> Result<bool, String> {
        match &self.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, and returns
    /// whether every connection closed in time.
    pub async fn shutdown(mut self) -> bool {
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.state.stopping.cancel();
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(self.grace, self.drained.recv())
            .await
            .is_ok();
        if drained {
            tracing::info!("all connections drained");
        } else {
            tracing::warn!(grace = ?self.grace, "shutdown grace elapsed with requests still in flight");
            // Streams still open end now with an error event, each settling what it used;
            // a moment more lets those last events out before the connections close.
            self.state.streams_cut.cancel();
            let _ = tokio::time::timeout(CUT_STREAMS_FLUSH, self.drained.recv()).await;
        }
        // Records of the drain reach the store; a write in progress finishes first.
        crate::background::stored_trail::flush(&self.state).await;
        for task in &self.background {
            task.abort();
        }
        // Usage settled while draining reaches the ledger before the process exits.
        crate::background::ledger::flush(&self.state.limiter, &self.state.store).await;
        let _ = self.admin_shutdown.send(true);
        drained
    }
}
