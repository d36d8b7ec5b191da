//! System-prompt leak checks on the (already redacted) answer: the configured canary, and
//! verbatim spans of the request's own system prompt, also when split across stream chunks.
//! `block` withholds the answer (a stream ends with an error event); `flag` logs it.

use super::{rejected, Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_guard::leak::{Leak, LeakCheck, StreamLeakCheck};
use portcullis_openai::{Api, TextPiece};

pub struct LeakFilter {
    check: StreamLeakCheck,
    request_id: String,
    /// What leaked, for the record (the first leak).
    found: Option<Leak>,
}

impl LeakFilter {
    pub fn new(check: LeakCheck, request_id: String) -> LeakFilter {
        LeakFilter {
            check: StreamLeakCheck::new(check),
            request_id,
            found: None,
        }
    }
}

fn leaked(request_id: &str, what: Leak, block: bool) {
    tracing::warn!(request_id, leak = ?what, action = if block { "blocked" } else { "flagged" }, "answer leaks the system prompt");
}

impl LeakFilter {
    /// Checks the texts of one event (or a whole answer).
    fn check(&mut self, value: &mut serde_json::Value, stream: bool, api: &dyn Api) -> Flow {
        let mut texts = Vec::new();
        api.generated_texts(value, stream, &mut texts);
        for t in texts {
            let found = match t.piece {
                TextPiece::Delta { .. } => self.check.push(t.slot, t.text),
                TextPiece::Whole => self.check.check().find(t.text),
            };
            if let Some(what) = found {
                let block = self.check.blocks();
                leaked(&self.request_id, what, block);
                self.found.get_or_insert(what);
                if block {
                    return Flow::Stop(rejected());
                }
                // Flagged once per response is enough for the log.
                break;
            }
        }
        Flow::Continue
    }
}

impl ResponseFilter for LeakFilter {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        // Events released before this one reach the caller first, so they are read first.
        for event in &mut chunk.before {
            if let Flow::Stop(error) = self.check(event, true, api) {
                return Flow::Stop(error);
            }
        }
        self.check(&mut chunk.value, chunk.stream, api)
    }

    fn on_stream_end(
        &mut self,
        _api: &dyn Api,
    ) -> Result<Vec<serde_json::Value>, portcullis_core::ApiError> {
        Ok(Vec::new())
    }

    fn on_end(
        &mut self,
        _end: End,
        record: &mut portcullis_telemetry::RequestRecord,
    ) -> Option<EndWork> {
        if let Some(what) = self.found {
            let rule = match what {
                Leak::Canary => "canary",
                Leak::SystemPrompt => "system_prompt",
            };
            let action = if self.check.blocks() {
                "blocked"
            } else {
                "flagged"
            };
            record
                .findings
                .push(crate::pipeline::record::finding("leak", rule, action, None));
        }
        None
    }
}
