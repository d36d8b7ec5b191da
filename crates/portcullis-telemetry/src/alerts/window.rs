//! The recent past of the request records, in bounded memory: what alert rules and the
//! dashboard read.
//!
//! Counts, tokens, cost and latencies in one-second buckets for the last hour; per tenant and
//! model, and per guard rule, in minute buckets; the distinct client addresses of each key;
//! the invalid keys presented (their ids only), for the revoked-key rule; the last refusals and
//! the last keys seen from a new address. Every map is bounded: past its size the oldest
//! entries go.

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
    tokens: u64,
    cost: f64,
    latency: [u32; LATENCY_MS.len() + 1],
    ttft: [u32; LATENCY_MS.len() + 1],
}

/// Per tenant and model in one minute.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub requests: u64,
    pub tokens: u64,
    pub cost: f64,
}

#[derive(Default)]
struct Minute {
    at: u64,
    cost: HashMap<String, f64>,
    /// Tenant -> model -> usage (looked up by reference: no allocation once seen).
    usage: HashMap<String, HashMap<String, Usage>>,
    findings: HashMap<String, u64>,
    entries: usize,
}

/// One minute's usage: ((tenant, model), usage).
pub type MinuteUsage = Vec<((String, String), Usage)>;

/// A refusal, as the dashboard lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub at: u64,
    pub id: String,
    pub tenant: String,
    pub endpoint: String,
    pub status: u16,
    pub code: String,
}

/// A key seen from an address it had not used before.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewAddress {
    pub at: u64,
    pub tenant: String,
    pub key_id: String,
    pub ip: String,
}

/// One point of the dashboard's series.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    pub at: u64,
    pub requests_per_s: f64,
    pub error_ratio: f64,
    pub refusal_ratio: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub ttft_p50_ms: f64,
    pub ttft_p99_ms: f64,
    pub tokens_per_s: f64,
    pub cost_per_hour: f64,
}

const RECENT: usize = 50;

/// The window over recent records. Times are whole seconds from any fixed origin.
pub struct Window {
    seconds: Vec<Second>,
    minutes: Vec<Minute>,
    /// Key id -> (client address, last seen second), most recent last.
    key_ips: HashMap<String, Vec<(String, u64)>>,
    /// Presented key ids that failed authentication -> (attempts, last second).
    invalid_keys: HashMap<String, (u64, u64)>,
    refusals: std::collections::VecDeque<Refusal>,
    new_addresses: std::collections::VecDeque<NewAddress>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            seconds: vec![Second::default(); SECONDS],
            minutes: (0..MINUTES).map(|_| Minute::default()).collect(),
            key_ips: HashMap::new(),
            invalid_keys: HashMap::new(),
            refusals: Default::default(),
            new_addresses: Default::default(),
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
        slot.latency[latency_bucket(record.timing.duration_ms)] += 1;
        if let Some(ms) = record.timing.first_token_ms {
            slot.ttft[latency_bucket(ms)] += 1;
        }
        let tokens = record.tokens.input + record.tokens.output;
        slot.tokens += tokens;
        slot.cost += record.cost_usd;

        let minute = now / 60;
        let m = &mut self.minutes[(minute % MINUTES as u64) as usize];
        if m.at != minute {
            m.at = minute;
            m.cost.clear();
            m.usage.clear();
            m.findings.clear();
            m.entries = 0;
        }
        for f in &record.findings {
            let rule = format!("{}:{}:{}", f.guard, f.rule, f.action);
            if m.findings.len() < MOST_TENANTS_PER_MINUTE || m.findings.contains_key(&rule) {
                *m.findings.entry(rule).or_default() += u64::from(f.count);
            }
        }
        if let Some(p) = &record.principal {
            if record.cost_usd > 0.0 {
                if let Some(cost) = m.cost.get_mut(&p.tenant) {
                    *cost += record.cost_usd;
                } else if m.cost.len() < MOST_TENANTS_PER_MINUTE {
                    m.cost.insert(p.tenant.clone(), record.cost_usd);
                }
            }
            let model = record.model.as_deref().unwrap_or("");
            let seen = m
                .usage
                .get(&p.tenant)
                .is_some_and(|t| t.contains_key(model));
            if !seen && m.entries < MOST_TENANTS_PER_MINUTE {
                m.entries += 1;
                m.usage
                    .entry(p.tenant.clone())
                    .or_default()
                    .insert(model.to_owned(), Usage::default());
            }
            if let Some(u) = m.usage.get_mut(&p.tenant).and_then(|t| t.get_mut(model)) {
                u.requests += 1;
                u.tokens += tokens;
                u.cost += record.cost_usd;
            }
            if !record.client.ip.is_empty() && p.credential != "anonymous" {
                self.note_ip(&p.tenant, &p.key_id, &record.client.ip, now);
            }
        }
        if record.decision.action == "refused" {
            if self.refusals.len() == RECENT {
                self.refusals.pop_front();
            }
            self.refusals.push_back(Refusal {
                at: now,
                id: record.id.clone(),
                tenant: record.tenant().to_owned(),
                endpoint: record.endpoint.clone(),
                status,
                code: record.decision.code.clone().unwrap_or_default(),
            });
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

    fn note_ip(&mut self, tenant: &str, key: &str, ip: &str, now: u64) {
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
        let before = ips.len();
        ips.retain(|(seen, _)| seen != ip);
        if before > 0 && ips.len() == before {
            // A key already seen, from an address it had not used (within the hour).
            if self.new_addresses.len() == RECENT {
                self.new_addresses.pop_front();
            }
            self.new_addresses.push_back(NewAddress {
                at: now,
                tenant: tenant.to_owned(),
                key_id: key.to_owned(),
                ip: ip.to_owned(),
            });
        }
        let ips = self.key_ips.entry(key.to_owned()).or_default();
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
        let latency: Vec<u32> = latency
            .iter()
            .map(|n| u32::try_from(*n).unwrap_or(u32::MAX))
            .collect();
        t.p99_ms = quantile(&latency, 0.99);
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

    /// Distinct networks (IPv4 /16, IPv6 /48) of each key within the last `span` seconds.
    pub fn key_network_counts(&self, now: u64, span: u64) -> Vec<(String, usize)> {
        self.key_ips
            .iter()
            .map(|(key, ips)| {
                let mut networks: Vec<Network> = ips
                    .iter()
                    .filter(|(_, t)| t + span > now)
                    .filter_map(|(ip, _)| network_of(ip))
                    .collect();
                networks.sort_unstable();
                networks.dedup();
                (key.clone(), networks.len())
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

    /// The series of the last `span` seconds in points of `step` seconds, oldest first.
    pub fn series(&self, now: u64, span: u64, step: u64) -> Vec<Point> {
        let step = step.max(1);
        let span = span.clamp(step, SECONDS as u64);
        let points = span / step;
        let first = now + 1 - points * step;
        (0..points)
            .map(|i| {
                let from = first + i * step;
                let mut p = Second::default();
                for at in from..from + step {
                    let s = &self.seconds[(at % SECONDS as u64) as usize];
                    if s.at == at {
                        p.requests += s.requests;
                        p.errors += s.errors;
                        p.refusals += s.refusals;
                        p.tokens += s.tokens;
                        p.cost += s.cost;
                        for (sum, n) in p.latency.iter_mut().zip(s.latency) {
                            *sum += n;
                        }
                        for (sum, n) in p.ttft.iter_mut().zip(s.ttft) {
                            *sum += n;
                        }
                    }
                }
                let ratio = |n: u64| {
                    if p.requests == 0 {
                        0.0
                    } else {
                        n as f64 / p.requests as f64
                    }
                };
                Point {
                    at: from + step - 1,
                    requests_per_s: p.requests as f64 / step as f64,
                    error_ratio: ratio(p.errors),
                    refusal_ratio: ratio(p.refusals),
                    p50_ms: quantile(&p.latency, 0.5),
                    p95_ms: quantile(&p.latency, 0.95),
                    p99_ms: quantile(&p.latency, 0.99),
                    ttft_p50_ms: quantile(&p.ttft, 0.5),
                    ttft_p99_ms: quantile(&p.ttft, 0.99),
                    tokens_per_s: p.tokens as f64 / step as f64,
                    cost_per_hour: p.cost * 3600.0 / step as f64,
                }
            })
            .collect()
    }

    /// Usage per tenant and model in each minute of the last `minutes`, oldest first.
    pub fn usage_by_minute(&self, now: u64, minutes: u64) -> Vec<(u64, MinuteUsage)> {
        let minutes = minutes.clamp(1, MINUTES as u64);
        let current = now / 60;
        (current + 1 - minutes..=current)
            .map(|minute| {
                let m = &self.minutes[(minute % MINUTES as u64) as usize];
                let usage = if m.at == minute {
                    m.usage
                        .iter()
                        .flat_map(|(t, models)| {
                            models
                                .iter()
                                .map(|(model, u)| ((t.clone(), model.clone()), *u))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (minute * 60, usage)
            })
            .collect()
    }

    /// Guard findings (`guard:rule:action`) over the last `minutes`.
    pub fn findings(&self, now: u64, minutes: u64) -> HashMap<String, u64> {
        let minutes = minutes.clamp(1, MINUTES as u64);
        let current = now / 60;
        let mut out: HashMap<String, u64> = HashMap::new();
        for m in &self.minutes {
            if m.at + minutes > current && m.at <= current {
                for (rule, n) in &m.findings {
                    *out.entry(rule.clone()).or_default() += n;
                }
            }
        }
        out
    }

    /// The last refusals, newest first.
    pub fn recent_refusals(&self) -> Vec<Refusal> {
        self.refusals.iter().rev().cloned().collect()
    }

    /// The last keys seen from a new address, newest first.
    pub fn new_addresses(&self) -> Vec<NewAddress> {
        self.new_addresses.iter().rev().cloned().collect()
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

/// The network an address belongs to, at the size one organisation usually holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Network {
    V4([u8; 2]),
    V6([u16; 3]),
}

fn network_of(ip: &str) -> Option<Network> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(Network::V4([o[0], o[1]]))
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                let o = v4.octets();
                Some(Network::V4([o[0], o[1]]))
            }
            None => {
                let s = v6.segments();
                Some(Network::V6([s[0], s[1], s[2]]))
            }
        },
    }
}

fn latency_bucket(ms: f64) -> usize {
    LATENCY_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_MS.len())
}

/// The upper bound of the bucket holding quantile `q` (0 when empty).
fn quantile(histogram: &[u32], q: f64) -> f64 {
    let total: u64 = histogram.iter().map(|n| u64::from(*n)).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= rank {
            // The last bucket has no upper bound: report the largest finite one.
            return LATENCY_MS
                .get(i)
                .copied()
                .unwrap_or(LATENCY_MS[LATENCY_MS.len() - 1]);
        }
    }
    0.0
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
                header_order: String::new(),
                tls: String::new(),
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
        assert_eq!(w.new_addresses()[0].ip, "10.0.0.2");
        assert_eq!(w.recent_refusals().len(), 2);
        let series = w.series(1009, 20, 5);
        assert_eq!(series.len(), 4);
        assert_eq!(
            series.iter().map(|p| p.requests_per_s * 5.0).sum::<f64>(),
            102.0
        );
        assert_eq!(series[3].p50_ms, 5.0);
        w.prune(1009 + 3600);
        assert!(w.key_ip_counts(1009 + 3600, 3600).is_empty());
    }

    #[test]
    fn networks_group_one_organisations_addresses() {
        let mut w = Window::default();
        for ip in [
            "10.0.0.1",
            "10.0.200.7",
            "::ffff:10.0.3.3",
            "203.0.113.9",
            "2001:db8:1:1::1",
            "2001:db8:1:ffff::2",
            "2001:db8:2::1",
        ] {
            w.observe(&record(200, 1.0, Some("a"), ip), 1000);
        }
        assert_eq!(w.key_ip_counts(1000, 3600), vec![("a-key".to_owned(), 7)]);
        assert_eq!(
            w.key_network_counts(1000, 3600),
            vec![("a-key".to_owned(), 4)],
            "10.0/16 (three forms), 203.0/16, 2001:db8:1/48, 2001:db8:2/48"
        );
    }
}
