//! `portcullis_quota_remaining`: what is left of the calendar quotas of the tenants that used
//! most in the last hour. Read from the store's settled usage (the same totals quota counters
//! are seeded from) when scraped, at most every [`REFRESH`] (a few queries per scrape, never
//! per request); the top is bounded so a deployment of thousands of tenants exports a few
//! dozen series.

use crate::background::ledger::{flush, StoreLedger};
use crate::state::GatewayState;
use portcullis_limits::{now_us, Ledger, Measure, Period, QuotaScope, QuotaSeed};
use portcullis_telemetry::metrics::QuotaLabels;
use portcullis_telemetry::Metrics;
use std::time::{Duration, Instant};

/// How long a reading serves scrapes before the store is asked again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Tenants whose quotas are exported.
pub const TOP_TENANTS: usize = 10;

pub(super) async fn refresh_if_due(state: &GatewayState, metrics: &Metrics) {
    {
        let mut last = metrics
            .gauges
            .quotas_read_at
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        *last = Some(Instant::now());
    }
    refresh(state, metrics).await;
}

/// Sets the gauges anew for the current top tenants.
async fn refresh(state: &GatewayState, metrics: &Metrics) {
    // This replica's settled usage first, so the answer includes it.
    flush(&state.limiter, &state.store).await;
    let today = state.limiter.calendar().today(now_us());
    let ledger = StoreLedger::new(&state.store);
    let mut values = Vec::new();
    for tenant in state.telemetry.top_tenants(TOP_TENANTS) {
        let plan = match state.store.tenant(&tenant).await {
            Ok(Some(t)) => t.plan,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read tenants for the quota gauges");
                return;
            }
        };
        let Some(spec) = state.settings().plans.tenant_limits(&plan, &tenant) else {
            continue;
        };
        // Each quota of the plan: its name, what it counts, over which period, and the limit
        // in the unit it is configured in (tokens, or currency units).
        let quotas = [
            (
                "tokens_per_day",
                Measure::Tokens,
                Period::Day(today.day.clone()),
                spec.tokens_per_day.map(|n| n as f64),
            ),
            (
                "tokens_per_month",
                Measure::Tokens,
                Period::Month(today.month.clone()),
                spec.tokens_per_month.map(|n| n as f64),
            ),
            (
                "cost_per_day",
                Measure::Cost,
                Period::Day(today.day.clone()),
                spec.cost_per_day,
            ),
            (
                "cost_per_month",
                Measure::Cost,
                Period::Month(today.month.clone()),
                spec.cost_per_month,
            ),
            ("spend_cap", Measure::Cost, Period::Total, spec.spend_cap),
        ];
        for (name, measure, period, limit) in quotas {
            let Some(limit) = limit else { continue };
            let seed = QuotaSeed {
                scope: QuotaScope::Tenant(tenant.clone()),
                period,
                measure,
            };
            let used = match ledger.total(&seed).await {
                Ok(used) => used,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read usage for the quota gauges");
                    return;
                }
            };
            let used = match measure {
                Measure::Tokens => used as f64,
                Measure::Cost => used as f64 / portcullis_limits::NANOS_PER_UNIT,
            };
            values.push((tenant.clone(), name, limit, (limit - used).max(0.0)));
        }
    }
    // Replaced whole: a tenant that left the top leaves no stale series.
    let g = &metrics.gauges;
    g.quota_remaining.clear();
    g.quota_limit.clear();
    for (tenant, quota, limit, remaining) in values {
        let labels = QuotaLabels { tenant, quota };
        g.quota_limit.get_or_create(&labels).set(limit);
        g.quota_remaining.get_or_create(&labels).set(remaining);
    }
}
