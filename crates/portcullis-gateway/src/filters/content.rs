//! Keeps the text a caller received, for the audit trail of a tenant whose policy opts in
//! (`telemetry.tenants.<name>.log_content`). Last in the chain, so it keeps what the caller
//! saw (after redaction and the leak check); what it keeps is redacted again when the response
//! ends (an output policy of `off` redacts nothing, and the trail never holds a secret) and
//! cut to `telemetry.audit.content_max_chars`. Never in the chain of a model marked
//! `sensitive`.

use super::{Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_openai::{Api, TextPiece};
use portcullis_telemetry::record::Content;
use portcullis_telemetry::RequestRecord;
use serde_json::Value;
use std::collections::BTreeMap;

pub struct KeepContent {
    /// The prompt, already redacted and cut.
    prompt: String,
    prompt_cut: bool,
    /// Each slot's text so far (a choice, or an output item's part).
    slots: BTreeMap<u64, String>,
    kept: usize,
    max_chars: usize,
    cut: bool,
}

impl KeepContent {
    pub fn new(prompt: &str, max_chars: usize) -> KeepContent {
        let (prompt, prompt_cut) = Content::clean(prompt, max_chars, redact);
        KeepContent {
            prompt,
            prompt_cut,
            slots: BTreeMap::new(),
            kept: 0,
            max_chars,
            cut: false,
        }
    }

    fn keep(&mut self, value: &mut Value, stream: bool, api: &dyn Api) {
        let mut texts = Vec::new();
        api.generated_texts(value, stream, &mut texts);
        for t in texts {
            // Room for the bound and a secret straddling it, no more: a long answer costs
            // no more memory than a short one.
            let room = (2 * self.max_chars).saturating_sub(self.kept);
            let text = match t.text.char_indices().nth(room) {
                Some((at, _)) => {
                    self.cut = true;
                    &t.text[..at]
                }
                None => t.text.as_str(),
            };
            self.kept += text.chars().count();
            let slot = self.slots.entry(t.slot).or_default();
            match t.piece {
                TextPiece::Delta { .. } => slot.push_str(text),
                TextPiece::Whole => {
                    slot.clear();
                    slot.push_str(text);
                }
            }
        }
    }
}

fn redact(text: &str) -> String {
    portcullis_guard::redact::redact(text).0
}

impl ResponseFilter for KeepContent {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        for event in &mut chunk.before {
            self.keep(event, true, api);
        }
        if !chunk.hidden {
            self.keep(&mut chunk.value, chunk.stream, api);
        }
        Flow::Continue
    }

    fn on_stream_end(&mut self, _api: &dyn Api) -> Result<Vec<Value>, portcullis_core::ApiError> {
        Ok(Vec::new())
    }

    fn on_end(&mut self, _end: End, record: &mut RequestRecord) -> Option<EndWork> {
        let whole = self
            .slots
            .values()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n\n");
        let (completion, completion_cut) = Content::clean(&whole, self.max_chars, redact);
        record.content = Some(Content {
            prompt: std::mem::take(&mut self.prompt),
            completion,
            truncated: self.prompt_cut || completion_cut || self.cut,
        });
        None
    }
}
