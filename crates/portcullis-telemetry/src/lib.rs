//! Telemetry: what the gateway decided about each request, made visible.
//!
//! The request path builds one [`RequestRecord`] per request and hands it to [`Telemetry`]
//! when the response ends (a stream: at its last event). From that one record come the
//! Prometheus metrics ([`metrics`]), the audit trail and its security events ([`audit`],
//! [`security`]); later consumers (traces, the threat detector) read the same record. Nothing
//! here blocks a request: metrics are atomic counters, the trail is a bounded queue.

pub mod audit;
pub mod fingerprint;
pub mod metrics;
pub mod record;
pub mod security;
pub mod trace;

pub use audit::{AuditSettings, AuditSink};
pub use fingerprint::{Fingerprint, FingerprintKey};
pub use metrics::Metrics;
pub use record::RequestRecord;
pub use security::AdminEvent;

/// Where records go.
pub struct Telemetry {
    metrics: Option<Metrics>,
    audit: Option<AuditSink>,
    spans: Option<trace::SpanExporter>,
    tracing: TraceSettings,
    fingerprint: FingerprintKey,
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
        let spans = settings.otlp.map(|otlp| {
            let g = &metrics.gauges;
            trace::SpanExporter::start(otlp, g.spans_dropped.clone(), g.spans_exported.clone())
        });
        Ok((
            Telemetry {
                metrics: settings.metrics.then_some(metrics),
                audit,
                spans,
                tracing: settings.tracing,
                fingerprint: FingerprintKey::new(&settings.fingerprint_secret),
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
            fingerprint: FingerprintKey::new(b"off"),
        }
    }

    /// A request ended: count it and queue it for the trail.
    pub fn finish(&self, record: RequestRecord) {
        if let Some(metrics) = &self.metrics {
            metrics.observe(&record);
        }
        if let Some(spans) = &self.spans {
            spans.export(&record);
        }
        if let Some(audit) = &self.audit {
            audit.record(Box::new(record));
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

    /// A prompt fingerprint, to be fed the prompt's texts.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.start()
    }
}
