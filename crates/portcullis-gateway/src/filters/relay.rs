//! The relay: the upstream's answer through the filter chain to the caller.
//!
//! A whole answer is parsed once, filtered as one chunk, and written again only if a filter
//! edited it. A stream is relayed event by event: bytes go out as soon as an event is
//! complete (a blank line ends it), so the first token reaches the caller as soon as the
//! upstream sends it, and the caller never receives half an event. Each event is framed and
//! parsed once, strictly: an event the gateway cannot read (see `portcullis_openai::sse`), a
//! payload that is not a JSON object, or an upstream error event ends the stream with the
//! gateway's own error event rather than passing bytes nobody checked. If the upstream breaks
//! or stalls, the partial event is dropped and one well-formed OpenAI error event ends the
//! stream: the official SDKs raise it as an `APIError` instead of failing on a truncated line.
//! When a filter stops the stream, or the stream ends any other way, the upstream body is
//! dropped at once: that closes the upstream connection (cancelling the generation) and frees
//! the bulkhead permit.

use super::{Chain, Chunk, Flow, Outcome};
use crate::upstream::{BodyFailure, UpstreamResponse};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use portcullis_core::ApiError;
use portcullis_openai::sse::{self, Event};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Longest single event accepted from an upstream; a longer one is treated as a broken stream.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Filters a whole answer; the caller gets it only after the chain's end work is done.
pub async fn whole(mut chain: Chain, bytes: Bytes) -> Result<Bytes, ApiError> {
    let value = match serde_json::from_slice::<Value>(&bytes) {
        // A 200 that carries an error is an upstream failure (its text stays upstream).
        Ok(value @ Value::Object(_)) if value.get("error").is_none_or(Value::is_null) => value,
        _ => {
            tracing::warn!("upstream answered 200 with an error or no JSON object");
            let error = ApiError::upstream_bad_response();
            chain.note_error(&error, true);
            chain.end_whole(Outcome::UpstreamFailed).await;
            return Err(error);
        }
    };
    let mut chunk = Chunk::new(value, false);
    if let Flow::Stop(error) = chain.on_chunk(&mut chunk) {
        chain.note_error(&error, true);
        chain.end_whole(Outcome::Stopped).await;
        return Err(error);
    }
    let bytes = if chunk.edited {
        // A map of JSON values always serializes.
        Bytes::from(serde_json::to_vec(&chunk.value).unwrap_or_default())
    } else {
        bytes
    };
    chain.sent(bytes.len());
    chain.end_whole(Outcome::Completed).await;
    Ok(bytes)
}

/// A stream on its way to the caller, as a response body.
pub struct StreamRelay {
    upstream: Option<UpstreamResponse>,
    partial: BytesMut,
    finished: bool,
    request_id: String,
    chain: Chain,
    /// The upstream names its events (`event:` lines, as the Responses API does).
    named: bool,
    /// Ready when the gateway's shutdown grace has elapsed.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl StreamRelay {
    pub fn new(
        upstream: UpstreamResponse,
        request_id: String,
        chain: Chain,
        cut: &CancellationToken,
    ) -> StreamRelay {
        StreamRelay {
            upstream: Some(upstream),
            partial: BytesMut::new(),
            finished: false,
            request_id,
            chain,
            named: false,
            cut: Box::pin(cut.clone().cancelled_owned()),
        }
    }

    /// Ends the stream with `error` as its last event.
    fn finish_with(&mut self, outcome: Outcome, error: &ApiError) -> Bytes {
        self.chain.note_error(error, false);
        let event = error_event(error);
        self.chain.sent(event.len());
        self.finish(outcome);
        event
    }

    /// Ends the stream: the upstream (and its bulkhead permit) is let go at once.
    fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.upstream = None;
        self.partial.clear();
        self.chain.end_stream(outcome);
    }

    /// The upstream broke or stalled: what it produced before is charged, the rest refunded.
    /// Returns the error event that ends the stream.
    fn fail(&mut self, failure: BodyFailure) -> Bytes {
        tracing::warn!(request_id = %self.request_id, error = %failure, "upstream stream ended abnormally");
        let error = match failure {
            BodyFailure::Idle => ApiError::upstream_timeout(),
            BodyFailure::Broken => ApiError::upstream_bad_response(),
        };
        self.finish_with(Outcome::UpstreamFailed, &error)
    }

    /// Filters the whole events in `events` into `out`; true when the stream is done (what
    /// the upstream sends after `[DONE]` is not read); an error when the stream must end.
    fn events(&mut self, events: &[u8], out: &mut Vec<u8>) -> Result<bool, ApiError> {
        let mut start = 0;
        for end in sse::event_ends(events) {
            if self.event(&events[start..end], out)? {
                return Ok(true);
            }
            start = end;
        }
        Ok(false)
    }

    /// The stream is at its end: what the filters still hold goes out first.
    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        for event in self.chain.flush()? {
            let bytes = serde_json::to_vec(&event).unwrap_or_default();
            let name = self.named.then_some("");
            sse::write_event(out, before_name(name, &event), &bytes);
        }
        Ok(())
    }

    /// The upstream's body ended: its last event (an upstream may omit the final blank line)
    /// and what the filters still hold go out, or an error event if they cannot.
    fn upstream_ended(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        let mut result = Ok(false);
        if !self.partial.is_empty() {
            let mut rest = std::mem::take(&mut self.partial).to_vec();
            rest.extend_from_slice(b"\n\n");
            result = self.events(&rest, &mut out);
        }
        // Ended without `[DONE]`: what the filters hold still goes out.
        let result = match result {
            Ok(false) => self.flush(&mut out),
            other => other.map(drop),
        };
        match result {
            Ok(()) => {
                self.chain.sent(out.len());
                self.finish(Outcome::Completed);
            }
            Err(error) => {
                self.chain.sent(out.len());
                let event = self.finish_with(Outcome::Stopped, &error);
                out.extend_from_slice(&event);
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// One event into `out`; true when it ends the stream (`[DONE]`).
    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<bool, ApiError> {
        let malformed = || {
            tracing::warn!("upstream sent a stream event the gateway cannot read; stream ended");
            ApiError::upstream_bad_response()
        };
        let event = Event::parse(raw).map_err(|_| malformed())?;
        let Some(data) = event.data else {
            // A keep-alive: forwarded as one, without whatever it said.
            out.extend_from_slice(b":\n\n");
            return Ok(false);
        };
        self.named |= event.name.is_some();
        if data == b"[DONE]" {
            self.flush(out)?;
            sse::write_event(out, event.name, data);
            return Ok(true);
        }
        let value = match serde_json::from_slice::<Value>(data) {
            Ok(value @ Value::Object(_)) => value,
            _ => return Err(malformed()),
        };
        let upstream_error = value.get("error").is_some_and(|e| !e.is_null())
            || matches!(
                value.get("type").and_then(Value::as_str),
                Some("error" | "response.failed")
            );
        if upstream_error {
            // Its message is the upstream's, and may name hosts, paths or devices.
            tracing::warn!("upstream reported an error mid-stream");
            return Err(ApiError::upstream_bad_response());
        }
        let mut chunk = Chunk::new(value, true);
        if let Flow::Stop(error) = self.chain.on_chunk(&mut chunk) {
            return Err(error);
        }
        for before in &chunk.before {
            let bytes = serde_json::to_vec(before).unwrap_or_default();
            sse::write_event(out, before_name(event.name, before), &bytes);
        }
        if chunk.hidden {
            return Ok(false);
        }
        if chunk.edited || !event.canonical {
            let bytes = serde_json::to_vec(&chunk.value).unwrap_or_default();
            sse::write_event(out, event.name, &bytes);
        } else {
            out.extend_from_slice(raw);
        }
        Ok(false)
    }
}

/// The name of an inserted event: the Responses API names events by their `type`.
fn before_name<'a>(name: Option<&'a str>, event: &'a Value) -> Option<&'a str> {
    name.and(event.get("type").and_then(Value::as_str))
}

fn error_event(error: &ApiError) -> Bytes {
    let mut event = Vec::new();
    sse::write_event(&mut event, None, &error.to_json());
    Bytes::from(event)
}

impl Body for StreamRelay {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if this.cut.as_mut().poll(cx).is_ready() {
                // Shutting down: what the upstream produced is charged, and the caller is told
                // rather than left with a connection that just drops.
                tracing::warn!(request_id = %this.request_id, "stream cut by shutdown");
                let event = this.finish_with(Outcome::ShutDown, &ApiError::shutting_down());
                return Poll::Ready(Some(Ok(Frame::data(event))));
            }
            let Some(upstream) = this.upstream.as_mut() else {
                return Poll::Ready(None);
            };
            let failure = match Pin::new(&mut upstream.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers carry nothing a caller needs
                    };
                    let searched_from = this.partial.len().saturating_sub(3);
                    this.partial.extend_from_slice(&data);
                    let found = sse::last_event_end(&this.partial[searched_from..]);
                    let Some(end) = found else {
                        if this.partial.len() > MAX_EVENT_BYTES {
                            let event = this.fail(BodyFailure::Broken);
                            return Poll::Ready(Some(Ok(Frame::data(event))));
                        }
                        continue;
                    };
                    let events = this.partial.split_to(searched_from + end);
                    let mut out = Vec::with_capacity(events.len() + 64);
                    match this.events(&events, &mut out) {
                        Ok(false) => this.chain.sent(out.len()),
                        Ok(true) => {
                            this.chain.sent(out.len());
                            this.finish(Outcome::Completed);
                        }
                        Err(error) => {
                            this.chain.sent(out.len());
                            let event = this.finish_with(Outcome::Stopped, &error);
                            out.extend_from_slice(&event);
                        }
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
                Poll::Ready(Some(Err(failure))) => failure,
                Poll::Ready(None) => {
                    return Poll::Ready(this.upstream_ended().map(|out| Ok(Frame::data(out))));
                }
            };
            let event = this.fail(failure);
            return Poll::Ready(Some(Ok(Frame::data(event))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}
