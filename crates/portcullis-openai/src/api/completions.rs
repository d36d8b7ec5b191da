//! `POST /v1/completions`: a prompt in, text (or a stream of text pieces) out.

use super::{
    answers, completion_usage, include_stream_usage, null_choice_logprobs, usage_only_chunk,
    visit_inputs, visit_inputs_mut, Api, Body, GeneratedText, OutputLimit, Param,
    PromptTextVisitor, PromptVisitor, ReportedUsage, TextPiece,
};
use crate::fields::{Allow, COMPLETION};
use crate::schema;
use crate::tokens::Encoding;
use portcullis_core::{ApiError, Endpoint, ErrorKind};
use serde_json::{json, Value};

pub struct Completions;

impl Api for Completions {
    fn endpoint(&self) -> Endpoint {
        Endpoint::Completions
    }

    fn validate(&self, body: &mut Body, strip_unknown: bool) -> Result<(), ApiError> {
        schema::known_fields(body, schema::COMPLETION_FIELDS, strip_unknown)?;
        schema::shared(body)?;
        schema::integer(body, "logprobs", 0, 5)?;
        schema::integer(body, "best_of", 1, 128)?;
        schema::kind(body, "echo", Value::is_boolean, "a boolean")?;
        match body.get("prompt") {
            None => Err(schema::missing("prompt", "You must provide a prompt.")),
            Some(p) if p.is_string() || p.as_array().is_some_and(|a| !a.is_empty()) => Ok(()),
            Some(_) => Err(schema::wrong_type(
                "prompt",
                "a string or a non-empty array",
            )),
        }
    }

    fn message_count(&self, _body: &Body) -> usize {
        0
    }

    fn visit_prompt(&self, body: &Body, visit: &mut PromptVisitor<'_>) -> Result<(), ApiError> {
        visit_inputs("prompt", body.get("prompt"), visit)
    }

    fn visit_prompt_texts_mut(
        &self,
        body: &mut Body,
        visit: &mut PromptTextVisitor<'_>,
    ) -> Result<(), ApiError> {
        // Token ids cannot be read before the model reads them: refused while screening.
        if let Some(Value::Array(items)) = body.get("prompt") {
            if items.iter().any(|i| i.is_number() || i.is_array()) {
                return Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    "Prompts given as token ids cannot be screened; send them as text.",
                )
                .with_param("prompt")
                .with_code("unsupported_prompt_format"));
            }
        }
        visit_inputs_mut("prompt", body.get_mut("prompt"), visit)?;
        if let Some(Value::String(suffix)) = body.get_mut("suffix") {
            visit(suffix, Param::field("suffix"))?;
        }
        Ok(())
    }

    fn tool_names<'a>(&self, _body: &'a Body) -> Vec<(Param, &'a str)> {
        Vec::new()
    }

    fn system_prompt(&self, _body: &Body) -> String {
        String::new()
    }

    fn count_prompt(&self, encoding: Encoding, body: &Body) -> u64 {
        // The suffix is read by the model after the insertion point.
        let suffix = match body.get("suffix") {
            Some(Value::String(suffix)) => encoding.count(suffix),
            _ => 0,
        };
        body.get("prompt").map_or(0, |p| encoding.count_inputs(p)) + suffix
    }

    fn output_limit(&self) -> Option<OutputLimit> {
        Some(OutputLimit {
            fields: &["max_tokens"],
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
        body.get("logprobs").is_some_and(Value::is_number)
    }

    fn response_allow_list(&self) -> &'static Allow {
        &COMPLETION
    }

    fn strip_logprobs(&self, chunk: &mut Value) -> bool {
        null_choice_logprobs(chunk)
    }

    fn generated_texts<'a>(
        &self,
        chunk: &'a mut Value,
        stream: bool,
        out: &mut Vec<GeneratedText<'a>>,
    ) {
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return;
        };
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            let slot = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let last = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            if stream && last && choice.get("text").is_none_or(Value::is_null) {
                choice.insert("text".into(), Value::String(String::new()));
            }
            if let Some(Value::String(text)) = choice.get_mut("text") {
                let piece = if stream {
                    TextPiece::Delta { last }
                } else {
                    TextPiece::Whole
                };
                out.push(GeneratedText { slot, text, piece });
            }
        }
    }

    fn release_event(&self, template: &Value, slot: u64, text: String) -> Option<Value> {
        let choice = json!({"index": slot, "text": text, "logprobs": null, "finish_reason": null});
        Some(super::chunk_like(template, Value::Array(vec![choice])))
    }

    fn slot_answer(&self, slot: u64) -> u64 {
        slot
    }

    fn slot_is_prose(&self, _slot: u64) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_suffix_is_counted_with_the_prompt() {
        // F15: a long suffix was admitted against a quota it did not count towards.
        let body = json!({"prompt": "hello world", "suffix": "hello world"});
        assert_eq!(
            Completions.count_prompt(Encoding::O200kBase, body.as_object().unwrap()),
            4
        );
    }

    #[test]
    fn prompts_may_be_lists() {
        let body = json!({"prompt": "hello world"});
        assert_eq!(
            Completions.count_prompt(Encoding::O200kBase, body.as_object().unwrap()),
            2
        );
    }
}
