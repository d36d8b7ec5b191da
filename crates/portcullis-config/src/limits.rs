//! Usage control settings: where limit state lives, and the plans that say how much a
//! tenant and its keys may use.

use crate::Duration;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[limits]`: the limiter's backend and calendar.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `memory` (one process; the embedded default) or `redis` (shared by every replica).
    #[serde(default)]
    pub backend: LimitsBackend,
    /// Redis to use with `backend = "redis"`, e.g. `redis://127.0.0.1:6379/0`.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Longest wait for Redis to connect or answer before the outage policy applies.
    /// Default 250 ms.
    #[serde(default = "defaults::redis_timeout")]
    pub redis_timeout: Duration,
    /// What happens while Redis is unreachable: `fail_closed` (refuse with 503; the default)
    /// or `local` (each replica limits on its own, at `local_fraction` of every limit).
    #[serde(default)]
    pub on_redis_failure: OutagePolicy,
    /// Share of each rate limit and concurrency cap one replica allows while Redis is down
    /// (e.g. 0.34 with three replicas). Default 0.5.
    #[serde(default = "defaults::local_fraction")]
    pub local_fraction: f64,
    /// IANA time zone in which daily and monthly quotas start and end. Default `UTC`.
    #[serde(default = "defaults::time_zone")]
    pub time_zone: String,
    /// How often recorded usage is written to the store. Default 1 s; also written at
    /// shutdown.
    #[serde(default = "defaults::flush_interval")]
    pub flush_interval: Duration,
    /// Name of the unit prices and cost limits are in, for display. Default `USD`.
    #[serde(default = "defaults::currency")]
    pub currency: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            backend: LimitsBackend::Memory,
            redis_url: None,
            redis_timeout: defaults::redis_timeout(),
            on_redis_failure: OutagePolicy::FailClosed,
            local_fraction: defaults::local_fraction(),
            time_zone: defaults::time_zone(),
            flush_interval: defaults::flush_interval(),
            currency: defaults::currency(),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum LimitsBackend {
    #[default]
    Memory,
    Redis,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum OutagePolicy {
    #[default]
    FailClosed,
    Local,
}

/// `[plans.NAME]`: what tenants on a plan, and each of their keys, may use.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Limits on the whole tenant (all its keys together).
    #[serde(default)]
    pub tenant: LimitSpec,
    /// Limits on each key of the tenant.
    #[serde(default)]
    pub key: LimitSpec,
    /// Limits on the whole tenant's use of one model, by model name.
    #[serde(default)]
    pub models: BTreeMap<String, LimitSpec>,
    /// Output tokens reserved when a request sets no `max_tokens`. Default 1024.
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// When the remaining budget cannot pay for `max_tokens`, lower it to what it can pay for
    /// (down to `min_output_tokens`) instead of refusing. Default false.
    #[serde(default)]
    pub clamp_max_tokens: bool,
    /// The least output a clamped request is allowed. Default 16.
    #[serde(default)]
    pub min_output_tokens: Option<u64>,
    /// Input guard settings for tenants on this plan, over the global ones.
    #[serde(default)]
    pub guard: crate::GuardSpec,
}

impl Plan {
    pub fn default_max_tokens(&self) -> u64 {
        self.default_max_tokens.unwrap_or(1024)
    }

    pub fn min_output_tokens(&self) -> u64 {
        self.min_output_tokens.unwrap_or(16)
    }

    /// The plan every tenant gets unless configured otherwise: generous for one person
    /// trying the gateway, bounded so a leaked key cannot run up an unbounded bill.
    pub fn builtin_default() -> Plan {
        Plan {
            tenant: LimitSpec {
                requests_per_minute: Some(600),
                tokens_per_minute: Some(1_000_000),
                concurrent_requests: Some(64),
                ..LimitSpec::default()
            },
            ..Plan::default()
        }
    }
}

/// Limits on one scope. Unset fields are unlimited; in overrides, unset fields keep the
/// plan's value.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Input plus output tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Prompt tokens per minute.
    pub input_tokens_per_minute: Option<u64>,
    /// Completion tokens per minute (reserved at admission, settled at the end).
    pub output_tokens_per_minute: Option<u64>,
    /// Spend per minute, in the configured currency.
    pub cost_per_minute: Option<f64>,
    /// How much of a per-minute limit may be used at once, as a fraction of it. Default 1
    /// (a whole minute's allowance in one burst).
    pub burst_fraction: Option<f64>,
    /// Requests in flight at once.
    pub concurrent_requests: Option<u64>,
    /// Input plus output tokens per calendar day (`limits.time_zone`): a quota.
    pub tokens_per_day: Option<u64>,
    /// Input plus output tokens per calendar month: a quota.
    pub tokens_per_month: Option<u64>,
    /// Spend per calendar day, in the configured currency: a quota.
    pub cost_per_day: Option<f64>,
    /// Spend per calendar month, in the configured currency: a quota.
    pub cost_per_month: Option<f64>,
    /// Total spend ever allowed, in the configured currency: a hard budget.
    pub spend_cap: Option<f64>,
}

impl LimitSpec {
    /// This spec with every field `over` sets replaced by `over`'s value.
    pub fn overridden_by(&self, over: &LimitSpec) -> LimitSpec {
        LimitSpec {
            requests_per_minute: over.requests_per_minute.or(self.requests_per_minute),
            tokens_per_minute: over.tokens_per_minute.or(self.tokens_per_minute),
            input_tokens_per_minute: over
                .input_tokens_per_minute
                .or(self.input_tokens_per_minute),
            output_tokens_per_minute: over
                .output_tokens_per_minute
                .or(self.output_tokens_per_minute),
            cost_per_minute: over.cost_per_minute.or(self.cost_per_minute),
            burst_fraction: over.burst_fraction.or(self.burst_fraction),
            concurrent_requests: over.concurrent_requests.or(self.concurrent_requests),
            tokens_per_day: over.tokens_per_day.or(self.tokens_per_day),
            tokens_per_month: over.tokens_per_month.or(self.tokens_per_month),
            cost_per_day: over.cost_per_day.or(self.cost_per_day),
            cost_per_month: over.cost_per_month.or(self.cost_per_month),
            spend_cap: over.spend_cap.or(self.spend_cap),
        }
    }

    /// Whether any limit needs the prompt's token count.
    pub fn counts_tokens(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.input_tokens_per_minute.is_some()
            || self.output_tokens_per_minute.is_some()
            || self.tokens_per_day.is_some()
            || self.tokens_per_month.is_some()
    }

    pub fn costs(&self) -> bool {
        self.cost_per_minute.is_some()
            || self.cost_per_day.is_some()
            || self.cost_per_month.is_some()
            || self.spend_cap.is_some()
    }

    /// The first field with a value out of range, for validation.
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        let money = [
            ("cost_per_minute", self.cost_per_minute),
            ("cost_per_day", self.cost_per_day),
            ("cost_per_month", self.cost_per_month),
            ("spend_cap", self.spend_cap),
        ];
        for (name, value) in money {
            if let Some(v) = value {
                if !(v.is_finite() && v >= 0.0) {
                    return Some((name, "must be a number of at least 0".into()));
                }
            }
        }
        if let Some(f) = self.burst_fraction {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Some(("burst_fraction", "must be above 0 and at most 1".into()));
            }
        }
        None
    }
}

mod defaults {
    use super::*;

    pub fn redis_timeout() -> Duration {
        Duration::from_millis(250)
    }
    pub fn local_fraction() -> f64 {
        0.5
    }
    pub fn time_zone() -> String {
        "UTC".into()
    }
    pub fn flush_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn currency() -> String {
        "USD".into()
    }
}
