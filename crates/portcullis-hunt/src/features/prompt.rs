//! What a request asked, read from the OpenAI request JSON as sent: the texts by role, the
//! shape of the conversation, and the parameters that matter for extraction.
//!
//! Lenient on purpose: the detector also reads recorded traffic from other deployments, so
//! an unknown field or a malformed part is skipped, never an error.

use serde_json::Value;

/// The request's endpoint, as the detector distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Endpoint {
    Chat,
    Completions,
    Responses,
    Embeddings,
    Other,
}

impl Endpoint {
    /// From a record's endpoint name (`chat.completions`) or a path (`/v1/chat/completions`).
    pub fn parse(name: &str) -> Endpoint {
        let name = name.trim_start_matches("/v1/").trim_start_matches('/');
        match name {
            "chat.completions" | "chat/completions" => Endpoint::Chat,
            "completions" => Endpoint::Completions,
            "responses" => Endpoint::Responses,
            "embeddings" => Endpoint::Embeddings,
            _ => Endpoint::Other,
        }
    }

    /// Endpoints that generate text (the ones a distiller harvests).
    pub fn generates(self) -> bool {
        matches!(
            self,
            Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
        )
    }
}

/// The parts of a request the features are computed from.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prompt {
    /// System and developer instructions, joined.
    pub system: String,
    /// The last user turn (or the completion prompt, or the Responses input text).
    pub user: String,
    /// Every user turn's characters, for the input size.
    pub input_chars: usize,
    /// Assistant or tool turns present: a conversation or an agent loop, not a one-shot ask.
    pub multi_turn: bool,
    /// Texts to embed (embeddings only).
    pub embed_inputs: Vec<String>,
    /// `input` given as token arrays to embed.
    pub embed_token_inputs: usize,
    pub params: Params,
}

/// The request parameters that matter for extraction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Params {
    pub n: u32,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub logprobs: bool,
    pub top_logprobs: u32,
    /// The token ids `logit_bias` names.
    pub logit_bias: Vec<u32>,
    pub tools: u32,
    /// `reasoning_effort` or `reasoning.effort` is `high`.
    pub high_reasoning: bool,
}

impl Prompt {
    /// Reads a request body. Anything that is not a JSON object gives an empty prompt.
    pub fn from_body(endpoint: Endpoint, body: &Value) -> Prompt {
        let mut p = Prompt {
            params: Params::from_body(body),
            ..Prompt::default()
        };
        match endpoint {
            Endpoint::Chat => p.read_messages(body.get("messages")),
            Endpoint::Completions => {
                let text = join_texts(body.get("prompt"));
                p.input_chars = text.len();
                p.user = text;
            }
            Endpoint::Responses => {
                if let Some(i) = body.get("instructions").and_then(Value::as_str) {
                    p.system.push_str(i);
                }
                match body.get("input") {
                    Some(Value::String(s)) => {
                        p.input_chars = s.len();
                        p.user = s.clone();
                    }
                    other => p.read_messages(other),
                }
            }
            Endpoint::Embeddings => p.read_embed_inputs(body.get("input")),
            Endpoint::Other => {}
        }
        p
    }

    fn read_messages(&mut self, messages: Option<&Value>) {
        let Some(messages) = messages.and_then(Value::as_array) else {
            return;
        };
        for m in messages {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            let text = content_text(m.get("content"));
            match role {
                "system" | "developer" => {
                    if !self.system.is_empty() {
                        self.system.push('\n');
                    }
                    self.system.push_str(&text);
                }
                "assistant" | "tool" | "function" => self.multi_turn = true,
                _ => {
                    self.input_chars += text.len();
                    self.user = text;
                }
            }
            // Responses input items that are tool results have no role.
            if m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("_output") || t.ends_with("_call"))
            {
                self.multi_turn = true;
            }
        }
    }

    fn read_embed_inputs(&mut self, input: Option<&Value>) {
        match input {
            Some(Value::String(s)) => self.embed_inputs.push(s.clone()),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => self.embed_inputs.push(s.clone()),
                        Value::Array(_) | Value::Number(_) => self.embed_token_inputs += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.input_chars = self.embed_inputs.iter().map(String::len).sum();
    }
}

impl Params {
    fn from_body(body: &Value) -> Params {
        let u = |k: &str| body.get(k).and_then(Value::as_u64);
        let logit_bias = body
            .get("logit_bias")
            .and_then(Value::as_object)
            .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
            .unwrap_or_default();
        let effort = body
            .get("reasoning_effort")
            .or_else(|| body.get("reasoning").and_then(|r| r.get("effort")))
            .and_then(Value::as_str);
        Params {
            n: u("n").unwrap_or(1).min(u32::MAX as u64) as u32,
            max_tokens: u("max_tokens")
                .or_else(|| u("max_completion_tokens"))
                .or_else(|| u("max_output_tokens")),
            temperature: body.get("temperature").and_then(Value::as_f64),
            logprobs: matches!(body.get("logprobs"), Some(Value::Bool(true)))
                || u("logprobs").is_some_and(|n| n > 0),
            top_logprobs: u("top_logprobs")
                .or_else(|| u("logprobs"))
                .unwrap_or(0)
                .min(u32::MAX as u64) as u32,
            logit_bias,
            tools: body
                .get("tools")
                .and_then(Value::as_array)
                .map_or(0, |t| t.len() as u32),
            high_reasoning: matches!(effort, Some("high" | "xhigh")),
        }
    }
}

/// The text of a message's `content`: a string, or the text parts of an array.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for part in parts {
                let text = part
                    .get("text")
                    .and_then(Value::as_str)
                    .or_else(|| part.as_str());
                if let Some(t) = text {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
            out
        }
        _ => String::new(),
    }
}

/// A completion `prompt`: a string or an array of strings.
fn join_texts(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text an answer carried: a chat or completion JSON answer, a Responses answer, or a
/// streamed text recorded as a string. Also the completion tokens the answer reported.
pub fn answer_text(response: &Value) -> (String, Option<u64>) {
    let usage = response.get("usage").and_then(|u| {
        u.get("completion_tokens")
            .or_else(|| u.get("output_tokens"))
            .and_then(Value::as_u64)
    });
    let text = match response {
        Value::String(s) => s.clone(),
        Value::Object(_) => {
            let mut out = String::new();
            if let Some(choices) = response.get("choices").and_then(Value::as_array) {
                for c in choices {
                    let t = c
                        .get("message")
                        .and_then(|m| m.get("content"))
                        .and_then(Value::as_str)
                        .or_else(|| c.get("text").and_then(Value::as_str));
                    if let Some(t) = t {
                        out.push_str(t);
                        out.push('\n');
                    }
                }
            }
            if let Some(t) = response.get("output_text").and_then(Value::as_str) {
                out.push_str(t);
            } else if let Some(items) = response.get("output").and_then(Value::as_array) {
                for item in items {
                    out.push_str(&content_text(item.get("content")));
                }
            }
            out
        }
        _ => String::new(),
    };
    (text, usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_chat_turns_and_parameters() {
        let body = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "You are a teacher."},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}]}
            ],
            "n": 3, "max_completion_tokens": 4096, "temperature": 1.0,
            "logprobs": true, "top_logprobs": 5, "logit_bias": {"15": 100, "99": -100, "x": 1},
            "reasoning_effort": "high"
        });
        let p = Prompt::from_body(Endpoint::Chat, &body);
        assert_eq!(p.system, "You are a teacher.");
        assert_eq!(p.user, "second");
        assert!(p.multi_turn);
        assert_eq!(p.params.n, 3);
        assert_eq!(p.params.max_tokens, Some(4096));
        assert!(p.params.logprobs && p.params.high_reasoning);
        assert_eq!(p.params.top_logprobs, 5);
        let mut ids = p.params.logit_bias.clone();
        ids.sort();
        assert_eq!(ids, vec![15, 99]);
    }

    #[test]
    fn reads_completions_responses_and_embeddings() {
        let p = Prompt::from_body(Endpoint::Completions, &json!({"prompt": ["a", "b"]}));
        assert_eq!(p.user, "a\nb");
        let p = Prompt::from_body(
            Endpoint::Responses,
            &json!({"instructions": "be brief", "input": "hi", "max_output_tokens": 9}),
        );
        assert_eq!((p.system.as_str(), p.user.as_str()), ("be brief", "hi"));
        assert_eq!(p.params.max_tokens, Some(9));
        let p = Prompt::from_body(
            Endpoint::Embeddings,
            &json!({"input": ["one", "two", [1, 2, 3]]}),
        );
        assert_eq!(p.embed_inputs, vec!["one", "two"]);
        assert_eq!(p.embed_token_inputs, 1);
    }

    #[test]
    fn anything_malformed_is_an_empty_prompt() {
        for body in [
            json!(null),
            json!([1, 2]),
            json!({"messages": "x", "n": "many"}),
        ] {
            let p = Prompt::from_body(Endpoint::Chat, &body);
            assert_eq!(p.user, "");
            assert_eq!(p.params.n, 1);
        }
    }

    #[test]
    fn reads_answers() {
        let (t, u) = answer_text(&json!({
            "choices": [{"message": {"content": "hello"}}],
            "usage": {"completion_tokens": 7}
        }));
        assert_eq!((t.trim(), u), ("hello", Some(7)));
        assert_eq!(answer_text(&json!("streamed")).0, "streamed");
    }
}
