//! What telemetry costs per request: on the request path (`finish`: metrics, the recent-past
//! window, queueing for the trail and the spans), and beside it (writing one record to the
//! trail, building one request's spans).

use portcullis_telemetry::record::*;
use portcullis_telemetry::trace::TraceContext;
use portcullis_telemetry::{AuditSettings, RequestRecord, Settings, Telemetry, TraceSettings};

fn main() {
    divan::main();
}

fn record() -> RequestRecord {
    RequestRecord {
        id: "req_5d0c9c4b220b65e0bca376b0a6ff6383".into(),
        start: "2026-12-04T17:03:59.235041Z".into(),
        listener: "public".into(),
        endpoint: "chat.completions".into(),
        principal: Some(PrincipalRecord {
            tenant: "acme".into(),
            key_id: "KqxFStzCHghimBXQ".into(),
            credential: "secret_key".into(),
            audience: "customer".into(),
            environment: "live".into(),
            plan: "default".into(),
            issuer: None,
        }),
        client: ClientRecord {
            ip: "203.0.113.7".into(),
            user_agent: "OpenAI/Python 1.54.0".into(),
            header_order: String::new(),
            tls: String::new(),
        },
        model: Some("sim-chat".into()),
        upstream: Some("sim".into()),
        params: Params {
            max_tokens: Some(50),
            temperature: Some(0.2),
            ..Default::default()
        },
        decision: Decision {
            action: "allowed".into(),
            status: 200,
            code: None,
        },
        outcome: Some("completed".into()),
        limit: Some(LimitRecord {
            decision: "admitted".into(),
            remaining_requests: Some(599),
            remaining_tokens: Some(999_866),
            ..Default::default()
        }),
        tokens: Tokens {
            estimated_input: 14,
            reserved_output: 50,
            input: 14,
            output: 16,
            reported: true,
        },
        cost_usd: 0.000178,
        upstream_status: Some(200),
        bytes_in: 170,
        bytes_out: 389,
        timing: Timing {
            authenticated_ms: Some(0.05),
            screened_ms: Some(0.31),
            admitted_ms: Some(0.35),
            upstream_first_byte_ms: Some(1.2),
            first_token_ms: Some(1.3),
            duration_ms: 1.6,
        },
        prompt_fingerprint: Some("8c0f5b1e2d7a4c39a1b0e6f2d3c4b5a6".into()),
        finish_reasons: vec!["stop".into()],
        trace: Some(TraceContext::start(None, None, false, 1.0)),
        ..Default::default()
    }
}

fn telemetry(audit: bool) -> (Telemetry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        metrics: true,
        per_key_metrics: false,
        audit: audit.then(|| AuditSettings {
            dir: dir.path().to_owned(),
            rotation: portcullis_telemetry::audit::files::Rotation {
                max_file_bytes: 64 << 20,
                max_file_age: std::time::Duration::from_secs(3600),
                retention: std::time::Duration::from_secs(3600),
            },
            queue: 1 << 20,
        }),
        fingerprint_secret: b"k".to_vec(),
        version: "0".into(),
        otlp: None,
        tracing: TraceSettings {
            trust_incoming: false,
            sample_ratio: 1.0,
        },
        alerts: Vec::new(),
        webhooks: Vec::new(),
        http_client: None,
        content: Default::default(),
    };
    (Telemetry::start(settings).unwrap().0, dir)
}

/// The request path's share: metrics, the window, queueing for the trail.
#[divan::bench]
fn finish_on_the_request_path(bencher: divan::Bencher) {
    let (t, _dir) = telemetry(true);
    let r = record();
    bencher
        .with_inputs(|| r.clone())
        .bench_local_values(|r| t.finish(r));
}

/// Building the record's trace context at arrival.
#[divan::bench]
fn trace_context_at_arrival() -> TraceContext {
    TraceContext::start(divan::black_box(None), None, false, 1.0)
}

/// The writer's share per record: the JSON line (and its security events).
#[divan::bench]
fn audit_line(bencher: divan::Bencher) {
    let r = record();
    let mut line = Vec::with_capacity(2048);
    bencher.bench_local(|| {
        line.clear();
        serde_json::to_writer(&mut line, divan::black_box(&r)).unwrap();
        portcullis_telemetry::security::from_record(&r).len()
    });
}

/// The export task's share per request: its spans.
#[divan::bench]
fn spans_of_one_request(bencher: divan::Bencher) {
    let r = record();
    bencher.bench_local(|| portcullis_telemetry::trace::spans(divan::black_box(&r)));
}

/// A prompt fingerprint of a ~300-byte prompt.
#[divan::bench]
fn prompt_fingerprint(bencher: divan::Bencher) {
    let key = portcullis_telemetry::FingerprintKey::new(b"secret");
    let prompt = "You are a helpful assistant. Answer briefly and cite your sources. ".repeat(4);
    bencher.bench_local(|| {
        let mut f = key.start();
        f.add(divan::black_box(&prompt));
        f.finish()
    });
}

/// A prompt fingerprint of a ~2 KB prompt.
#[divan::bench]
fn prompt_fingerprint_2kb(bencher: divan::Bencher) {
    let key = portcullis_telemetry::FingerprintKey::new(b"secret");
    let prompt = "You are a helpful assistant. Answer briefly and cite your sources. ".repeat(30);
    bencher.bench_local(|| {
        let mut f = key.start();
        f.add(divan::black_box(&prompt));
        f.finish()
    });
}
