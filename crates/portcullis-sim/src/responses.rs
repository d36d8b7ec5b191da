//! The Responses API's shapes: a response object, and the typed events of its stream
//! (`response.created` ... `response.output_text.delta` ... `response.completed`), each sent
//! with an `event:` line naming its type and a rising `sequence_number`, as OpenAI does.

use bytes::Bytes;
use serde_json::{json, Value};

const ID: &str = "resp_sim";
const ITEM: &str = "msg_sim";

fn usage(prompt: usize, output: usize) -> Value {
    json!({
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": prompt + output,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    })
}

fn message(status: &str, text: Option<&str>) -> Value {
    let content = match text {
        Some(text) => json!([{"type": "output_text", "text": text, "annotations": []}]),
        None => json!([]),
    };
    json!({"type": "message", "id": ITEM, "status": status, "role": "assistant", "content": content})
}

/// A response object; `usage` is `(input, output)` tokens.
pub(crate) fn response(
    model: &str,
    status: &str,
    text: &str,
    tokens: Option<(usize, usize)>,
) -> Value {
    let output = if status == "in_progress" {
        json!([])
    } else {
        json!([message("completed", Some(text))])
    };
    let mut response = json!({
        "id": ID,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
    });
    if let Some((input, output)) = tokens {
        response["usage"] = usage(input, output);
    }
    response
}

/// The events of one streamed response, numbered in order.
pub(crate) struct Events {
    model: String,
    sequence: u64,
}

impl Events {
    pub(crate) fn new(model: &str) -> Events {
        Events {
            model: model.to_owned(),
            sequence: 0,
        }
    }

    fn event(&mut self, kind: &str, mut fields: Value) -> Bytes {
        fields["type"] = json!(kind);
        fields["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        Bytes::from(format!("event: {kind}\ndata: {fields}\n\n"))
    }

    pub(crate) fn opening(&mut self) -> Vec<Bytes> {
        let created = response(&self.model, "in_progress", "", None);
        vec![
            self.event("response.created", json!({"response": created.clone()})),
            self.event("response.in_progress", json!({"response": created})),
            self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": message("in_progress", None)}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": ITEM, "output_index": 0, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            ),
        ]
    }

    pub(crate) fn delta(&mut self, piece: &str) -> Bytes {
        self.event(
            "response.output_text.delta",
            json!({"item_id": ITEM, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
        )
    }

    pub(crate) fn closing(&mut self, text: &str, tokens: Option<(usize, usize)>) -> Vec<Bytes> {
        let done = response(&self.model, "completed", text, tokens);
        vec![
            self.event(
                "response.output_text.done",
                json!({"item_id": ITEM, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            ),
            self.event(
                "response.content_part.done",
                json!({"item_id": ITEM, "output_index": 0, "content_index": 0,
                       "part": {"type": "output_text", "text": text, "annotations": []}}),
            ),
            self.event(
                "response.output_item.done",
                json!({"output_index": 0, "item": message("completed", Some(text))}),
            ),
            self.event("response.completed", json!({"response": done})),
        ]
    }
}
