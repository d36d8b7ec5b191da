//! What every request handler shares: the [`Settings`] a configuration reload replaces
//! (models, upstreams, plans, roles, guards), and what lives as long as the process: the store,
//! the key cache and limiter (which change inside, behind their own locks), telemetry, and the
//! browser-use audit throttle.

use crate::catalog::Catalog;
use crate::policy::authz::Roles;
use crate::upstream::Upstream;
use arc_swap::ArcSwap;
use portcullis_config::{Config, ConfigError, HttpLimits};
use portcullis_identity::{KeyCache, Store};
use portcullis_limits::PlanBook;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the configuration decides for each request, replaced whole by a reload. A request
/// loads it once when it arrives and keeps that version to its end (a stream started before a
/// reload finishes under the models, upstreams and limits it started with).
pub struct Settings {
    /// 1 at start, one more per successful reload.
    pub version: u64,
    pub catalog: Catalog,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Bulkhead size per upstream, same order as `upstreams`.
    pub upstream_capacity: Vec<usize>,
    /// Each upstream's configuration and credential, same order: a reload keeps the
    /// upstreams whose both are unchanged (their connections, health and bulkhead with them).
    upstream_sources: Vec<(portcullis_config::Upstream, Option<String>)>,
    pub plans: Arc<PlanBook>,
    pub roles: Roles,
    /// Guard defaults, and per-tenant guard settings.
    pub guard: portcullis_config::Guard,
    pub tenant_guard: BTreeMap<String, portcullis_config::GuardSpec>,
    /// The watermark secrets (from `[guard] watermark_secrets_env`), when set.
    pub watermark: Option<Arc<portcullis_watermark::KeyRing>>,
    /// The embedding watermark's triggers and directions under the current secret (built
    /// once: choosing triggers hashes every candidate word).
    pub watermark_embed: Option<Arc<portcullis_watermark::embed::EmbedKey>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Builds the settings of `config`, version `version`. Upstreams that `previous` already
    /// has, with the same configuration and credential, are shared rather than rebuilt.
    /// `api_keys` resolves an upstream's `api_key_env` to its value.
    pub fn build(
        config: &Config,
        version: u64,
        previous: Option<&Settings>,
        api_keys: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut upstreams = Vec::new();
        let mut upstream_sources = Vec::new();
        let mut index = HashMap::new();
        for (i, u) in config.upstreams.iter().enumerate() {
            let key = match &u.api_key_env {
                Some(var) => Some(api_keys(var).ok_or_else(|| {
                    ConfigError::new(
                        format!("upstreams[{i}].api_key_env"),
                        format!("the environment variable {var} is not set"),
                    )
                })?),
                None => None,
            };
            let source = (u.clone(), key);
            let kept = previous.and_then(|p| {
                let at = p.upstream_sources.iter().position(|s| *s == source)?;
                Some(p.upstreams[at].clone())
            });
            let upstream = match kept {
                Some(upstream) => upstream,
                None => Arc::new(
                    Upstream::new(u, source.1.clone())
                        .map_err(|problem| ConfigError::new(format!("upstreams[{i}]"), problem))?,
                ),
            };
            index.insert(u.name.clone(), i);
            upstreams.push(upstream);
            upstream_sources.push(source);
        }
        let watermark = watermark_ring(config, &api_keys)?;
        Ok(Settings {
            version,
            catalog: Catalog::new(config, &index),
            upstream_capacity: config.upstreams.iter().map(|u| u.max_concurrency).collect(),
            upstreams,
            upstream_sources,
            plans: Arc::new(PlanBook::new(config)),
            roles: Roles::new(config),
            guard: config.guard.clone(),
            tenant_guard: config.tenant_guard.clone(),
            watermark_embed: watermark.as_ref().map(|ring| {
                Arc::new(portcullis_watermark::embed::EmbedKey::new(
                    &ring.current().global(),
                ))
            }),
            watermark,
        })
    }
}

/// The watermark secrets, read from the environment variable `[guard]` names. Required as
/// soon as any guard setting turns the watermark on: marking without a key would fail open.
fn watermark_ring(
    config: &Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<portcullis_watermark::KeyRing>>, ConfigError> {
    use portcullis_config::WatermarkPolicy::On;
    let var = &config.guard.watermark_secrets_env;
    let field = || "guard.watermark_secrets_env".to_owned();
    let on = config.guard.watermark == Some(On)
        || config.plans.values().any(|p| p.guard.watermark == Some(On))
        || config
            .tenant_guard
            .values()
            .any(|g| g.watermark == Some(On))
        || config.models.iter().any(|m| m.guard.watermark == Some(On));
    let ring = match env(var).map(|spec| portcullis_watermark::KeyRing::parse(&spec)) {
        Some(Ok(ring)) => Some(Arc::new(ring)),
        // A malformed secret stops the gateway only where it would be used.
        Some(Err(problem)) if on => return Err(ConfigError::new(field(), problem)),
        Some(Err(_)) | None => None,
    };
    if on && ring.is_none() {
        return Err(ConfigError::new(
            field(),
            format!("the watermark is on but the environment variable {var} is not set"),
        ));
    }
    Ok(ring)
}

pub struct GatewayState {
    /// See [`Settings`]; read with [`GatewayState::settings`].
    settings: ArcSwap<Settings>,
    /// The configuration in force, and the file it is read from on reload. The lock also
    /// makes reloads run one at a time.
    pub(crate) active_config: tokio::sync::Mutex<crate::reload::ActiveConfig>,
    pub http: HttpLimits,
    pub allow_anonymous: bool,
    pub store: Store,
    pub keys: Arc<KeyCache>,
    pub identity: portcullis_config::Identity,
    /// The bootstrap admin token for the admin API.
    pub admin_token: String,
    /// External identity providers.
    pub issuers: Arc<crate::issuers::ExternalIssuers>,
    /// When each key was last recorded as used from a browser, so a page that keeps calling
    /// writes one audit event a minute, not one per request.
    pub browser_use_recorded: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Rate limits, quotas and budgets.
    pub limiter: Arc<portcullis_limits::Limiter>,
    pub limits: portcullis_config::Limits,
    /// Prompts screened as attacks since start: blocked, and flagged but passed.
    pub screened_blocked: std::sync::atomic::AtomicU64,
    pub screened_flagged: std::sync::atomic::AtomicU64,
    /// Cancelled when the shutdown grace elapses: every stream still open ends with an error
    /// event and settles what it used, instead of being cut off unbilled.
    pub streams_cut: tokio_util::sync::CancellationToken,
    /// Cancelled when shutdown begins: background work started after start-up (the probes
    /// of upstreams a reload added) stops with it.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Set when shutdown begins: the admin listener stays up through the drain and says so.
    pub draining: std::sync::atomic::AtomicBool,
    /// Token mints per key (`identity.token_mints_per_minute`).
    pub token_mints: crate::pipeline::token_exchange::TokenMints,
    /// Where each request's record goes: metrics and the audit trail.
    pub telemetry: Arc<portcullis_telemetry::Telemetry>,
    /// Signed-in dashboard sessions.
    pub dashboard_sessions: crate::admin::DashboardSessions,
    /// The listeners speak TLS (the dashboard's cookie is then `Secure`).
    pub admin_tls: bool,
    /// The audit trail's copy in the store, when kept there (`/admin/v1/requests` reads it).
    pub stored_trail: Option<crate::background::stored_trail::StoredTrail>,
    /// How often the upstreams write each watermark variant: the watermark keeps those shares.
    pub watermark_shares: Arc<portcullis_watermark::Shares>,
    /// The extraction detector beside the path (`[detect]`); `None` when disabled.
    pub threats: Option<Arc<crate::background::threats::Threats>>,
    /// Keys the detector's ladder restricted (no logprobs, one sample, capped output).
    pub restrictions: crate::policy::restrict::Restrictions,
}

impl GatewayState {
    /// `api_keys` resolves an upstream's `api_key_env` to its value.
    pub fn new(
        config: &Config,
        store: Store,
        keys: Arc<KeyCache>,
        admin_token: String,
        api_keys: crate::reload::EnvLookup,
        telemetry: Arc<portcullis_telemetry::Telemetry>,
    ) -> Result<GatewayState, ConfigError> {
        let settings = Settings::build(config, 1, None, |var| api_keys(var))?;
        Ok(GatewayState {
            settings: ArcSwap::from_pointee(settings),
            active_config: tokio::sync::Mutex::new(crate::reload::ActiveConfig::new(
                config.clone(),
                api_keys,
            )),
            http: config.http.clone(),
            allow_anonymous: config.dev.allow_anonymous,
            store,
            keys,
            identity: config.identity.clone(),
            admin_token,
            issuers: Arc::new(
                crate::issuers::ExternalIssuers::new(&config.identity.issuers)
                    .map_err(|p| portcullis_config::ConfigError::new("identity.issuers", p))?,
            ),
            browser_use_recorded: Default::default(),
            limiter: portcullis_limits::Limiter::new(config)
                .map_err(|p| portcullis_config::ConfigError::new("limits", p))?,
            limits: config.limits.clone(),
            screened_blocked: Default::default(),
            screened_flagged: Default::default(),
            streams_cut: Default::default(),
            stopping: Default::default(),
            draining: Default::default(),
            token_mints: crate::pipeline::token_exchange::TokenMints::new(
                config.identity.token_mints_per_minute,
            ),
            telemetry,
            dashboard_sessions: Default::default(),
            admin_tls: config.listeners.tls.is_some(),
            stored_trail: None,
            watermark_shares: Arc::new(portcullis_watermark::Shares::learning()),
            restrictions: Default::default(),
            threats: config.detect.enabled.then(|| {
                Arc::new(crate::background::threats::Threats::new(
                    &config.detect,
                    config.detect.shared_redis(&config.limits),
                ))
            }),
        })
    }
}

impl GatewayState {
    /// The settings in force now. A request calls this once, when it arrives.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Puts `settings` in force for the requests that arrive from now on.
    pub(crate) fn replace_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }

    /// Counts a prompt screened as an attack.
    pub fn record_screening(&self, blocked: bool) {
        let counter = if blocked {
            &self.screened_blocked
        } else {
            &self.screened_flagged
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records, off the request path, that a secret key was presented by a browser.
    pub fn record_browser_use(&self, key_id: &str, signal: &'static str) {
        let now = std::time::Instant::now();
        {
            let mut seen = self
                .browser_use_recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if seen
                .get(key_id)
                .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(60))
            {
                return;
            }
            seen.insert(key_id.to_owned(), now);
        }
        tracing::warn!(
            key_id,
            signal,
            "secret key presented by a browser; the key is likely exposed"
        );
        let store = self.store.clone();
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            let actor = format!("key:{key_id}");
            if let Err(e) = store
                .record_audit(&actor, "key.browser_use", &key_id, "public", signal)
                .await
            {
                tracing::error!(error = %e, "cannot record browser use");
            }
        });
    }
}
