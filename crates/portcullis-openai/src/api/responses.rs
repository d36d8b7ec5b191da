//! `POST /v1/responses`: OpenAI's Responses API (the default of the current SDKs and their
//! agents library). `instructions` and `input` (a string, or items: messages with text and
//! image parts, function calls and their outputs) in; a response object with `output` items
//! out, or a stream of typed events (`response.output_text.delta`, `...done`,
//! `response.completed` with usage).
//!
//! Item types the gateway cannot read are refused rather than forwarded unscreened, and so is
//! `previous_response_id` (a conversation stored upstream that the gateway never saw: it can
//! be neither screened, bounded nor counted).

use super::{
    content_text, visit_content, visit_content_mut, Api, Body, GeneratedText, OutputLimit, Param,
    PromptPart, PromptTextVisitor, PromptVisitor, ReportedUsage, Stripped, TextPiece,
};
use crate::fields::Allow;
use crate::schema;
use crate::tokens::Encoding;
use portcullis_core::{ApiError, Endpoint, ErrorKind};
use serde_json::{json, Value};

const FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "stream",
    "stream_options",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "metadata",
    "store",
    "user",
    "truncation",
    "service_tier",
];
const ROLES: &[&str] = &["user", "assistant", "system", "developer"];
/// Framing per input item, as for chat messages.
const TOKENS_PER_ITEM: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// Slots per output item: its content parts, then (last) a function call's arguments.
const SLOTS_PER_ITEM: u64 = 1 << 16;

const USAGE: Allow = Allow::Object(&[
    ("input_tokens", Allow::Any),
    ("output_tokens", Allow::Any),
    ("total_tokens", Allow::Any),
    (
        "input_tokens_details",
        Allow::Object(&[("cached_tokens", Allow::Any)]),
    ),
    (
        "output_tokens_details",
        Allow::Object(&[("reasoning_tokens", Allow::Any)]),
    ),
]);
const CONTENT_PART: Allow = Allow::Object(&[
    ("type", Allow::Any),
    ("text", Allow::Any),
    ("refusal", Allow::Any),
    ("annotations", Allow::Any),
]);
const OUTPUT_ITEM: Allow = Allow::Object(&[
    ("type", Allow::Any),
    ("id", Allow::Any),
    ("status", Allow::Any),
    ("role", Allow::Any),
    ("content", Allow::Array(&CONTENT_PART)),
    ("name", Allow::Any),
    ("arguments", Allow::Any),
    ("call_id", Allow::Any),
]);
const RESPONSE: Allow = Allow::Object(&[
    ("id", Allow::Any),
    ("object", Allow::Any),
    ("created_at", Allow::Any),
    ("status", Allow::Any),
    ("model", Allow::Any),
    ("output", Allow::Array(&OUTPUT_ITEM)),
    ("usage", USAGE),
    (
        "error",
        Allow::Object(&[("code", Allow::Any), ("message", Allow::Any)]),
    ),
    (
        "incomplete_details",
        Allow::Object(&[("reason", Allow::Any)]),
    ),
]);
/// A whole response, or any stream event (each event type uses some of these fields).
const RESPONSE_OR_EVENT: Allow = Allow::Object(&[
    // The response object's own fields ...
    ("id", Allow::Any),
    ("object", Allow::Any),
    ("created_at", Allow::Any),
    ("status", Allow::Any),
    ("model", Allow::Any),
    ("output", Allow::Array(&OUTPUT_ITEM)),
    ("usage", USAGE),
    (
        "error",
        Allow::Object(&[("code", Allow::Any), ("message", Allow::Any)]),
    ),
    (
        "incomplete_details",
        Allow::Object(&[("reason", Allow::Any)]),
    ),
    // ... and the events'.
    ("type", Allow::Any),
    ("sequence_number", Allow::Any),
    ("response", RESPONSE),
    ("output_index", Allow::Any),
    ("content_index", Allow::Any),
    ("item_id", Allow::Any),
    ("item", OUTPUT_ITEM),
    ("part", CONTENT_PART),
    ("delta", Allow::Any),
    ("text", Allow::Any),
    ("refusal", Allow::Any),
    ("arguments", Allow::Any),
    ("code", Allow::Any),
    ("message", Allow::Any),
]);

pub struct Responses;

fn items(body: &Body) -> &[Value] {
    match body.get("input") {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn item_type(item: &Value) -> &str {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("message")
}

fn validate_item(i: usize, item: &Value) -> Result<(), ApiError> {
    let at = |field: &str| format!("input[{i}].{field}");
    let Some(object) = item.as_object() else {
        return Err(schema::wrong_type(&format!("input[{i}]"), "an object"));
    };
    let need_string = |field: &str| -> Result<(), ApiError> {
        match object.get(field) {
            Some(Value::String(_)) => Ok(()),
            _ => Err(schema::wrong_type(&at(field), "a string")),
        }
    };
    match item_type(item) {
        "message" => {
            let role = object.get("role").and_then(Value::as_str).unwrap_or("");
            if !ROLES.contains(&role) {
                return Err(schema::invalid(
                    at("role"),
                    format!("`role` must be one of {}.", ROLES.join(", ")),
                ));
            }
            match object.get("content") {
                Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) if !parts.is_empty() => {
                    for (j, part) in parts.iter().enumerate() {
                        let kind = part.get("type").and_then(Value::as_str);
                        let text = part.get("text").is_some_and(Value::is_string);
                        let ok = match kind {
                            Some("input_text" | "output_text") => text,
                            Some("input_image") => true,
                            Some("refusal") => part.get("refusal").is_some_and(Value::is_string),
                            _ => false,
                        };
                        if !ok {
                            return Err(schema::invalid(
                                format!("input[{i}].content[{j}]"),
                                "A content part must be `input_text` or `output_text` with a \
                                 `text`, or `input_image`."
                                    .into(),
                            ));
                        }
                    }
                    Ok(())
                }
                _ => Err(schema::wrong_type(
                    &at("content"),
                    "a string or a non-empty array of parts",
                )),
            }
        }
        "function_call" => {
            need_string("call_id")?;
            need_string("name")?;
            need_string("arguments")
        }
        "function_call_output" => {
            need_string("call_id")?;
            need_string("output")
        }
        other => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Input items of type `{other}` are not accepted by this gateway."),
        )
        .with_param_owned(at("type"))
        .with_code("invalid_value")),
    }
}

impl Api for Responses {
    fn endpoint(&self) -> Endpoint {
        Endpoint::Responses
    }

    fn validate(&self, body: &mut Body, strip_unknown: bool) -> Result<(), ApiError> {
        schema::known_fields(body, FIELDS, strip_unknown)?;
        schema::shared(body)?;
        schema::kind(body, "instructions", Value::is_string, "a string")?;
        schema::kind(body, "tools", Value::is_array, "an array")?;
        match body.get("input") {
            None => Err(schema::missing("input", "You must provide an input.")),
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| validate_item(i, item)),
            Some(_) => Err(schema::wrong_type(
                "input",
                "a non-empty string or a non-empty array of items",
            )),
        }
    }

    fn message_count(&self, body: &Body) -> usize {
        match body.get("input") {
            Some(Value::Array(items)) => items.len(),
            _ => 1,
        }
    }

    fn visit_prompt(&self, body: &Body, visit: &mut PromptVisitor<'_>) -> Result<(), ApiError> {
        if let Some(Value::String(t)) = body.get("instructions") {
            visit(PromptPart::Text(Param::field("instructions"), t))?;
        }
        if let Some(Value::String(t)) = body.get("input") {
            visit(PromptPart::Text(Param::field("input"), t))?;
        }
        for (i, item) in items(body).iter().enumerate() {
            visit_content(
                Param::item("input", i, ".content"),
                item.get("content"),
                visit,
            )?;
            for field in ["output", "arguments"] {
                if let Some(t) = item.get(field).and_then(Value::as_str) {
                    let leaf = if field == "output" {
                        ".output"
                    } else {
                        ".arguments"
                    };
                    visit(PromptPart::Text(Param::item("input", i, leaf), t))?;
                }
            }
        }
        Ok(())
    }

    fn visit_prompt_texts_mut(
        &self,
        body: &mut Body,
        visit: &mut PromptTextVisitor<'_>,
    ) -> Result<(), ApiError> {
        if let Some(Value::String(t)) = body.get_mut("instructions") {
            visit(t, Param::field("instructions"))?;
        }
        match body.get_mut("input") {
            Some(Value::String(t)) => visit(t, Param::field("input"))?,
            Some(Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let at = Param::item("input", i, ".content");
                    visit_content_mut(at, item.get_mut("content"), visit)?;
                    // A tool's output is where indirect injections arrive; calls' names and
                    // arguments are rendered for the model too.
                    for (field, leaf) in [
                        ("output", ".output"),
                        ("name", ".name"),
                        ("arguments", ".arguments"),
                    ] {
                        if let Some(Value::String(t)) = item.get_mut(field) {
                            visit(t, Param::item("input", i, leaf))?;
                        }
                    }
                }
            }
            _ => {}
        }
        for field in ["tools", "text"] {
            if let Some(value) = body.get_mut(field) {
                super::visit_strings_mut(value, Param::field(field), super::NOT_TEXT, visit)?;
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
                // Function tools name themselves; built-in tools (web search, ...) by type.
                let name = tool
                    .get("name")
                    .or_else(|| tool.get("type"))
                    .and_then(Value::as_str);
                (Param::item("tools", i, ""), name.unwrap_or(""))
            })
            .collect()
    }

    fn system_prompt(&self, body: &Body) -> String {
        let instructions = body.get("instructions").and_then(Value::as_str);
        let messages = items(body)
            .iter()
            .filter(|m| {
                matches!(
                    m.get("role").and_then(Value::as_str),
                    Some("system" | "developer")
                )
            })
            .filter_map(|m| content_text(m.get("content")));
        instructions
            .map(str::to_owned)
            .into_iter()
            .chain(messages)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn count_prompt(&self, encoding: Encoding, body: &Body) -> u64 {
        let mut total = REPLY_PRIMING;
        if let Some(t) = body.get("instructions").and_then(Value::as_str) {
            total += TOKENS_PER_ITEM + encoding.count("system") + encoding.count(t);
        }
        if let Some(Value::String(t)) = body.get("input") {
            total += TOKENS_PER_ITEM + encoding.count("user") + encoding.count(t);
        }
        for item in items(body) {
            total += TOKENS_PER_ITEM;
            if let Some(role) = item.get("role").and_then(Value::as_str) {
                total += encoding.count(role);
            }
            if let Some(content) = item.get("content") {
                total += encoding.count_content(content);
            }
            for field in ["name", "arguments", "output", "call_id"] {
                if let Some(t) = item.get(field).and_then(Value::as_str) {
                    total += encoding.count(t);
                }
            }
        }
        for field in ["tools", "text"] {
            if let Some(value) = body.get(field) {
                total += encoding.count_json(value);
            }
        }
        total
    }

    fn output_limit(&self) -> Option<OutputLimit> {
        Some(OutputLimit {
            fields: &["max_output_tokens"],
            default_field: "max_output_tokens",
        })
    }

    fn choices(&self, _body: &Body) -> u64 {
        1
    }

    fn request_stream_usage(&self, _body: &mut Body) -> bool {
        // Every stream ends with `response.completed`, which carries usage.
        false
    }

    fn logprobs_requested(&self, _body: &Body) -> bool {
        // Log probabilities are asked for through `include`, which is not accepted.
        false
    }

    fn response_allow_list(&self) -> &'static Allow {
        &RESPONSE_OR_EVENT
    }

    fn strip_logprobs(&self, _chunk: &mut Value) -> bool {
        // The allow-list has no place for them.
        false
    }

    fn strip_reasoning(&self, chunk: &mut Value) -> Stripped {
        let kind = chunk.get("type").and_then(Value::as_str).unwrap_or("");
        // `response.reasoning_text.delta`, `response.reasoning_summary_text.done`, ...
        if kind.starts_with("response.reasoning") {
            return Stripped::Hide;
        }
        if let Some(part) = chunk.get("part") {
            if is_reasoning_part(part) {
                return Stripped::Hide;
            }
        }
        let mut edited = false;
        if let Some(item) = chunk.get_mut("item") {
            edited |= strip_reasoning_item(item);
        }
        edited |= strip_reasoning_items(chunk);
        if let Some(response) = chunk.get_mut("response") {
            edited |= strip_reasoning_items(response);
        }
        if edited {
            Stripped::Edited
        } else {
            Stripped::Nothing
        }
    }

    fn generated_texts<'a>(
        &self,
        chunk: &'a mut Value,
        stream: bool,
        out: &mut Vec<GeneratedText<'a>>,
    ) {
        if !stream {
            return response_texts(chunk, out);
        }
        let kind = chunk
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(event) = chunk.as_object_mut() else {
            return;
        };
        let index = |name: &str| event.get(name).and_then(Value::as_u64).unwrap_or(0);
        let item_slot = index("output_index").saturating_mul(SLOTS_PER_ITEM);
        let part_slot = item_slot + index("content_index").min(SLOTS_PER_ITEM - 2);
        let call_slot = item_slot + SLOTS_PER_ITEM - 1;
        let (field, slot, piece) = match kind.as_str() {
            "response.output_text.delta" | "response.refusal.delta" => {
                ("delta", part_slot, TextPiece::Delta { last: false })
            }
            "response.function_call_arguments.delta" => {
                ("delta", call_slot, TextPiece::Delta { last: false })
            }
            "response.output_text.done" => ("text", part_slot, TextPiece::Whole),
            "response.refusal.done" => ("refusal", part_slot, TextPiece::Whole),
            "response.function_call_arguments.done" => ("arguments", call_slot, TextPiece::Whole),
            "response.content_part.added" | "response.content_part.done" => {
                if let Some(part) = event.get_mut("part") {
                    part_texts(part, part_slot, out);
                }
                return;
            }
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = event.get_mut("item") {
                    item_texts(item, item_slot, out);
                }
                return;
            }
            _ => {
                if let Some(response) = event.get_mut("response") {
                    response_texts(response, out);
                }
                return;
            }
        };
        if let Some(Value::String(text)) = event.get_mut(field) {
            out.push(GeneratedText { slot, text, piece });
        }
    }

    fn release_event(&self, template: &Value, _slot: u64, text: String) -> Option<Value> {
        let ending = template;
        let kind = match ending.get("type").and_then(Value::as_str)? {
            "response.output_text.done" | "response.output_text.delta" => {
                "response.output_text.delta"
            }
            "response.refusal.done" | "response.refusal.delta" => "response.refusal.delta",
            "response.function_call_arguments.done" | "response.function_call_arguments.delta" => {
                "response.function_call_arguments.delta"
            }
            _ => return None,
        };
        let mut event = json!({"type": kind, "delta": text});
        for field in [
            "item_id",
            "output_index",
            "content_index",
            "sequence_number",
        ] {
            if let Some(v) = ending.get(field) {
                event[field] = v.clone();
            }
        }
        Some(event)
    }

    fn slot_answer(&self, slot: u64) -> u64 {
        slot / SLOTS_PER_ITEM
    }

    fn slot_is_prose(&self, slot: u64) -> bool {
        slot % SLOTS_PER_ITEM != SLOTS_PER_ITEM - 1
    }

    fn set_model(&self, chunk: &mut Value, public: &str) -> bool {
        let mut changed = super::set_top_model(chunk, public);
        if let Some(response) = chunk.get_mut("response") {
            changed |= super::set_top_model(response, public);
        }
        changed
    }

    fn usage(&self, chunk: &Value) -> Option<ReportedUsage> {
        let usage = chunk
            .get("usage")
            .or_else(|| chunk.pointer("/response/usage"))
            .filter(|u| u.is_object())?;
        let tokens = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
        Some(ReportedUsage {
            input_tokens: tokens("input_tokens"),
            output_tokens: tokens("output_tokens"),
        })
    }

    fn is_usage_only(&self, _chunk: &Value) -> bool {
        false
    }
}

/// A content part of reasoning (the text of a chain of thought, or of its summary).
fn is_reasoning_part(part: &Value) -> bool {
    part.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("reasoning") || t == "summary_text")
}

/// A reasoning item keeps its type and id (the caller may pass it back) and loses its text.
fn strip_reasoning_item(item: &mut Value) -> bool {
    let Some(item) = item.as_object_mut() else {
        return false;
    };
    let mut edited = false;
    if item.get("type").and_then(Value::as_str) == Some("reasoning") {
        edited |= item.remove("content").is_some();
        edited |= item.remove("summary").is_some();
    } else if let Some(Value::Array(parts)) = item.get_mut("content") {
        let before = parts.len();
        parts.retain(|p| !is_reasoning_part(p));
        edited |= parts.len() != before;
    }
    edited
}

/// Reasoning out of a response object's output items.
fn strip_reasoning_items(response: &mut Value) -> bool {
    let mut edited = false;
    if let Some(Value::Array(items)) = response.get_mut("output") {
        for item in items {
            edited |= strip_reasoning_item(item);
        }
    }
    edited
}

/// The texts of a response object's output items.
fn response_texts<'a>(response: &'a mut Value, out: &mut Vec<GeneratedText<'a>>) {
    if let Some(Value::Array(items)) = response.get_mut("output") {
        for (o, item) in items.iter_mut().enumerate() {
            item_texts(item, (o as u64).saturating_mul(SLOTS_PER_ITEM), out);
        }
    }
}

fn item_texts<'a>(item: &'a mut Value, base: u64, out: &mut Vec<GeneratedText<'a>>) {
    let Some(item) = item.as_object_mut() else {
        return;
    };
    for (key, value) in item.iter_mut() {
        match (key.as_str(), value) {
            ("content", Value::Array(parts)) => {
                for (c, part) in parts.iter_mut().enumerate() {
                    part_texts(part, base + (c as u64).min(SLOTS_PER_ITEM - 2), out);
                }
            }
            ("arguments", Value::String(text)) => out.push(GeneratedText {
                slot: base + SLOTS_PER_ITEM - 1,
                text,
                piece: TextPiece::Whole,
            }),
            _ => {}
        }
    }
}

fn part_texts<'a>(part: &'a mut Value, slot: u64, out: &mut Vec<GeneratedText<'a>>) {
    let Some(part) = part.as_object_mut() else {
        return;
    };
    for (key, value) in part.iter_mut() {
        if let ("text" | "refusal", Value::String(text)) = (key.as_str(), value) {
            out.push(GeneratedText {
                slot,
                text,
                piece: TextPiece::Whole,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Body {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn validates_inputs_and_refuses_items_it_cannot_read() {
        let mut ok = body(json!({"model": "m", "input": "hi", "instructions": "be brief"}));
        Responses.validate(&mut ok, false).unwrap();
        let mut items = body(json!({"model": "m", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call_output", "call_id": "c", "output": "42"},
        ]}));
        Responses.validate(&mut items, false).unwrap();
        for (bad, param) in [
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": ""}), "input"),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
                "input[0].type",
            ),
            (
                json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
                "input[0].role",
            ),
            (
                json!({"model": "m", "input": "x", "previous_response_id": "r"}),
                "previous_response_id",
            ),
            (
                json!({"model": "m", "input": "x", "include": ["message.output_text.logprobs"]}),
                "include",
            ),
        ] {
            let err = Responses.validate(&mut body(bad), false).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param));
        }
    }

    #[test]
    fn screens_instructions_inputs_and_tool_outputs() {
        let mut b = body(json!({"model": "m", "instructions": "sys", "input": [
            {"role": "user", "content": "u"},
            {"type": "function_call_output", "call_id": "c", "output": "tool"},
        ]}));
        let mut seen = Vec::new();
        Responses
            .visit_prompt_texts_mut(&mut b, &mut |t, p| {
                seen.push((p.to_string(), t.clone()));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                ("instructions".to_owned(), "sys".to_owned()),
                ("input[0].content".into(), "u".into()),
                ("input[1].output".into(), "tool".into()),
            ]
        );
        assert_eq!(Responses.system_prompt(&b), "sys");
    }

    #[test]
    fn finds_texts_in_answers_and_events() {
        let mut answer = json!({"output": [{"type": "message", "content": [
            {"type": "output_text", "text": "hello"}]}], "usage": {"input_tokens": 3, "output_tokens": 1}});
        let mut texts = Vec::new();
        Responses.generated_texts(&mut answer, false, &mut texts);
        assert_eq!(texts.len(), 1);
        assert_eq!(*texts[0].text, "hello");
        assert_eq!(
            Responses.usage(&answer),
            Some(ReportedUsage {
                input_tokens: 3,
                output_tokens: 1
            })
        );
        let mut delta = json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "he"});
        let mut texts = Vec::new();
        Responses.generated_texts(&mut delta, true, &mut texts);
        assert_eq!(texts[0].piece, TextPiece::Delta { last: false });
        let done = json!({"type": "response.output_text.done", "item_id": "i", "output_index": 0, "content_index": 0, "text": "hello"});
        let released = Responses.release_event(&done, 0, "llo".into()).unwrap();
        assert_eq!(released["type"], "response.output_text.delta");
        assert_eq!(released["delta"], "llo");
        let completed = json!({"type": "response.completed", "response": {"usage": {"input_tokens": 5, "output_tokens": 2}}});
        assert_eq!(Responses.usage(&completed).unwrap().output_tokens, 2);
    }
}
