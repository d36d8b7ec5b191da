//! A traffic simulator: seeded mixes of legitimate personas and extraction campaigns, with
//! ground-truth labels, in the replay format.
//!
//! A scenario file (TOML) says how many accounts of each persona, and which campaigns:
//!
//! ```toml
//! start = "2026-11-02T00:00:00Z"
//! days = 7
//! [personas]
//! chat = 600
//! student = 40
//! app_backend = 200
//! coding_agent = 80
//! eval_harness = 20
//! rag_pipeline = 40
//! reseller = 8
//! occasional = 200
//! [[campaigns]]
//! kind = "sybil"      # bulk | low_and_slow | sybil | blended | paraphrase |
//! accounts = 100      # trace_coercion | logit_bias | embedding_harvest
//! budget = 20000
//! infra = "shared"    # or "rotating"
//! ```
//!
//! The hard legitimate cases are deliberate: students who ask for worked reasoning with long
//! answers, app backends that reuse one template at volume (one of them asks for step-by-step
//! classification), coding agents with a "think step by step" system prompt and 8k
//! max_tokens, evaluation harnesses that sweep every area, resellers with broad topics at
//! very high volume, RAG pipelines that embed whole corpora.

mod bodies;
mod schedule;
pub mod vocab;

use crate::detector::{parse_ts, rfc3339};
use crate::replay::TrafficEvent;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default = "default_start")]
    pub start: String,
    #[serde(default = "default_days")]
    pub days: f64,
    #[serde(default)]
    pub personas: Personas,
    #[serde(default)]
    pub campaigns: Vec<CampaignSpec>,
}

impl Scenario {
    /// Reads a scenario file's text.
    pub fn from_toml(text: &str) -> anyhow::Result<Scenario> {
        Ok(toml::from_str(text)?)
    }
}

fn default_start() -> String {
    "2026-11-02T00:00:00Z".into()
}

fn default_days() -> f64 {
    7.0
}

/// Accounts per legitimate persona.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Personas {
    #[serde(default)]
    pub chat: u32,
    #[serde(default)]
    pub student: u32,
    #[serde(default)]
    pub app_backend: u32,
    #[serde(default)]
    pub coding_agent: u32,
    #[serde(default)]
    pub eval_harness: u32,
    #[serde(default)]
    pub rag_pipeline: u32,
    #[serde(default)]
    pub reseller: u32,
    #[serde(default)]
    pub occasional: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    Bulk,
    LowAndSlow,
    Sybil,
    Blended,
    Paraphrase,
    TraceCoercion,
    LogitBias,
    EmbeddingHarvest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Infra {
    /// Few proxy prefixes and one client for every account.
    #[default]
    Shared,
    /// A new prefix for every request and a client of its own for every account.
    Rotating,
}

/// One campaign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub kind: CampaignKind,
    #[serde(default = "one")]
    pub accounts: u32,
    /// Campaign requests in all (for `blended`: the carrier accounts' requests in all).
    pub budget: u32,
    #[serde(default)]
    pub infra: Infra,
    /// For `blended`: the share of the carriers' traffic that is the campaign's.
    #[serde(default = "default_share")]
    pub share: f64,
    /// The day (from the start) the campaign begins.
    #[serde(default)]
    pub start_day: f64,
}

fn one() -> u32 {
    1
}

fn default_share() -> f64 {
    0.05
}

/// Who an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Chat,
    Student,
    AppBackend,
    CodingAgent,
    EvalHarness,
    RagPipeline,
    Reseller,
    Occasional,
    Campaign(CampaignKind),
}

impl Class {
    pub fn name(self) -> String {
        match self {
            Class::Campaign(k) => serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

/// A simulated account.
#[derive(Debug, Clone)]
pub struct SimAccount {
    pub key: String,
    pub tenant: String,
    pub class: Class,
    /// The campaign it belongs to (`sybil-2`), for attack accounts.
    pub campaign: Option<String>,
    pub seed: u64,
    /// Campaign: this account's own request budget; blended: the share of attack requests.
    pub budget: u32,
    pub share: f64,
    pub infra: Infra,
    pub start_day: f64,
    /// Index of the campaign (for templates and infrastructure shared by its accounts).
    pub campaign_index: usize,
}

/// One account's ground truth (a line of the labels file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub tenant: String,
    /// `attack` or `benign`.
    pub label: String,
    /// The persona or campaign kind.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// What a simulation wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub events: u64,
    pub accounts: usize,
}

/// The accounts a scenario describes, in a fixed order.
pub fn accounts(scenario: &Scenario, seed: u64) -> Vec<SimAccount> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    let p = &scenario.personas;
    let benign = [
        (Class::Chat, p.chat),
        (Class::Student, p.student),
        (Class::AppBackend, p.app_backend),
        (Class::CodingAgent, p.coding_agent),
        (Class::EvalHarness, p.eval_harness),
        (Class::RagPipeline, p.rag_pipeline),
        (Class::Reseller, p.reseller),
        (Class::Occasional, p.occasional),
    ];
    let mut n = 0;
    for (class, count) in benign {
        for _ in 0..count {
            n += 1;
            // App backends come in pairs of keys per tenant (a service and its worker).
            let tenant = if class == Class::AppBackend {
                format!("org-{}", n / 2)
            } else {
                format!("org-{n}")
            };
            out.push(SimAccount {
                key: format!("key-{n:06}"),
                tenant,
                class,
                campaign: None,
                seed: rng.u64(..),
                budget: 0,
                share: 0.0,
                infra: Infra::Shared,
                start_day: 0.0,
                campaign_index: 0,
            });
        }
    }
    for (ci, c) in scenario.campaigns.iter().enumerate() {
        let name = format!("{}-{}", Class::Campaign(c.kind).name(), ci + 1);
        let accounts = c.accounts.max(1);
        for a in 0..accounts {
            n += 1;
            let share = c.budget / accounts + u32::from(a < c.budget % accounts);
            out.push(SimAccount {
                key: format!("key-{n:06}"),
                tenant: format!("org-{n}"),
                class: Class::Campaign(c.kind),
                campaign: Some(name.clone()),
                seed: rng.u64(..),
                budget: share,
                share: c.share.clamp(0.0, 1.0),
                infra: c.infra,
                start_day: c.start_day,
                campaign_index: ci,
            });
        }
    }
    // Keys are shuffled so that no detector can read a campaign from key order.
    let mut ids: Vec<usize> = (1..=out.len()).collect();
    rng.shuffle(&mut ids);
    for (a, id) in out.iter_mut().zip(ids) {
        a.key = format!("key-{id:06}");
        if a.class != Class::AppBackend {
            a.tenant = format!("org-{id:06}");
        }
    }
    out
}

/// Writes a scenario's traffic (time-ordered, in the replay format) and labels.
/// An account's ground truth.
pub fn label(a: &SimAccount) -> Label {
    Label {
        key: a.key.clone(),
        tenant: a.tenant.clone(),
        label: if a.campaign.is_some() {
            "attack"
        } else {
            "benign"
        }
        .into(),
        class: a.class.name(),
        campaign: a.campaign.clone(),
    }
}

/// One planned request: `(ts, account index, the account's request number)`.
pub type Planned = (f64, u32, u32);

/// A scenario's accounts, and its requests in time order: `(ts, account index, the
/// account's request number)`.
pub fn schedule(scenario: &Scenario, seed: u64) -> anyhow::Result<(Vec<SimAccount>, Vec<Planned>)> {
    let start = parse_ts(&scenario.start)
        .ok_or_else(|| anyhow::anyhow!("`start` is not RFC 3339: {:?}", scenario.start))?;
    anyhow::ensure!(
        scenario.days > 0.0 && scenario.days <= 400.0,
        "`days` must be in (0, 400]"
    );
    let accounts = accounts(scenario, seed);
    let plan = schedule::plan(&accounts, start, scenario.days);
    Ok((accounts, plan))
}

pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    traffic: &mut impl Write,
    labels: &mut impl Write,
) -> anyhow::Result<Written> {
    let (accounts, plan) = schedule(scenario, seed)?;
    for a in &accounts {
        let label = label(a);
        serde_json::to_writer(&mut *labels, &label)?;
        labels.write_all(b"\n")?;
    }
    let mut written = Written {
        events: 0,
        accounts: accounts.len(),
    };
    for (ts, account, n) in plan {
        let a = &accounts[account as usize];
        let request = bodies::request(a, n, seed);
        let event = TrafficEvent {
            ts: rfc3339_millis(ts),
            tenant: a.tenant.clone(),
            key: a.key.clone(),
            ip: request.ip,
            user_agent: request.user_agent,
            header_order: String::new(),
            tls: String::new(),
            endpoint: request.endpoint.into(),
            body: request.body,
            response: Some(request.response),
            status: 200,
            findings: 0,
        };
        serde_json::to_writer(&mut *traffic, &event)?;
        traffic.write_all(b"\n")?;
        written.events += 1;
    }
    Ok(written)
}

/// One simulated request, to send to a live gateway: its endpoint (`chat.completions`,
/// `embeddings`), body and user agent.
pub struct LiveRequest {
    pub endpoint: &'static str,
    pub body: serde_json::Value,
    pub user_agent: String,
}

/// The `n`-th request of account `a` in a simulation seeded `seed` (what `simulate` writes
/// for it, without the recorded answer).
pub fn live_request(a: &SimAccount, n: u32, seed: u64) -> LiveRequest {
    let r = bodies::request(a, n, seed);
    LiveRequest {
        endpoint: r.endpoint,
        body: r.body,
        user_agent: r.user_agent,
    }
}

fn rfc3339_millis(ts: f64) -> String {
    let whole = rfc3339(ts.floor());
    let ms = ((ts - ts.floor()) * 1000.0).floor() as u32;
    format!("{}.{ms:03}Z", whole.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Scenario {
        toml::from_str(
            r#"
            days = 1
            [personas]
            chat = 5
            app_backend = 2
            reseller = 1
            [[campaigns]]
            kind = "sybil"
            accounts = 3
            budget = 90
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_writes_the_same_traffic() {
        let run = |seed| {
            let (mut t, mut l) = (Vec::new(), Vec::new());
            simulate(&small(), seed, &mut t, &mut l).unwrap();
            (t, l)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1).0, run(2).0);
    }

    #[test]
    fn traffic_is_time_ordered_and_labels_cover_every_key() {
        let (mut t, mut l) = (Vec::new(), Vec::new());
        let w = simulate(&small(), 9, &mut t, &mut l).unwrap();
        let events: Vec<TrafficEvent> = String::from_utf8(t)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(events.len() as u64, w.events);
        let ts: Vec<f64> = events.iter().map(|e| parse_ts(&e.ts).unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        let labels: Vec<Label> = String::from_utf8(l)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(labels.len(), 11);
        assert_eq!(labels.iter().filter(|l| l.label == "attack").count(), 3);
        let sybil_requests = events
            .iter()
            .filter(|e| labels.iter().any(|l| l.key == e.key && l.label == "attack"))
            .count();
        assert_eq!(sybil_requests, 90);
        for e in &events {
            assert!(labels.iter().any(|l| l.key == e.key));
        }
    }

    #[test]
    fn millisecond_timestamps() {
        assert_eq!(rfc3339_millis(1.25), "1970-01-01T00:00:01.250Z");
    }
}
