//! Personal data and secrets redacted from every generated text, in whole answers and
//! streams alike. In a stream, each text slot (a choice, or an output item's content part)
//! flows through its own `StreamRedactor`, which holds back only what may still become an
//! item; what it holds is released with the piece that ends the slot, or, where a slot ends
//! with an event that repeats its whole text (the Responses API's `...done`), as one more
//! delta event just before it. Whole texts are redacted at once, with the same result the
//! pieces gave. Under `block`, an answer with an item is refused, and a stream ends with an
//! error event instead of the item. A chunk with an item, or whose text is partly held back, loses
//! its log probabilities (their tokens would repeat what is redacted or not yet shown).

use super::{rejected, Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_guard::redact::{redact, StreamRedactor};
use portcullis_openai::{Api, TextPiece};
use std::collections::HashMap;

pub struct Redact {
    block: bool,
    redactors: HashMap<u64, StreamRedactor>,
}

impl Redact {
    pub fn new(block: bool) -> Redact {
        Redact {
            block,
            redactors: HashMap::new(),
        }
    }
}

impl ResponseFilter for Redact {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        let mut texts = Vec::new();
        api.generated_texts(&mut chunk.value, chunk.stream, &mut texts);
        let mut found = false;
        let mut edited = false;
        let mut hiding = false;
        let mut released = Vec::new();
        for t in texts {
            match t.piece {
                TextPiece::Delta { last } => {
                    let redactor = self.redactors.entry(t.slot).or_default();
                    let before = redactor.spans().len();
                    let mut emitted = redactor.push(t.text);
                    if last {
                        emitted.push_str(&redactor.finish());
                    }
                    found |= redactor.spans().len() > before;
                    // Text held back is not shown yet, so neither may its tokens be; held
                    // spacing gives nothing away.
                    hiding |= redactor.held_text().chars().any(|c| !c.is_whitespace());
                    if last {
                        self.redactors.remove(&t.slot);
                    }
                    if emitted != *t.text {
                        *t.text = emitted;
                        edited = true;
                    }
                }
                TextPiece::Whole => {
                    if let Some(mut redactor) = self.redactors.remove(&t.slot) {
                        let before = redactor.spans().len();
                        let held = redactor.finish();
                        found |= redactor.spans().len() > before;
                        if !held.is_empty() {
                            released.push((t.slot, held));
                        }
                    }
                    let (clean, spans) = redact(t.text);
                    if !spans.is_empty() {
                        found = true;
                        *t.text = clean;
                        edited = true;
                    }
                }
            }
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
            if let Some(event) = api.release_event(&chunk.value, slot, held) {
                chunk.before.push(event);
            }
        }
        chunk.edited |= edited;
        Flow::Continue
    }

    fn on_end(&mut self, _end: End) -> Option<EndWork> {
        None
    }
}
