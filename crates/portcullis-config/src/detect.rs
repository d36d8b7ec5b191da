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
    /// Where the detector's observations meet: `auto` (Redis when `limits.backend = "redis"`,
    /// else this process), `memory` (this process: each replica sees its own traffic) or
    /// `redis` (every replica publishes each request's features to a Redis stream and reads
    /// the others', so a key or campaign spread over replicas is seen whole, and each ladder
    /// rung acts once across replicas). Default `auto`.
    #[serde(default)]
    pub backend: DetectBackend,
    /// Redis for `backend = "redis"`; default `limits.redis_url`.
    #[serde(default)]
    pub redis_url: Option<String>,
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
            backend: DetectBackend::Auto,
            redis_url: None,
            ladder: defaults::ladder(),
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DetectBackend {
    #[default]
    Auto,
    Memory,
    Redis,
}

impl Detect {
    /// The Redis the detector shares its observations through, if any.
    pub fn shared_redis<'a>(&'a self, limits: &'a crate::Limits) -> Option<&'a str> {
        let url = self.redis_url.as_deref().or(limits.redis_url.as_deref());
        match self.backend {
            DetectBackend::Memory => None,
            DetectBackend::Redis => url,
            DetectBackend::Auto => url.filter(|_| limits.backend == crate::LimitsBackend::Redis),
        }
        .filter(|u| !u.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_shared_through_redis_only_where_asked_or_implied() {
        let mut limits = crate::Limits::default();
        let mut detect = Detect::default();
        assert_eq!(detect.shared_redis(&limits), None, "memory limits: local");
        limits.redis_url = Some("redis://l".into());
        assert_eq!(
            detect.shared_redis(&limits),
            None,
            "a URL alone is not the backend"
        );
        limits.backend = crate::LimitsBackend::Redis;
        assert_eq!(detect.shared_redis(&limits), Some("redis://l"));
        detect.backend = DetectBackend::Memory;
        assert_eq!(detect.shared_redis(&limits), None);
        detect.backend = DetectBackend::Redis;
        detect.redis_url = Some("redis://d".into());
        limits.backend = crate::LimitsBackend::Memory;
        assert_eq!(detect.shared_redis(&limits), Some("redis://d"));
    }
}
