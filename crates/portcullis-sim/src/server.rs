//! The simulator's HTTP server and request handlers.

use crate::body::{ChannelBody, ChunkResult};
use crate::generate;
use crate::options::{Fault, SimOptions};
use crate::responses;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type SimBody = BoxBody<Bytes, std::io::Error>;

/// How many requests `GET /_sim/requests` remembers.
const RECORD_CAPACITY: usize = 64;
/// Largest request body the simulator reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What reached the simulator: enough for a test to check routing, rewriting and headers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters a test can read to see what happened to streams.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimStats {
    pub requests: u64,
    pub streams_started: u64,
    pub streams_completed: u64,
    /// Streams whose client went away before the simulator finished them.
    pub streams_cancelled: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
}

struct Inner {
    options: RwLock<SimOptions>,
    recorded: Mutex<VecDeque<RecordedRequest>>,
    counters: Counters,
}

/// A simulator; clones share state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl Simulator {
    pub fn new(options: SimOptions) -> Self {
        Simulator {
            inner: Arc::new(Inner {
                options: RwLock::new(options),
                recorded: Mutex::new(VecDeque::with_capacity(RECORD_CAPACITY)),
                counters: Counters::default(),
            }),
        }
    }

    pub fn options(&self) -> SimOptions {
        self.inner.options.read().unwrap().clone()
    }

    pub fn set_options(&self, options: SimOptions) {
        *self.inner.options.write().unwrap() = options;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.inner.options.write().unwrap().fault = fault;
    }

    /// The recorded requests, oldest first.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.inner
            .recorded
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.inner.recorded.lock().unwrap().back().cloned()
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.inner.counters;
        SimStats {
            requests: c.requests.load(Ordering::Relaxed),
            streams_started: c.streams_started.load(Ordering::Relaxed),
            streams_completed: c.streams_completed.load(Ordering::Relaxed),
            streams_cancelled: c.streams_cancelled.load(Ordering::Relaxed),
        }
    }

    /// Binds `addr` and serves in a background task; returns the bound address.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(self.clone().serve(listener));
        Ok(local)
    }

    /// Serves connections from `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "simulator accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let sim = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let sim = sim.clone();
                    async move { Ok::<_, Infallible>(sim.handle(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<SimBody> {
        let (parts, body) = req.into_parts();
        let bytes = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return json_response(StatusCode::BAD_REQUEST, error_body("unreadable body")),
        };
        let path = parts.uri.path().to_owned();
        match (&parts.method, path.as_str()) {
            (&Method::GET, "/_sim/requests") => {
                return json_response(StatusCode::OK, json!(self.recorded()))
            }
            (&Method::GET, "/_sim/stats") => {
                return json_response(StatusCode::OK, json!(self.stats()))
            }
            (&Method::GET, "/_sim/options") => {
                return json_response(StatusCode::OK, json!(self.options()))
            }
            (&Method::PUT, "/_sim/options") => {
                return match serde_json::from_slice::<SimOptions>(&bytes) {
                    Ok(options) => {
                        self.set_options(options.clone());
                        json_response(StatusCode::OK, json!(options))
                    }
                    Err(e) => json_response(StatusCode::BAD_REQUEST, error_body(&e.to_string())),
                }
            }
            _ => {}
        }

        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let options = self.options();
        let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if options.record {
            self.record(&parts, &path, &request);
        }
        if options.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(options.latency_ms)).await;
        }
        match &options.fault {
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
            Fault::Status { status } => {
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return json_response(
                    status,
                    json!({"error": {
                        "message": "CUDA out of memory in /opt/vllm/worker.py:812 on node gpu-17.internal (10.3.4.5)",
                        "type": "internal_server_error",
                        "param": null,
                        "code": "sim_internal_fault"
                    }}),
                );
            }
            Fault::Garbage => {
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(full(Bytes::from_static(b"{\"id\": \"broken")))
                    .unwrap();
            }
            _ => {}
        }

        match (&parts.method, path.as_str()) {
            (&Method::GET, "/v1/models") => json_response(StatusCode::OK, models()),
            (&Method::POST, "/v1/chat/completions") => {
                self.completion(&request, &options, Wire::Chat)
            }
            (&Method::POST, "/v1/completions") => {
                self.completion(&request, &options, Wire::Completion)
            }
            (&Method::POST, "/v1/responses") => {
                self.completion(&request, &options, Wire::Responses)
            }
            (&Method::POST, "/v1/embeddings") => embeddings(&request),
            _ => json_response(StatusCode::NOT_FOUND, error_body("unknown path")),
        }
    }

    fn record(&self, parts: &http::request::Parts, path: &str, body: &Value) {
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut recorded = self.inner.recorded.lock().unwrap();
        if recorded.len() == RECORD_CAPACITY {
            recorded.pop_front();
        }
        recorded.push_back(RecordedRequest {
            method: parts.method.to_string(),
            path: path.to_owned(),
            headers,
            body: body.clone(),
        });
    }

    fn completion(&self, request: &Value, options: &SimOptions, wire: Wire) -> Response<SimBody> {
        let chat = wire == Wire::Chat;
        if !request.is_object() {
            return json_response(
                StatusCode::BAD_REQUEST,
                error_body("body must be a JSON object"),
            );
        }
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("sim")
            .to_owned();
        let length = if options.ignore_max_tokens {
            options.output_tokens
        } else {
            generate::completion_length(request, options.output_tokens)
        };
        // Chat asks with `logprobs: true`; the answer carries them consistent with its text.
        let wants_logprobs = chat && request.get("logprobs") == Some(&Value::Bool(true));
        let prompt = generate::prompt_tokens(request);
        let stream = request
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let pieces: Vec<String> = match &options.reply {
            Some(reply) => split_reply(reply, options.chunk_chars),
            None => (0..length).map(generate::token).collect(),
        };
        let length = pieces.len();
        if let (false, Some(raw)) = (stream, &options.raw_body) {
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(Bytes::from(raw.clone())))
                .unwrap();
        }
        if !stream && wire == Wire::Responses {
            let text: String = pieces.concat();
            let mut body = responses::response(&model, "completed", &text, Some((prompt, length)));
            if !options.report_usage {
                body.as_object_mut().map(|b| b.remove("usage"));
            }
            extend(&mut body, &options.extra_fields);
            return json_response(StatusCode::OK, body);
        }
        if !stream {
            let text: String = pieces.concat();
            let logprobs = wants_logprobs.then(|| generate::logprobs(&pieces));
            // `n` answers (as OpenAI and vLLM give), each the same text, all paid for.
            let n = request
                .get("n")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 128) as usize;
            let choices: Vec<Value> = (0..n)
                .map(|index| {
                    if chat {
                        json!({"index": index, "message": options.reply_as.message(&text), "logprobs": logprobs, "finish_reason": options.reply_as.finish_reason()})
                    } else {
                        json!({"index": index, "text": text, "logprobs": null, "finish_reason": "stop"})
                    }
                })
                .collect();
            let object = if chat {
                "chat.completion"
            } else {
                "text_completion"
            };
            let mut body = json!({
                "id": "chatcmpl-sim",
                "object": object,
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": "fp_sim",
                "choices": choices,
                "usage": generate::usage(prompt, n * length),
            });
            if !options.report_usage {
                body.as_object_mut().map(|b| b.remove("usage"));
            }
            extend(&mut body, &options.extra_fields);
            return json_response(StatusCode::OK, body);
        }
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            && options.report_usage;
        let plan = StreamPlan {
            pieces,
            extra_fields: options.extra_fields.clone(),
            wire,
            report_usage: options.report_usage,
            logprobs: wants_logprobs,
            chat,
            reply_as: options.reply_as.clone(),
            model,
            length,
            prompt,
            include_usage,
            interval: (options.tokens_per_second > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / options.tokens_per_second)),
            fault: options.fault.clone(),
        };
        let (tx, rx) = mpsc::channel::<ChunkResult>(16);
        if let Some(script) = options.raw_stream.clone() {
            tokio::spawn(async move {
                for chunk in script {
                    if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                        break;
                    }
                }
            });
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(BoxBody::new(ChannelBody { rx }))
                .unwrap();
        }
        let sim = self.clone();
        sim.inner
            .counters
            .streams_started
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let counters = &sim.inner.counters;
            match plan.run(&tx).await {
                StreamEnd::Completed => counters.streams_completed.fetch_add(1, Ordering::Relaxed),
                StreamEnd::Cancelled => counters.streams_cancelled.fetch_add(1, Ordering::Relaxed),
                StreamEnd::Faulted => 0,
            };
        });
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(BoxBody::new(ChannelBody { rx }))
            .unwrap()
    }
}

/// Which wire format a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Chat,
    Completion,
    Responses,
}

struct StreamPlan {
    pieces: Vec<String>,
    extra_fields: serde_json::Map<String, Value>,
    wire: Wire,
    report_usage: bool,
    /// Each chunk carries the log probabilities of its piece.
    logprobs: bool,
    chat: bool,
    /// Where a chat answer's pieces go (content, refusal, call arguments).
    reply_as: crate::options::ReplyAs,
    model: String,
    length: usize,
    prompt: usize,
    include_usage: bool,
    interval: Option<Duration>,
    fault: Fault,
}

enum StreamEnd {
    Completed,
    Cancelled,
    Faulted,
}

impl StreamPlan {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let logprobs = match delta.get("content").and_then(Value::as_str) {
            Some(piece) if self.logprobs && !piece.is_empty() => {
                generate::logprobs(&[piece.to_owned()])
            }
            _ => Value::Null,
        };
        let choice = if self.chat {
            json!({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")), "logprobs": null, "finish_reason": finish})
        };
        let mut chunk = json!({
            "id": "chatcmpl-sim",
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": "fp_sim",
            "choices": [choice],
        });
        extend(&mut chunk, &self.extra_fields);
        self.event(chunk)
    }

    fn event(&self, value: Value) -> Bytes {
        Bytes::from(format!("data: {value}\n\n"))
    }

    /// Sends `chunk` after the pacing interval; false when the client went away.
    async fn send(&self, tx: &mpsc::Sender<ChunkResult>, chunk: Bytes, pace: bool) -> bool {
        if let (true, Some(interval)) = (pace, self.interval) {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tx.closed() => return false,
            }
        }
        tx.send(Ok(chunk)).await.is_ok()
    }

    /// Sends piece `i`, or the fault planned at `i`; `Err` ends the stream.
    async fn piece(
        &self,
        tx: &mpsc::Sender<ChunkResult>,
        i: usize,
        chunk: Bytes,
    ) -> Result<(), StreamEnd> {
        match self.fault {
            Fault::ResetMidStream { after_chunks } if i == after_chunks => {
                // hyper drops unflushed output when a body fails; pause so the chunks
                // already sent are on the wire before the connection breaks.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated reset",
                    )))
                    .await;
                return Err(StreamEnd::Faulted);
            }
            Fault::HangMidStream { after_chunks } if i == after_chunks => {
                tx.closed().await;
                return Err(StreamEnd::Cancelled);
            }
            _ => {}
        }
        if self.send(tx, chunk, true).await {
            Ok(())
        } else {
            Err(StreamEnd::Cancelled)
        }
    }

    /// A Responses API stream: typed events, each named by an `event:` line.
    async fn run_responses(self, tx: &mpsc::Sender<ChunkResult>) -> StreamEnd {
        let mut events = responses::Events::new(&self.model);
        let text: String = self.pieces.concat();
        for opening in events.opening() {
            if !self.send(tx, opening, false).await {
                return StreamEnd::Cancelled;
            }
        }
        for (i, piece) in self.pieces.iter().enumerate() {
            if let Err(end) = self.piece(tx, i, events.delta(piece)).await {
                return end;
            }
        }
        let usage = self.report_usage.then_some((self.prompt, self.length));
        for closing in events.closing(&text, usage) {
            if !self.send(tx, closing, false).await {
                return StreamEnd::Cancelled;
            }
        }
        StreamEnd::Completed
    }

    async fn run(self, tx: &mpsc::Sender<ChunkResult>) -> StreamEnd {
        if self.wire == Wire::Responses {
            return self.run_responses(tx).await;
        }
        let first = if self.chat {
            self.chunk(self.reply_as.opening(), None)
        } else {
            self.chunk(json!({"content": ""}), None)
        };
        if !self.send(tx, first, false).await {
            return StreamEnd::Cancelled;
        }
        for i in 0..self.length {
            let delta = if self.chat {
                self.reply_as.delta(&self.pieces[i])
            } else {
                json!({"content": self.pieces[i]})
            };
            let chunk = self.chunk(delta, None);
            if let Err(end) = self.piece(tx, i, chunk).await {
                return end;
            }
        }
        let finish = if self.chat {
            self.reply_as.finish_reason()
        } else {
            "stop"
        };
        let last = self.chunk(json!({}), Some(finish));
        if !self.send(tx, last, false).await {
            return StreamEnd::Cancelled;
        }
        if self.include_usage {
            let usage = self.event(json!({
                "id": "chatcmpl-sim",
                "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
                "created": 1_700_000_000,
                "model": self.model,
                "choices": [],
                "usage": generate::usage(self.prompt, self.length),
            }));
            if !self.send(tx, usage, false).await {
                return StreamEnd::Cancelled;
            }
        }
        if !self
            .send(tx, Bytes::from_static(b"data: [DONE]\n\n"), false)
            .await
        {
            return StreamEnd::Cancelled;
        }
        StreamEnd::Completed
    }
}

/// A reply cut into pieces of `size` characters, or after each space when `size` is 0.
fn split_reply(reply: &str, size: usize) -> Vec<String> {
    if size == 0 {
        return reply.split_inclusive(' ').map(str::to_owned).collect();
    }
    let chars: Vec<char> = reply.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn extend(value: &mut Value, fields: &serde_json::Map<String, Value>) {
    if let Some(object) = value.as_object_mut() {
        for (k, v) in fields {
            object.insert(k.clone(), v.clone());
        }
    }
}

fn embeddings(request: &Value) -> Response<SimBody> {
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().map(|v| v.to_string()).collect(),
        _ => return json_response(StatusCode::BAD_REQUEST, error_body("input is required")),
    };
    let dimensions = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d.clamp(1, 4096) as usize)
        .unwrap_or(8);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": generate::embedding(text, dimensions)}))
        .collect();
    let prompt = generate::prompt_tokens(request);
    json_response(
        StatusCode::OK,
        json!({
            "object": "list",
            "data": data,
            "model": request.get("model").cloned().unwrap_or(json!("sim-embed")),
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }),
    )
}

fn models() -> Value {
    let ids = ["sim-chat", "sim-embed"];
    json!({
        "object": "list",
        "data": ids.iter().map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "sim"})).collect::<Vec<_>>(),
    })
}

fn error_body(message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
}

fn full(bytes: Bytes) -> SimBody {
    BoxBody::new(Full::new(bytes).map_err(|never| match never {}))
}

fn json_response(status: StatusCode, value: Value) -> Response<SimBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(Bytes::from(
            serde_json::to_vec(&value).unwrap_or_default(),
        )))
        .unwrap()
}
