//! What alert rules read: the recent past of the request records, in bounded memory.
//!
//! Counts and latencies in one-second buckets for the last hour; cost per tenant in minute
//! buckets; the distinct client addresses of each key; the invalid keys presented (their ids
//! only), for the revoked-key rule. Every map is bounded: past its size the oldest entries go.

use crate::record::RequestRecord;
use std::collections::HashMap;
use std::time::Duration;

/// How far back rules can look.
pub const HORIZON: Duration = Duration::from_secs(3600);
const SECONDS: usize = 3600;
const MINUTES: usize = 60;
/// Latency histogram bounds, in milliseconds (the last bucket is everything slower).
const LATENCY_MS: [f64; 19] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0,
    10000.0, 20000.0, 30000.0, 60000.0, 120000.0,
];
const MOST_KEYS: usize = 100_000;
const MOST_IPS_PER_KEY: usize = 64;
const MOST_TENANTS_PER_MINUTE: usize = 10_000;

#[derive(Clone, Default)]
struct Second {
    at: u64,
    requests: u64,
    errors: u64,
    refusals: u64,
    auth_failures: u64,
    latency: [u32; LATENCY_MS.len() + 1],
}

#[derive(Default)]
struct Minute {
    at: u64,
    cost: HashMap<String, f64>,
}

/// The window over recent records. Times are whole seconds from any fixed origin.
pub struct Window {
    seconds: Vec<Second>,
    minutes: Vec<Minute>,
    /// Key id -> (client address, last seen second), most recent last.
    key_ips: HashMap<String, Vec<(String, u64)>>,
    /// Presented key ids that failed authentication -> (attempts, last second).
    invalid_keys: HashMap<String, (u64, u64)>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            seconds: vec![Second::default(); SECONDS],
            minutes: (0..MINUTES).map(|_| Minute::default()).collect(),
            key_ips: HashMap::new(),
            invalid_keys: HashMap::new(),
        }
    }
}

/// What rules see of the window.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub refusals: u64,
    pub auth_failures: u64,
    /// 99th percentile latency in milliseconds (the upper bound of its bucket).
    pub p99_ms: f64,
}

impl Window {
    /// Adds a finished request at second `now`.
    pub fn observe(&mut self, record: &RequestRecord, now: u64) {
        let slot = &mut self.seconds[(now % SECONDS as u64) as usize];
        if slot.at != now {
            *slot = Second {
                at: now,
                ..Second::default()
            };
        }
        slot.requests += 1;
        let status = record.decision.status;
        if status >= 500 {
            slot.errors += 1;
        }
        if record.decision.action == "refused" {
            slot.refusals += 1;
        }
        if matches!(status, 401 | 403) {
            slot.auth_failures += 1;
        }
        let bucket = LATENCY_MS
            .iter()
            .position(|b| record.timing.duration_ms <= *b)
            .unwrap_or(LATENCY_MS.len());
        slot.latency[bucket] += 1;

        if let Some(p) = &record.principal {
            if record.cost_usd > 0.0 {
                let minute = now / 60;
                let m = &mut self.minutes[(minute % MINUTES as u64) as usize];
                if m.at != minute {
                    m.at = minute;
                    m.cost.clear();
                }
                if m.cost.len() < MOST_TENANTS_PER_MINUTE || m.cost.contains_key(&p.tenant) {
                    *m.cost.entry(p.tenant.clone()).or_default() += record.cost_usd;
                }
            }
            if !record.client.ip.is_empty() && p.credential != "anonymous" {
                self.note_ip(&p.key_id, &record.client.ip, now);
            }
        }
        if let (Some(id), 401) = (&record.presented_key_id, status) {
            if self.invalid_keys.len() >= MOST_KEYS && !self.invalid_keys.contains_key(id) {
                self.forget_oldest_invalid();
            }
            let entry = self.invalid_keys.entry(id.clone()).or_default();
            entry.0 += 1;
            entry.1 = now;
        }
    }

    fn note_ip(&mut self, key: &str, ip: &str, now: u64) {
        if self.key_ips.len() >= MOST_KEYS && !self.key_ips.contains_key(key) {
            // Past the bound, the key seen least recently is forgotten.
            let oldest = self
                .key_ips
                .iter()
                .min_by_key(|(_, ips)| ips.last().map_or(0, |(_, t)| *t))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.key_ips.remove(&oldest);
            }
        }
        let ips = self.key_ips.entry(key.to_owned()).or_default();
        ips.retain(|(seen, _)| seen != ip);
        ips.push((ip.to_owned(), now));
        if ips.len() > MOST_IPS_PER_KEY {
            ips.remove(0);
        }
    }

    fn forget_oldest_invalid(&mut self) {
        let oldest = self
            .invalid_keys
            .iter()
            .min_by_key(|(_, (_, t))| *t)
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            self.invalid_keys.remove(&oldest);
        }
    }

    /// Counts and p99 over the last `span` seconds up to `now` (included).
    pub fn totals(&self, now: u64, span: u64) -> Totals {
        let span = span.clamp(1, SECONDS as u64);
        let mut t = Totals::default();
        let mut latency = [0u64; LATENCY_MS.len() + 1];
        for s in &self.seconds {
            if s.at + span > now && s.at <= now && s.requests > 0 {
                t.requests += s.requests;
                t.errors += s.errors;
                t.refusals += s.refusals;
                t.auth_failures += s.auth_failures;
                for (sum, n) in latency.iter_mut().zip(s.latency) {
                    *sum += u64::from(n);
                }
            }
        }
        let total: u64 = latency.iter().sum();
        if total > 0 {
            let rank = (total as f64 * 0.99).ceil() as u64;
            let mut seen = 0;
            for (i, n) in latency.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    t.p99_ms = LATENCY_MS.get(i).copied().unwrap_or(f64::INFINITY);
                    break;
                }
            }
        }
        t
    }

    /// Cost per tenant over the last `span` seconds (whole minutes).
    pub fn tenant_costs(&self, now: u64, span: u64) -> HashMap<String, f64> {
        let minutes = span.div_ceil(60).clamp(1, MINUTES as u64);
        let current = now / 60;
        let mut out: HashMap<String, f64> = HashMap::new();
        for m in &self.minutes {
            if m.at + minutes > current && m.at <= current {
                for (tenant, cost) in &m.cost {
                    *out.entry(tenant.clone()).or_default() += cost;
                }
            }
        }
        out
    }

    /// Distinct client addresses of each key within the last `span` seconds.
    pub fn key_ip_counts(&self, now: u64, span: u64) -> Vec<(String, usize)> {
        self.key_ips
            .iter()
            .map(|(key, ips)| {
                let n = ips.iter().filter(|(_, t)| t + span > now).count();
                (key.clone(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Invalid key ids presented within the last `span` seconds, with their attempts.
    pub fn invalid_keys(&self, now: u64, span: u64) -> Vec<(String, u64)> {
        self.invalid_keys
            .iter()
            .filter(|(_, (_, t))| t + span > now)
            .map(|(k, (n, _))| (k.clone(), *n))
            .collect()
    }

    /// Drops what is older than the horizon (maps only; the rings overwrite themselves).
    pub fn prune(&mut self, now: u64) {
        let horizon = HORIZON.as_secs();
        self.key_ips.retain(|_, ips| {
            ips.retain(|(_, t)| t + horizon > now);
            !ips.is_empty()
        });
        self.invalid_keys.retain(|_, (_, t)| *t + horizon > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decision, PrincipalRecord};

    fn record(status: u16, ms: f64, tenant: Option<&str>, ip: &str) -> RequestRecord {
        RequestRecord {
            decision: Decision {
                action: if status >= 400 { "refused" } else { "allowed" }.into(),
                status,
                code: None,
            },
            principal: tenant.map(|t| PrincipalRecord {
                tenant: t.into(),
                key_id: format!("{t}-key"),
                credential: "secret_key".into(),
                ..Default::default()
            }),
            client: crate::record::ClientRecord {
                ip: ip.into(),
                user_agent: String::new(),
            },
            cost_usd: 0.5,
            timing: crate::record::Timing {
                duration_ms: ms,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn totals_cover_the_span_and_no_more() {
        let mut w = Window::default();
        for i in 0..100 {
            w.observe(&record(200, 3.0, Some("a"), "10.0.0.1"), 1000 + i % 10);
        }
        w.observe(&record(503, 900.0, Some("a"), "10.0.0.2"), 1009);
        w.observe(&record(401, 1.0, None, "10.0.0.3"), 1009);
        let t = w.totals(1009, 10);
        assert_eq!(
            (t.requests, t.errors, t.refusals, t.auth_failures),
            (102, 1, 2, 1)
        );
        assert_eq!(t.p99_ms, 5.0);
        assert_eq!(w.totals(1009, 1).requests, 12);
        assert_eq!(
            w.totals(5000, 60).requests,
            0,
            "an hour later the ring has moved on"
        );
        assert_eq!(w.tenant_costs(1009, 3600)["a"], 50.5);
        assert_eq!(w.key_ip_counts(1009, 3600), vec![("a-key".to_owned(), 2)]);
        w.prune(1009 + 3600);
        assert!(w.key_ip_counts(1009 + 3600, 3600).is_empty());
    }
}
