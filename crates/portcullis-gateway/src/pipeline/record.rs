//! Filling the per-request record (`portcullis_telemetry::RequestRecord`) from the gateway's
//! own types. Each step of the request path writes what it learned into `cx.record`; the
//! record is finished once: by [`finish_here`] when the gateway answered on its own, or by the
//! filter chain when an upstream answer ends (`crate::filters::Chain`).

use super::RequestContext;
use crate::state::GatewayState;
use http::HeaderMap;
use portcullis_core::{ApiError, Endpoint, Principal};
use portcullis_identity::{Credential, KeyKind};
use portcullis_openai::{Api, PromptPart};
use portcullis_telemetry::record::{
    self, ClientRecord, Decision, Finding, LimitRecord, Params, PrincipalRecord,
};
use portcullis_telemetry::RequestRecord;
use serde_json::{Map, Value};

/// `User-Agent` is kept to this many characters.
const USER_AGENT_CHARS: usize = 256;

/// The record of a request that just arrived, with its trace context.
pub fn arrived(
    state: &GatewayState,
    id: &str,
    listener: portcullis_core::ListenerKind,
    headers: &HeaderMap,
    peer: Option<&crate::listener::PeerAddr>,
) -> RequestRecord {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let trace = state
        .telemetry
        .trace_context(header("traceparent"), header("tracestate"));
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(USER_AGENT_CHARS).collect())
        .unwrap_or_default();
    RequestRecord {
        id: id.to_owned(),
        start: now_rfc3339(),
        listener: listener.as_str().to_owned(),
        endpoint: "other".to_owned(),
        client: ClientRecord {
            ip: peer.map(|p| p.0.ip().to_string()).unwrap_or_default(),
            user_agent,
            header_order: if state.threats.is_some() {
                header_order(headers)
            } else {
                String::new()
            },
            tls: match (&state.threats, peer.and_then(|p| p.1.as_deref())) {
                (Some(_), Some(hello)) => hello.to_owned(),
                _ => String::new(),
            },
        },
        trace: Some(trace),
        ..RequestRecord::default()
    }
}

/// Most header names kept in a record's `header_order`.
const HEADER_ORDER_NAMES: usize = 32;

/// The header names as sent, comma-separated (hyper keeps arrival order; names are
/// lower-case on every protocol).
fn header_order(headers: &HeaderMap) -> String {
    let mut out = String::with_capacity(16 * headers.keys_len().min(HEADER_ORDER_NAMES));
    for name in headers.keys().take(HEADER_ORDER_NAMES) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name.as_str());
    }
    out
}

/// The trace headers the upstream receives: `traceparent` naming the gateway's upstream span,
/// and the caller's `tracestate` when its trace was continued.
pub fn propagation_headers(record: &RequestRecord) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(trace) = &record.trace else {
        return headers;
    };
    if let Ok(v) = http::HeaderValue::try_from(trace.upstream_traceparent()) {
        headers.insert(http::HeaderName::from_static("traceparent"), v);
    }
    if let Some(Ok(v)) = trace
        .trace_state
        .as_deref()
        .map(http::HeaderValue::try_from)
    {
        headers.insert(http::HeaderName::from_static("tracestate"), v);
    }
    headers
}

/// Milliseconds since the request arrived, for a step's end.
pub fn since_start(cx: &RequestContext) -> Option<f64> {
    Some(record::millis(cx.started, std::time::Instant::now()))
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// The endpoint's name in the record: the OpenAI resource path with dots.
pub fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "chat.completions",
        Endpoint::Completions => "completions",
        Endpoint::Embeddings => "embeddings",
        Endpoint::Responses => "responses",
        Endpoint::Models => "models",
    }
}

/// Who authentication established; `issuer` for an external identity provider's token.
pub fn principal(
    principal: &Principal,
    credential: Option<Credential>,
    issuer: Option<&str>,
) -> PrincipalRecord {
    let credential = match (credential, issuer) {
        (_, Some(_)) => "external_jwt",
        (Some(Credential::Key(KeyKind::Secret)), _) => "secret_key",
        (Some(Credential::Key(KeyKind::Publishable)), _) => "publishable_key",
        (Some(Credential::Token), _) => "token",
        (None, _) => "anonymous",
    };
    match principal {
        Principal::Key(key) => PrincipalRecord {
            tenant: key.tenant.clone(),
            key_id: key.key_id.clone(),
            credential: credential.to_owned(),
            audience: key.audience.as_str().to_owned(),
            environment: key.environment.as_str().to_owned(),
            plan: key.plan.clone(),
            issuer: issuer.map(str::to_owned),
        },
        Principal::Anonymous => PrincipalRecord {
            tenant: "anonymous".to_owned(),
            key_id: "anonymous".to_owned(),
            credential: credential.to_owned(),
            plan: "default".to_owned(),
            ..PrincipalRecord::default()
        },
    }
}

/// The parameters that matter, read from the (validated) body.
pub fn params(body: &Map<String, Value>, stream: bool) -> Params {
    let u = |field: &str| body.get(field).and_then(Value::as_u64);
    let len = |field: &str| match body.get(field) {
        Some(Value::Object(m)) => m.len() as u64,
        Some(Value::Array(a)) => a.len() as u64,
        _ => 0,
    };
    Params {
        stream,
        n: u("n").or_else(|| u("best_of")),
        max_tokens: u("max_completion_tokens")
            .or_else(|| u("max_tokens"))
            .or_else(|| u("max_output_tokens")),
        temperature: body.get("temperature").and_then(Value::as_f64),
        logprobs: match body.get("logprobs") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(_)) => true,
            _ => false,
        },
        top_logprobs: u("top_logprobs").or_else(|| u("logprobs")),
        logit_bias: len("logit_bias"),
        tools: len("tools") + len("functions"),
    }
}

/// The keyed fingerprint of the prompt's texts.
pub fn fingerprint(
    state: &GatewayState,
    api: &dyn Api,
    body: &Map<String, Value>,
) -> Option<String> {
    let mut fingerprint = state.telemetry.fingerprint();
    let mut visit = |part: PromptPart<'_>| {
        if let PromptPart::Text(_, text) = part {
            fingerprint.add(text);
        }
        Ok(())
    };
    api.visit_prompt(body, &mut visit).ok()?;
    fingerprint.finish()
}

/// The filter that keeps the request's text for the trail, when the tenant's policy says so
/// and the model is not sensitive.
pub fn keep_content(
    state: &GatewayState,
    cx: &RequestContext,
    route: &crate::catalog::Route,
    api: &dyn Api,
    body: &Map<String, Value>,
) -> Option<crate::filters::content::KeepContent> {
    if route.sensitive {
        return None;
    }
    let tenant = &cx.record.principal.as_ref()?.tenant;
    let max_chars = state.telemetry.content_bound(tenant)?;
    let mut prompt = String::new();
    let mut visit = |part: PromptPart<'_>| {
        if let PromptPart::Text(_, text) = part {
            if !prompt.is_empty() {
                prompt.push_str("\n\n");
            }
            prompt.push_str(text);
        }
        Ok(())
    };
    api.visit_prompt(body, &mut visit).ok()?;
    Some(crate::filters::content::KeepContent::new(
        &prompt, max_chars,
    ))
}

/// A guard's finding.
pub fn finding(guard: &str, rule: &str, action: &str, score: Option<f32>) -> Finding {
    Finding {
        guard: guard.to_owned(),
        rule: rule.to_owned(),
        action: action.to_owned(),
        count: 1,
        score,
    }
}

/// An admitted request's limit state: what remains of the tightest limits.
pub fn admitted(headers: &portcullis_limits::RateHeaders, clamped: bool) -> LimitRecord {
    LimitRecord {
        decision: "admitted".to_owned(),
        scope: None,
        remaining_requests: headers.requests.map(|r| r.remaining),
        remaining_tokens: headers.tokens.map(|r| r.remaining),
        clamped,
    }
}

/// A refusal by the limiter.
pub fn refused(refusal: &portcullis_limits::Refusal) -> LimitRecord {
    use portcullis_limits::Refusal;
    let (decision, scope) = match refusal {
        Refusal::Limited(denial) => (denial.label.name(), Some(denial.scope.to_owned())),
        Refusal::Suspended { .. } => ("suspended", None),
        Refusal::PlanMissing => ("plan_missing", None),
        Refusal::Unavailable => ("unavailable", None),
    };
    LimitRecord {
        decision: decision.to_owned(),
        scope,
        ..LimitRecord::default()
    }
}

/// The decision of a request the gateway answered itself.
pub fn decision(status: u16, error: Option<&ApiError>, forwarded: bool) -> Decision {
    let action = match (error, forwarded) {
        (_, true) => "allowed",
        (Some(_), false) => "refused",
        (None, false) => "served",
    };
    Decision {
        action: action.to_owned(),
        status,
        code: error.and_then(|e| e.code).map(str::to_owned),
    }
}

/// Finishes the record of a request the gateway answered without an upstream answer reaching
/// a filter chain (a refusal, a models list, a token): unless a chain took the record.
pub fn finish_here(
    state: &GatewayState,
    cx: &mut RequestContext,
    status: u16,
    error: Option<&ApiError>,
    bytes_out: u64,
) {
    if cx.record_taken {
        return;
    }
    let mut record = std::mem::take(&mut cx.record);
    record.decision = decision(status, error, false);
    record.bytes_out = bytes_out;
    record.timing.duration_ms = record::millis(cx.started, std::time::Instant::now());
    state.telemetry.finish(record);
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_order_is_the_order_sent_and_bounded() {
        let mut headers = http::HeaderMap::new();
        for name in [
            "host",
            "user-agent",
            "accept",
            "content-type",
            "authorization",
        ] {
            headers.insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static("x"),
            );
        }
        assert_eq!(
            super::header_order(&headers),
            "host,user-agent,accept,content-type,authorization"
        );
        let mut many = http::HeaderMap::new();
        for i in 0..100 {
            many.insert(
                http::HeaderName::try_from(format!("x-h{i}")).unwrap(),
                http::HeaderValue::from_static("x"),
            );
        }
        assert_eq!(super::header_order(&many).split(',').count(), 32);
    }
}
