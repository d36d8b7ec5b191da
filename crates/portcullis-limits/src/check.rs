//! What a backend is asked to decide: a list of checks, all passed or none applied.

use crate::gcra::Rate;
use crate::quota::QuotaSeed;

/// Which limit a check enforces; decides the error code and the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Requests,
    Tokens,
    InputTokens,
    OutputTokens,
    Cost,
    Concurrency,
    DailyTokens,
    DailyCost,
    MonthlyTokens,
    MonthlyCost,
    SpendCap,
}

impl Label {
    /// The limit's name in metrics and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Label::Requests => "requests",
            Label::Tokens => "tokens",
            Label::InputTokens => "input_tokens",
            Label::OutputTokens => "output_tokens",
            Label::Cost => "cost",
            Label::Concurrency => "concurrency",
            Label::DailyTokens => "daily_tokens",
            Label::DailyCost => "daily_cost",
            Label::MonthlyTokens => "monthly_tokens",
            Label::MonthlyCost => "monthly_cost",
            Label::SpendCap => "spend_cap",
        }
    }

    /// The OpenAI-style error code of a denial by this limit.
    pub fn code(self) -> &'static str {
        match self {
            Label::Requests
            | Label::Tokens
            | Label::InputTokens
            | Label::OutputTokens
            | Label::Cost => "rate_limit_exceeded",
            Label::Concurrency => "concurrency_exceeded",
            Label::DailyTokens | Label::DailyCost | Label::MonthlyTokens | Label::MonthlyCost => {
                "insufficient_quota"
            }
            Label::SpendCap => "budget_exceeded",
        }
    }

    /// Words for the error message.
    pub fn describe(self) -> &'static str {
        match self {
            Label::Requests => "requests per minute",
            Label::Tokens => "tokens per minute",
            Label::InputTokens => "input tokens per minute",
            Label::OutputTokens => "output tokens per minute",
            Label::Cost => "spend per minute",
            Label::Concurrency => "concurrent requests",
            Label::DailyTokens => "daily token quota",
            Label::DailyCost => "daily spend quota",
            Label::MonthlyTokens => "monthly token quota",
            Label::MonthlyCost => "monthly spend quota",
            Label::SpendCap => "spend cap",
        }
    }

    /// Whether a client should retry after waiting: not for spent quotas and budgets.
    pub fn waiting_helps(self) -> bool {
        matches!(
            self,
            Label::Requests
                | Label::Tokens
                | Label::InputTokens
                | Label::OutputTokens
                | Label::Cost
                | Label::Concurrency
        )
    }
}

/// How a check keeps its state.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A GCRA rate limit.
    Rate(Rate),
    /// A counter up to `limit` until `expires_at_us` (the end of its calendar period); its
    /// starting value comes from the usage ledger (`seed`) when the backend does not hold it.
    Quota {
        limit: u64,
        expires_at_us: u64,
        seed: QuotaSeed,
    },
    /// At most `max` requests in flight.
    Concurrency { max: u64 },
}

/// One limit to check: `base + per_output_token * output_tokens` units of it are needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Whose limit this is: `key`, `tenant` or `model`.
    pub scope: &'static str,
    /// The backend's key for this limit's state (scope, limit and period in the name).
    pub key: String,
    pub kind: CheckKind,
    pub label: Label,
    pub base: u64,
    pub per_out: u64,
}

impl Check {
    pub fn amount(&self, out: u64) -> u64 {
        self.base.saturating_add(self.per_out.saturating_mul(out))
    }
}

/// A request for admission: every check must pass with the same `out`, the number of output
/// tokens reserved, chosen as large as possible in `out_min..=out_max`.
#[derive(Debug, Clone)]
pub struct Demand {
    pub checks: Vec<Check>,
    pub out_min: u64,
    pub out_max: u64,
    /// Identifies this request's concurrency slot, so it can be released exactly once.
    pub lease: u64,
}

/// Where a limit stands after a decision, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub limit: u64,
    pub remaining: u64,
    /// Microseconds until the limit is whole again (rates) or its period ends (quotas).
    pub reset_us: u64,
}

/// A backend's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Everything was reserved, with `out` output tokens.
    Admitted { out: u64, reports: Vec<Report> },
    /// Check `index` refused; nothing was reserved. `retry_after_us` is `None` when waiting
    /// cannot help within the limit's period (more than the burst, or a spent quota).
    Denied {
        index: usize,
        retry_after_us: Option<u64>,
        reports: Vec<Report>,
    },
    /// These quota checks have no state in the backend yet: seed them from the ledger, then
    /// ask again.
    Unseeded(Vec<usize>),
}

/// A correction after the call: `delta` units more (or fewer) than reserved.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub key: String,
    pub kind: CheckKind,
    pub delta: i64,
}

/// What settles a reservation: corrections, and the concurrency slots to release.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    pub adjustments: Vec<Adjustment>,
    pub releases: Vec<String>,
    pub lease: u64,
}
