//! Watching a response for what the request really used, and settling its reservation.
//!
//! The usage the upstream reports wins. Without it (an upstream that sends none, or a stream
//! cut short), output is counted from the text the caller actually received, with the model's
//! tokenizer, and input is the gateway's own count. Nothing received means nothing charged
//! beyond the request itself. Settlement happens exactly once, when the accounting is dropped:
//! after the body is read, when a stream ends, or when the caller goes away mid-stream.

use crate::upstream::{event_data, event_ends};
use bytes::{Bytes, BytesMut};
use portcullis_limits::{Encoding, Reservation, Usage};
use serde::Deserialize;
use std::borrow::Cow;

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

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    message: Option<Content<'a>>,
    #[serde(default, borrow)]
    delta: Option<Content<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
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

    /// The upstream answered: from now on, what the caller receives is charged.
    pub fn started(&mut self) {
        self.started = true;
    }

    fn observe(&mut self, body: &Body<'_>) {
        if let Some(u) = &body.usage {
            self.reported = Some(Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            });
        }
        for choice in &body.choices {
            let text = choice
                .message
                .as_ref()
                .or(choice.delta.as_ref())
                .and_then(|c| c.content.as_deref())
                .or(choice.text.as_deref());
            if let Some(text) = text {
                self.text.push_str(text);
            }
        }
        if self.text.len() > COUNT_EVERY_BYTES {
            self.counted += self.encoding.count(&self.text);
            self.text.clear();
        }
    }

    /// A whole (non-streamed) response body.
    pub fn observe_body(&mut self, bytes: &[u8]) {
        self.started = true;
        if let Ok(body) = serde_json::from_slice::<Body<'_>>(bytes) {
            self.observe(&body);
        }
    }

    /// Whole server-sent events on their way to the caller: records usage and text, and
    /// removes the usage event the caller did not ask for. Returns what to send.
    pub fn filter_events(&mut self, events: Bytes) -> Bytes {
        self.started = true;
        let mut kept: Option<BytesMut> = None;
        let mut start = 0;
        for end in event_ends(&events) {
            let event = &events[start..end];
            let drop_it = self.inspect_event(event);
            match (&mut kept, drop_it) {
                (None, false) => {}
                (None, true) => kept = Some(BytesMut::from(&events[..start])),
                (Some(out), false) => out.extend_from_slice(event),
                (Some(_), true) => {}
            }
            start = end;
        }
        match kept {
            None => events,
            Some(mut out) => {
                out.extend_from_slice(&events[start..]);
                out.freeze()
            }
        }
    }

    /// Records what one event says; true if the caller must not see it.
    fn inspect_event(&mut self, event: &[u8]) -> bool {
        let Some((_, data)) = event_data(event) else {
            return false;
        };
        if data == b"[DONE]" {
            return false;
        }
        let Ok(body) = serde_json::from_slice::<Body<'_>>(data) else {
            return false;
        };
        self.observe(&body);
        // The usage-only chunk (no choices) exists because the gateway asked for it.
        self.strip_usage && body.usage.is_some() && body.choices.is_empty()
    }

    fn usage(&mut self) -> Usage {
        if let Some(reported) = self.reported {
            return reported;
        }
        if !self.started {
            return Usage::default();
        }
        let output = self.counted + self.encoding.count(&self.text);
        Usage {
            input_tokens: self.reservation.as_ref().map_or(0, |r| r.input_tokens()),
            output_tokens: output,
        }
    }
}

impl Accounting {
    /// Settles now and waits for a shared limiter to apply it: a whole response is returned
    /// only after its refund is visible to the caller's next request.
    pub async fn settle(mut self) {
        let usage = self.usage();
        if let Some(reservation) = self.reservation.take() {
            reservation.settle_now(usage).await;
        }
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        let usage = self.usage();
        if let Some(reservation) = self.reservation.take() {
            reservation.settle(usage);
        }
    }
}
