//! Output guards: only the fields a caller needs, and personal data and secrets redacted, in
//! whole responses and in streams alike.
//!
//! Whole responses are parsed, pruned to the endpoint's allow-list (`fields`), redacted and
//! written again. Streams go event by event: each chunk is pruned the same way, and the text
//! of each choice flows through its own `StreamRedactor`, which holds back only what may still
//! become an item; what it holds is released into the chunk that finishes the choice. Under
//! `block`, a response with an item is refused (a stream ends with an error event instead of
//! the item).

pub mod fields;
pub mod leak;

use crate::upstream::{event_data, event_ends};
use bytes::{Bytes, BytesMut};
use portcullis_config::OutputPolicy as Action;
use portcullis_core::{ApiError, Endpoint, ErrorKind};
use portcullis_guard::redact::{redact, StreamRedactor};
use serde_json::Value;
use std::collections::HashMap;

/// What the output guards do for one response.
#[derive(Debug, Clone)]
pub struct OutputPolicy {
    pub endpoint: Endpoint,
    pub action: Action,
    /// Keep `system_fingerprint` (it identifies the serving configuration).
    pub system_fingerprint: bool,
    /// Keep logprobs (only when the caller asked for them and policy allows).
    pub logprobs: bool,
    /// Canary and system-prompt leak check, when configured.
    pub leak: Option<leak::LeakCheck>,
    /// For logs.
    pub request_id: String,
}

fn leaked(request_id: &str, what: leak::Leak, block: bool) {
    tracing::warn!(request_id, leak = ?what, action = if block { "blocked" } else { "flagged" }, "answer leaks the system prompt");
}

/// The output policy for a request; `None` passes the answer through untouched (the
/// internal listener, where `[guard] internal_listener = false`).
pub fn policy_for(
    state: &crate::state::GatewayState,
    exchange: &portcullis_core::Exchange,
    spec: &portcullis_config::GuardSpec,
    endpoint: Endpoint,
    body: &serde_json::Map<String, Value>,
) -> Option<OutputPolicy> {
    if exchange.listener == portcullis_core::ListenerKind::Internal
        && !state.guard.internal_listener
    {
        return None;
    }
    // Logprobs pass only when asked for (`logprobs: true` in chat, a count in completions).
    let logprobs = match body.get("logprobs") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(_)) => true,
        _ => false,
    };
    let spans = spec.prompt_leak.unwrap_or_default() != portcullis_config::LeakPolicy::Off;
    // The system prompt is gathered only when verbatim spans are checked.
    let system: String = if spans {
        body.get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| {
                matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            })
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        String::new()
    };
    let span_chars = spec.prompt_leak_chars.unwrap_or(60) as usize;
    let leak = leak::LeakCheck::new(
        spec.canary.clone(),
        spans.then_some((system.as_str(), span_chars)),
        spec.prompt_leak.unwrap_or_default() != portcullis_config::LeakPolicy::Flag,
    );
    Some(OutputPolicy {
        endpoint,
        action: spec.output.unwrap_or_default(),
        system_fingerprint: state.guard.system_fingerprint,
        logprobs,
        leak,
        request_id: exchange.request_id.as_str().to_owned(),
    })
}

fn rejected() -> ApiError {
    ApiError::new(
        ErrorKind::BadGateway,
        "The model's answer was withheld by the output policy.",
    )
    .with_code("output_rejected")
}

impl OutputPolicy {
    fn prune(&self, value: &mut Value) {
        fields::prune(value, fields::allowed(self.endpoint));
        if let Value::Object(map) = value {
            if !self.system_fingerprint {
                map.remove("system_fingerprint");
            }
            if !self.logprobs {
                if let Some(Value::Array(choices)) = map.get_mut("choices") {
                    for c in choices {
                        if let Some(c) = c.as_object_mut() {
                            if c.get("logprobs").is_some_and(|l| !l.is_null()) {
                                c.insert("logprobs".into(), Value::Null);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A whole response body, filtered.
    pub fn filter_body(&self, bytes: &[u8]) -> Result<Bytes, ApiError> {
        let mut value: Value =
            serde_json::from_slice(bytes).map_err(|_| ApiError::upstream_bad_response())?;
        self.prune(&mut value);
        if self.action != Action::Off {
            let mut found = false;
            for text in texts(&mut value) {
                let (clean, spans) = redact(text);
                if !spans.is_empty() {
                    found = true;
                    *text = clean;
                }
            }
            if found && self.action == Action::Block {
                return Err(rejected());
            }
        }
        if let Some(check) = &self.leak {
            if let Some(what) = texts(&mut value).iter().find_map(|t| check.find(t)) {
                leaked(&self.request_id, what, check.block);
                if check.block {
                    return Err(rejected());
                }
            }
        }
        Ok(Bytes::from(serde_json::to_vec(&value).unwrap_or_default()))
    }
}

/// The generated texts of a response or chunk: message and delta contents, completion text,
/// tool call arguments.
fn texts(value: &mut Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let Some(Value::Array(choices)) = value.get_mut("choices") else {
        return out;
    };
    for choice in choices {
        let Some(choice) = choice.as_object_mut() else {
            continue;
        };
        for (key, v) in choice.iter_mut() {
            match (key.as_str(), v) {
                ("text", Value::String(s)) => out.push(s),
                ("message" | "delta", Value::Object(m)) => {
                    for (k, v) in m.iter_mut() {
                        match (k.as_str(), v) {
                            ("content" | "refusal", Value::String(s)) => out.push(s),
                            ("tool_calls", Value::Array(calls)) => {
                                for call in calls {
                                    if let Some(Value::String(a)) =
                                        call.pointer_mut("/function/arguments")
                                    {
                                        out.push(a);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The output guards of one stream.
pub struct StreamFilter {
    policy: OutputPolicy,
    redactors: HashMap<u64, StreamRedactor>,
    leaks: Option<leak::StreamLeakCheck>,
    stopped: bool,
}

impl StreamFilter {
    pub fn new(policy: OutputPolicy) -> Self {
        StreamFilter {
            leaks: policy.leak.clone().map(leak::StreamLeakCheck::new),
            policy,
            redactors: HashMap::new(),
            stopped: false,
        }
    }

    /// Feeds the chunk's (already redacted) texts to the leak check; true when the stream
    /// must stop.
    fn leak_stops(&mut self, value: &Value) -> bool {
        let Some(check) = &mut self.leaks else {
            return false;
        };
        let Some(Value::Array(choices)) = value.get("choices") else {
            return false;
        };
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let text = choice
                .pointer("/delta/content")
                .or_else(|| choice.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(what) = check.push(index, text) {
                leaked(&self.policy.request_id, what, check.blocks());
                return check.blocks();
            }
        }
        false
    }

    /// Whole events in, filtered events out.
    pub fn filter_events(&mut self, events: Bytes) -> Bytes {
        let mut out = BytesMut::with_capacity(events.len());
        let mut start = 0;
        let text = &events[..];
        for end in event_ends(text) {
            if self.stopped {
                break;
            }
            self.event(&text[start..end], &mut out);
            start = end;
        }
        if !self.stopped {
            out.extend_from_slice(&text[start..]);
        }
        out.freeze()
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) {
        let Some((data_start, data)) = event_data(event) else {
            out.extend_from_slice(event);
            return;
        };
        if data == b"[DONE]" {
            out.extend_from_slice(event);
            return;
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
            out.extend_from_slice(event);
            return;
        };
        if value.get("error").is_some() {
            out.extend_from_slice(event);
            return;
        }
        self.policy.prune(&mut value);
        if (self.policy.action != Action::Off && !self.redact_chunk(&mut value))
            || self.leak_stops(&value)
        {
            // Block: the item (or leak) is not sent; the stream ends with an error event.
            self.stopped = true;
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&rejected().to_json());
            out.extend_from_slice(b"\n\n");
            return;
        }
        // Lines before `data:` (an `event:` or `id:`) are kept as they were.
        out.extend_from_slice(&event[..data_start]);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&value).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    /// Redacts a chunk's texts through each choice's stream redactor; false when the policy
    /// is to block and an item was found.
    fn redact_chunk(&mut self, value: &mut Value) -> bool {
        let Some(Value::Array(choices)) = value.get_mut("choices") else {
            return true;
        };
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let redactor = self.redactors.entry(index).or_default();
            let before = redactor.spans().len();
            let slot = match choice {
                Value::Object(c) if c.contains_key("text") => c.get_mut("text"),
                Value::Object(c) => c.get_mut("delta").and_then(|d| {
                    if d.get("content").is_none_or(Value::is_null) && finished {
                        d.as_object_mut()
                            .map(|d| d.entry("content").or_insert(Value::String(String::new())))
                    } else {
                        d.get_mut("content")
                    }
                }),
                _ => None,
            };
            if let Some(Value::String(text)) = slot {
                let mut emitted = redactor.push(text);
                if finished {
                    emitted.push_str(&redactor.finish());
                }
                *text = emitted;
            }
            if redactor.spans().len() > before && self.policy.action == Action::Block {
                return false;
            }
        }
        true
    }
}
