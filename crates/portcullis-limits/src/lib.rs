//! Usage control: what a request may cost, decided before it is forwarded and settled after.
//!
//! The request path asks [`Limiter::admit`] with the principal, the model and an
//! [`Estimate`] (prompt tokens counted with the model's real tokenizer, output tokens
//! reserved from `max_tokens`). Every applicable limit (rates per minute for requests, tokens
//! and cost; concurrency; daily and monthly quotas; spend caps) is checked and reserved in
//! one atomic decision, in memory or in one Redis script. The returned [`Reservation`] is
//! settled with the actual usage once the response is known: the difference is refunded or
//! charged, concurrency slots are released, and the usage is queued for the durable ledger.
//! A reservation that is dropped without being settled refunds everything but the request
//! itself, so no error path can leak a reservation.
#![forbid(unsafe_code)]

pub mod backend;
pub mod check;
pub mod gcra;
pub mod ledger;
pub mod policy;
pub mod quota;
pub mod risk;

mod limiter;

pub use check::Label;
pub use ledger::{Ledger, PendingUsage, Totals, UsageKey};
pub use limiter::{Denial, Limiter, PlanBook, RateHeaders, Refusal, Reservation, Subject, Usage};
pub use policy::{Estimate, Price, NANOS_PER_UNIT};
pub use quota::{Calendar, Measure, Period, QuotaScope, QuotaSeed};
pub use risk::{RiskFactor, RiskSubject, RiskTable};

/// Microseconds since 1970, the limiter's clock.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
