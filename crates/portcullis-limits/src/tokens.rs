//! Counting prompt tokens the way the model will, before the model sees the request.
//!
//! Counting uses `bpe-openai`: the real cl100k/o200k vocabularies compiled into the binary,
//! so nothing is downloaded at run time and counts match `tiktoken` exactly (tested on the dev
//! corpus against `tiktoken-rs`). Chat requests add OpenAI's per-message overhead: every
//! message costs 3 tokens for its framing, a `name` 1 more, and 3 tokens prime the reply.

use serde_json::{Map, Value};

/// A tokenizer vocabulary, chosen per model with `tokenizer = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-3.5 and GPT-4.
    Cl100kBase,
    /// GPT-4o and later.
    O200kBase,
}

/// Tokens that frame each chat message (`<|start|>role\n ... <|end|>`).
const TOKENS_PER_MESSAGE: u64 = 3;
/// A message's `name` costs one token beyond its text.
const TOKENS_PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;
/// What one image costs at low detail; high-detail tiles are not known before the model
/// decodes the image, so images are priced at the floor and reconciled afterwards.
const TOKENS_PER_IMAGE: u64 = 85;

impl Encoding {
    /// The names accepted in configuration.
    pub const NAMES: &'static [&'static str] = &["cl100k_base", "o200k_base"];

    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "cl100k_base" => Some(Encoding::Cl100kBase),
            "o200k_base" => Some(Encoding::O200kBase),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }

    fn tokenizer(self) -> &'static bpe_openai::Tokenizer {
        match self {
            Encoding::Cl100kBase => bpe_openai::cl100k_base(),
            Encoding::O200kBase => bpe_openai::o200k_base(),
        }
    }

    /// Loads the vocabulary now, so the first request does not pay for it.
    pub fn warm_up(self) {
        self.count("warm up");
    }

    /// Tokens in `text`, exactly as the model's tokenizer splits it.
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        self.tokenizer().count(text) as u64
    }

    /// Prompt tokens of an OpenAI-style request body for `endpoint_kind`.
    pub fn count_request(self, kind: PromptKind, body: &Map<String, Value>) -> u64 {
        match kind {
            PromptKind::Chat => self.count_chat(body),
            PromptKind::Completion => body.get("prompt").map_or(0, |p| self.count_inputs(p)),
            PromptKind::Embedding => body.get("input").map_or(0, |p| self.count_inputs(p)),
        }
    }

    fn count_chat(self, body: &Map<String, Value>) -> u64 {
        let mut total = REPLY_PRIMING;
        if let Some(Value::Array(messages)) = body.get("messages") {
            for message in messages {
                total += TOKENS_PER_MESSAGE;
                let Value::Object(message) = message else {
                    continue;
                };
                for (field, value) in message {
                    total += match (field.as_str(), value) {
                        ("content", content) => self.count_content(content),
                        ("name", Value::String(name)) => TOKENS_PER_NAME + self.count(name),
                        ("role", Value::String(role)) => self.count(role),
                        ("tool_calls" | "function_call", calls) => self.count_json(calls),
                        ("tool_call_id", Value::String(id)) => self.count(id),
                        _ => 0,
                    };
                }
            }
        }
        // Tool and function definitions reach the model as text in the system prompt; their
        // JSON is a close, slightly generous estimate of that text.
        for field in ["tools", "functions", "response_format"] {
            if let Some(value) = body.get(field) {
                total += self.count_json(value);
            }
        }
        total
    }

    fn count_content(self, content: &Value) -> u64 {
        match content {
            Value::String(text) => self.count(text),
            Value::Array(parts) => parts
                .iter()
                .map(|part| match part.get("type").and_then(Value::as_str) {
                    Some("text") => part
                        .get("text")
                        .and_then(Value::as_str)
                        .map_or(0, |t| self.count(t)),
                    Some("image_url" | "input_image") => TOKENS_PER_IMAGE,
                    _ => self.count_json(part),
                })
                .sum(),
            Value::Null => 0,
            other => self.count_json(other),
        }
    }

    /// A prompt or embedding input: a string, a list of strings, or pre-tokenized arrays.
    fn count_inputs(self, input: &Value) -> u64 {
        match input {
            Value::String(text) => self.count(text),
            Value::Array(items) if items.iter().all(Value::is_number) => items.len() as u64,
            Value::Array(items) => items.iter().map(|i| self.count_inputs(i)).sum(),
            _ => 0,
        }
    }

    fn count_json(self, value: &Value) -> u64 {
        self.count(&value.to_string())
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which field holds the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Chat,
    Completion,
    Embedding,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_plain_text() {
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }

    #[test]
    fn chat_overhead_follows_the_openai_cookbook() {
        // The cookbook's example: these two messages are 3 + 3 reply priming + per-message
        // framing and the text of roles and contents.
        let body = json!({"messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!", "name": "bob"},
        ]});
        let e = Encoding::Cl100kBase;
        let expected = 3
            + (3 + e.count("system") + e.count("You are a helpful assistant."))
            + (3 + e.count("user") + e.count("Hello!") + 1 + e.count("bob"));
        assert_eq!(
            e.count_request(PromptKind::Chat, body.as_object().unwrap()),
            expected
        );
    }

    #[test]
    fn inputs_may_be_lists_or_token_arrays() {
        let e = Encoding::O200kBase;
        let body = json!({"input": ["hello world", [1, 2, 3]]});
        assert_eq!(
            e.count_request(PromptKind::Embedding, body.as_object().unwrap()),
            2 + 3
        );
        let body = json!({"prompt": "hello world"});
        assert_eq!(
            e.count_request(PromptKind::Completion, body.as_object().unwrap()),
            2
        );
    }
}
