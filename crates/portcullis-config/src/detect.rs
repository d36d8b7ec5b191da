//! `[detect]`: the extraction and distillation detector beside the request path, and the
//! ladder of what it does at each risk level.

use crate::Duration;
use serde::Deserialize;

/// The threat detector. It reads every request record through a bounded queue (a full
/// queue drops records and counts them; a request never waits for it) and keeps per-key and
/// per-tenant risk with reasons (`GET /admin/v1/threats`, `portcullis threats list`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// Run the detector. Default true.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Records queued for the detector before new ones are dropped. Default 8192.
    #[serde(default = "defaults::queue")]
    pub queue: usize,
    /// Most keys held in memory (about 1 KiB each); the least recently seen go first.
    /// Default 500000.
    #[serde(default = "defaults::max_keys")]
    pub max_keys: usize,
    /// Act on internal-audience tenants too. Default false: they are observed, never acted on.
    #[serde(default)]
    pub act_on_internal: bool,
    /// Principals observed but never acted on (evaluation harnesses, sanctioned resellers):
    /// `tenant:NAME` or `key:ID`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// What happens at each risk level, lowest first. The default ladder alerts at 0.8,
    /// throttles to a quarter at 0.9 and suspends the key at 0.99 (an hour each).
    #[serde(default = "defaults::ladder")]
    pub ladder: Vec<Rung>,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            enabled: true,
            queue: defaults::queue(),
            max_keys: defaults::max_keys(),
            act_on_internal: false,
            allow: Vec::new(),
            ladder: defaults::ladder(),
        }
    }
}

/// One rung of the response ladder.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// The risk (0 to 1) at which this rung applies.
    pub risk: f64,
    /// What to do: `record` (the audit event alone), `alert` (a security alert event),
    /// `restrict` (the key's requests lose logprobs, top_logprobs and logit_bias, ask one
    /// sample and at most `max_tokens`; reasoning text is never returned to anyone),
    /// `reexchange` (tokens minted from the key so far are refused: the caller must exchange
    /// the key again), `throttle` (scale the key's limits by `factor`), `suspend_key`,
    /// `suspend_tenant`. Each lasts `hold`, on every replica.
    pub actions: Vec<RungAction>,
    /// The output cap of `restrict`. Default 1024.
    #[serde(default = "defaults::restrict_tokens")]
    pub max_tokens: u64,
    /// The factor of `throttle`, 0.001 to 1. Default 0.25.
    #[serde(default = "defaults::factor")]
    pub factor: f64,
    /// How long a throttle or suspension lasts (an operator can clear it sooner). Default 1h.
    #[serde(default = "defaults::hold")]
    pub hold: Duration,
    /// Only for tenants on these plans (empty: every plan).
    #[serde(default)]
    pub plans: Vec<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RungAction {
    Record,
    Alert,
    Restrict,
    Reexchange,
    Throttle,
    SuspendKey,
    SuspendTenant,
}

mod defaults {
    use super::{Rung, RungAction};

    pub fn yes() -> bool {
        true
    }
    pub fn queue() -> usize {
        8192
    }
    pub fn max_keys() -> usize {
        500_000
    }
    pub fn restrict_tokens() -> u64 {
        1024
    }
    pub fn factor() -> f64 {
        0.25
    }
    pub fn hold() -> crate::Duration {
        crate::Duration::from_secs(3600)
    }
    pub fn ladder() -> Vec<Rung> {
        let rung = |risk, actions: &[RungAction]| Rung {
            risk,
            actions: actions.to_vec(),
            factor: factor(),
            max_tokens: restrict_tokens(),
            hold: hold(),
            plans: Vec::new(),
        };
        vec![
            rung(0.8, &[RungAction::Record, RungAction::Alert]),
            rung(0.9, &[RungAction::Throttle]),
            rung(0.99, &[RungAction::SuspendKey]),
        ]
    }
}
