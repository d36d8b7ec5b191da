//! How the simulator behaves; changeable at run time with `PUT /_sim/options`.

use serde::{Deserialize, Serialize};

/// Behaviour knobs. Every field has a default, so a partial JSON object changes only what it
/// names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SimOptions {
    /// Delay before the response headers, in milliseconds.
    pub latency_ms: u64,
    /// Pace of streamed tokens; 0 sends them as fast as possible.
    pub tokens_per_second: f64,
    /// Completion length in tokens (words), unless the request's `max_tokens` is lower.
    pub output_tokens: usize,
    /// Fault to inject into every request.
    pub fault: Fault,
    /// Keep the last requests for `GET /_sim/requests`. Turn off for benchmarks.
    pub record: bool,
    /// Report `usage` (in bodies, and in streams that ask for it). Off imitates servers that
    /// never report usage, so the gateway must count for itself.
    pub report_usage: bool,
    /// Answer with this text instead of generated words (streamed in `chunk_chars` pieces).
    pub reply: Option<String>,
    /// Size of streamed pieces of `reply`, in characters (0: word by word).
    pub chunk_chars: usize,
    /// Fields added to every response object and stream chunk: debug data, provider extras
    /// and the like, which the gateway must not pass on.
    pub extra_fields: serde_json::Map<String, serde_json::Value>,
    /// A streamed request is answered with exactly these byte strings, each sent as one
    /// chunk, instead of a generated stream: for tests of what a misbehaving upstream sends
    /// (malformed events, comments, error events, ...).
    pub raw_stream: Option<Vec<String>>,
    /// A whole (non-streamed) request is answered 200 with exactly this JSON text.
    pub raw_body: Option<String>,
    /// Generate `output_tokens` whatever the request's output limit: a runaway upstream.
    pub ignore_max_tokens: bool,
    /// Where a chat answer's text goes: the content, a refusal, or a tool call's or legacy
    /// function call's arguments (whole, or streamed in pieces like content).
    pub reply_as: ReplyAs,
}

/// Where a chat answer's text goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReplyAs {
    #[default]
    Content,
    Refusal,
    ToolCall {
        name: String,
    },
    FunctionCall {
        name: String,
    },
}

impl ReplyAs {
    /// A whole answer's message carrying `text`.
    pub(crate) fn message(&self, text: &str) -> serde_json::Value {
        let mut message = self.full(text);
        message["role"] = "assistant".into();
        if !matches!(self, ReplyAs::Content) {
            message["content"] = serde_json::Value::Null;
        }
        message
    }

    /// The first delta of a stream: the role, and the call's id, type and name.
    pub(crate) fn opening(&self) -> serde_json::Value {
        let mut delta = self.full("");
        delta["role"] = "assistant".into();
        delta
    }

    /// The text in its field, with the call's id, type and name.
    fn full(&self, text: &str) -> serde_json::Value {
        use serde_json::json;
        match self {
            ReplyAs::Content => json!({"content": text}),
            ReplyAs::Refusal => json!({"refusal": text}),
            ReplyAs::ToolCall { name } => json!({"tool_calls": [{"index": 0, "id": "call_sim",
                "type": "function", "function": {"name": name, "arguments": text}}]}),
            ReplyAs::FunctionCall { name } => {
                json!({"function_call": {"name": name, "arguments": text}})
            }
        }
    }

    /// A later stream delta: the next piece of text only, as OpenAI sends it.
    pub(crate) fn delta(&self, piece: &str) -> serde_json::Value {
        use serde_json::json;
        match self {
            ReplyAs::Content | ReplyAs::Refusal => self.full(piece),
            ReplyAs::ToolCall { .. } => {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            }
            ReplyAs::FunctionCall { .. } => json!({"function_call": {"arguments": piece}}),
        }
    }

    /// Why the answer ended.
    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            ReplyAs::Content | ReplyAs::Refusal => "stop",
            ReplyAs::ToolCall { .. } => "tool_calls",
            ReplyAs::FunctionCall { .. } => "function_call",
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            latency_ms: 0,
            tokens_per_second: 0.0,
            output_tokens: 16,
            fault: Fault::None,
            record: true,
            report_usage: true,
            reply: None,
            chunk_chars: 0,
            extra_fields: serde_json::Map::new(),
            raw_stream: None,
            raw_body: None,
            ignore_max_tokens: false,
            reply_as: ReplyAs::Content,
        }
    }
}

/// A failure the simulator injects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    #[default]
    None,
    /// Answer with this HTTP status and an error body full of internal detail (which the
    /// gateway must never pass on).
    Status { status: u16 },
    /// Stream `after_chunks` chunks, then break the connection without finishing.
    ResetMidStream { after_chunks: usize },
    /// Never send response headers.
    Hang,
    /// Stream `after_chunks` chunks, then go silent while keeping the connection open.
    HangMidStream { after_chunks: usize },
    /// Answer 200 with a body that is not JSON.
    Garbage,
}
