//! Prometheus metrics, fed by the per-request record.
//!
//! Every label's values are bounded by design: the listener, endpoint, status class, decision,
//! guard rule and error code come from fixed sets in the gateway; models only from the
//! configured catalogue (a request for a model that does not exist is counted under no model);
//! tenants only once authenticated (tenants exist only when an operator creates them); key ids
//! only when `telemetry.per_key_metrics` is on. Nothing a caller writes becomes a label value.
//!
//! The OpenTelemetry GenAI client and server metrics are kept too, under the names Prometheus
//! gives them when translated (`gen_ai_client_token_usage`, `gen_ai_server_request_duration`,
//! `gen_ai_server_time_to_first_token`), so dashboards built for them work unchanged.

use crate::record::RequestRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: String,
    endpoint: String,
    model: String,
    status_class: &'static str,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointModel {
    endpoint: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantModelType {
    tenant: String,
    model: String,
    #[prometheus(flatten)]
    kind: TokenType,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenType {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantModel {
    tenant: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantKey {
    tenant: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    decision: String,
    scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    guard: String,
    rule: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabel {
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabel {
    pub alert: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// A tenant's calendar quota: `tokens_per_day`, `tokens_per_month`, `cost_per_day`,
/// `cost_per_month` or `spend_cap`, as the plan names it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    pub tenant: String,
    pub quota: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiTokens {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
    gen_ai_token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiRequest {
    gen_ai_operation_name: &'static str,
    gen_ai_request_model: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds: from half a millisecond (a refusal) to two minutes (a long generation).
const SECONDS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// The GenAI semantic conventions' advised boundaries for durations.
const GEN_AI_SECONDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The GenAI semantic conventions' advised boundaries for token counts.
const GEN_AI_TOKENS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

fn seconds() -> Histogram {
    Histogram::new(SECONDS)
}

fn gen_ai_seconds() -> Histogram {
    Histogram::new(GEN_AI_SECONDS)
}

fn gen_ai_tokens() -> Histogram {
    Histogram::new(GEN_AI_TOKENS)
}

/// State read when scraped (set by the gateway just before encoding).
pub struct Gauges {
    pub upstream_in_flight: Family<UpstreamLabel, Gauge>,
    pub upstream_healthy: Family<UpstreamLabel, Gauge>,
    pub limits_backend_healthy: Family<BackendLabel, Gauge>,
    pub limits_outage_decisions: Family<BackendLabel, Gauge>,
    pub store_up: Gauge,
    pub audit_queue_depth: Gauge,
    pub audit_dropped: Counter<u64, AtomicU64>,
    pub audit_written: Counter<u64, AtomicU64>,
    pub spans_exported: Counter<u64, AtomicU64>,
    pub spans_dropped: Counter<u64, AtomicU64>,
    pub alerts_firing: Family<AlertLabel, Gauge>,
    pub notifications: Family<ResultLabel, Counter>,
    /// What is left of each calendar quota of the tenants that used most in the last hour
    /// (tokens, or currency units); replaced whole at each refresh, so a tenant that drops
    /// out of the top leaves no stale series.
    pub quota_remaining: Family<QuotaLabels, Gauge<f64, AtomicU64>>,
    pub quota_limit: Family<QuotaLabels, Gauge<f64, AtomicU64>>,
    /// When the quota gauges were last read from the store.
    pub quotas_read_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    per_key: bool,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<EndpointModel>,
    upstream_ttfb: Histograms<ModelLabel>,
    ttft: Histograms<ModelLabel>,
    tokens: Family<TenantModelType, Counter>,
    cost: Family<TenantModel, Counter<f64, AtomicU64>>,
    tenant_requests: Family<TenantModel, Counter>,
    key_requests: Family<TenantKey, Counter>,
    key_tokens: Family<TenantKey, Counter>,
    limiter: Family<LimitLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
    upstream_errors: Family<ReasonLabel, Counter>,
    outcomes: Family<OutcomeLabel, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    gen_ai_tokens: Histograms<GenAiTokens>,
    gen_ai_duration: Histograms<GenAiRequest>,
    gen_ai_ttft: Histograms<GenAiRequest>,
    pub gauges: Gauges,
}

impl Metrics {
    pub fn new(per_key: bool, version: &str) -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            per_key,
            requests: Family::default(),
            duration: Family::new_with_constructor(seconds),
            upstream_ttfb: Family::new_with_constructor(seconds),
            ttft: Family::new_with_constructor(seconds),
            tokens: Family::default(),
            cost: Family::default(),
            tenant_requests: Family::default(),
            key_requests: Family::default(),
            key_tokens: Family::default(),
            limiter: Family::default(),
            findings: Family::default(),
            auth_failures: Family::default(),
            upstream_errors: Family::default(),
            outcomes: Family::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            gen_ai_tokens: Family::new_with_constructor(gen_ai_tokens),
            gen_ai_duration: Family::new_with_constructor(gen_ai_seconds),
            gen_ai_ttft: Family::new_with_constructor(gen_ai_seconds),
            gauges: Gauges {
                upstream_in_flight: Family::default(),
                upstream_healthy: Family::default(),
                limits_backend_healthy: Family::default(),
                limits_outage_decisions: Family::default(),
                store_up: Gauge::default(),
                audit_queue_depth: Gauge::default(),
                audit_dropped: Counter::default(),
                audit_written: Counter::default(),
                spans_exported: Counter::default(),
                spans_dropped: Counter::default(),
                alerts_firing: Family::default(),
                notifications: Family::default(),
                quota_remaining: Family::default(),
                quota_limit: Family::default(),
                quotas_read_at: std::sync::Mutex::new(None),
            },
        };
        let r = &mut registry;
        r.register(
            "portcullis_build",
            "The running build.",
            Info::new(vec![("version", version.to_owned())]),
        );
        r.register(
            "portcullis_requests",
            "Requests by listener, endpoint, model, status class and decision.",
            m.requests.clone(),
        );
        r.register_with_unit(
            "portcullis_request_duration",
            "Time from a request's arrival to the end of its response (a stream's last event).",
            Unit::Seconds,
            m.duration.clone(),
        );
        r.register_with_unit(
            "portcullis_upstream_time_to_first_byte",
            "Time from a request's arrival to the upstream's response head.",
            Unit::Seconds,
            m.upstream_ttfb.clone(),
        );
        r.register_with_unit(
            "portcullis_time_to_first_token",
            "Time from a request's arrival to the first content sent to the caller.",
            Unit::Seconds,
            m.ttft.clone(),
        );
        r.register(
            "portcullis_tokens",
            "Tokens used (reported by the upstream, else counted), by tenant, model and type.",
            m.tokens.clone(),
        );
        r.register(
            "portcullis_cost_usd",
            "Cost at the configured prices, in US dollars, by tenant and model.",
            m.cost.clone(),
        );
        r.register(
            "portcullis_tenant_requests",
            "Requests by tenant and model (authenticated requests only).",
            m.tenant_requests.clone(),
        );
        if per_key {
            r.register(
                "portcullis_key_requests",
                "Requests by key (telemetry.per_key_metrics).",
                m.key_requests.clone(),
            );
            r.register(
                "portcullis_key_tokens",
                "Tokens by key, input and output (telemetry.per_key_metrics).",
                m.key_tokens.clone(),
            );
        }
        r.register(
            "portcullis_limiter_decisions",
            "Limiter decisions: admitted, or the refusing limit, and whose limit it was.",
            m.limiter.clone(),
        );
        r.register(
            "portcullis_guard_findings",
            "What the guards found and did, by guard, rule and action.",
            m.findings.clone(),
        );
        r.register(
            "portcullis_auth_failures",
            "Requests refused by authentication or authorization, by error code.",
            m.auth_failures.clone(),
        );
        r.register(
            "portcullis_upstream_errors",
            "Upstream failures and bulkhead rejections, by error code.",
            m.upstream_errors.clone(),
        );
        r.register(
            "portcullis_response_outcomes",
            "How responses that reached an upstream ended.",
            m.outcomes.clone(),
        );
        r.register_with_unit(
            "portcullis_request_body",
            "Request body bytes received.",
            Unit::Bytes,
            m.bytes_in.clone(),
        );
        r.register_with_unit(
            "portcullis_response_body",
            "Response body bytes sent.",
            Unit::Bytes,
            m.bytes_out.clone(),
        );
        let g = &m.gauges;
        r.register(
            "portcullis_upstream_in_flight",
            "Requests in flight to each upstream (its bulkhead in use).",
            g.upstream_in_flight.clone(),
        );
        r.register(
            "portcullis_upstream_healthy",
            "1 when the upstream's health probe passes.",
            g.upstream_healthy.clone(),
        );
        r.register(
            "portcullis_limits_backend_healthy",
            "1 when the limit backend answers.",
            g.limits_backend_healthy.clone(),
        );
        r.register(
            "portcullis_limits_outage_decisions",
            "Decisions taken under the outage policy since start.",
            g.limits_outage_decisions.clone(),
        );
        r.register(
            "portcullis_store_up",
            "1 when the store answered the last readiness or metrics check.",
            g.store_up.clone(),
        );
        r.register(
            "portcullis_audit_queue_depth",
            "Records waiting for the audit writer.",
            g.audit_queue_depth.clone(),
        );
        r.register(
            "portcullis_audit_records_dropped",
            "Records dropped because the audit queue was full (requests never wait for it).",
            g.audit_dropped.clone(),
        );
        r.register(
            "portcullis_audit_records_written",
            "Records written to the audit trail.",
            g.audit_written.clone(),
        );
        r.register(
            "portcullis_spans_exported",
            "Spans accepted by the OTLP endpoint.",
            g.spans_exported.clone(),
        );
        r.register(
            "portcullis_spans_dropped",
            "Request spans dropped because the export queue was full.",
            g.spans_dropped.clone(),
        );
        r.register(
            "portcullis_alerts_firing",
            "Instances of each alert rule firing now.",
            g.alerts_firing.clone(),
        );
        r.register(
            "portcullis_alert_notifications",
            "Alert webhook notifications: delivered, failed after every retry, or dropped.",
            g.notifications.clone(),
        );
        r.register(
            "portcullis_quota_remaining",
            "What is left of each calendar quota of the tenants that used most in the last hour (settled usage; tokens or currency units).",
            g.quota_remaining.clone(),
        );
        r.register(
            "portcullis_quota_limit",
            "The calendar quotas of the tenants in portcullis_quota_remaining.",
            g.quota_limit.clone(),
        );
        r.register(
            "gen_ai_client_token_usage",
            "GenAI semantic conventions: tokens used per request, input and output.",
            m.gen_ai_tokens.clone(),
        );
        r.register_with_unit(
            "gen_ai_server_request_duration",
            "GenAI semantic conventions: time to the last byte of the response.",
            Unit::Seconds,
            m.gen_ai_duration.clone(),
        );
        r.register_with_unit(
            "gen_ai_server_time_to_first_token",
            "GenAI semantic conventions: time to the first token.",
            Unit::Seconds,
            m.gen_ai_ttft.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one finished request.
    pub fn observe(&self, record: &RequestRecord) {
        let model = record.model.clone().unwrap_or_default();
        let endpoint = record.endpoint.clone();
        self.requests
            .get_or_create(&RequestLabels {
                listener: record.listener.clone(),
                endpoint: endpoint.clone(),
                model: model.clone(),
                status_class: record.status_class(),
                decision: record.decision.action.clone(),
            })
            .inc();
        let duration = record.timing.duration_ms / 1000.0;
        self.duration
            .get_or_create(&EndpointModel {
                endpoint,
                model: model.clone(),
            })
            .observe(duration);
        if let Some(ms) = record.timing.upstream_first_byte_ms {
            self.upstream_ttfb
                .get_or_create(&ModelLabel {
                    model: model.clone(),
                })
                .observe(ms / 1000.0);
        }
        if let Some(ms) = record.timing.first_token_ms {
            self.ttft
                .get_or_create(&ModelLabel {
                    model: model.clone(),
                })
                .observe(ms / 1000.0);
        }
        self.bytes_in.inc_by(record.bytes_in);
        self.bytes_out.inc_by(record.bytes_out);
        self.observe_principal(record, &model);
        if let Some(limit) = &record.limit {
            self.limiter
                .get_or_create(&LimitLabels {
                    decision: limit.decision.clone(),
                    scope: limit.scope.clone().unwrap_or_default(),
                })
                .inc();
        }
        for f in &record.findings {
            self.findings
                .get_or_create(&FindingLabels {
                    guard: f.guard.clone(),
                    rule: f.rule.clone(),
                    action: f.action.clone(),
                })
                .inc_by(u64::from(f.count));
        }
        if let Some(code) = &record.decision.code {
            if matches!(record.decision.status, 401 | 403) {
                self.auth_failures
                    .get_or_create(&ReasonLabel {
                        reason: code.clone(),
                    })
                    .inc();
            }
            if code.starts_with("upstream_") || record.outcome.as_deref() == Some("upstream_failed")
            {
                self.upstream_errors
                    .get_or_create(&ReasonLabel {
                        reason: code.clone(),
                    })
                    .inc();
            }
        }
        if let Some(outcome) = &record.outcome {
            self.outcomes
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.clone(),
                })
                .inc();
        }
        self.observe_gen_ai(record, model, duration);
    }

    fn observe_principal(&self, record: &RequestRecord, model: &str) {
        let Some(p) = &record.principal else {
            return;
        };
        let tenant_model = TenantModel {
            tenant: p.tenant.clone(),
            model: model.to_owned(),
        };
        self.tenant_requests.get_or_create(&tenant_model).inc();
        let t = record.tokens;
        for (kind, n) in [("input", t.input), ("output", t.output)] {
            if n > 0 {
                self.tokens
                    .get_or_create(&TenantModelType {
                        tenant: p.tenant.clone(),
                        model: model.to_owned(),
                        kind: TokenType { r#type: kind },
                    })
                    .inc_by(n);
            }
        }
        if record.cost_usd > 0.0 {
            self.cost
                .get_or_create(&tenant_model)
                .inc_by(record.cost_usd);
        }
        if self.per_key {
            let key = TenantKey {
                tenant: p.tenant.clone(),
                key: p.key_id.clone(),
            };
            self.key_requests.get_or_create(&key).inc();
            let tokens = t.input + t.output;
            if tokens > 0 {
                self.key_tokens.get_or_create(&key).inc_by(tokens);
            }
        }
    }

    fn observe_gen_ai(&self, record: &RequestRecord, model: String, duration: f64) {
        let operation = match record.endpoint.as_str() {
            "chat.completions" | "responses" => "chat",
            "completions" => "text_completion",
            "embeddings" => "embeddings",
            _ => return,
        };
        if record.decision.action != "allowed" {
            return;
        }
        let request = GenAiRequest {
            gen_ai_operation_name: operation,
            gen_ai_request_model: model,
        };
        self.gen_ai_duration
            .get_or_create(&request)
            .observe(duration);
        if let Some(ms) = record.timing.first_token_ms {
            self.gen_ai_ttft
                .get_or_create(&request)
                .observe(ms / 1000.0);
        }
        for (kind, n) in [
            ("input", record.tokens.input),
            ("output", record.tokens.output),
        ] {
            if n > 0 || record.tokens.reported {
                self.gen_ai_tokens
                    .get_or_create(&GenAiTokens {
                        gen_ai_operation_name: operation,
                        gen_ai_request_model: request.gen_ai_request_model.clone(),
                        gen_ai_token_type: kind,
                    })
                    .observe(n as f64);
            }
        }
    }

    /// OpenMetrics text (`application/openmetrics-text; version=1.0.0`).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The Prometheus text format (`text/plain; version=0.0.4`): the OpenMetrics text with
    /// the differences of the older format applied (counters' and infos' family names carry
    /// their suffix, no `# UNIT` lines, no `# EOF`).
    pub fn encode_prometheus(&self) -> String {
        to_prometheus_text(&self.encode_openmetrics())
    }
}

/// Rewrites OpenMetrics text as the Prometheus 0.0.4 text format.
fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut suffix: Option<(&str, &str)> = None;
    let mut types = std::collections::HashMap::new();
    // Family types come after their HELP line: read them first.
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                types.insert(name, kind);
            }
        }
    }
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        for prefix in ["# HELP ", "# TYPE "] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                suffix = match types.get(name).copied() {
                    Some("counter") => Some((name, "_total")),
                    Some("info") => Some((name, "_info")),
                    _ => None,
                };
                let tail = if prefix == "# TYPE " && tail == "info" {
                    "gauge"
                } else {
                    tail
                };
                out.push_str(prefix);
                out.push_str(name);
                if let Some((_, s)) = suffix {
                    out.push_str(s);
                }
                out.push(' ');
                out.push_str(tail);
                out.push('\n');
            }
        }
        if line.starts_with('#') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let _ = suffix;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decision, PrincipalRecord, Tokens};

    fn record(tenant: &str, model: &str) -> RequestRecord {
        RequestRecord {
            listener: "public".into(),
            endpoint: "chat.completions".into(),
            model: Some(model.into()),
            principal: Some(PrincipalRecord {
                tenant: tenant.into(),
                key_id: "k1".into(),
                ..Default::default()
            }),
            decision: Decision {
                action: "allowed".into(),
                status: 200,
                code: None,
            },
            tokens: Tokens {
                input: 12,
                output: 30,
                reported: true,
                ..Default::default()
            },
            cost_usd: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn both_formats_carry_the_counts() {
        let m = Metrics::new(false, "0.1.0");
        m.observe(&record("acme", "sim-chat"));
        m.observe(&record("acme", "sim-chat"));
        let om = m.encode_openmetrics();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE portcullis_requests counter"), "{om}");
        assert!(om.contains(
            "portcullis_requests_total{listener=\"public\",endpoint=\"chat.completions\",model=\"sim-chat\",status_class=\"2xx\",decision=\"allowed\"} 2"
        ), "{om}");
        assert!(
            om.contains(
                "portcullis_tokens_total{tenant=\"acme\",model=\"sim-chat\",type=\"output\"} 60"
            ),
            "{om}"
        );
        assert!(
            om.contains("portcullis_cost_usd_total{tenant=\"acme\",model=\"sim-chat\"} 1.0"),
            "{om}"
        );
        let text = m.encode_prometheus();
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portcullis_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portcullis_build_info gauge"),
            "{text}"
        );
        assert!(
            text.contains("portcullis_build_info{version=\"0.1.0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portcullis_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("gen_ai_client_token_usage_bucket{le=\"64.0\",gen_ai_operation_name=\"chat\",gen_ai_request_model=\"sim-chat\",gen_ai_token_type=\"output\"} 2") || text.contains("gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"sim-chat\",gen_ai_token_type=\"output\",le=\"64.0\"} 2"), "{text}");
    }

    #[test]
    fn key_ids_are_labels_only_when_asked() {
        let off = Metrics::new(false, "0");
        off.observe(&record("acme", "m"));
        assert!(!off.encode_openmetrics().contains("key=\"k1\""));
        let on = Metrics::new(true, "0");
        on.observe(&record("acme", "m"));
        assert!(on
            .encode_openmetrics()
            .contains("portcullis_key_requests_total{tenant=\"acme\",key=\"k1\"} 1"));
    }
}
