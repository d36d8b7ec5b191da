//! The inference endpoints, each one implementation of [`Api`].
//!
//! Everything the gateway needs to know about an endpoint's wire format is a method here, and
//! none has a default: adding an endpoint makes the compiler list every question it must
//! answer (which fields it takes, where its prompt is, how it is counted, what its answer may
//! contain, where the generated text is, how usage is reported). No step of the request path
//! matches on endpoints with a fallback arm, so a new endpoint cannot silently skip screening,
//! bounds, redaction or accounting.

mod chat;
mod completions;
mod embeddings;
mod responses;

use crate::fields::Allow;
use crate::tokens::Encoding;
use portcullis_core::{ApiError, Endpoint};
use serde_json::{Map, Value};
use std::fmt;

pub use chat::Chat;
pub use completions::Completions;
pub use embeddings::Embeddings;
pub use responses::Responses;

/// A request body, parsed strictly.
pub type Body = Map<String, Value>;

/// The inference API behind `endpoint`; `None` for endpoints that are not inference (the model
/// list). Exhaustive on purpose: a new [`Endpoint`] does not compile until it answers here.
pub fn api(endpoint: Endpoint) -> Option<&'static dyn Api> {
    match endpoint {
        Endpoint::ChatCompletions => Some(&Chat),
        Endpoint::Completions => Some(&Completions),
        Endpoint::Embeddings => Some(&Embeddings),
        Endpoint::Responses => Some(&Responses),
        Endpoint::Models => None,
    }
}

/// Where a value sits in a request, for the `param` of an error (`messages[2].content[0].text`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Param {
    pub root: &'static str,
    pub index: Option<usize>,
    pub middle: &'static str,
    pub part: Option<usize>,
    pub leaf: &'static str,
}

impl Param {
    pub const fn field(root: &'static str) -> Param {
        Param {
            root,
            index: None,
            middle: "",
            part: None,
            leaf: "",
        }
    }

    pub const fn item(root: &'static str, index: usize, middle: &'static str) -> Param {
        Param {
            root,
            index: Some(index),
            middle,
            part: None,
            leaf: "",
        }
    }

    pub const fn part(self, part: usize, leaf: &'static str) -> Param {
        Param {
            part: Some(part),
            leaf,
            ..self
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        f.write_str(self.middle)?;
        if let Some(j) = self.part {
            write!(f, "[{j}]")?;
        }
        f.write_str(self.leaf)
    }
}

/// One piece of a request's prompt, as bounds see it.
#[derive(Debug, Clone, Copy)]
pub enum PromptPart<'a> {
    Text(Param, &'a str),
    /// An image by URL (`data:` URLs are inline images).
    Image(Param, &'a str),
    /// An audio or file part, with its inline data (empty when it refers to an uploaded file).
    Attachment(Param, &'a str),
}

/// Visits prompt pieces; an error stops the walk.
pub type PromptVisitor<'v> = dyn FnMut(PromptPart<'_>) -> Result<(), ApiError> + 'v;
/// Visits prompt texts that may be rewritten (sanitation); an error stops the walk.
pub type PromptTextVisitor<'v> = dyn FnMut(&mut String, Param) -> Result<(), ApiError> + 'v;

/// Whether a generated text is a piece of a stream or the whole of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPiece {
    /// The next piece of the slot's text; `last` when the slot ends with this chunk.
    Delta { last: bool },
    /// The slot's whole text (a whole response, or a stream event that repeats it).
    Whole,
}

/// A generated text in a response or stream chunk.
#[derive(Debug)]
pub struct GeneratedText<'a> {
    /// Which text of the answer it is, stable across a stream's chunks (the choice, or the
    /// output item and content part).
    pub slot: u64,
    pub text: &'a mut String,
    pub piece: TextPiece,
}

/// Tokens the upstream says it used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportedUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What [`Api::strip_reasoning`] did to a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stripped {
    Nothing,
    /// Reasoning was taken out; the rest of the chunk stays.
    Edited,
    /// The whole chunk is reasoning (a stream event of it): not sent.
    Hide,
}

/// How a request limits its output, and what the gateway may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// The fields that bound output tokens, in the order the upstream reads them.
    pub fields: &'static [&'static str],
    /// The field the gateway sets when the caller set none.
    pub default_field: &'static str,
}

/// One OpenAI-compatible inference endpoint.
pub trait Api: Sync + Send + 'static {
    /// Which endpoint this is (routing, permissions, the upstream path).
    fn endpoint(&self) -> Endpoint;

    /// Checks the body against the endpoint's request model; unknown top-level fields are
    /// refused, or removed when `strip_unknown`.
    fn validate(&self, body: &mut Body, strip_unknown: bool) -> Result<(), ApiError>;

    /// How many messages (or input items) the request carries, for the plan's bound.
    fn message_count(&self, body: &Body) -> usize;

    /// Every piece of the prompt the model will read, for bounds.
    fn visit_prompt(&self, body: &Body, visit: &mut PromptVisitor<'_>) -> Result<(), ApiError>;

    /// Every prompt text that screening reads and sanitation may rewrite. Embedding inputs
    /// are not visited: nothing is generated from them.
    fn visit_prompt_texts_mut(
        &self,
        body: &mut Body,
        visit: &mut PromptTextVisitor<'_>,
    ) -> Result<(), ApiError>;

    /// The names of the tools the request declares, with where each is.
    fn tool_names<'a>(&self, body: &'a Body) -> Vec<(Param, &'a str)>;

    /// The operator's and developer's instructions (system prompt), for leak checks.
    fn system_prompt(&self, body: &Body) -> String;

    /// Prompt tokens, counted as the model will.
    fn count_prompt(&self, encoding: Encoding, body: &Body) -> u64;

    /// How output is bounded; `None` for endpoints that generate no text.
    fn output_limit(&self) -> Option<OutputLimit>;

    /// How many answers one request asks for (`n`, `best_of`): reservations multiply by it.
    fn choices(&self, body: &Body) -> u64;

    /// Asks the upstream to report usage in a stream. True when the gateway asked and the
    /// caller did not, so the usage-only chunk must be hidden from the caller.
    fn request_stream_usage(&self, body: &mut Body) -> bool;

    /// Whether the caller asked for log probabilities.
    fn logprobs_requested(&self, body: &Body) -> bool;

    /// The fields a caller may see in an answer or a stream chunk.
    fn response_allow_list(&self) -> &'static Allow;

    /// Removes log probabilities from an answer or chunk; true if any were there.
    fn strip_logprobs(&self, chunk: &mut Value) -> bool;

    /// Removes reasoning text (a chain of thought, or its summary) from an answer or chunk.
    /// A caller gets answers, never the reasoning behind them: it is what a distiller
    /// harvests first, and it was never screened for the caller. The allow-lists already
    /// leave no place for it where an endpoint's shape names it (chat's
    /// `reasoning_content`); endpoints whose reasoning arrives in allowed shapes (items,
    /// parts, typed stream events) take it out here.
    fn strip_reasoning(&self, _chunk: &mut Value) -> Stripped {
        Stripped::Nothing
    }

    /// Every generated text of an answer (`stream` false) or of one stream chunk.
    fn generated_texts<'a>(
        &self,
        chunk: &'a mut Value,
        stream: bool,
        out: &mut Vec<GeneratedText<'a>>,
    );

    /// A stream event that delivers `text` as the next piece of `slot`, modelled on
    /// `template` (an event of the same stream that names the slot: the one that ends it, or
    /// its first piece), for text that redaction held back and now releases.
    fn release_event(&self, template: &Value, slot: u64, text: String) -> Option<Value>;

    /// The answer (a choice, or an output item) a text slot belongs to: when one slot of an
    /// answer ends, its other slots (refusal, tool-call arguments) end with it.
    fn slot_answer(&self, slot: u64) -> u64;

    /// Whether a text slot is prose written for a person (an answer's content), as opposed
    /// to tool-call names and arguments, whose every byte a program reads.
    fn slot_is_prose(&self, _slot: u64) -> bool {
        false
    }

    /// Names the model as the caller knows it wherever the answer or chunk names one (the
    /// upstream's name can say where and what it runs); true if anything changed.
    fn set_model(&self, chunk: &mut Value, public: &str) -> bool;

    /// Usage, when the answer or chunk reports it.
    fn usage(&self, chunk: &Value) -> Option<ReportedUsage>;

    /// A chunk that only reports usage (chat and completions streams asked for it).
    fn is_usage_only(&self, chunk: &Value) -> bool;
}

/// The `logprobs` of each choice, set to null (present only when not null already).
pub(crate) fn null_choice_logprobs(chunk: &mut Value) -> bool {
    let mut found = false;
    if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
        for c in choices.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("logprobs").is_some_and(|l| !l.is_null()) {
                c.insert("logprobs".into(), Value::Null);
                found = true;
            }
        }
    }
    found
}

/// A chat or completions stream chunk carrying `choices`, with the identifying fields of
/// `template` (id, object, created, model, fingerprint).
pub(crate) fn chunk_like(template: &Value, choices: Value) -> Value {
    let mut event = Map::new();
    for field in [
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
    ] {
        if let Some(v) = template.get(field) {
            event.insert(field.to_owned(), v.clone());
        }
    }
    event.insert("choices".to_owned(), choices);
    Value::Object(event)
}

/// Sets `model` at the top of an answer or chunk.
pub(crate) fn set_top_model(chunk: &mut Value, public: &str) -> bool {
    match chunk.get_mut("model") {
        Some(Value::String(name)) if name != public => {
            *name = public.to_owned();
            true
        }
        Some(other @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => {
            *other = Value::String(public.to_owned());
            true
        }
        _ => false,
    }
}

/// Usage in the chat/completions shape (`prompt_tokens`, `completion_tokens`).
pub(crate) fn completion_usage(chunk: &Value) -> Option<ReportedUsage> {
    let usage = chunk.get("usage").filter(|u| u.is_object())?;
    Some(ReportedUsage {
        input_tokens: usage
            .get("prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: usage
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

/// A chat or completions stream chunk that only reports usage (no choices).
pub(crate) fn usage_only_chunk(chunk: &Value) -> bool {
    chunk.get("usage").is_some_and(|u| u.is_object())
        && chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// Asks a chat or completions stream for usage (`stream_options.include_usage`).
pub(crate) fn include_stream_usage(body: &mut Body) -> bool {
    let asked = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if asked {
        return false;
    }
    match body.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.insert("include_usage".into(), Value::Bool(true));
        }
        _ => {
            body.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        }
    }
    true
}

/// `n` (and `best_of`, which generates that many and returns `n`): the answers paid for.
pub(crate) fn answers(body: &Body) -> u64 {
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1);
    let best_of = body.get("best_of").and_then(Value::as_u64).unwrap_or(1);
    n.max(best_of).max(1)
}

/// A prompt given as a string or an array of strings (or pre-tokenized arrays).
pub(crate) fn visit_inputs(
    root: &'static str,
    value: Option<&Value>,
    visit: &mut PromptVisitor<'_>,
) -> Result<(), ApiError> {
    match value {
        Some(Value::String(t)) => visit(PromptPart::Text(Param::field(root), t)),
        Some(Value::Array(items)) => {
            for (i, t) in items.iter().enumerate() {
                if let Some(t) = t.as_str() {
                    visit(PromptPart::Text(Param::item(root, i, ""), t))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The mutable form of [`visit_inputs`].
pub(crate) fn visit_inputs_mut(
    root: &'static str,
    value: Option<&mut Value>,
    visit: &mut PromptTextVisitor<'_>,
) -> Result<(), ApiError> {
    match value {
        Some(Value::String(t)) => visit(t, Param::field(root)),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::String(t) = item {
                    visit(t, Param::item(root, i, ""))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Content parts (`[{type: "text", text}, {type: "image_url", image_url: {url}}]`) of a
/// message at `at`, or its string content.
pub(crate) fn visit_content(
    at: Param,
    content: Option<&Value>,
    visit: &mut PromptVisitor<'_>,
) -> Result<(), ApiError> {
    match content {
        Some(Value::String(t)) => visit(PromptPart::Text(at, t)),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    visit(PromptPart::Text(at.part(j, ".text"), t))?;
                }
                let url = part
                    .pointer("/image_url/url")
                    .or_else(|| part.get("image_url").filter(|u| u.is_string()))
                    .and_then(Value::as_str);
                if let Some(url) = url {
                    visit(PromptPart::Image(at.part(j, ".image_url"), url))?;
                }
                // Audio and files (chat `input_audio` and `file`, Responses `input_file`).
                let attachment = match part.get("type").and_then(Value::as_str) {
                    Some("input_audio") => {
                        Some((".input_audio", part.pointer("/input_audio/data")))
                    }
                    Some("file") => Some((".file", part.pointer("/file/file_data"))),
                    Some("input_file") => Some((".file_data", part.get("file_data"))),
                    _ => None,
                };
                if let Some((leaf, data)) = attachment {
                    let data = data.and_then(Value::as_str).unwrap_or("");
                    visit(PromptPart::Attachment(at.part(j, leaf), data))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The mutable form of [`visit_content`] (texts only).
pub(crate) fn visit_content_mut(
    at: Param,
    content: Option<&mut Value>,
    visit: &mut PromptTextVisitor<'_>,
) -> Result<(), ApiError> {
    match content {
        Some(Value::String(t)) => visit(t, at),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter_mut().enumerate() {
                if let Some(Value::String(t)) = part.get_mut("text") {
                    visit(t, at.part(j, ".text"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every string inside `value`, except under the keys in `skip` (identifiers, roles, types,
/// URLs: nothing a model reads as instructions), for screening texts wherever a request puts
/// them (tool descriptions, names, tool-call history, ...). `at` names the enclosing item.
pub(crate) fn visit_strings_mut(
    value: &mut Value,
    at: Param,
    skip: &[&str],
    visit: &mut PromptTextVisitor<'_>,
) -> Result<(), ApiError> {
    match value {
        Value::String(text) => visit(text, at),
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| visit_strings_mut(v, at, skip, visit)),
        Value::Object(map) => map
            .iter_mut()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .try_for_each(|(_, v)| visit_strings_mut(v, at, skip, visit)),
        _ => Ok(()),
    }
}

/// Keys whose values are not text a model reads as instructions.
pub(crate) const NOT_TEXT: &[&str] = &[
    "role",
    "type",
    "id",
    "tool_call_id",
    "call_id",
    "image_url",
    "input_audio",
    "file",
    "detail",
    "format",
    "strict",
];

/// The text of a content value (a string, or its text parts joined by newlines).
pub(crate) fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_as_openai_writes_them() {
        assert_eq!(Param::field("prompt").to_string(), "prompt");
        assert_eq!(Param::item("prompt", 2, "").to_string(), "prompt[2]");
        assert_eq!(
            Param::item("messages", 1, ".content")
                .part(0, ".text")
                .to_string(),
            "messages[1].content[0].text"
        );
    }

    #[test]
    fn every_inference_endpoint_has_an_api_that_names_it() {
        for endpoint in [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
        ] {
            assert_eq!(api(endpoint).unwrap().endpoint(), endpoint);
        }
        assert!(api(Endpoint::Models).is_none());
    }
}
