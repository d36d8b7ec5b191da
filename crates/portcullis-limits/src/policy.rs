//! From a plan and a request's estimate to the list of checks a backend decides.

use crate::check::{Check, CheckKind, Label};
use crate::gcra::Rate;
use crate::quota::{Measure, Period, QuotaScope, QuotaSeed, Today};
use portcullis_config::LimitSpec;

const MINUTE_US: u64 = 60_000_000;
/// Nano-units in one unit of currency.
pub const NANOS_PER_UNIT: f64 = 1e9;

/// Prices of one model, in nano-units per token (a price per million tokens times 1000).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pub input_nanos: u64,
    pub output_nanos: u64,
}

impl Price {
    /// From prices per million tokens, as configured.
    pub fn per_million(input: f64, output: f64) -> Price {
        Price {
            input_nanos: (input * 1000.0).round() as u64,
            output_nanos: (output * 1000.0).round() as u64,
        }
    }

    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        input_tokens
            .saturating_mul(self.input_nanos)
            .saturating_add(output_tokens.saturating_mul(self.output_nanos))
    }
}

/// What a request is expected to use: its prompt, and a range of output to reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub input_tokens: u64,
    /// The least output the caller accepts (equal to `out_max` unless clamping is allowed).
    pub out_min: u64,
    pub out_max: u64,
}

/// How many units of `label` a request of `input` and `output` tokens uses.
pub fn amount(label: Label, input: u64, output: u64, price: Price) -> u64 {
    match label {
        Label::Requests | Label::Concurrency => 1,
        Label::Tokens | Label::DailyTokens | Label::MonthlyTokens => input + output,
        Label::InputTokens => input,
        Label::OutputTokens => output,
        Label::Cost | Label::DailyCost | Label::MonthlyCost | Label::SpendCap => {
            price.cost(input, output)
        }
    }
}

/// The fixed part and the per-output-token part of `label`'s amount.
fn shape(label: Label, input: u64, price: Price) -> (u64, u64) {
    let base = amount(label, input, 0, price);
    let per_out = amount(label, input, 1, price) - base;
    (base, per_out)
}

/// Builds checks for one scope.
pub struct ScopeChecks<'a> {
    /// `key`, `tenant` or `model`, for error messages.
    pub kind: &'static str,
    /// The scope's part of every key, e.g. `t:acme` or `k:0123abcd`.
    pub scope: &'a str,
    /// Whose quotas these are; `None` for scopes without quotas (per-model limits).
    pub quota_scope: Option<QuotaScope>,
    pub prefix: &'a str,
    pub estimate: Estimate,
    pub price: Price,
    /// Multiplies rate limits and concurrency (risk factor, outage share); 1 is normal.
    pub scale: f64,
    pub today: &'a Today,
}

impl ScopeChecks<'_> {
    pub fn push(&self, spec: &LimitSpec, into: &mut Vec<Check>) {
        let burst_fraction = spec.burst_fraction.unwrap_or(1.0);
        let rates = [
            (Label::Requests, spec.requests_per_minute, "req"),
            (Label::Tokens, spec.tokens_per_minute, "tok"),
            (Label::InputTokens, spec.input_tokens_per_minute, "in"),
            (Label::OutputTokens, spec.output_tokens_per_minute, "out"),
            (
                Label::Cost,
                spec.cost_per_minute.map(units_to_nanos),
                "cost",
            ),
        ];
        for (label, limit, name) in rates {
            let Some(limit) = limit else { continue };
            let limit = scaled(limit, self.scale);
            let burst = ((limit as f64 * burst_fraction).ceil() as u64).clamp(1, limit.max(1));
            self.push_check(
                into,
                format!("{}r:{}:{name}", self.prefix, self.scope),
                CheckKind::Rate(Rate {
                    limit: limit.max(1),
                    period_us: MINUTE_US,
                    burst,
                }),
                label,
            );
        }
        if let Some(max) = spec.concurrent_requests {
            self.push_check(
                into,
                format!("{}c:{}", self.prefix, self.scope),
                CheckKind::Concurrency {
                    max: scaled(max, self.scale),
                },
                Label::Concurrency,
            );
        }
        let Some(quota_scope) = &self.quota_scope else {
            return;
        };
        let t = self.today;
        let quotas = [
            (
                Label::DailyTokens,
                spec.tokens_per_day,
                Period::Day(t.day.clone()),
                t.day_ends_us,
                Measure::Tokens,
            ),
            (
                Label::MonthlyTokens,
                spec.tokens_per_month,
                Period::Month(t.month.clone()),
                t.month_ends_us,
                Measure::Tokens,
            ),
            (
                Label::DailyCost,
                spec.cost_per_day.map(units_to_nanos),
                Period::Day(t.day.clone()),
                t.day_ends_us,
                Measure::Cost,
            ),
            (
                Label::MonthlyCost,
                spec.cost_per_month.map(units_to_nanos),
                Period::Month(t.month.clone()),
                t.month_ends_us,
                Measure::Cost,
            ),
            (
                Label::SpendCap,
                spec.spend_cap.map(units_to_nanos),
                Period::Total,
                u64::MAX / 2,
                Measure::Cost,
            ),
        ];
        for (label, limit, period, expires_at_us, measure) in quotas {
            let Some(limit) = limit else { continue };
            let period_name = match &period {
                Period::Day(d) => format!("d{d}"),
                Period::Month(m) => format!("m{m}"),
                Period::Total => "all".to_owned(),
            };
            let measure_name = match measure {
                Measure::Tokens => "tok",
                Measure::Cost => "cost",
            };
            self.push_check(
                into,
                format!(
                    "{}q:{}:{period_name}:{measure_name}",
                    self.prefix, self.scope
                ),
                CheckKind::Quota {
                    limit,
                    expires_at_us,
                    seed: QuotaSeed {
                        scope: quota_scope.clone(),
                        period,
                        measure,
                    },
                },
                label,
            );
        }
    }

    fn push_check(&self, into: &mut Vec<Check>, key: String, kind: CheckKind, label: Label) {
        let (base, per_out) = shape(label, self.estimate.input_tokens, self.price);
        into.push(Check {
            scope: self.kind,
            key,
            kind,
            label,
            base,
            per_out,
        });
    }
}

fn units_to_nanos(units: f64) -> u64 {
    (units * NANOS_PER_UNIT).round() as u64
}

/// A limit scaled down by a factor, never below 1 (0 means suspended and is handled before).
fn scaled(limit: u64, scale: f64) -> u64 {
    if scale >= 1.0 {
        limit
    } else {
        ((limit as f64 * scale).floor() as u64).max(1)
    }
}

/// Escapes `:` and `%` so that names cannot collide in keys built with `:` separators.
pub fn key_part(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains([':', '%']) {
        name.replace('%', "%25").replace(':', "%3A").into()
    } else {
        name.into()
    }
}
