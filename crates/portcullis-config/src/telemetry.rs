//! `[telemetry]`: metrics, the audit trail and what they may carry.

use crate::Duration;
use serde::Deserialize;
use std::path::PathBuf;

/// Metrics on the admin listener's `/metrics`, and the audit trail.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Serve Prometheus metrics on the admin listener's `/metrics`. Default true.
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Label request and token counts with key ids too. Off by default: a deployment with
    /// many keys would make as many series.
    #[serde(default)]
    pub per_key_metrics: bool,
    /// The audit trail of every request and admin action.
    #[serde(default)]
    pub audit: Audit,
    /// Where spans are sent, over OTLP/HTTP (protobuf): the full URL, like
    /// `http://collector:4318/v1/traces`. Default: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended, else no traces.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans. Default `OTEL_SERVICE_NAME`, else `portcullis`.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Share of new traces recorded, 0 to 1 (a continued trace keeps its caller's decision).
    /// Default 1.
    #[serde(default = "one")]
    pub trace_sample_ratio: f64,
    /// Continue a caller's W3C `traceparent` (and pass its `tracestate` on). Off by default:
    /// an outside caller would choose trace ids and force sampling. Turn on behind a trusted
    /// proxy or for internal callers.
    #[serde(default)]
    pub trust_incoming_trace: bool,
    /// Alert rules, evaluated in process every `alert_interval`.
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
    /// Where alerts are sent when they fire and when they resolve.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// How often alert rules are evaluated. Default 5s.
    #[serde(default = "alert_interval")]
    pub alert_interval: Duration,
    /// Per-tenant telemetry policy, by tenant name.
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, TenantTelemetry>,
}

/// What the trail may keep of one tenant's requests.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantTelemetry {
    /// Keep prompt and completion text in the audit trail (secrets and personal data
    /// redacted, cut at `audit.content_max_chars`). Never for models marked `sensitive`.
    /// Default false: the trail holds no text.
    #[serde(default)]
    pub log_content: bool,
}

/// One alert rule: `kind` measured over `window`, firing once above `threshold` for `for`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// A name of your choosing, unique among the rules.
    pub name: String,
    /// `tenant_cost` (US dollars per tenant), `error_ratio` (5xx share), `refusal_ratio`,
    /// `latency_p99` (seconds), `auth_failures` (count), `key_distinct_ips` (addresses per
    /// key), `key_distinct_networks` (IPv4 /16s and IPv6 /48s per key), `revoked_key_attempts` (per key), `audit_dropped` (records since start).
    pub kind: String,
    /// The value above which the rule holds, in the kind's unit.
    pub threshold: f64,
    /// What the rule reads. Default by kind: 1h for tenant cost, distinct IPs and revoked
    /// keys; 1m for auth failures; 5m otherwise. At most 1h.
    #[serde(default)]
    pub window: Option<Duration>,
    /// How long the condition must hold before firing. Default 0s.
    #[serde(default, rename = "for")]
    pub for_: Option<Duration>,
    /// `tenant_cost` only: this tenant (default every tenant, each its own alert).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Ratios and latency need this many requests in the window. Default 20.
    #[serde(default = "min_requests")]
    pub min_requests: u64,
}

/// A webhook that receives alerts as JSON (see the README for the body and signature).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret. Default: unsigned.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            metrics: true,
            per_key_metrics: false,
            audit: Audit::default(),
            otlp_endpoint: None,
            service_name: None,
            trace_sample_ratio: 1.0,
            trust_incoming_trace: false,
            alerts: Vec::new(),
            webhooks: Vec::new(),
            alert_interval: alert_interval(),
            tenants: Default::default(),
        }
    }
}

/// JSON-lines files of request records and security events, rotated and pruned.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Write the trail. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Directory of the files (created mode 0700; files 0600). Default `audit` in the store's
    /// data directory.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// A file is closed and a new one begun at this size. Default 64 MiB.
    #[serde(default = "max_file_bytes")]
    pub max_file_bytes: u64,
    /// ... or at this age. Default 1 day.
    #[serde(default = "max_file_age")]
    pub max_file_age: Duration,
    /// Files last written longer ago than this many days are removed. Default 30.
    #[serde(default = "retention_days")]
    pub retention_days: u32,
    /// Records that may wait for the writer; past this they are dropped and counted
    /// (`portcullis_audit_records_dropped_total`), never waited for. Default 65536.
    #[serde(default = "queue")]
    pub queue: usize,
    /// Also keep request records in the store, where every replica's can be read together
    /// (and `/admin/v1/requests` reads them). Default: true when the store is PostgreSQL.
    #[serde(default)]
    pub store: Option<bool>,
    /// The most characters of prompt and of completion kept for a tenant with
    /// `log_content`. Default 8192.
    #[serde(default = "content_max_chars")]
    pub content_max_chars: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: true,
            dir: None,
            max_file_bytes: max_file_bytes(),
            max_file_age: max_file_age(),
            retention_days: retention_days(),
            queue: queue(),
            store: None,
            content_max_chars: content_max_chars(),
        }
    }
}

fn alert_interval() -> Duration {
    Duration::from_secs(5)
}

fn min_requests() -> u64 {
    20
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

fn max_file_bytes() -> u64 {
    64 * 1024 * 1024
}

fn max_file_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn retention_days() -> u32 {
    30
}

fn queue() -> usize {
    65536
}

fn content_max_chars() -> usize {
    8192
}
