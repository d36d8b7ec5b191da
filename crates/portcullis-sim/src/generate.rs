//! Deterministic response content: words, usage counts, embedding vectors.

use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "the", "gateway", "checks", "every", "request", "before", "a", "model", "sees", "it", "and",
    "every", "answer", "before", "the", "caller", "does",
];

/// The `i`-th token of a completion: a word followed by a space.
pub(crate) fn token(i: usize) -> String {
    format!("{} ", WORDS[i % WORDS.len()])
}

/// How many tokens to produce: the configured length, capped by the request's limit.
pub(crate) fn completion_length(request: &Value, configured: usize) -> usize {
    let cap = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| request.get(*k).and_then(Value::as_u64))
        .map(|v| v as usize)
        .unwrap_or(usize::MAX);
    configured.min(cap)
}

/// A rough prompt size: whitespace-separated words of every string in the prompt, plus a
/// small per-message overhead. The gateway counts real tokens; the simulator only needs a
/// stable, plausible number.
pub(crate) fn prompt_tokens(request: &Value) -> usize {
    fn words(v: &Value) -> usize {
        match v {
            Value::String(s) => s.split_whitespace().count(),
            Value::Array(items) => items.iter().map(words).sum(),
            Value::Object(map) => map.values().map(words).sum(),
            _ => 0,
        }
    }
    match request.get("messages") {
        Some(Value::Array(messages)) => {
            messages
                .iter()
                .map(|m| 3 + m.get("content").map(words).unwrap_or(0))
                .sum::<usize>()
                + 3
        }
        _ => ["prompt", "input", "instructions"]
            .iter()
            .filter_map(|k| request.get(*k))
            .map(words)
            .sum(),
    }
}

/// Chat log probabilities for `pieces` (each one token), with two alternatives each.
pub(crate) fn logprobs(pieces: &[String]) -> Value {
    let content: Vec<Value> = pieces
        .iter()
        .map(|p| {
            json!({"token": p, "logprob": -0.25, "bytes": p.as_bytes(),
                   "top_logprobs": [{"token": p, "logprob": -0.25, "bytes": p.as_bytes()},
                                    {"token": " the", "logprob": -2.5, "bytes": b" the"}]})
        })
        .collect();
    json!({"content": content, "refusal": null})
}

pub(crate) fn usage(prompt: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// A unit-length vector derived from the text, so equal inputs embed equally.
pub(crate) fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        state = (state ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
