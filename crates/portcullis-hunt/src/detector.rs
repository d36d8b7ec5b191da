//! The detector: requests in, per-key and per-tenant risk out, in bounded memory.
//!
//! Single-threaded by design: it runs on its own task beside the request path (live) or in
//! a loop over recorded traffic (replay), and the same code serves both.

use crate::account::Account;
use crate::campaign::Campaigns;
use crate::features::{Observation, RequestInput};
use crate::risk::{assess, Assessment};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// How many accounts of each kind are kept; the least recently seen of a random sample
/// goes first when a new one arrives.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub keys: usize,
    pub tenants: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // About 1 KiB each: 500,000 keys in roughly half a GiB.
        Limits {
            keys: 500_000,
            tenants: 100_000,
        }
    }
}

struct Slot {
    name: Box<str>,
    tenant: Box<str>,
    account: Account,
}

/// Accounts of one kind, bounded, with sampled least-recently-seen eviction.
struct Pool {
    index: FxHashMap<Box<str>, u32>,
    slots: Vec<Slot>,
    capacity: usize,
    rng: fastrand::Rng,
    evicted: u64,
}

impl Pool {
    fn new(capacity: usize) -> Pool {
        Pool {
            index: FxHashMap::default(),
            slots: Vec::new(),
            capacity: capacity.max(1),
            rng: fastrand::Rng::with_seed(0x5eed),
            evicted: 0,
        }
    }

    fn get_or_insert(&mut self, name: &str, tenant: &str, ts: f64, serial: &mut u64) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i as usize;
        }
        if self.slots.len() >= self.capacity {
            let victim = (0..8)
                .map(|_| self.rng.usize(..self.slots.len()))
                .min_by(|&a, &b| {
                    self.slots[a]
                        .account
                        .last_ts
                        .total_cmp(&self.slots[b].account.last_ts)
                })
                .expect("eight samples");
            let gone = self.slots.swap_remove(victim);
            self.index.remove(&gone.name);
            if victim < self.slots.len() {
                let moved = self.slots[victim].name.clone();
                self.index.insert(moved, victim as u32);
            }
            self.evicted += 1;
        }
        *serial += 1;
        self.slots.push(Slot {
            name: name.into(),
            tenant: tenant.into(),
            account: Account::new(*serial, ts),
        });
        self.index
            .insert(name.into(), (self.slots.len() - 1) as u32);
        self.slots.len() - 1
    }
}

/// What one request changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub key: Assessment,
    pub tenant: Assessment,
    /// The key reached the flag level with this request.
    pub key_newly_flagged: bool,
    pub tenant_newly_flagged: bool,
}

/// Whether a verdict is about a key or a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Key,
    Tenant,
}

/// The detector's current view of one account (the replay output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub kind: Subject,
    pub id: String,
    pub tenant: String,
    pub requests: u32,
    pub risk: f64,
    pub peak_risk: f64,
    pub flagged: bool,
    pub first_flagged_ts: Option<String>,
    /// The account's n-th request (1-based) at which it was first flagged.
    pub first_flagged_request_index: Option<u32>,
    pub reasons: Vec<String>,
    /// Reason codes alone, for machines.
    pub reason_codes: Vec<&'static str>,
    pub cluster: Option<String>,
    pub cluster_size: Option<usize>,
}

pub struct Detector {
    keys: Pool,
    tenants: Pool,
    campaigns: Campaigns,
    serial: u64,
    observed: u64,
}

impl Detector {
    pub fn new(limits: Limits) -> Detector {
        Detector {
            keys: Pool::new(limits.keys),
            tenants: Pool::new(limits.tenants),
            campaigns: Campaigns::default(),
            serial: 0,
            observed: 0,
        }
    }

    pub fn observe(&mut self, req: &RequestInput<'_>) -> Outcome {
        let o = Observation::from_request(req);
        self.observe_features(req.tenant, req.key, &o)
    }

    /// Folds in a request whose features are already computed.
    pub fn observe_features(&mut self, tenant: &str, key: &str, o: &Observation) -> Outcome {
        self.observed += 1;
        let k = self.keys.get_or_insert(key, tenant, o.ts, &mut self.serial);
        let account = &mut self.keys.slots[k].account;
        account.observe(o);
        let serial = account.serial;
        self.campaigns
            .observe(serial, account.tests.distill, account.distill_share(), o);
        let account = &self.keys.slots[k].account;
        let key_assessment = assess(account, self.campaigns.cluster_of(serial).as_ref());
        let key_newly_flagged = mark(&mut self.keys.slots[k].account, &key_assessment, o.ts);

        let t = self
            .tenants
            .get_or_insert(tenant, tenant, o.ts, &mut self.serial);
        let account = &mut self.tenants.slots[t].account;
        account.observe(o);
        let tenant_assessment = assess(account, None);
        let tenant_newly_flagged = mark(account, &tenant_assessment, o.ts);
        Outcome {
            key: key_assessment,
            tenant: tenant_assessment,
            key_newly_flagged,
            tenant_newly_flagged,
        }
    }

    /// Every key's and tenant's verdict, keys first, each sorted by id.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::with_capacity(self.keys.slots.len() + self.tenants.slots.len());
        for (pool, kind) in [(&self.keys, Subject::Key), (&self.tenants, Subject::Tenant)] {
            let mut part: Vec<Verdict> = pool
                .slots
                .iter()
                .map(|s| self.verdict_of(s, kind))
                .collect();
            part.sort_by(|a, b| a.id.cmp(&b.id));
            out.extend(part);
        }
        out
    }

    /// One key's verdict.
    pub fn key_verdict(&self, key: &str) -> Option<Verdict> {
        let &i = self.keys.index.get(key)?;
        Some(self.verdict_of(&self.keys.slots[i as usize], Subject::Key))
    }

    fn verdict_of(&self, slot: &Slot, kind: Subject) -> Verdict {
        let a = &slot.account;
        let cluster = match kind {
            Subject::Key => self.campaigns.cluster_of(a.serial),
            Subject::Tenant => None,
        };
        let assessment = assess(a, cluster.as_ref());
        Verdict {
            kind,
            id: slot.name.to_string(),
            tenant: slot.tenant.to_string(),
            requests: a.requests,
            risk: round3(assessment.risk),
            peak_risk: round3(f64::from(a.peak_risk).max(assessment.risk)),
            flagged: a.flagged_at.is_some(),
            first_flagged_ts: a.flagged_at.map(|(ts, _)| rfc3339(ts)),
            first_flagged_request_index: a.flagged_at.map(|(_, n)| n),
            reason_codes: assessment.reasons.iter().map(|r| r.code).collect(),
            reasons: assessment.reasons.iter().map(ToString::to_string).collect(),
            cluster: cluster.map(|c| format!("c{}", c.id)),
            cluster_size: cluster.map(|c| c.members),
        }
    }

    /// Requests observed; keys and tenants held; keys evicted; templates and clusters.
    pub fn stats(&self) -> Stats {
        let (templates, clusters) = self.campaigns.sizes();
        Stats {
            observed: self.observed,
            keys: self.keys.slots.len(),
            tenants: self.tenants.slots.len(),
            evicted: self.keys.evicted + self.tenants.evicted,
            templates,
            clusters,
        }
    }
}

/// Counters about the detector itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub observed: u64,
    pub keys: usize,
    pub tenants: usize,
    pub evicted: u64,
    pub templates: usize,
    pub clusters: usize,
}

/// Records the peak risk and the first flag; returns whether this request flagged it.
fn mark(a: &mut Account, assessment: &Assessment, ts: f64) -> bool {
    a.peak_risk = a.peak_risk.max(assessment.risk as f32);
    if assessment.flagged() && a.flagged_at.is_none() {
        a.flagged_at = Some((ts, a.requests));
        return true;
    }
    false
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds since the epoch as RFC 3339 (UTC, seconds).
pub fn rfc3339(ts: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(ts.max(0.0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 to seconds since the epoch.
pub fn parse_ts(s: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z').trim_end_matches("+00:00"))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ts = parse_ts("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(rfc3339(ts), "2026-12-01T10:00:00Z");
        assert_eq!(parse_ts("2026-12-01T10:00:00.250Z").unwrap() - ts, 0.25);
        assert!(parse_ts("yesterday").is_none());
    }

    #[test]
    fn the_pool_stays_within_its_capacity() {
        let mut d = Detector::new(Limits {
            keys: 50,
            tenants: 5,
        });
        let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
        for i in 0..500 {
            let key = format!("k{i}");
            let tenant = format!("t{}", i % 20);
            d.observe(&RequestInput {
                ts: f64::from(i),
                tenant: &tenant,
                key: &key,
                ip: "",
                user_agent: "",
                header_order: "",
                tls: "",
                endpoint: crate::features::prompt::Endpoint::Chat,
                body: &body,
                response: None,
                status: 200,
                findings: 0,
            });
        }
        let s = d.stats();
        assert_eq!((s.keys, s.tenants), (50, 5));
        assert!(s.evicted >= 450);
        assert!(d.key_verdict("k499").is_some());
    }
}
