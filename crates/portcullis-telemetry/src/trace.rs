//! OpenTelemetry traces, built from the per-request record and exported over OTLP/HTTP
//! (protobuf).
//!
//! The trace context is decided when a request arrives ([`TraceContext`]): the caller's W3C
//! `traceparent` is continued only when `telemetry.trust_incoming_trace` is on (a caller could
//! otherwise choose trace ids to collide with others' or force sampling); the upstream always
//! receives a `traceparent` naming the gateway's upstream span. When the request ends, its
//! record becomes one server span named by the GenAI convention (`chat gpt-4o`) with a child
//! span per step (authenticate, screen, admit, upstream, output), whose times come from the
//! record. Spans carry GenAI attributes and `portcullis.*` attributes, never prompt or
//! completion text.
//!
//! Why not the OpenTelemetry SDK's tracer: the spans are written after the fact from one
//! record (which is also what metrics and the audit trail read), so the SDK's span lifecycle
//! would only be bookkeeping; and its batch processor runs exporters on a thread of its own
//! with no Tokio reactor, which the hyper client needs. The message types and their encoding
//! are the official ones (`opentelemetry-proto`, `prost`). The request path only queues the
//! record (bounded; dropped and counted when full, never waited for); the export task builds
//! the spans, draining the queue every 100 ms (no wake-up per request) and exporting every
//! second or every 512 spans.

use crate::record::RequestRecord;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A request's place in a W3C trace (ids in lowercase hex, as `traceparent` writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub trace_id: String,
    /// The gateway's span for this request.
    pub span_id: String,
    /// The caller's span, when its `traceparent` was continued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The span of the upstream call: the upstream's `traceparent` names it as parent.
    pub upstream_span_id: String,
    pub sampled: bool,
    /// The caller's `tracestate`, passed on unchanged (only when the trace was continued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_state: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn random_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    loop {
        for b in &mut id {
            *b = fastrand::u8(..);
        }
        // All-zero ids are invalid in W3C trace context.
        if id.iter().any(|b| *b != 0) {
            return id;
        }
    }
}

/// A parsed `traceparent` (version 00): trace id, parent span id, sampled flag.
fn parse_traceparent(value: &str) -> Option<(String, String, bool)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; later versions may append more.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    unhex(version)?;
    let valid = |id: &str, len: usize| {
        id.len() == len && unhex(id).is_some() && id.bytes().any(|b| b != b'0')
    };
    if !valid(trace, 32) || !valid(parent, 16) || flags.len() != 2 {
        return None;
    }
    let flags = unhex(flags)?[0];
    Some((trace.to_owned(), parent.to_owned(), flags & 1 == 1))
}

impl TraceContext {
    /// The context of a request that arrived with these headers.
    pub fn start(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        trust_incoming: bool,
        sample_ratio: f64,
    ) -> TraceContext {
        let continued = traceparent
            .filter(|_| trust_incoming)
            .and_then(parse_traceparent);
        let span_id = hex(&random_id::<8>());
        let upstream_span_id = hex(&random_id::<8>());
        match continued {
            Some((trace_id, parent, sampled)) => TraceContext {
                trace_id,
                span_id,
                parent_span_id: Some(parent),
                upstream_span_id,
                sampled,
                trace_state: tracestate
                    .filter(|s| s.len() <= 512 && s.is_ascii())
                    .map(str::to_owned),
            },
            None => {
                let trace = random_id::<16>();
                TraceContext {
                    trace_id: hex(&trace),
                    span_id,
                    parent_span_id: None,
                    upstream_span_id,
                    sampled: sampled_by_ratio(&trace, sample_ratio),
                    trace_state: None,
                }
            }
        }
    }

    /// The `traceparent` the upstream receives: this trace, the upstream span as parent.
    pub fn upstream_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.upstream_span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// The W3C "trace id ratio" rule: the trace id's last 8 bytes below ratio x 2^64. Every
/// service deciding this way on the same trace id agrees.
fn sampled_by_ratio(trace: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let low = u64::from_be_bytes(trace[8..].try_into().expect("8 bytes"));
    (low >> 1) < (ratio * (1u64 << 63) as f64) as u64
}

fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    attr(key, any_value::Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: u64) -> KeyValue {
    attr(
        key,
        any_value::Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX)),
    )
}

fn texts(key: &str, values: impl Iterator<Item = String>) -> KeyValue {
    attr(
        key,
        any_value::Value::ArrayValue(ArrayValue {
            values: values
                .map(|v| AnyValue {
                    value: Some(any_value::Value::StringValue(v)),
                })
                .collect(),
        }),
    )
}

/// The GenAI operation of an endpoint, if it is one.
pub fn gen_ai_operation(endpoint: &str) -> Option<&'static str> {
    match endpoint {
        "chat.completions" | "responses" => Some("chat"),
        "completions" => Some("text_completion"),
        "embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// The spans of one request: the request span and one per step it reached.
pub fn spans(record: &RequestRecord) -> Vec<Span> {
    let Some(trace) = &record.trace else {
        return Vec::new();
    };
    let (Some(trace_id), Some(span_id), Some(upstream_id)) = (
        unhex(&trace.trace_id),
        unhex(&trace.span_id),
        unhex(&trace.upstream_span_id),
    ) else {
        return Vec::new();
    };
    let start_ns = record
        .start
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_nanosecond().max(0) as u64)
        .unwrap_or(0);
    let at = |ms: f64| start_ns + (ms * 1_000_000.0) as u64;
    let t = &record.timing;
    let end_ns = at(t.duration_ms);
    let operation = gen_ai_operation(&record.endpoint);
    let model = record.model.as_deref().unwrap_or("");
    let name = match operation {
        Some(op) if !model.is_empty() => format!("{op} {model}"),
        Some(op) => op.to_owned(),
        None => format!("portcullis {}", record.endpoint),
    };
    let error =
        record.decision.code.clone().or_else(|| {
            (record.decision.status >= 400).then(|| record.decision.status.to_string())
        });
    let mut attributes = vec![
        text("portcullis.endpoint", &record.endpoint),
        text("portcullis.listener", &record.listener),
        text("portcullis.decision", &record.decision.action),
        int(
            "http.response.status_code",
            u64::from(record.decision.status),
        ),
    ];
    if let Some(op) = operation {
        attributes.push(text("gen_ai.operation.name", op));
        attributes.push(text("gen_ai.provider.name", "openai"));
    }
    if !model.is_empty() {
        attributes.push(text("gen_ai.request.model", model));
    }
    if let Some(n) = record.params.max_tokens {
        attributes.push(int("gen_ai.request.max_tokens", n));
    }
    if let Some(temp) = record.params.temperature {
        attributes.push(attr(
            "gen_ai.request.temperature",
            any_value::Value::DoubleValue(temp),
        ));
    }
    if !record.finish_reasons.is_empty() {
        attributes.push(texts(
            "gen_ai.response.finish_reasons",
            record.finish_reasons.iter().cloned(),
        ));
    }
    if !record.tokens.is_empty() {
        attributes.push(int("gen_ai.usage.input_tokens", record.tokens.input));
        attributes.push(int("gen_ai.usage.output_tokens", record.tokens.output));
    }
    if let Some(p) = &record.principal {
        attributes.push(text("portcullis.tenant", &p.tenant));
        attributes.push(text("portcullis.key_id", &p.key_id));
    }
    if let Some(outcome) = &record.outcome {
        attributes.push(text("portcullis.outcome", outcome));
    }
    if !record.findings.is_empty() {
        attributes.push(texts(
            "portcullis.guard.findings",
            record
                .findings
                .iter()
                .map(|f| format!("{}:{}:{}", f.guard, f.rule, f.action)),
        ));
    }
    if let Some(e) = &error {
        attributes.push(text("error.type", e));
    }
    let status = Status {
        code: if error.is_some() {
            status::StatusCode::Error as i32
        } else {
            status::StatusCode::Unset as i32
        },
        message: String::new(),
    };
    let root = Span {
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        trace_state: trace.trace_state.clone().unwrap_or_default(),
        parent_span_id: trace
            .parent_span_id
            .as_deref()
            .and_then(unhex)
            .unwrap_or_default(),
        flags: 0x100 | u32::from(trace.sampled),
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes,
        status: Some(status),
        ..Default::default()
    };
    let child = |name: &str, id: Vec<u8>, kind: SpanKind, from: f64, to: f64| Span {
        trace_id: trace_id.clone(),
        span_id: id,
        parent_span_id: span_id.clone(),
        flags: 0x100 | u32::from(trace.sampled),
        name: name.to_owned(),
        kind: kind as i32,
        start_time_unix_nano: at(from),
        end_time_unix_nano: at(to.max(from)),
        ..Default::default()
    };
    let mut out = vec![root];
    let mut last = 0.0;
    for (name, until) in [
        ("authenticate", t.authenticated_ms),
        ("screen", t.screened_ms),
        ("admit", t.admitted_ms),
    ] {
        if let Some(until) = until {
            out.push(child(
                name,
                random_id::<8>().to_vec(),
                SpanKind::Internal,
                last,
                until,
            ));
            last = until;
        }
    }
    if let Some(first_byte) = t.upstream_first_byte_ms {
        let mut upstream = child(
            &format!("{} {model}", operation.unwrap_or("call")),
            upstream_id,
            SpanKind::Client,
            last,
            t.duration_ms,
        );
        upstream.attributes = vec![
            text(
                "portcullis.upstream",
                record.upstream.as_deref().unwrap_or(""),
            ),
            int(
                "http.response.status_code",
                u64::from(record.upstream_status.unwrap_or(0)),
            ),
        ];
        upstream.events.push(Event {
            time_unix_nano: at(first_byte),
            name: "first_byte".into(),
            ..Default::default()
        });
        if let Some(first_token) = t.first_token_ms {
            upstream.events.push(Event {
                time_unix_nano: at(first_token),
                name: "gen_ai.first_token".into(),
                ..Default::default()
            });
        }
        out.push(upstream);
        out.push(child(
            "output",
            random_id::<8>().to_vec(),
            SpanKind::Internal,
            first_byte,
            t.duration_ms,
        ));
    }
    out
}

/// Where spans go.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The full URL spans are POSTed to (`.../v1/traces`).
    pub endpoint: http::Uri,
    pub service_name: String,
    /// Spans that may wait for export; more are dropped and counted.
    pub queue: usize,
}

/// The request path's end of the exporter: records go in; spans are built by the export task,
/// which drains the queue on its own schedule (no wake-up per request).
#[derive(Clone)]
pub struct SpanExporter {
    /// Bounded, allocated as it fills.
    queue: tokio::sync::mpsc::Sender<std::sync::Arc<RequestRecord>>,
    dropped: Counter,
}

/// Spans in one export.
const BATCH: usize = 512;
/// Longest a span waits for its batch.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the queue is drained into the batch.
const DRAIN_EVERY: Duration = Duration::from_millis(100);

impl SpanExporter {
    /// Starts the export task on the current Tokio runtime.
    pub fn start(
        settings: OtlpSettings,
        client: crate::HttpClient,
        dropped: Counter,
        exported: Counter,
    ) -> SpanExporter {
        let (tx, rx) = tokio::sync::mpsc::channel(settings.queue.max(1));
        tokio::spawn(export_loop(settings, client, rx, exported));
        SpanExporter { queue: tx, dropped }
    }

    /// Queues a sampled request for export; drops (and counts) it when the exporter is behind.
    pub fn export(&self, record: &std::sync::Arc<RequestRecord>) {
        if !record.trace.as_ref().is_some_and(|t| t.sampled) {
            return;
        }
        if self.queue.try_send(record.clone()).is_err() {
            self.dropped.inc();
        }
    }
}

async fn export_loop(
    settings: OtlpSettings,
    client: crate::HttpClient,
    mut rx: tokio::sync::mpsc::Receiver<std::sync::Arc<RequestRecord>>,
    exported: Counter,
) {
    let resource = Resource {
        attributes: vec![
            text("service.name", &settings.service_name),
            text("service.version", env!("CARGO_PKG_VERSION")),
        ],
        ..Default::default()
    };
    let mut ticker = tokio::time::interval(DRAIN_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<Span> = Vec::new();
    let mut last_export = std::time::Instant::now();
    loop {
        ticker.tick().await;
        let mut closed = false;
        loop {
            match rx.try_recv() {
                Ok(record) => batch.extend(spans(&record)),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
            if batch.len() >= BATCH {
                break;
            }
        }
        let due = batch.len() >= BATCH || last_export.elapsed() >= FLUSH_EVERY || closed;
        if due && !batch.is_empty() {
            last_export = std::time::Instant::now();
            let spans = std::mem::take(&mut batch);
            let n = spans.len() as u64;
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "portcullis".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            match post(&client, &settings.endpoint, request).await {
                Ok(()) => {
                    exported.inc_by(n);
                }
                Err(e) => {
                    tracing::warn!(error = %e, endpoint = %settings.endpoint, spans = n, "cannot export spans")
                }
            }
        }
        if closed {
            return;
        }
    }
}

async fn post(
    client: &crate::HttpClient,
    endpoint: &http::Uri,
    request: ExportTraceServiceRequest,
) -> Result<(), String> {
    use prost::Message;
    let body = Bytes::from(request.encode_to_vec());
    let request = http::Request::post(endpoint.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    // Read the body so the connection can be reused.
    let _ = response.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_traceparent_is_continued_and_a_bad_one_starts_a_new_trace() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::start(Some(incoming), Some("vendor=x"), true, 0.0);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert!(t.sampled, "the caller's sampling decision holds");
        assert_eq!(t.trace_state.as_deref(), Some("vendor=x"));
        let up = t.upstream_traceparent();
        assert!(up.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && up.ends_with("-01"));
        assert_eq!(parse_traceparent(&up).unwrap().1, t.upstream_span_id);

        let untrusted = TraceContext::start(Some(incoming), None, false, 1.0);
        assert_ne!(untrusted.trace_id, t.trace_id);
        assert!(untrusted.parent_span_id.is_none());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let t = TraceContext::start(Some(bad), None, true, 1.0);
            assert!(t.parent_span_id.is_none(), "{bad} was continued");
        }
    }

    #[test]
    fn sampling_follows_the_ratio() {
        let sampled = (0..10_000)
            .filter(|_| TraceContext::start(None, None, false, 0.25).sampled)
            .count();
        assert!((2_200..2_800).contains(&sampled), "{sampled}");
        assert!(!TraceContext::start(None, None, false, 0.0).sampled);
        assert!(TraceContext::start(None, None, false, 1.0).sampled);
    }
}
