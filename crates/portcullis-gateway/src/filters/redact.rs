//! Personal data and secrets redacted from every generated text, in whole answers and
//! streams alike. In a stream, each text slot (a choice's content, refusal, tool-call or
//! function-call arguments, or an output item's content part) flows through its own
//! `StreamRedactor`, which holds back only what may still become an item. What it holds is
//! released with the piece that ends the slot; as one more delta event just before the event
//! that ends its answer (a choice's `finish_reason`) or repeats its whole text (the Responses
//! API's `...done`); or, when the upstream ends the stream without either, as delta events
//! before the stream's end. Text is never lost and never leaves unredacted. Whole texts are
//! redacted at once, with the same result the pieces gave. Under `block`, an answer with an
//! item is refused, and a stream ends with an error event instead of the item. A chunk with an
//! item, or whose text is partly held back, loses its log probabilities (their tokens would
//! repeat what is redacted or not yet shown).

use super::{rejected, Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_core::ApiError;
use portcullis_guard::redact::{redact, StreamRedactor};
use portcullis_openai::{Api, TextPiece};
use serde_json::Value;
use std::collections::BTreeMap;

pub struct Redact {
    block: bool,
    /// Open slots, in slot order: the redactor and an event of the stream that names the slot
    /// (its first piece), the model for events that release what it holds.
    open: BTreeMap<u64, (StreamRedactor, Value)>,
    /// Items redacted, by kind, for the record.
    redacted: BTreeMap<&'static str, u32>,
}

impl Redact {
    pub fn new(block: bool) -> Redact {
        Redact {
            block,
            open: BTreeMap::new(),
            redacted: BTreeMap::new(),
        }
    }

    /// Ends an open slot: what it still held (redacted; `found` set if that held an item) and
    /// the event it was opened by. `None` when the slot is not open or held nothing.
    fn end_slot(&mut self, slot: u64, found: &mut bool) -> Option<(String, Value)> {
        let (mut redactor, template) = self.open.remove(&slot)?;
        let before = redactor.spans().len();
        let held = redactor.finish();
        *found |= redactor.spans().len() > before;
        count(&mut self.redacted, &redactor.spans()[before..]);
        (!held.is_empty()).then_some((held, template))
    }

    /// Ends the open slots that `ends` picks, releasing what they held as events modelled on
    /// the events that opened them.
    fn release(
        &mut self,
        api: &dyn Api,
        ends: impl Fn(u64) -> bool,
        found: &mut bool,
    ) -> Vec<Value> {
        let slots: Vec<u64> = self.open.keys().copied().filter(|s| ends(*s)).collect();
        slots
            .into_iter()
            .filter_map(|slot| {
                let (held, template) = self.end_slot(slot, found)?;
                api.release_event(&template, slot, held)
            })
            .collect()
    }
}

impl ResponseFilter for Redact {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        let mut texts = Vec::new();
        let mut opened = Vec::new();
        api.generated_texts(&mut chunk.value, chunk.stream, &mut texts);
        let mut found = false;
        let mut edited = false;
        let mut hiding = false;
        let mut released = Vec::new();
        let mut ended_answers = Vec::new();
        for t in texts {
            match t.piece {
                TextPiece::Delta { last } => {
                    let (redactor, _) = self.open.entry(t.slot).or_insert_with(|| {
                        opened.push(t.slot);
                        (StreamRedactor::new(), Value::Null)
                    });
                    let before = redactor.spans().len();
                    let mut emitted = redactor.push(t.text);
                    if last {
                        emitted.push_str(&redactor.finish());
                        ended_answers.push(api.slot_answer(t.slot));
                    }
                    found |= redactor.spans().len() > before;
                    count(&mut self.redacted, &redactor.spans()[before..]);
                    // Text held back is not shown yet, so neither may its tokens be; held
                    // spacing gives nothing away.
                    hiding |= redactor.held_text().chars().any(|c| !c.is_whitespace());
                    if last {
                        self.open.remove(&t.slot);
                    }
                    if emitted != *t.text {
                        *t.text = emitted;
                        edited = true;
                    }
                }
                TextPiece::Whole => {
                    if let Some((held, _)) = self.end_slot(t.slot, &mut found) {
                        released.push((t.slot, held));
                    }
                    let (clean, spans) = redact(t.text);
                    count(&mut self.redacted, &spans);
                    if !spans.is_empty() {
                        found = true;
                        *t.text = clean;
                        edited = true;
                    }
                }
            }
        }
        // A slot opened by this chunk is released, if ever, in events modelled on it.
        for slot in opened {
            if let Some((_, template)) = self.open.get_mut(&slot) {
                *template = chunk.value.clone();
            }
        }
        // An answer that ended here ends its other open slots too: what they hold goes out
        // just before this chunk.
        if !ended_answers.is_empty() {
            let ends = |slot| ended_answers.contains(&api.slot_answer(slot));
            chunk.before.extend(self.release(api, ends, &mut found));
        }
        if found && self.block {
            return Flow::Stop(rejected());
        }
        // Log probabilities repeat the text token by token: where an item was found or text is
        // held back, they cannot be shown consistently with it, and are dropped.
        if found || hiding {
            chunk.edited |= api.strip_logprobs(&mut chunk.value);
        }
        for (slot, held) in released {
            // Modelled on the event that ends the slot with its whole text.
            if let Some(event) = api.release_event(&chunk.value, slot, held) {
                chunk.before.push(event);
            }
        }
        chunk.edited |= edited;
        Flow::Continue
    }

    fn on_stream_end(&mut self, api: &dyn Api) -> Result<Vec<Value>, ApiError> {
        let mut found = false;
        let events = self.release(api, |_| true, &mut found);
        if found && self.block {
            return Err(rejected());
        }
        Ok(events)
    }

    fn on_end(
        &mut self,
        _end: End,
        record: &mut portcullis_telemetry::RequestRecord,
    ) -> Option<EndWork> {
        let action = if self.block { "blocked" } else { "redacted" };
        for (kind, n) in &self.redacted {
            let mut finding = crate::pipeline::record::finding("redaction", kind, action, None);
            finding.count = *n;
            record.findings.push(finding);
        }
        None
    }
}

/// Counts redacted items by kind.
fn count(counts: &mut BTreeMap<&'static str, u32>, spans: &[portcullis_guard::redact::Span]) {
    for span in spans {
        *counts.entry(span.kind.name()).or_default() += 1;
    }
}
