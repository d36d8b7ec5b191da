//! A load generator for the benchmark: HTTP/1.1 keep-alive connections to one URL.
//!
//! Two modes. `saturate`: every connection sends its next request as soon as the previous one
//! finishes (closed loop), which finds the throughput ceiling. `rate`: requests are scheduled
//! at a fixed rate and latency is measured from the moment a request is released, not from
//! when a connection got round to sending it, so a stall is charged to every request it
//! delayed (no coordinated omission). For streams the
//! time to the first body chunk is reported as well as the time to the end.

use bytes::Bytes;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Full URL, e.g. `http://127.0.0.1:8080/v1/chat/completions`.
    pub url: String,
    /// Requests per second; `None` saturates.
    pub rate: Option<f64>,
    pub connections: usize,
    pub duration: Duration,
    /// Ask for a streamed completion.
    pub stream: bool,
    pub model: String,
    /// Sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
    /// Grow the user message with prose to about this many characters.
    pub prompt_chars: Option<usize>,
}

/// The benchmark's request: a system and a user message, about 300 bytes of JSON, as a
/// typical chat turn; `prompt_chars` grows the user message with ordinary prose.
pub fn request_body(model: &str, stream: bool, prompt_chars: Option<usize>) -> Bytes {
    const SYSTEM: &str =
        "You are a concise assistant for an operations team. Answer in plain English.";
    const USER: &str =
        "Summarise the benefits of putting a gateway in front of our model servers, in one line.";
    const PROSE: &str = " Our team runs several model servers behind a load balancer, and each \
        service calls them with its own key; we would like one place to see usage per team, \
        to stop runaway scripts early and to keep customer data out of the logs.";
    let mut user = USER.to_string();
    while user.len() < prompt_chars.unwrap_or(0) {
        user.push_str(PROSE);
    }
    Bytes::from(
        serde_json::json!({
            "model": model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": user},
            ],
            "max_tokens": 16,
            "stream": stream,
        })
        .to_string(),
    )
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub url: String,
    pub mode: &'static str,
    pub connections: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub latency: Percentiles,
    /// Time to the first body chunk (streams only).
    pub first_byte: Option<Percentiles>,
}

#[derive(Default)]
struct Samples {
    latency_us: Vec<u32>,
    first_byte_us: Vec<u32>,
    errors: u64,
}

pub async fn run(plan: LoadPlan) -> anyhow_like::Result<LoadReport> {
    let uri: Uri = plan
        .url
        .parse()
        .map_err(|e| format!("invalid --url: {e}"))?;
    let authority = uri.authority().ok_or("the URL has no host")?.to_string();
    let body = request_body(&plan.model, plan.stream, plan.prompt_chars);
    let plan = Arc::new(plan);
    let start = Instant::now();
    let deadline = start + plan.duration;
    // In rate mode a ticker hands out scheduled send times; workers take them in turn.
    let (schedule_tx, schedule_rx) = tokio::sync::mpsc::channel::<Instant>(plan.connections * 4);
    let schedule_rx = Arc::new(Mutex::new(schedule_rx));
    if let Some(rate) = plan.rate {
        let interval = Duration::from_secs_f64(1.0 / rate);
        tokio::spawn(async move {
            // The timer wakes with millisecond granularity, so requests are stamped with the
            // time they were released, not their ideal slot: the offset is the load generator's,
            // not the server's. A server stall still counts, because released requests wait
            // for a free connection with their stamp already taken.
            let mut next = Instant::now();
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                let released = Instant::now();
                while next <= released && next < deadline {
                    if schedule_tx.send(released).await.is_err() {
                        return;
                    }
                    next += interval;
                }
            }
        });
    } else {
        drop(schedule_tx);
    }

    let mut workers = Vec::new();
    for _ in 0..plan.connections {
        let plan = plan.clone();
        let uri = uri.clone();
        let authority = authority.clone();
        let body = body.clone();
        let schedule = schedule_rx.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut sender = None;
            loop {
                let scheduled = if plan.rate.is_some() {
                    match schedule.lock().await.recv().await {
                        Some(at) => at,
                        None => break,
                    }
                } else {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    now
                };
                if sender.is_none() {
                    sender = connect(&authority).await.ok();
                }
                let Some(s) = sender.as_mut() else {
                    samples.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                match one_request(s, &uri, &authority, &plan, body.clone(), scheduled).await {
                    Ok((first, total)) => {
                        samples.latency_us.push(total);
                        if plan.stream {
                            samples.first_byte_us.push(first);
                        }
                    }
                    Err(_) => {
                        samples.errors += 1;
                        sender = None;
                    }
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for w in workers {
        if let Ok(s) = w.await {
            all.latency_us.extend(s.latency_us);
            all.first_byte_us.extend(s.first_byte_us);
            all.errors += s.errors;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let requests = all.latency_us.len() as u64;
    Ok(LoadReport {
        url: plan.url.clone(),
        mode: if plan.rate.is_some() {
            "rate"
        } else {
            "saturate"
        },
        connections: plan.connections,
        duration_s: elapsed,
        requests,
        errors: all.errors,
        requests_per_s: requests as f64 / elapsed,
        latency: percentiles(&mut all.latency_us),
        first_byte: plan.stream.then(|| percentiles(&mut all.first_byte_us)),
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(authority: &str) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request; returns microseconds to the first body chunk and to the end, both
/// measured from `scheduled`.
async fn one_request(
    sender: &mut Sender,
    uri: &Uri,
    authority: &str,
    plan: &LoadPlan,
    body: Bytes,
    scheduled: Instant,
) -> Result<(u32, u32), Box<dyn std::error::Error + Send + Sync>> {
    sender.ready().await?;
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri.path())
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    if let Some(key) = &plan.api_key {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    }
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    let mut body = response.into_body();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        frame?;
        first.get_or_insert_with(|| scheduled.elapsed().as_micros() as u32);
    }
    let total = scheduled.elapsed().as_micros() as u32;
    Ok((first.unwrap_or(total), total))
}

fn percentiles(samples: &mut [u32]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index] as f64 / 1000.0
    };
    Percentiles {
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// A string error is enough for a command-line tool.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_ranks() {
        let mut v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }

    #[test]
    fn the_request_is_a_short_chat_turn_or_grows_to_the_asked_size() {
        let short = request_body("m", false, None);
        assert!((250..400).contains(&short.len()), "{}", short.len());
        let long = request_body("m", true, Some(2000));
        let value: serde_json::Value = serde_json::from_slice(&long).unwrap();
        let user = value["messages"][1]["content"].as_str().unwrap();
        assert!((2000..2300).contains(&user.len()), "{}", user.len());
        assert_eq!(value["stream"], true);
    }
}
