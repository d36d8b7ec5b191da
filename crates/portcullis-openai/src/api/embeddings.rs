//! `POST /v1/embeddings`: inputs in, vectors out. Nothing is generated, so there is no text to
//! screen (inputs are still bounded and counted) and none to redact.

use super::{
    completion_usage, visit_inputs, Api, Body, GeneratedText, OutputLimit, Param,
    PromptTextVisitor, PromptVisitor, ReportedUsage,
};
use crate::fields::{Allow, EMBEDDINGS};
use crate::schema;
use crate::tokens::Encoding;
use portcullis_core::{ApiError, Endpoint};
use serde_json::Value;

pub struct Embeddings;

impl Api for Embeddings {
    fn endpoint(&self) -> Endpoint {
        Endpoint::Embeddings
    }

    fn validate(&self, body: &mut Body, strip_unknown: bool) -> Result<(), ApiError> {
        schema::known_fields(body, schema::EMBEDDING_FIELDS, strip_unknown)?;
        schema::shared(body)?;
        match body.get("input") {
            None => Err(schema::missing("input", "You must provide an input.")),
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Array(a)) if !a.is_empty() && a.len() <= 2048 => Ok(()),
            Some(_) => Err(schema::wrong_type(
                "input",
                "a non-empty string or an array of 1 to 2048 items",
            )),
        }
    }

    fn message_count(&self, _body: &Body) -> usize {
        0
    }

    fn visit_prompt(&self, body: &Body, visit: &mut PromptVisitor<'_>) -> Result<(), ApiError> {
        visit_inputs("input", body.get("input"), visit)
    }

    fn visit_prompt_texts_mut(
        &self,
        _body: &mut Body,
        _visit: &mut PromptTextVisitor<'_>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    fn tool_names<'a>(&self, _body: &'a Body) -> Vec<(Param, &'a str)> {
        Vec::new()
    }

    fn system_prompt(&self, _body: &Body) -> String {
        String::new()
    }

    fn count_prompt(&self, encoding: Encoding, body: &Body) -> u64 {
        body.get("input").map_or(0, |p| encoding.count_inputs(p))
    }

    fn output_limit(&self) -> Option<OutputLimit> {
        None
    }

    fn choices(&self, _body: &Body) -> u64 {
        1
    }

    fn request_stream_usage(&self, _body: &mut Body) -> bool {
        false
    }

    fn logprobs_requested(&self, _body: &Body) -> bool {
        false
    }

    fn response_allow_list(&self) -> &'static Allow {
        &EMBEDDINGS
    }

    fn strip_logprobs(&self, _chunk: &mut Value) -> bool {
        false
    }

    fn generated_texts<'a>(
        &self,
        _chunk: &'a mut Value,
        _stream: bool,
        _out: &mut Vec<GeneratedText<'a>>,
    ) {
    }

    fn release_event(&self, _template: &Value, _slot: u64, _text: String) -> Option<Value> {
        None
    }

    fn slot_answer(&self, slot: u64) -> u64 {
        slot
    }

    fn set_model(&self, chunk: &mut Value, public: &str) -> bool {
        super::set_top_model(chunk, public)
    }

    fn usage(&self, chunk: &Value) -> Option<ReportedUsage> {
        completion_usage(chunk)
    }

    fn is_usage_only(&self, _chunk: &Value) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_may_be_lists_or_token_arrays() {
        let body = json!({"input": ["hello world", [1, 2, 3]]});
        assert_eq!(
            Embeddings.count_prompt(Encoding::O200kBase, body.as_object().unwrap()),
            2 + 3
        );
    }
}
