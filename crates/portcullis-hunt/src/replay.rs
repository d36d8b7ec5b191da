//! Offline replay: the live detector's code over recorded traffic, in the traffic's own
//! time (days replay in seconds).
//!
//! Input, one JSON object per line (a stable interface, documented in the README):
//! `ts` (RFC 3339), `tenant`, `key`, `ip`, `user_agent`, `endpoint` (`chat.completions`,
//! `completions`, `responses`, `embeddings`, or the path), `body` (the OpenAI request JSON
//! as sent), optional `response` (the JSON answer or the streamed text), `status` and
//! `findings` (guard findings on the request). Nothing about the recorded deployment is
//! needed: any model, tenant and key names are taken as recorded.

use crate::detector::{parse_ts, Detector, Outcome};
use crate::features::prompt::Endpoint;
use crate::features::RequestInput;
use serde::Deserialize;
use serde_json::Value;
use std::io::BufRead;
use std::time::Instant;

/// One recorded request.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct TrafficEvent {
    pub ts: String,
    pub tenant: String,
    pub key: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub user_agent: String,
    /// Header names in the order sent, comma-separated (optional).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub header_order: String,
    /// The TLS hello's fingerprint (optional).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls: String,
    pub endpoint: String,
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(default)]
    pub status: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub findings: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayStats {
    pub events: u64,
    /// Lines that were not a recorded request (malformed JSON, a missing field, a bad time).
    pub skipped: u64,
    /// The first skipped line's number and why.
    pub first_skip: Option<(u64, String)>,
    /// Detector time per request (feature extraction included, JSON parsing not), in ns.
    pub detector_ns: Vec<u32>,
    pub wall_seconds: f64,
}

impl ReplayStats {
    /// The p-th percentile of detector time per request, in µs.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.detector_ns.is_empty() {
            return 0.0;
        }
        let mut v = self.detector_ns.clone();
        v.sort_unstable();
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        f64::from(v[i]) / 1000.0
    }
}

/// Replays `input` through `detector`; `each` sees every request after it was folded in
/// (its position in the file, the event, and what it changed).
pub fn replay(
    input: impl BufRead,
    detector: &mut Detector,
    mut each: impl FnMut(u64, &TrafficEvent, f64, &Outcome),
) -> std::io::Result<ReplayStats> {
    let started = Instant::now();
    let mut stats = ReplayStats::default();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: TrafficEvent = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                skip(&mut stats, n as u64 + 1, e.to_string());
                continue;
            }
        };
        let Some(ts) = parse_ts(&event.ts) else {
            skip(
                &mut stats,
                n as u64 + 1,
                format!("`ts` is not RFC 3339: {:?}", event.ts),
            );
            continue;
        };
        let t0 = Instant::now();
        let outcome = detector.observe(&RequestInput {
            ts,
            tenant: &event.tenant,
            key: &event.key,
            ip: &event.ip,
            user_agent: &event.user_agent,
            header_order: &event.header_order,
            tls: &event.tls,
            endpoint: Endpoint::parse(&event.endpoint),
            body: &event.body,
            response: event.response.as_ref(),
            status: event.status,
            findings: event.findings,
        });
        stats
            .detector_ns
            .push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        stats.events += 1;
        each(stats.events, &event, ts, &outcome);
    }
    stats.wall_seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

fn skip(stats: &mut ReplayStats, line: u64, why: String) {
    stats.skipped += 1;
    if stats.first_skip.is_none() {
        stats.first_skip = Some((line, why));
    }
}
