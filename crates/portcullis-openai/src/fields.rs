//! The fields a caller may see (each endpoint names its shape in `api/`): everything else an upstream sends (debug
//! fields, provider extras, internal metadata, `system_fingerprint` unless configured,
//! logprobs the caller did not ask for) is dropped.

use serde_json::Value;

/// A shape of allowed JSON.
pub enum Allow {
    /// Any value (text, numbers, the embedding vector).
    Any,
    /// An object with only these fields.
    Object(&'static [(&'static str, Allow)]),
    /// An array of this shape.
    Array(&'static Allow),
}

pub(crate) const USAGE: Allow = Allow::Object(&[
    ("prompt_tokens", Allow::Any),
    ("completion_tokens", Allow::Any),
    ("total_tokens", Allow::Any),
    (
        "prompt_tokens_details",
        Allow::Object(&[("cached_tokens", Allow::Any)]),
    ),
    (
        "completion_tokens_details",
        Allow::Object(&[("reasoning_tokens", Allow::Any)]),
    ),
]);

pub(crate) const TOOL_CALLS: Allow = Allow::Array(&Allow::Object(&[
    ("index", Allow::Any),
    ("id", Allow::Any),
    ("type", Allow::Any),
    (
        "function",
        Allow::Object(&[("name", Allow::Any), ("arguments", Allow::Any)]),
    ),
]));

pub(crate) const MESSAGE: Allow = Allow::Object(&[
    ("role", Allow::Any),
    ("content", Allow::Any),
    ("refusal", Allow::Any),
    ("tool_calls", TOOL_CALLS),
    (
        "function_call",
        Allow::Object(&[("name", Allow::Any), ("arguments", Allow::Any)]),
    ),
]);

pub(crate) const CHAT: Allow = Allow::Object(&[
    ("id", Allow::Any),
    ("object", Allow::Any),
    ("created", Allow::Any),
    ("model", Allow::Any),
    ("system_fingerprint", Allow::Any),
    (
        "choices",
        Allow::Array(&Allow::Object(&[
            ("index", Allow::Any),
            ("message", MESSAGE),
            ("delta", MESSAGE),
            ("finish_reason", Allow::Any),
            ("logprobs", Allow::Any),
        ])),
    ),
    ("usage", USAGE),
]);

pub(crate) const COMPLETION: Allow = Allow::Object(&[
    ("id", Allow::Any),
    ("object", Allow::Any),
    ("created", Allow::Any),
    ("model", Allow::Any),
    ("system_fingerprint", Allow::Any),
    (
        "choices",
        Allow::Array(&Allow::Object(&[
            ("index", Allow::Any),
            ("text", Allow::Any),
            ("finish_reason", Allow::Any),
            ("logprobs", Allow::Any),
        ])),
    ),
    ("usage", USAGE),
]);

pub(crate) const EMBEDDINGS: Allow = Allow::Object(&[
    ("object", Allow::Any),
    ("model", Allow::Any),
    (
        "data",
        Allow::Array(&Allow::Object(&[
            ("object", Allow::Any),
            ("index", Allow::Any),
            ("embedding", Allow::Any),
        ])),
    ),
    (
        "usage",
        Allow::Object(&[("prompt_tokens", Allow::Any), ("total_tokens", Allow::Any)]),
    ),
]);

/// Removes what `allow` does not list; returns how many fields were dropped.
pub fn prune(value: &mut Value, allow: &Allow) -> usize {
    match (allow, value) {
        (Allow::Any, _) => 0,
        (Allow::Object(fields), Value::Object(map)) => {
            let before = map.len();
            map.retain(|k, _| fields.iter().any(|(name, _)| name == k));
            let mut dropped = before - map.len();
            for (name, shape) in fields.iter() {
                if let Some(v) = map.get_mut(*name) {
                    dropped += prune(v, shape);
                }
            }
            dropped
        }
        (Allow::Array(shape), Value::Array(items)) => {
            items.iter_mut().map(|item| prune(item, shape)).sum()
        }
        // A scalar where a structure was expected: null keeps the field without its content.
        (_, v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
            *v = Value::Null;
            1
        }
        _ => 0,
    }
}
