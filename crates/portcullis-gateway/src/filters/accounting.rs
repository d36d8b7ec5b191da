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

pub struct Accounting {
    reservation: Option<Reservation>,
    encoding: Encoding,
    /// The caller did not ask for usage in the stream; the gateway did, and hides it.
    strip_usage: bool,
    reported: Option<Usage>,
    started: bool,
    text: String,
    counted: u64,
}

impl Accounting {
    pub fn new(reservation: Reservation, encoding: Encoding, strip_usage: bool) -> Accounting {
        Accounting {
            reservation: Some(reservation),
            encoding,
            strip_usage,
            reported: None,
            started: false,
            text: String::new(),
            counted: 0,
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
        if let Some(u) = api.usage(&chunk.value) {
            self.reported = Some(Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            });
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
            if self.text.len() > COUNT_EVERY_BYTES {
                self.counted += self.encoding.count(&self.text);
                self.text.clear();
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

    fn on_end(&mut self, end: End) -> Option<EndWork> {
        let usage = self.usage();
        let reservation = self.reservation.take()?;
        if end.whole {
            Some(Box::pin(reservation.settle_now(usage)))
        } else {
            reservation.settle(usage);
            None
        }
    }
}
