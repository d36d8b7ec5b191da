//! Relaying a server-sent event stream to the caller, event by event.
//!
//! Bytes are forwarded as soon as an event is complete (a blank line ends it), so the first
//! token reaches the caller as soon as the upstream sends it, and the caller never receives
//! half an event. If the upstream breaks or stalls mid-stream, the partial event is dropped and
//! one well-formed OpenAI error event ends the stream: the official SDKs raise it as an
//! `APIError` instead of failing on a truncated line. The bulkhead permit is held until the
//! stream ends or the caller goes away; dropping the relay (caller disconnected) drops the
//! upstream body, which closes the upstream connection and so cancels the generation.

use super::idle::BodyFailure;
use crate::output::StreamFilter;
use crate::usage::Accounting;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use portcullis_core::ApiError;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::OwnedSemaphorePermit;

/// Longest single event accepted from an upstream; a longer one is treated as a broken stream.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

pin_project! {
    pub struct SseRelay<B> {
        #[pin]
        upstream: B,
        partial: BytesMut,
        finished: bool,
        permit: Option<OwnedSemaphorePermit>,
        request_id: String,
        // Settled when the relay ends or is dropped (the caller went away).
        accounting: Option<Accounting>,
        output: Option<StreamFilter>,
    }
}

impl<B> SseRelay<B> {
    pub fn new(
        upstream: B,
        permit: OwnedSemaphorePermit,
        request_id: String,
        accounting: Accounting,
        output: Option<StreamFilter>,
    ) -> Self {
        SseRelay {
            upstream,
            partial: BytesMut::new(),
            finished: false,
            permit: Some(permit),
            request_id,
            accounting: Some(accounting),
            output,
        }
    }
}

/// The end of the last complete event in `buf` (just past its blank line), if any.
pub fn last_event_end(buf: &[u8]) -> Option<usize> {
    (1..buf.len()).rev().find_map(|i| {
        let blank_line = buf[i] == b'\n'
            && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n'));
        blank_line.then_some(i + 1)
    })
}

/// Offsets just past each blank line that ends an event, in order.
pub fn event_ends(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (1..buf.len()).filter_map(move |i| {
        let end = buf[i] == b'\n'
            && (buf[i - 1] == b'\n' || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n'));
        end.then_some(i + 1)
    })
}

/// Where an event's `data:` line starts, and its payload (single-line data, as
/// OpenAI-compatible servers send).
pub fn event_data(event: &[u8]) -> Option<(usize, &[u8])> {
    let mut at = 0;
    for line in event.split(|&b| b == b'\n') {
        if let Some(d) = line.strip_prefix(b"data:") {
            let d = d.strip_prefix(b" ").unwrap_or(d);
            let d = d.strip_suffix(b"\r").unwrap_or(d);
            return Some((at, d));
        }
        at += line.len() + 1;
    }
    None
}

fn error_event(failure: &BodyFailure) -> Bytes {
    let error = match failure {
        BodyFailure::Idle => ApiError::upstream_timeout(),
        BodyFailure::Broken => ApiError::upstream_bad_response(),
    };
    let mut event = BytesMut::from(&b"data: "[..]);
    event.extend_from_slice(&error.to_json());
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

/// Lets the accounting see (and filter) whole events on their way out, then the output
/// guards.
fn account(
    accounting: &mut Option<Accounting>,
    output: &mut Option<StreamFilter>,
    events: Bytes,
) -> Bytes {
    let events = match accounting {
        Some(a) => a.filter_events(events),
        None => events,
    };
    match output {
        Some(o) => o.filter_events(events),
        None => events,
    }
}

impl<B> Body for SseRelay<B>
where
    B: Body<Data = Bytes, Error = BodyFailure>,
{
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        loop {
            let failure = match this.upstream.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers carry nothing a caller needs
                    };
                    if this.partial.is_empty() {
                        // Fast path: a chunk that is exactly whole events goes out untouched.
                        if data.ends_with(b"\n\n") || data.ends_with(b"\r\n\r\n") {
                            let data = account(this.accounting, this.output, data);
                            if data.is_empty() {
                                continue;
                            }
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                    }
                    let searched_from = this.partial.len().saturating_sub(3);
                    this.partial.extend_from_slice(&data);
                    match last_event_end(&this.partial[searched_from..]) {
                        Some(end) => {
                            let out = this.partial.split_to(searched_from + end).freeze();
                            let out = account(this.accounting, this.output, out);
                            if out.is_empty() {
                                continue;
                            }
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        None if this.partial.len() > MAX_EVENT_BYTES => BodyFailure::Broken,
                        None => continue,
                    }
                }
                Poll::Ready(Some(Err(failure))) => failure,
                Poll::Ready(None) => {
                    *this.finished = true;
                    this.permit.take();
                    if this.partial.is_empty() {
                        this.accounting.take();
                        return Poll::Ready(None);
                    }
                    // An upstream that omits the final blank line still gets its last event out.
                    let mut rest = BytesMut::from(&std::mem::take(this.partial)[..]);
                    rest.extend_from_slice(b"\n\n");
                    let rest = account(this.accounting, this.output, rest.freeze());
                    this.accounting.take();
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
            };
            tracing::warn!(request_id = %this.request_id, error = %failure, "upstream stream ended abnormally");
            *this.finished = true;
            this.permit.take();
            this.partial.clear();
            // What reached the caller before the failure is charged; the rest is refunded.
            this.accounting.take();
            return Poll::Ready(Some(Ok(Frame::data(error_event(&failure)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_blank_line() {
        assert_eq!(last_event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(last_event_end(b"data: a\n\ndata: b\n\n"), Some(18));
        assert_eq!(last_event_end(b"data: a\r\n\r\ndata"), Some(11));
        assert_eq!(last_event_end(b"data: a\n"), None);
        assert_eq!(last_event_end(b""), None);
    }
}
