//! The forensic watermark (`portcullis-watermark`) written into generated prose, in whole
//! answers and streams. Only prose slots are marked (an answer's content, never tool-call
//! names or arguments); inside them the marker itself leaves code, JSON, quotes, numbers,
//! URLs and names alone. In a stream each slot's marker holds back at most the word being
//! written (and a possible first word of a two-word variant); what it holds goes out with the
//! slot's last piece, just before an event that repeats the slot's whole text, or before the
//! stream's end, like redaction's. Runs after redaction and the leak check, so those see the
//! upstream's words and the watermark never hides a leak.

use super::{Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_core::ApiError;
use portcullis_openai::{Api, TextPiece};
use portcullis_watermark::{mark_with, MarkKeys, MarkStats, Shares, TextMarker};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Watermark {
    keys: MarkKeys,
    shares: Arc<Shares>,
    /// Open slots: the marker, and the event that opened the slot (a model for releases).
    open: BTreeMap<u64, (TextMarker, Value)>,
    stats: MarkStats,
}

impl Watermark {
    pub fn new(keys: MarkKeys, shares: Arc<Shares>) -> Watermark {
        Watermark {
            keys,
            shares,
            open: BTreeMap::new(),
            stats: MarkStats::default(),
        }
    }

    fn close(&mut self, slot: u64) -> Option<(String, Value)> {
        let (mut marker, template) = self.open.remove(&slot)?;
        let held = marker.finish();
        self.add(marker.stats());
        (!held.is_empty()).then_some((held, template))
    }

    fn add(&mut self, stats: MarkStats) {
        self.stats.slots += stats.slots;
        self.stats.changed += stats.changed;
    }
}

impl ResponseFilter for Watermark {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        let mut texts = Vec::new();
        api.generated_texts(&mut chunk.value, chunk.stream, &mut texts);
        let mut edited = false;
        let mut holding = false;
        let mut opened = Vec::new();
        let mut released = Vec::new();
        for t in texts {
            if !api.slot_is_prose(t.slot) {
                continue;
            }
            let out = match t.piece {
                TextPiece::Delta { last } => {
                    let (marker, _) = self.open.entry(t.slot).or_insert_with(|| {
                        opened.push(t.slot);
                        (
                            TextMarker::with_shares(self.keys.clone(), self.shares.clone()),
                            Value::Null,
                        )
                    });
                    let mut out = marker.push(t.text);
                    if last {
                        out.push_str(&marker.finish());
                        let stats = marker.stats();
                        self.open.remove(&t.slot);
                        self.add(stats);
                    } else {
                        holding |= out != *t.text;
                    }
                    out
                }
                TextPiece::Whole => {
                    if let Some(held) = self.close(t.slot) {
                        released.push((t.slot, held.0));
                    }
                    let (out, stats) = mark_with(t.text, &self.keys, self.shares.clone());
                    self.add(stats);
                    out
                }
            };
            if out != *t.text {
                *t.text = out;
                edited = true;
            }
        }
        for slot in opened {
            if let Some((_, template)) = self.open.get_mut(&slot) {
                *template = chunk.value.clone();
            }
        }
        for (slot, held) in released {
            if let Some(event) = api.release_event(&chunk.value, slot, held) {
                chunk.before.push(event);
            }
        }
        // Log probabilities repeat the text token by token; where words changed or are held
        // back they no longer match it.
        if edited || holding {
            chunk.edited |= api.strip_logprobs(&mut chunk.value);
        }
        chunk.edited |= edited;
        Flow::Continue
    }

    fn on_stream_end(&mut self, api: &dyn Api) -> Result<Vec<Value>, ApiError> {
        let slots: Vec<u64> = self.open.keys().copied().collect();
        Ok(slots
            .into_iter()
            .filter_map(|slot| {
                let (held, template) = self.close(slot)?;
                api.release_event(&template, slot, held)
            })
            .collect())
    }

    fn on_end(
        &mut self,
        _end: End,
        _record: &mut portcullis_telemetry::RequestRecord,
    ) -> Option<EndWork> {
        None
    }
}
