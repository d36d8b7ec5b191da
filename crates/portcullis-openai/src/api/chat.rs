//! `POST /v1/chat/completions`: messages in, a message (or a stream of deltas) out.

use super::{
    answers, completion_usage, content_text, include_stream_usage, null_choice_logprobs,
    usage_only_chunk, visit_content, visit_content_mut, visit_strings_mut, Api, Body,
    GeneratedText, OutputLimit, Param, PromptTextVisitor, PromptVisitor, ReportedUsage, TextPiece,
    NOT_TEXT,
};
use crate::fields::{Allow, CHAT};
use crate::schema;
use crate::tokens::Encoding;
use portcullis_core::{ApiError, Endpoint};
use serde_json::{json, Value};

/// Tokens that frame each chat message (`<|start|>role\n ... <|end|>`).
const TOKENS_PER_MESSAGE: u64 = 3;
/// A message's `name` costs one token beyond its text.
const TOKENS_PER_NAME: u64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: u64 = 3;
/// Slots per choice: its content, its refusal, then tool calls (arguments and name), and
/// last the legacy function call (name, arguments).
const SLOTS_PER_CHOICE: u64 = 1 << 16;
const FUNCTION_NAME: u64 = SLOTS_PER_CHOICE - 2;
const FUNCTION_ARGUMENTS: u64 = SLOTS_PER_CHOICE - 1;
/// Tool calls beyond this index share the last call's slots (no real answer has so many).
const MAX_TOOL_CALL: u64 = (FUNCTION_NAME - 2) / 2 - 1;

/// The slot of tool call `k`'s arguments (its name is the next slot), within a choice.
fn tool_call_slot(k: u64) -> u64 {
    2 + 2 * k.min(MAX_TOOL_CALL)
}

/// The slot of the legacy function call's `arguments` or `name`, within a choice.
fn function_slot(field: &str) -> u64 {
    if field == "name" {
        FUNCTION_NAME
    } else {
        FUNCTION_ARGUMENTS
    }
}

/// The generated texts of a stream delta: content, refusal, tool-call and function-call
/// arguments arrive in pieces; names arrive whole (a client reads them from the first piece,
/// so they are redacted at once rather than held). `finished`: the choice ends here, and so
/// does each of its texts.
fn delta_texts<'a>(
    delta: &'a mut serde_json::Map<String, Value>,
    base: u64,
    finished: bool,
    out: &mut Vec<GeneratedText<'a>>,
) {
    let piece = |slot, text| GeneratedText {
        slot: base + slot,
        text,
        piece: TextPiece::Delta { last: finished },
    };
    for (key, value) in delta.iter_mut() {
        match (key.as_str(), value) {
            ("content", Value::String(text)) => out.push(piece(0, text)),
            ("refusal", Value::String(text)) => out.push(piece(1, text)),
            ("tool_calls", Value::Array(calls)) => {
                for (position, call) in calls.iter_mut().enumerate() {
                    let Some(call) = call.as_object_mut() else {
                        continue;
                    };
                    let k = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .unwrap_or(position as u64);
                    let Some(Value::Object(function)) = call.get_mut("function") else {
                        continue;
                    };
                    for (field, value) in function.iter_mut() {
                        match (field.as_str(), value) {
                            ("arguments", Value::String(t)) => {
                                out.push(piece(tool_call_slot(k), t))
                            }
                            ("name", Value::String(t)) => {
                                out.push(whole(base + tool_call_slot(k) + 1, t))
                            }
                            _ => {}
                        }
                    }
                }
            }
            ("function_call", Value::Object(call)) => {
                for (field, value) in call.iter_mut() {
                    match (field.as_str(), value) {
                        ("arguments", Value::String(t)) => out.push(piece(function_slot(field), t)),
                        ("name", Value::String(t)) => {
                            out.push(whole(base + function_slot(field), t))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

pub struct Chat;

fn messages(body: &Body) -> &[Value] {
    match body.get("messages") {
        Some(Value::Array(m)) => m,
        _ => &[],
    }
}

impl Api for Chat {
    fn endpoint(&self) -> Endpoint {
        Endpoint::ChatCompletions
    }

    fn validate(&self, body: &mut Body, strip_unknown: bool) -> Result<(), ApiError> {
        schema::known_fields(body, schema::CHAT_FIELDS, strip_unknown)?;
        schema::shared(body)?;
        schema::kind(body, "logprobs", Value::is_boolean, "a boolean")?;
        schema::kind(body, "tools", Value::is_array, "an array")?;
        schema::messages(body)
    }

    fn message_count(&self, body: &Body) -> usize {
        messages(body).len()
    }

    fn visit_prompt(&self, body: &Body, visit: &mut PromptVisitor<'_>) -> Result<(), ApiError> {
        for (i, m) in messages(body).iter().enumerate() {
            visit_content(
                Param::item("messages", i, ".content"),
                m.get("content"),
                visit,
            )?;
        }
        Ok(())
    }

    fn visit_prompt_texts_mut(
        &self,
        body: &mut Body,
        visit: &mut PromptTextVisitor<'_>,
    ) -> Result<(), ApiError> {
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            for (i, m) in messages.iter_mut().enumerate() {
                let at = Param::item("messages", i, ".content");
                visit_content_mut(at, m.get_mut("content"), visit)?;
                // Names, refusals, tool-call history: chat templates render them all.
                if let Value::Object(fields) = m {
                    for (key, value) in fields.iter_mut().filter(|(k, _)| *k != "content") {
                        if !NOT_TEXT.contains(&key.as_str()) {
                            visit_strings_mut(
                                value,
                                Param::item("messages", i, ""),
                                NOT_TEXT,
                                visit,
                            )?;
                        }
                    }
                }
            }
        }
        // Tool and function descriptions (and their parameters'), predicted output and the
        // response schema reach the model as text too.
        for field in ["tools", "functions", "prediction", "response_format"] {
            if let Some(value) = body.get_mut(field) {
                visit_strings_mut(value, Param::field(field), NOT_TEXT, visit)?;
            }
        }
        Ok(())
    }

    fn tool_names<'a>(&self, body: &'a Body) -> Vec<(Param, &'a str)> {
        let Some(Value::Array(tools)) = body.get("tools") else {
            return Vec::new();
        };
        tools
            .iter()
            .enumerate()
            .map(|(i, tool)| {
                let name = tool.pointer("/function/name").and_then(Value::as_str);
                (Param::item("tools", i, ""), name.unwrap_or(""))
            })
            .collect()
    }

    fn system_prompt(&self, body: &Body) -> String {
        messages(body)
            .iter()
            .filter(|m| {
                matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            })
            .filter_map(|m| content_text(m.get("content")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn count_prompt(&self, encoding: Encoding, body: &Body) -> u64 {
        let mut total = REPLY_PRIMING;
        for message in messages(body) {
            total += TOKENS_PER_MESSAGE;
            let Value::Object(message) = message else {
                continue;
            };
            for (field, value) in message {
                total += match (field.as_str(), value) {
                    ("content", content) => encoding.count_content(content),
                    ("name", Value::String(name)) => TOKENS_PER_NAME + encoding.count(name),
                    ("role", Value::String(role)) => encoding.count(role),
                    ("tool_calls" | "function_call", calls) => encoding.count_json(calls),
                    ("tool_call_id", Value::String(id)) => encoding.count(id),
                    ("refusal", Value::String(refusal)) => encoding.count(refusal),
                    _ => 0,
                };
            }
        }
        // Tool and function definitions reach the model as text in the system prompt; their
        // JSON is a close, slightly generous estimate of that text.
        // Predicted output is read by the model as well.
        for field in ["tools", "functions", "response_format", "prediction"] {
            if let Some(value) = body.get(field) {
                total += encoding.count_json(value);
            }
        }
        total
    }

    fn output_limit(&self) -> Option<OutputLimit> {
        Some(OutputLimit {
            fields: &["max_completion_tokens", "max_tokens"],
            default_field: "max_tokens",
        })
    }

    fn choices(&self, body: &Body) -> u64 {
        answers(body)
    }

    fn request_stream_usage(&self, body: &mut Body) -> bool {
        include_stream_usage(body)
    }

    fn logprobs_requested(&self, body: &Body) -> bool {
        body.get("logprobs")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn response_allow_list(&self) -> &'static Allow {
        &CHAT
    }

    fn strip_logprobs(&self, chunk: &mut Value) -> bool {
        null_choice_logprobs(chunk)
    }

    fn generated_texts<'a>(
        &self,
        chunk: &'a mut Value,
        _stream: bool,
        out: &mut Vec<GeneratedText<'a>>,
    ) {
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return;
        };
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let base = index.saturating_mul(SLOTS_PER_CHOICE);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if choice.get("message").is_some_and(Value::is_object) {
                let Some(Value::Object(message)) = choice.get_mut("message") else {
                    continue;
                };
                for (key, value) in message.iter_mut() {
                    match (key.as_str(), value) {
                        ("content", Value::String(text)) => out.push(whole(base, text)),
                        ("refusal", Value::String(text)) => out.push(whole(base + 1, text)),
                        ("tool_calls", Value::Array(calls)) => {
                            for (k, call) in calls.iter_mut().enumerate() {
                                let Some(Value::Object(function)) = call.get_mut("function") else {
                                    continue;
                                };
                                let slot = base + tool_call_slot(k as u64);
                                for (field, value) in function.iter_mut() {
                                    if let ("arguments" | "name", Value::String(t)) =
                                        (field.as_str(), value)
                                    {
                                        let name = field == "name";
                                        out.push(whole(slot + u64::from(name), t));
                                    }
                                }
                            }
                        }
                        ("function_call", Value::Object(call)) => {
                            for (field, value) in call.iter_mut() {
                                if let ("arguments" | "name", Value::String(t)) =
                                    (field.as_str(), value)
                                {
                                    out.push(whole(base + function_slot(field), t));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            } else if let Some(Value::Object(delta)) = choice.get_mut("delta") {
                // The chunk that finishes a choice carries what redaction still holds, so it
                // gets a content even when the upstream sent none.
                if finished && delta.get("content").is_none_or(Value::is_null) {
                    delta.insert("content".into(), Value::String(String::new()));
                }
                delta_texts(delta, base, finished, out);
            }
        }
    }

    fn release_event(&self, template: &Value, slot: u64, text: String) -> Option<Value> {
        let index = slot / SLOTS_PER_CHOICE;
        let delta = match slot % SLOTS_PER_CHOICE {
            0 => json!({"content": text}),
            1 => json!({"refusal": text}),
            FUNCTION_ARGUMENTS => json!({"function_call": {"arguments": text}}),
            FUNCTION_NAME => json!({"function_call": {"name": text}}),
            within => {
                let call = (within - 2) / 2;
                let field = if (within - 2) % 2 == 0 {
                    "arguments"
                } else {
                    "name"
                };
                json!({"tool_calls": [{"index": call, "function": {field: text}}]})
            }
        };
        let choice =
            json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": null});
        Some(super::chunk_like(template, Value::Array(vec![choice])))
    }

    fn slot_answer(&self, slot: u64) -> u64 {
        slot / SLOTS_PER_CHOICE
    }

    fn slot_is_prose(&self, slot: u64) -> bool {
        slot.is_multiple_of(SLOTS_PER_CHOICE)
    }

    fn set_model(&self, chunk: &mut Value, public: &str) -> bool {
        super::set_top_model(chunk, public)
    }

    fn usage(&self, chunk: &Value) -> Option<ReportedUsage> {
        completion_usage(chunk)
    }

    fn is_usage_only(&self, chunk: &Value) -> bool {
        usage_only_chunk(chunk)
    }
}

fn whole(slot: u64, text: &mut String) -> GeneratedText<'_> {
    GeneratedText {
        slot,
        text,
        piece: TextPiece::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predicted_output_and_refusals_are_counted() {
        let encoding = Encoding::O200kBase;
        let base = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
        let plain = Chat.count_prompt(encoding, base.as_object().unwrap());
        let mut more = base.clone();
        more["prediction"] = serde_json::json!({"type": "content", "content": "hello world again"});
        more["messages"][0]["refusal"] = serde_json::json!("no thanks");
        assert!(Chat.count_prompt(encoding, more.as_object().unwrap()) >= plain + 5);
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
        assert_eq!(Chat.count_prompt(e, body.as_object().unwrap()), expected);
    }

    #[test]
    fn finds_every_generated_text_of_an_answer() {
        let mut answer = json!({"choices": [{"index": 1, "message": {
            "content": "a", "refusal": "b",
            "tool_calls": [{"function": {"name": "f", "arguments": "c"}}],
        }}]});
        let mut texts = Vec::new();
        Chat.generated_texts(&mut answer, false, &mut texts);
        let found: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(found, ["a", "b", "c", "f"]);
        assert!(texts.iter().all(|t| t.piece == TextPiece::Whole));
    }

    #[test]
    fn a_finishing_delta_gets_a_content_slot() {
        let mut chunk = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        let mut texts = Vec::new();
        Chat.generated_texts(&mut chunk, true, &mut texts);
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].piece, TextPiece::Delta { last: true });
    }
}
