//! Accounting: what the request really used, and the settlement of its reservation.
//!
//! The usage the upstream reports wins. Without it (an upstream that sends none, or a stream
//! cut short), output is counted with the model's tokenizer from the text the upstream
//! produced (this filter runs first in the chain, before the output guards, so what is
//! charged is what the model generated, also when a guard withholds part of it), and input is
//! the gateway's own count. Nothing received means nothing charged beyond the request itself.
//! The reservation is settled exactly once, when the response ends, however it ends.

use super::{Chunk, End, EndWork, Flow, ResponseFilter};
use portcullis_limits::{Reservation, Usage};
use portcullis_openai::{Api, Encoding, TextPiece};

/// Text kept before counting it, so a long stream does not hold all of its text.
const COUNT_EVERY_BYTES: usize = 64 * 1024;

/// Output an upstream may produce beyond the reservation before it is stopped: the model's
/// own tokenizer may count differently from the gateway's, so the cap is generous; it exists
/// to end runaway generation, not to second-guess a model's count.
fn output_cap(reserved: u64) -> u64 {
    reserved.saturating_mul(2).saturating_add(256)
}

/// A runaway stream's end.
fn output_overrun() -> portcullis_core::ApiError {
    portcullis_core::ApiError::new(
        portcullis_core::ErrorKind::BadGateway,
        "The model server produced more output than the request allows.",
    )
    .with_code("output_limit_exceeded")
}

pub struct Accounting {
    reservation: Option<Reservation>,
    encoding: Encoding,
    /// The caller did not ask for usage in the stream; the gateway did, and hides it.
    strip_usage: bool,
    reported: Option<Usage>,
    started: bool,
    text: String,
    counted: u64,
    /// Output tokens past which the upstream is stopped.
    output_cap: u64,
    /// Why each answer ended, as the upstream said (for the record).
    finish_reasons: Vec<&'static str>,
}

impl Accounting {
    pub fn new(reservation: Reservation, encoding: Encoding, strip_usage: bool) -> Accounting {
        Accounting {
            output_cap: output_cap(reservation.output_tokens()),
            reservation: Some(reservation),
            encoding,
            strip_usage,
            reported: None,
            started: false,
            text: String::new(),
            counted: 0,
            finish_reasons: Vec::new(),
        }
    }

    fn usage(&self) -> Usage {
        if let Some(reported) = self.reported {
            return reported;
        }
        if !self.started {
            return Usage::default();
        }
        Usage {
            input_tokens: self.reservation.as_ref().map_or(0, |r| r.input_tokens()),
            output_tokens: self.counted + self.encoding.count(&self.text),
        }
    }
}

impl ResponseFilter for Accounting {
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow {
        self.started = true;
        finish_reasons(&chunk.value, &mut self.finish_reasons);
        if let Some(u) = api.usage(&chunk.value) {
            self.reported = Some(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            });
            // Upstreams that report usage as they go are held to the same cap.
            if chunk.stream && u.output_tokens > self.output_cap {
                return Flow::Stop(output_overrun());
            }
        }
        if self.reported.is_none() {
            let mut texts = Vec::new();
            api.generated_texts(&mut chunk.value, chunk.stream, &mut texts);
            // In a stream, whole texts repeat what the deltas already carried.
            for t in texts {
                if !chunk.stream || matches!(t.piece, TextPiece::Delta { .. }) {
                    self.text.push_str(t.text);
                }
            }
            // Every token is at least a byte, so text no longer than the cap in bytes cannot
            // exceed it; past that, or every 64 KiB, it is counted for real (once per byte).
            if self.text.len() > COUNT_EVERY_BYTES
                || self.counted + self.text.len() as u64 > self.output_cap
            {
                self.counted += self.encoding.count(&self.text);
                self.text.clear();
            }
            if self.counted > self.output_cap {
                // An upstream that ignores the output limit is stopped (and its generation
                // cancelled) rather than relayed and billed without end.
                tracing::warn!(
                    counted = self.counted,
                    cap = self.output_cap,
                    "upstream output ran past the reserved limit; stopped"
                );
                return Flow::Stop(output_overrun());
            }
        }
        if self.strip_usage && api.is_usage_only(&chunk.value) {
            chunk.hidden = true;
        }
        Flow::Continue
    }

    fn on_stream_end(
        &mut self,
        _api: &dyn Api,
    ) -> Result<Vec<serde_json::Value>, portcullis_core::ApiError> {
        Ok(Vec::new())
    }

    fn on_end(
        &mut self,
        end: End,
        record: &mut portcullis_telemetry::RequestRecord,
    ) -> Option<EndWork> {
        let usage = self.usage();
        let reservation = self.reservation.take()?;
        record.finish_reasons = self
            .finish_reasons
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        let tokens = &mut record.tokens;
        tokens.input = usage.input_tokens;
        tokens.output = usage.output_tokens;
        tokens.reported = self.reported.is_some();
        let nanos = reservation
            .price()
            .cost(usage.input_tokens, usage.output_tokens);
        record.cost_usd = nanos as f64 / 1e9;
        if end.whole {
            Some(Box::pin(reservation.settle_now(usage)))
        } else {
            reservation.settle(usage);
            None
        }
    }
}

/// Why answers ended: each choice's `finish_reason` (chat, completions), or the Responses
/// API's final status. Bounded to the known values; at most one per answer a request may ask
/// for.
fn finish_reasons(value: &serde_json::Value, out: &mut Vec<&'static str>) {
    use portcullis_telemetry::record::finish_reason;
    const MOST: usize = 128;
    if let Some(choices) = value.get("choices").and_then(|c| c.as_array()) {
        for choice in choices {
            if let Some(reason) = choice.get("finish_reason").and_then(|r| r.as_str()) {
                if out.len() < MOST {
                    out.push(finish_reason(reason));
                }
            }
        }
        return;
    }
    let response = match value.get("type").and_then(|t| t.as_str()) {
        Some("response.completed" | "response.incomplete") => value.get("response"),
        None if value.get("object").and_then(|o| o.as_str()) == Some("response") => Some(value),
        _ => None,
    };
    if let Some(response) = response {
        let reason = match response.get("status").and_then(|s| s.as_str()) {
            Some("completed") => "stop",
            Some("incomplete") => match response
                .pointer("/incomplete_details/reason")
                .and_then(|r| r.as_str())
            {
                Some("max_output_tokens") => "length",
                Some("content_filter") => "content_filter",
                _ => "other",
            },
            _ => return,
        };
        if out.len() < MOST {
            out.push(reason);
        }
    }
}
