//! Checks that span fields: references between sections, bounds, and safety rules.

use crate::{Config, ConfigError};
use std::collections::HashSet;

pub(crate) fn validate(config: &Config) -> Result<(), ConfigError> {
    listeners(config)?;
    http(config)?;
    store(config)?;
    upstreams(config)?;
    models(config)?;
    log(config)?;
    identity(config)?;
    limits(config)?;
    guard(config)?;
    telemetry(config)?;
    detect(config)?;
    Ok(())
}

/// Algorithms accepted from external issuers: public-key signatures only.
pub const ASYMMETRIC: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Permissions the gateway knows; a typo in a role would otherwise grant nothing silently.
pub const PERMISSIONS: &[&str] = &[
    "*",
    "chat:invoke",
    "completions:invoke",
    "embeddings:invoke",
    "responses:invoke",
    "models:list",
    "tokens:exchange",
    "admin:*",
    "admin:tenants",
    "admin:keys",
    "admin:audit",
    "admin:usage",
    "admin:risk",
    "admin:metrics",
    "admin:config",
    "admin:watermark",
    "admin:threats",
];

fn identity(config: &Config) -> Result<(), ConfigError> {
    let i = &config.identity;
    if i.default_key_lifetime.is_zero() || i.default_key_lifetime > i.max_key_lifetime {
        return Err(ConfigError::new(
            "identity.default_key_lifetime",
            "must be greater than 0s and at most identity.max_key_lifetime",
        ));
    }
    if i.key_refresh_interval.is_zero() {
        return Err(ConfigError::new(
            "identity.key_refresh_interval",
            "must be greater than 0s",
        ));
    }
    if i.token_lifetime.is_zero()
        || i.token_lifetime.get() > std::time::Duration::from_secs(24 * 3600)
    {
        return Err(ConfigError::new(
            "identity.token_lifetime",
            "must be between 1s and 24h: tokens are meant to be short-lived",
        ));
    }
    if i.token_mints_per_minute == 0 {
        return Err(ConfigError::new(
            "identity.token_mints_per_minute",
            "must be at least 1",
        ));
    }
    if i.token_issuer.trim().is_empty() {
        return Err(ConfigError::new(
            "identity.token_issuer",
            "must not be empty",
        ));
    }
    for (n, issuer) in i.issuers.iter().enumerate() {
        let field = |f: &str| format!("identity.issuers[{n}].{f}");
        if issuer.issuer.is_empty() {
            return Err(ConfigError::new(field("issuer"), "must not be empty"));
        }
        if issuer.issuer == i.token_issuer {
            return Err(ConfigError::new(
                field("issuer"),
                "must differ from identity.token_issuer",
            ));
        }
        if issuer.audience.is_empty() {
            return Err(ConfigError::new(field("audience"), "must not be empty"));
        }
        check_base_url(&issuer.jwks_url).map_err(|p| ConfigError::new(field("jwks_url"), p))?;
        if issuer.algorithms.is_empty() {
            return Err(ConfigError::new(
                field("algorithms"),
                "must list at least one algorithm",
            ));
        }
        for alg in &issuer.algorithms {
            if !ASYMMETRIC.contains(&alg.as_str()) {
                return Err(ConfigError::new(
                    field("algorithms"),
                    format!(
                        "`{alg}` is not allowed: only asymmetric algorithms ({}); never `none` or HS*",
                        ASYMMETRIC.join(", ")
                    ),
                ));
            }
        }
        if issuer.jwks_min_refresh.is_zero() {
            return Err(ConfigError::new(
                field("jwks_min_refresh"),
                "must be greater than 0s",
            ));
        }
    }
    for (name, role) in &config.roles {
        for p in &role.permissions {
            if !PERMISSIONS.contains(&p.as_str()) {
                return Err(ConfigError::new(
                    format!("roles.{name}.permissions"),
                    format!(
                        "unknown permission `{p}`; known: {}",
                        PERMISSIONS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn listeners(config: &Config) -> Result<(), ConfigError> {
    let l = &config.listeners;
    // Port 0 asks the OS for a free port, so equal addresses with port 0 do not collide.
    let same = |a: std::net::SocketAddr, b: std::net::SocketAddr| a == b && a.port() != 0;
    if same(l.admin, l.public) {
        return Err(ConfigError::new(
            "listeners.admin",
            "must differ from listeners.public: the admin API is never served to callers",
        ));
    }
    if let Some(internal) = l.internal {
        if same(internal, l.public) || same(internal, l.admin) {
            return Err(ConfigError::new(
                "listeners.internal",
                "must differ from listeners.public and listeners.admin",
            ));
        }
    }
    if config.dev.allow_anonymous {
        let exposed = std::iter::once(("listeners.public", l.public))
            .chain(l.internal.map(|a| ("listeners.internal", a)));
        for (field, addr) in exposed {
            if !addr.ip().is_loopback() {
                return Err(ConfigError::new(
                    "dev.allow_anonymous",
                    format!(
                        "anonymous access is only allowed when every caller listener is on loopback, \
                         but {field} is {addr}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn http(config: &Config) -> Result<(), ConfigError> {
    let h = &config.http;
    let positive = [
        ("http.max_body_bytes", h.max_body_bytes),
        ("http.max_response_bytes", h.max_response_bytes),
        ("http.max_connections", h.max_connections),
    ];
    for (field, value) in positive {
        if value == 0 {
            return Err(ConfigError::new(field, "must be greater than 0"));
        }
    }
    if h.max_header_bytes < 8192 {
        return Err(ConfigError::new(
            "http.max_header_bytes",
            "must be at least 8192 (HTTP/1 parsing needs a buffer that large)",
        ));
    }
    let timeouts = [
        ("http.header_read_timeout", h.header_read_timeout),
        ("http.body_read_timeout", h.body_read_timeout),
        ("http.idle_timeout", h.idle_timeout),
    ];
    for (field, value) in timeouts {
        if value.is_zero() {
            return Err(ConfigError::new(
                field,
                "must be greater than 0s: an unbounded wait lets slow clients hold connections",
            ));
        }
    }
    Ok(())
}

fn store(config: &Config) -> Result<(), ConfigError> {
    let url = &config.store.url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(ConfigError::new("store.url", "sqlite:// needs a file path"));
        }
        return Ok(());
    }
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        if rest.is_empty() {
            return Err(ConfigError::new("store.url", "postgres:// needs a host"));
        }
        return Ok(());
    }
    Err(ConfigError::new(
        "store.url",
        "must start with sqlite:// (e.g. sqlite://portcullis-data/portcullis.db) or postgres://",
    ))
}

fn upstreams(config: &Config) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, u) in config.upstreams.iter().enumerate() {
        let field = |name: &str| format!("upstreams[{i}].{name}");
        if u.name.trim().is_empty() {
            return Err(ConfigError::new(field("name"), "must not be empty"));
        }
        if !names.insert(u.name.as_str()) {
            return Err(ConfigError::new(
                field("name"),
                format!("upstream `{}` is defined twice", u.name),
            ));
        }
        check_base_url(&u.base_url).map_err(|p| ConfigError::new(field("base_url"), p))?;
        if u.max_concurrency == 0 {
            return Err(ConfigError::new(
                field("max_concurrency"),
                "must be greater than 0",
            ));
        }
        for (name, value) in [
            ("connect_timeout", u.connect_timeout),
            ("first_byte_timeout", u.first_byte_timeout),
            ("idle_timeout", u.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(field(name), "must be greater than 0s"));
            }
        }
        if !u.health_check_path.starts_with('/') {
            return Err(ConfigError::new(
                field("health_check_path"),
                "must start with /",
            ));
        }
        if let Some(var) = &u.api_key_env {
            if var.is_empty() || var.contains('=') {
                return Err(ConfigError::new(
                    field("api_key_env"),
                    "must name an environment variable",
                ));
            }
        }
    }
    Ok(())
}

fn check_base_url(url: &str) -> Result<(), String> {
    let uri: http_uri::Parsed = http_uri::parse(url)?;
    if uri.query {
        return Err("must not carry a query string".into());
    }
    Ok(())
}

/// A tiny syntactic check of the base URL; the gateway's HTTP client parses it for real.
mod http_uri {
    pub struct Parsed {
        pub query: bool,
    }

    pub fn parse(url: &str) -> Result<Parsed, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or("must start with http:// or https://")?;
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err("has no host".into());
        }
        if authority.contains('@') {
            return Err("must not carry credentials; use api_key_env".into());
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters".into());
        }
        Ok(Parsed {
            query: rest.contains('?') || rest.contains('#'),
        })
    }
}

fn models(config: &Config) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, m) in config.models.iter().enumerate() {
        let field = |name: &str| format!("models[{i}].{name}");
        if m.name.trim().is_empty() {
            return Err(ConfigError::new(field("name"), "must not be empty"));
        }
        if !names.insert(m.name.as_str()) {
            return Err(ConfigError::new(
                field("name"),
                format!("model `{}` is defined twice", m.name),
            ));
        }
        let Some(upstream) = config.upstreams.iter().find(|u| u.name == m.upstream) else {
            return Err(ConfigError::new(
                field("upstream"),
                format!("no upstream is named `{}`", m.upstream),
            ));
        };
        if upstream.environment == crate::ModelEnvironment::Test
            && m.environment == Some(crate::ModelEnvironment::Live)
        {
            return Err(ConfigError::new(
                field("environment"),
                format!(
                    "upstream `{}` is a test upstream: its models cannot be live",
                    upstream.name
                ),
            ));
        }
        if let Some(t) = &m.tokenizer {
            if !TOKENIZERS.contains(&t.as_str()) {
                return Err(ConfigError::new(
                    field("tokenizer"),
                    format!("must be one of {}, not `{t}`", TOKENIZERS.join(", ")),
                ));
            }
        }
        for (name, price) in [
            ("input_price", m.input_price),
            ("output_price", m.output_price),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                return Err(ConfigError::new(
                    field(name),
                    "must be a number of at least 0",
                ));
            }
        }
        if m.upstream_model.as_deref() == Some("") {
            return Err(ConfigError::new(
                field("upstream_model"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

fn telemetry(config: &Config) -> Result<(), ConfigError> {
    let t = &config.telemetry;
    if !(0.0..=1.0).contains(&t.trace_sample_ratio) {
        return Err(ConfigError::new(
            "telemetry.trace_sample_ratio",
            "must be from 0 to 1",
        ));
    }
    if let Some(url) = &t.otlp_endpoint {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.parse::<http::Uri>().is_ok();
        if !ok {
            return Err(ConfigError::new(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL, like http://127.0.0.1:4318/v1/traces",
            ));
        }
    }
    let kinds = [
        "tenant_cost",
        "error_ratio",
        "refusal_ratio",
        "latency_p99",
        "auth_failures",
        "key_distinct_ips",
        "key_distinct_networks",
        "revoked_key_attempts",
        "audit_dropped",
    ];
    let mut names = HashSet::new();
    for (i, rule) in t.alerts.iter().enumerate() {
        let field = |f: &str| format!("telemetry.alerts[{i}].{f}");
        if rule.name.is_empty() || !names.insert(rule.name.as_str()) {
            return Err(ConfigError::new(field("name"), "must be set and unique"));
        }
        if !kinds.contains(&rule.kind.as_str()) {
            return Err(ConfigError::new(
                field("kind"),
                format!("must be one of {}", kinds.join(", ")),
            ));
        }
        if !rule.threshold.is_finite() || rule.threshold < 0.0 {
            return Err(ConfigError::new(
                field("threshold"),
                "must be a number >= 0",
            ));
        }
        if rule.window.is_some_and(|w| {
            w.get() < std::time::Duration::from_secs(1)
                || w.get() > std::time::Duration::from_secs(3600)
        }) {
            return Err(ConfigError::new(field("window"), "must be from 1s to 1h"));
        }
        if rule.tenant.is_some() && rule.kind != "tenant_cost" {
            return Err(ConfigError::new(
                field("tenant"),
                "applies to `tenant_cost` rules only",
            ));
        }
    }
    for (i, hook) in t.webhooks.iter().enumerate() {
        let ok = (hook.url.starts_with("http://") || hook.url.starts_with("https://"))
            && hook.url.parse::<http::Uri>().is_ok();
        if !ok {
            return Err(ConfigError::new(
                format!("telemetry.webhooks[{i}].url"),
                "must be an http:// or https:// URL",
            ));
        }
    }
    if t.alert_interval.get() < std::time::Duration::from_millis(100) {
        return Err(ConfigError::new(
            "telemetry.alert_interval",
            "must be at least 100ms",
        ));
    }
    let audit = &config.telemetry.audit;
    if audit.max_file_bytes < 4096 {
        return Err(ConfigError::new(
            "telemetry.audit.max_file_bytes",
            "must be at least 4096",
        ));
    }
    if audit.max_file_age.get() < std::time::Duration::from_secs(1) {
        return Err(ConfigError::new(
            "telemetry.audit.max_file_age",
            "must be at least 1s",
        ));
    }
    if audit.retention_days == 0 {
        return Err(ConfigError::new(
            "telemetry.audit.retention_days",
            "must be at least 1",
        ));
    }
    if !(1..=10_000_000).contains(&audit.queue) {
        return Err(ConfigError::new(
            "telemetry.audit.queue",
            "must be from 1 to 10000000",
        ));
    }
    if !(1..=1_000_000).contains(&audit.content_max_chars) {
        return Err(ConfigError::new(
            "telemetry.audit.content_max_chars",
            "must be from 1 to 1000000",
        ));
    }
    let trail = audit.enabled || audit.store == Some(true);
    for (tenant, policy) in &config.telemetry.tenants {
        if policy.log_content && !trail {
            return Err(ConfigError::new(
                format!("telemetry.tenants.{tenant}.log_content"),
                "needs an audit trail (telemetry.audit.enabled or telemetry.audit.store)",
            ));
        }
    }
    Ok(())
}

fn log(config: &Config) -> Result<(), ConfigError> {
    match config.log.format.as_str() {
        "text" | "json" => Ok(()),
        other => Err(ConfigError::new(
            "log.format",
            format!("must be `text` or `json`, not `{other}`"),
        )),
    }
}

/// Tokenizer vocabularies compiled into the gateway.
pub const TOKENIZERS: &[&str] = &["o200k_base", "cl100k_base"];

fn limits(config: &Config) -> Result<(), ConfigError> {
    let l = &config.limits;
    if l.backend == crate::LimitsBackend::Redis && l.redis_url.as_deref().unwrap_or("").is_empty() {
        return Err(ConfigError::new(
            "limits.redis_url",
            "must be set when `backend = \"redis\"`",
        ));
    }
    if let Some(url) = &l.redis_url {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::new(
                "limits.redis_url",
                "must start with redis://, rediss:// or unix://",
            ));
        }
    }
    if !(l.local_fraction.is_finite() && l.local_fraction > 0.0 && l.local_fraction <= 1.0) {
        return Err(ConfigError::new(
            "limits.local_fraction",
            "must be above 0 and at most 1",
        ));
    }
    if l.redis_timeout.is_zero() {
        return Err(ConfigError::new("limits.redis_timeout", "must be above 0"));
    }
    if l.flush_interval.is_zero() {
        return Err(ConfigError::new("limits.flush_interval", "must be above 0"));
    }
    if jiff::tz::TimeZone::get(&l.time_zone).is_err() {
        return Err(ConfigError::new(
            "limits.time_zone",
            format!("`{}` is not a known IANA time zone", l.time_zone),
        ));
    }
    let spec = |field: String, spec: &crate::LimitSpec| -> Result<(), ConfigError> {
        match spec.invalid_field() {
            Some((name, problem)) => Err(ConfigError::new(format!("{field}.{name}"), problem)),
            None => Ok(()),
        }
    };
    for (name, plan) in &config.plans {
        spec(format!("plans.{name}.tenant"), &plan.tenant)?;
        spec(format!("plans.{name}.key"), &plan.key)?;
        for (model, s) in &plan.models {
            if !config.models.iter().any(|m| &m.name == model) {
                return Err(ConfigError::new(
                    format!("plans.{name}.models.{model}"),
                    format!("no model is named `{model}`"),
                ));
            }
            spec(format!("plans.{name}.models.{model}"), s)?;
        }
        if plan.min_output_tokens() == 0 || plan.min_output_tokens() > plan.default_max_tokens() {
            return Err(ConfigError::new(
                format!("plans.{name}.min_output_tokens"),
                "must be at least 1 and at most default_max_tokens",
            ));
        }
    }
    for (name, s) in &config.tenant_limits {
        spec(format!("tenant_limits.{name}"), s)?;
    }
    for (name, s) in &config.key_limits {
        spec(format!("key_limits.{name}"), s)?;
    }
    Ok(())
}

fn guard(config: &Config) -> Result<(), ConfigError> {
    let check = |field: String, threshold: Option<f32>| match threshold {
        Some(t) if !(t.is_finite() && t > 0.0 && t <= 1.0) => {
            Err(ConfigError::new(field, "must be above 0 and at most 1"))
        }
        _ => Ok(()),
    };
    check(
        "guard.injection_threshold".into(),
        config.guard.injection_threshold,
    )?;
    for (name, plan) in &config.plans {
        check(
            format!("plans.{name}.guard.injection_threshold"),
            plan.guard.injection_threshold,
        )?;
    }
    for (i, m) in config.models.iter().enumerate() {
        check(
            format!("models[{i}].guard.injection_threshold"),
            m.guard.injection_threshold,
        )?;
    }
    Ok(())
}

fn detect(config: &Config) -> Result<(), ConfigError> {
    let d = &config.detect;
    if d.enabled && !(1..=1 << 20).contains(&d.queue) {
        return Err(ConfigError::new("detect.queue", "must be 1 to 1048576"));
    }
    if d.enabled && !(1..=50_000_000).contains(&d.max_keys) {
        return Err(ConfigError::new("detect.max_keys", "must be 1 to 50000000"));
    }
    for (i, subject) in d.allow.iter().enumerate() {
        let ok = subject
            .split_once(':')
            .is_some_and(|(kind, id)| matches!(kind, "tenant" | "key") && !id.is_empty());
        if !ok {
            return Err(ConfigError::new(
                format!("detect.allow[{i}]"),
                "must be `tenant:NAME` or `key:ID`",
            ));
        }
    }
    if d.enabled
        && d.backend == crate::DetectBackend::Redis
        && d.shared_redis(&config.limits).is_none()
    {
        return Err(ConfigError::new(
            "detect.redis_url",
            "must be set (or `limits.redis_url`) when `backend = \"redis\"`",
        ));
    }
    if let Some(url) = &d.redis_url {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::new(
                "detect.redis_url",
                "must start with redis://, rediss:// or unix://",
            ));
        }
    }
    let mut last = 0.0;
    for (i, rung) in d.ladder.iter().enumerate() {
        let field = |f: &str| format!("detect.ladder[{i}].{f}");
        if !(rung.risk > 0.0 && rung.risk <= 1.0) || rung.risk < last {
            return Err(ConfigError::new(
                field("risk"),
                "must be in (0, 1] and not below the rung before",
            ));
        }
        last = rung.risk;
        if rung.max_tokens == 0 {
            return Err(ConfigError::new(field("max_tokens"), "must be at least 1"));
        }
        if !(0.001..=1.0).contains(&rung.factor) {
            return Err(ConfigError::new(field("factor"), "must be 0.001 to 1"));
        }
        if rung.hold.is_zero() || rung.hold.get() > std::time::Duration::from_secs(90 * 86_400) {
            return Err(ConfigError::new(
                field("hold"),
                "must be more than 0 and at most 90 days",
            ));
        }
        for plan in &rung.plans {
            if plan != "default" && !config.plans.contains_key(plan) {
                return Err(ConfigError::new(
                    field("plans"),
                    format!("no plan named {plan:?}"),
                ));
            }
        }
    }
    Ok(())
}
