//! Telemetry: what the gateway decided about each request, made visible.
//!
//! The request path builds one [`RequestRecord`] per request and hands it to [`Telemetry`]
//! when the response ends (a stream: at its last event). From that one record come the
//! Prometheus metrics ([`metrics`]), the audit trail and its security events ([`audit`],
//! [`security`]); later consumers (traces, the threat detector) read the same record. Nothing
//! here blocks a request: metrics are atomic counters, the trail is a bounded queue.

pub mod alerts;
pub mod audit;
pub mod dashboard;
pub mod fingerprint;
pub mod metrics;
pub mod record;
pub mod security;
pub mod trace;

pub use audit::{AuditSettings, AuditSink};
pub use fingerprint::{Fingerprint, FingerprintKey};
pub use metrics::Metrics;
pub use record::Content;
pub use record::RequestRecord;
pub use security::AdminEvent;

/// The HTTP client telemetry sends with (spans, webhooks): the gateway's, with its TLS roots.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Where records go.
pub struct Telemetry {
    metrics: Option<Metrics>,
    audit: Option<AuditSink>,
    spans: Option<trace::SpanExporter>,
    tracing: TraceSettings,
    /// The recent past (alert rules and the dashboard read it) and the alerts' states.
    alerts: alerts::Alerts,
    webhooks: Option<alerts::webhook::Webhooks>,
    /// The metrics' counters, kept also when metrics are not exported (alerts read them).
    gauges_only: Option<Metrics>,
    fingerprint: FingerprintKey,
    content: ContentPolicy,
    /// Consumers beside the trail that read every record (the store's copy of the trail).
    taps: Vec<Tap>,
}

/// A consumer's end of the records: a bounded queue it drains at its own pace. It is never
/// woken per record (its task polls), and a full queue drops the record and counts it.
struct Tap {
    queue: tokio::sync::mpsc::Sender<std::sync::Arc<RequestRecord>>,
    dropped: prometheus_client::metrics::counter::Counter,
}

/// Whose prompt and completion text the trail keeps.
#[derive(Debug, Clone, Default)]
pub struct ContentPolicy {
    /// Tenants whose policy says `log_content = true`.
    pub tenants: std::collections::HashSet<String>,
    /// The most characters kept of each text.
    pub max_chars: usize,
}

/// How trace contexts are decided.
#[derive(Debug, Clone, Copy)]
pub struct TraceSettings {
    /// Continue a caller's `traceparent`.
    pub trust_incoming: bool,
    /// Share of new traces sampled, 0 to 1.
    pub sample_ratio: f64,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.metrics.is_some())
            .field("audit", &self.audit)
            .finish()
    }
}

/// What telemetry is on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub metrics: bool,
    pub per_key_metrics: bool,
    /// `None`: no audit trail.
    pub audit: Option<AuditSettings>,
    /// The deployment's secret for prompt fingerprints.
    pub fingerprint_secret: Vec<u8>,
    pub version: String,
    /// `None`: no span export.
    pub otlp: Option<trace::OtlpSettings>,
    pub tracing: TraceSettings,
    pub alerts: Vec<alerts::AlertRule>,
    pub webhooks: Vec<alerts::webhook::WebhookTarget>,
    /// For span export and webhooks (`None`: neither is configured).
    pub http_client: Option<HttpClient>,
    pub content: ContentPolicy,
}

impl Telemetry {
    /// Starts the audit writer (when on; its thread ends once the returned `Telemetry` and
    /// every clone of its sink are dropped) and the span exporter (when on; on the current
    /// Tokio runtime).
    pub fn start(
        settings: Settings,
    ) -> std::io::Result<(Telemetry, Option<std::thread::JoinHandle<()>>)> {
        // The counters exist (and count drops) even when metrics are not exported.
        let metrics = Metrics::new(settings.per_key_metrics, &settings.version);
        let (audit, writer) = match settings.audit {
            Some(audit) => {
                let g = &metrics.gauges;
                let (sink, handle) = AuditSink::start(
                    audit,
                    g.audit_dropped.clone(),
                    g.audit_written.clone(),
                    g.audit_queue_depth.clone(),
                )?;
                (Some(sink), Some(handle))
            }
            None => (None, None),
        };
        let g = &metrics.gauges;
        let client = settings.http_client;
        let spans = match (settings.otlp, &client) {
            (Some(otlp), Some(client)) => Some(trace::SpanExporter::start(
                otlp,
                client.clone(),
                g.spans_dropped.clone(),
                g.spans_exported.clone(),
            )),
            _ => None,
        };
        // One counter at a time: a family's guard must be gone before the next lookup.
        let counter = |result: &'static str| {
            g.notifications
                .get_or_create(&metrics::ResultLabel { result })
                .clone()
        };
        let (delivered, failed, dropped) =
            (counter("delivered"), counter("failed"), counter("dropped"));
        let webhooks = match (&client, settings.webhooks.is_empty()) {
            (Some(client), false) => Some(alerts::webhook::Webhooks::start(
                settings.webhooks,
                client.clone(),
                delivered,
                failed,
                dropped,
            )),
            _ => None,
        };
        let alerts = alerts::Alerts::new(settings.alerts);
        let (metrics, gauges_only) = if settings.metrics {
            (Some(metrics), None)
        } else {
            (None, Some(metrics))
        };
        Ok((
            Telemetry {
                metrics,
                audit,
                spans,
                tracing: settings.tracing,
                alerts,
                webhooks,
                gauges_only,
                fingerprint: FingerprintKey::new(&settings.fingerprint_secret),
                content: settings.content,
                taps: Vec::new(),
            },
            writer,
        ))
    }

    /// Telemetry that records nothing (tools and tests that need no trail).
    pub fn off() -> Telemetry {
        Telemetry {
            metrics: None,
            audit: None,
            spans: None,
            tracing: TraceSettings {
                trust_incoming: false,
                sample_ratio: 0.0,
            },
            alerts: alerts::Alerts::new(Vec::new()),
            webhooks: None,
            gauges_only: None,
            fingerprint: FingerprintKey::new(b"off"),
            content: ContentPolicy::default(),
            taps: Vec::new(),
        }
    }

    /// A request ended: count it, and queue it (one shared copy) for the trail and the spans.
    pub fn finish(&self, record: RequestRecord) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(&record);
        }
        self.alerts.observe(&record, unix_seconds());
        let record = std::sync::Arc::new(record);
        if let Some(spans) = &self.spans {
            spans.export(&record);
        }
        for tap in &self.taps {
            if tap.queue.try_send(record.clone()).is_err() {
                tap.dropped.inc();
            }
        }
        if let Some(audit) = &self.audit {
            audit.record(record);
        }
    }

    /// A new consumer of every record from now on, with room for `capacity` unread ones
    /// (more are dropped and counted with the trail's drops). Drain it with `try_recv` on a
    /// timer: a task waiting in `recv` would be woken per request.
    pub fn tap(
        &mut self,
        capacity: usize,
    ) -> tokio::sync::mpsc::Receiver<std::sync::Arc<RequestRecord>> {
        let (queue, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let dropped = self
            .counters()
            .map(|m| m.gauges.audit_dropped.clone())
            .unwrap_or_default();
        self.taps.push(Tap { queue, dropped });
        rx
    }

    /// Records a consumer could not keep (counted with the trail's drops).
    pub fn count_dropped(&self, n: u64) {
        if let Some(m) = self.counters() {
            m.gauges.audit_dropped.inc_by(n);
        }
    }

    /// An admin action, for the security events.
    pub fn admin(&self, event: AdminEvent) {
        if let Some(audit) = &self.audit {
            audit.admin(event);
        }
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    /// The counters, whether or not they are exported.
    fn counters(&self) -> Option<&Metrics> {
        self.metrics.as_ref().or(self.gauges_only.as_ref())
    }

    pub fn alerts(&self) -> &alerts::Alerts {
        &self.alerts
    }

    /// Puts new alert rules in force (a configuration reload). A removed rule's firing gauge
    /// drops to zero rather than repeating its last value forever.
    pub fn replace_alert_rules(&self, rules: Vec<alerts::AlertRule>) {
        let before = self.alerts.rules();
        self.alerts.replace_rules(rules);
        let after = self.alerts.rules();
        if let Some(m) = self.counters() {
            for gone in before
                .iter()
                .filter(|r| after.iter().all(|a| a.name != r.name))
            {
                m.gauges
                    .alerts_firing
                    .get_or_create(&metrics::AlertLabel {
                        alert: gone.name.clone(),
                    })
                    .set(0);
            }
        }
    }

    /// Evaluates the alert rules now and notifies the webhooks of what changed. `revoked`
    /// says which of the presented invalid key ids are revoked keys.
    pub async fn evaluate_alerts<F, Fut>(&self, revoked: F)
    where
        F: FnOnce(Vec<(String, u64)>) -> Fut,
        Fut: std::future::Future<Output = Vec<(String, u64)>>,
    {
        let alerts = &self.alerts;
        if alerts.rules().is_empty() {
            return;
        }
        let now = unix_seconds();
        let external = alerts::External {
            revoked_attempts: revoked(alerts.invalid_keys(now)).await,
            audit_dropped: self.counters().map_or(0, |m| m.gauges.audit_dropped.get()),
        };
        for alert in alerts.evaluate(now, &external) {
            tracing::warn!(rule = %alert.rule, subject = %alert.subject, state = ?alert.state, value = alert.value, "alert");
            if let Some(webhooks) = &self.webhooks {
                webhooks.notify(alert);
            }
        }
        if let Some(m) = self.counters() {
            for (rule, n) in alerts.firing_by_rule() {
                m.gauges
                    .alerts_firing
                    .get_or_create(&metrics::AlertLabel { alert: rule })
                    .set(n);
            }
        }
    }

    pub fn audit(&self) -> Option<&AuditSink> {
        self.audit.as_ref()
    }

    /// The trace context of a request that arrived with these headers.
    pub fn trace_context(
        &self,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> trace::TraceContext {
        trace::TraceContext::start(
            traceparent,
            tracestate,
            self.tracing.trust_incoming,
            self.tracing.sample_ratio,
        )
    }

    /// How much text to keep of a request of `tenant`: `None` unless its policy opts in and
    /// a trail is written.
    pub fn content_bound(&self, tenant: &str) -> Option<usize> {
        let trail = self.audit.is_some() || !self.taps.is_empty();
        let kept = trail && self.content.tenants.contains(tenant);
        kept.then_some(self.content.max_chars)
    }

    /// A prompt fingerprint, to be fed the prompt's texts.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.start()
    }
}

/// Seconds since the Unix epoch (the clock of the recent-past window).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
