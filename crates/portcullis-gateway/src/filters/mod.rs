//! The response side, owned by the pipeline: a chain of filters over the upstream's answer.
//!
//! Whole answers and streams go through the same chain. The relay ([`relay`]) frames each
//! event once and parses it once into a [`Chunk`] (a whole answer is a single chunk); every
//! filter in turn may edit it, hide it, put events before it, or stop the response. A stop
//! writes one error event, drops the upstream body (which closes the upstream connection and
//! so cancels the generation, and frees the bulkhead) and ends the response. Every filter is
//! told exactly once how the response ended ([`ResponseFilter::on_end`]): completed, upstream
//! failure, stopped by a filter, or the caller gone. Accounting settles there, and there the
//! per-request record is completed: each filter adds what it knows (tokens and cost, what was
//! redacted, a leak) and the chain hands the record to telemetry.
//!
//! The chain runs, in order: [`accounting`] (usage and the text the upstream produced),
//! [`prune`] (the endpoint's field allow-list and the logprob policy), [`redact`] (personal
//! data and secrets), [`leak`] (canaries and system-prompt spans, in the redacted text),
//! [`watermark`] where it is on (after the checks, so they read the upstream's words), and
//! for tenants that opt in, [`content`] (the text the caller received, for the trail).

pub mod accounting;
pub mod content;
pub mod embed_watermark;
pub mod leak;
pub mod prune;
pub mod redact;
pub mod relay;
pub mod watermark;

use portcullis_core::{ApiError, ErrorKind};
use portcullis_openai::Api;
use portcullis_telemetry::record::millis;
use portcullis_telemetry::{RequestRecord, Telemetry};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// One answer (whole) or one stream event's JSON, on its way to the caller.
#[derive(Debug)]
pub struct Chunk {
    pub value: Value,
    /// A piece of a stream (false: a whole answer).
    pub stream: bool,
    /// A filter changed `value`: it is written anew rather than forwarded as received.
    pub edited: bool,
    /// Not sent to the caller (the usage chunk the gateway asked for on the caller's behalf).
    pub hidden: bool,
    /// Events to send before this one (text that redaction held back and now releases).
    pub before: Vec<Value>,
}

impl Chunk {
    pub fn new(value: Value, stream: bool) -> Chunk {
        Chunk {
            value,
            stream,
            edited: false,
            hidden: false,
            before: Vec::new(),
        }
    }
}

/// What a filter decides about a chunk.
#[derive(Debug)]
pub enum Flow {
    Continue,
    /// End the response with this error (a whole answer is refused; a stream ends with an
    /// error event) and cancel the upstream.
    Stop(ApiError),
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream finished and everything reached the caller.
    Completed,
    /// The upstream could not be reached, refused, broke or stalled.
    UpstreamFailed,
    /// A filter stopped it.
    Stopped,
    /// The caller went away before the end.
    CallerGone,
    /// The gateway stopped before the stream ended (the shutdown grace elapsed).
    ShutDown,
}

impl Outcome {
    /// The outcome's name in the per-request record.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::UpstreamFailed => "upstream_failed",
            Outcome::Stopped => "stopped",
            Outcome::CallerGone => "caller_gone",
            Outcome::ShutDown => "shut_down",
        }
    }
}

/// The end of a response, as filters are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub outcome: Outcome,
    /// A whole answer: the caller is answered only after the returned work is done.
    pub whole: bool,
}

/// Work that must finish before a whole answer is returned (a settlement a shared limiter
/// must apply first, so the caller's next request sees it). A stream's end never waits: such
/// work is spawned.
pub type EndWork = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One step of the response side.
pub trait ResponseFilter: Send + Sync {
    /// One parsed chunk; may edit it or stop the response.
    fn on_chunk(&mut self, chunk: &mut Chunk, api: &dyn Api) -> Flow;
    /// A stream reached its end as the upstream meant it (`[DONE]`, or the body's end):
    /// events for what the filter still holds, sent before the end, or an error instead.
    fn on_stream_end(&mut self, api: &dyn Api) -> Result<Vec<Value>, ApiError>;
    /// The response ended; called exactly once, however it ended. What the filter knows of
    /// the request (usage, findings) goes into `record`.
    fn on_end(&mut self, end: End, record: &mut RequestRecord) -> Option<EndWork>;
}

/// Where a chain's finished record goes.
struct RecordSink {
    telemetry: Arc<Telemetry>,
    started: Instant,
}

/// The filters of one response, in order.
pub struct Chain {
    api: &'static dyn Api,
    filters: Vec<Box<dyn ResponseFilter>>,
    ended: bool,
    /// The request's record, completed when the response ends.
    record: RequestRecord,
    sink: Option<RecordSink>,
}

impl Chain {
    /// A chain whose record goes nowhere (see [`Chain::recording`]).
    pub fn new(api: &'static dyn Api, filters: Vec<Box<dyn ResponseFilter>>) -> Chain {
        Chain {
            api,
            filters,
            ended: false,
            record: RequestRecord::default(),
            sink: None,
        }
    }

    /// This chain with `filter` last.
    pub fn with(mut self, filter: Box<dyn ResponseFilter>) -> Chain {
        self.filters.push(filter);
        self
    }

    /// The chain completes `record` when the response ends and hands it to `telemetry`.
    pub fn recording(
        mut self,
        record: RequestRecord,
        telemetry: Arc<Telemetry>,
        started: Instant,
    ) -> Chain {
        self.record = record;
        self.sink = Some(RecordSink { telemetry, started });
        self
    }

    /// The upstream's response head arrived with `status`.
    pub fn upstream_answered(&mut self, status: u16) {
        self.record.upstream_status = Some(status);
        if let Some(sink) = &self.sink {
            self.record.timing.upstream_first_byte_ms = Some(millis(sink.started, Instant::now()));
        }
    }

    /// The caller is told `error` (instead of the answer, or as a stream's last event).
    pub fn note_error(&mut self, error: &ApiError, whole: bool) {
        if whole {
            self.record.decision.status = error.status().as_u16();
        }
        self.record.decision.code = error.code.map(str::to_owned);
    }

    /// Bytes sent to the caller.
    pub fn sent(&mut self, bytes: usize) {
        self.record.bytes_out += bytes as u64;
    }

    /// Runs `chunk` through every filter, up to the first that stops.
    pub fn on_chunk(&mut self, chunk: &mut Chunk) -> Flow {
        for filter in &mut self.filters {
            if let Flow::Stop(error) = filter.on_chunk(chunk, self.api) {
                return Flow::Stop(error);
            }
        }
        if !chunk.hidden && self.record.timing.first_token_ms.is_none() {
            if let Some(sink) = &self.sink {
                self.record.timing.first_token_ms = Some(millis(sink.started, Instant::now()));
            }
        }
        Flow::Continue
    }

    /// The stream reached its end: each filter releases what it holds, as events the filters
    /// after it see like any other. Returns the events to send before the end, in order.
    pub fn flush(&mut self) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for i in 0..self.filters.len() {
            let (done, after) = self.filters.split_at_mut(i + 1);
            for value in done[i].on_stream_end(self.api)? {
                let mut chunk = Chunk::new(value, true);
                for filter in after.iter_mut() {
                    if let Flow::Stop(error) = filter.on_chunk(&mut chunk, self.api) {
                        return Err(error);
                    }
                }
                out.append(&mut chunk.before);
                if !chunk.hidden {
                    out.push(chunk.value);
                }
            }
        }
        Ok(out)
    }

    /// Tells every filter the response ended (once; later calls do nothing) and returns the
    /// work to wait for.
    #[must_use]
    pub fn end(&mut self, end: End) -> Vec<EndWork> {
        if std::mem::replace(&mut self.ended, true) {
            return Vec::new();
        }
        let record = &mut self.record;
        let work = self
            .filters
            .iter_mut()
            .filter_map(|f| f.on_end(end, record))
            .collect();
        if let Some(sink) = self.sink.take() {
            let mut record = std::mem::take(&mut self.record);
            record.outcome = Some(end.outcome.name().to_owned());
            record.decision.action = "allowed".to_owned();
            if record.decision.status == 0 {
                record.decision.status = 200;
            }
            record.timing.duration_ms = millis(sink.started, Instant::now());
            sink.telemetry.finish(record);
        }
        work
    }

    /// Ends a whole answer and waits for its work.
    pub async fn end_whole(&mut self, outcome: Outcome) {
        for work in self.end(End {
            outcome,
            whole: true,
        }) {
            work.await;
        }
    }

    /// Ends a stream; its work runs on its own.
    pub fn end_stream(&mut self, outcome: Outcome) {
        let work = self.end(End {
            outcome,
            whole: false,
        });
        spawn_all(work);
    }
}

fn spawn_all(work: Vec<EndWork>) {
    if work.is_empty() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        for w in work {
            runtime.spawn(w);
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        // Dropped before an end was told: the caller went away (or the request failed before
        // the upstream answered, which the pipeline reports itself before dropping).
        self.end_stream(Outcome::CallerGone);
    }
}

/// The error the output guards answer with: it says nothing of what was found.
pub fn rejected() -> ApiError {
    ApiError::new(
        ErrorKind::BadGateway,
        "The model's answer was withheld by the output policy.",
    )
    .with_code("output_rejected")
}

/// The chain for one request: accounting always; the output guards unless this is the
/// internal listener with `[guard] internal_listener = false`.
pub fn for_request(
    cx: &crate::pipeline::RequestContext,
    spec: &portcullis_config::GuardSpec,
    api: &'static dyn Api,
    body: &serde_json::Map<String, Value>,
    public_model: &str,
    accounting: accounting::Accounting,
    watermark: Option<(
        portcullis_watermark::MarkKeys,
        Arc<portcullis_watermark::Shares>,
    )>,
) -> Chain {
    use portcullis_config::{LeakPolicy, OutputPolicy};
    let mut filters: Vec<Box<dyn ResponseFilter>> = vec![Box::new(accounting)];
    if cx.guarded {
        filters.push(Box::new(prune::Prune {
            system_fingerprint: cx.settings.guard.system_fingerprint,
            logprobs: api.logprobs_requested(body),
            model: public_model.to_owned(),
        }));
        let action = spec.output.unwrap_or_default();
        if action != OutputPolicy::Off {
            filters.push(Box::new(redact::Redact::new(action == OutputPolicy::Block)));
        }
        let prompt_leak = spec.prompt_leak.unwrap_or_default();
        let spans = prompt_leak != LeakPolicy::Off;
        // The system prompt is gathered only when verbatim spans are checked.
        let system = if spans {
            api.system_prompt(body)
        } else {
            String::new()
        };
        let span_chars = spec.prompt_leak_chars.unwrap_or(60) as usize;
        let check = portcullis_guard::leak::LeakCheck::new(
            spec.canary.clone(),
            spans.then_some((system.as_str(), span_chars)),
            prompt_leak != LeakPolicy::Flag,
        );
        if let Some(check) = check {
            filters.push(Box::new(leak::LeakFilter::new(
                check,
                cx.request_id.as_str().to_owned(),
            )));
        }
        if let Some((keys, shares)) = watermark {
            if api.endpoint() == portcullis_core::Endpoint::Embeddings {
                if let Some(key) = &cx.settings.watermark_embed {
                    filters.push(Box::new(embed_watermark::EmbedWatermark::new(
                        key.clone(),
                        body,
                    )));
                }
            } else {
                filters.push(Box::new(watermark::Watermark::new(keys, shares)));
            }
        }
    }
    Chain::new(api, filters)
}
