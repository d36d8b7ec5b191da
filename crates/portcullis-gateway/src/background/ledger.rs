//! The store as the limiter's usage ledger, and the background work that keeps it current:
//! flushing settled usage, and loading risk factors (and the threat ladder's holds) set on
//! any replica.

use crate::state::GatewayState;
use portcullis_identity::{RiskRecord, Store, UsageFilter, UsageRow};
use portcullis_limits::{
    Ledger, Limiter, Measure, Period, QuotaScope, QuotaSeed, RiskFactor, RiskSubject,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Answers quota seeds from the store's usage totals.
pub struct StoreLedger<'a> {
    store: &'a Store,
}

impl<'a> StoreLedger<'a> {
    pub fn new(store: &'a Store) -> Self {
        StoreLedger { store }
    }
}

impl Ledger for StoreLedger<'_> {
    fn total<'b>(
        &'b self,
        seed: &'b QuotaSeed,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'b>> {
        Box::pin(async move {
            let mut filter = UsageFilter::default();
            match &seed.scope {
                QuotaScope::Tenant(t) => filter.tenant = Some(t.clone()),
                QuotaScope::Key(k) => filter.key_id = Some(k.clone()),
            }
            match &seed.period {
                Period::Day(day) => {
                    filter.from = Some(day.clone());
                    filter.to = Some(day.clone());
                }
                Period::Month(month) => {
                    filter.from = Some(format!("{month}-01"));
                    filter.to = Some(format!("{month}-31"));
                }
                Period::Total => {}
            }
            let totals = self
                .store
                .usage_total(&filter)
                .await
                .map_err(|e| e.to_string())?;
            Ok(match seed.measure {
                Measure::Tokens => (totals.input_tokens + totals.output_tokens).max(0) as u64,
                Measure::Cost => totals.cost_nanos.max(0) as u64,
            })
        })
    }
}

/// Writes pending usage to the store; on failure it stays pending for the next attempt.
pub async fn flush(limiter: &Limiter, store: &Store) -> bool {
    let pending = limiter.pending().take();
    if pending.is_empty() {
        return true;
    }
    let rows = pending
        .iter()
        .map(|(k, t)| UsageRow {
            day: k.day.clone(),
            tenant: k.tenant.clone(),
            key_id: k.key_id.clone(),
            model: k.model.clone(),
            requests: t.requests as i64,
            input_tokens: t.input_tokens as i64,
            output_tokens: t.output_tokens as i64,
            cost_nanos: t.cost_nanos as i64,
        })
        .collect();
    match store.add_usage(rows).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot write usage to the store; keeping it for the next attempt");
            limiter.pending().restore(pending);
            false
        }
    }
}

/// `tenant:NAME` / `key:ID`, the store's name for a risk subject.
pub fn subject_name(subject: &RiskSubject) -> String {
    match subject {
        RiskSubject::Tenant(t) => format!("tenant:{t}"),
        RiskSubject::Key(k) => format!("key:{k}"),
    }
}

pub fn parse_subject(name: &str) -> Option<RiskSubject> {
    match name.split_once(':')? {
        ("tenant", t) if !t.is_empty() => Some(RiskSubject::Tenant(t.to_owned())),
        ("key", k) if !k.is_empty() => Some(RiskSubject::Key(k.to_owned())),
        _ => None,
    }
}

pub fn risk_from_record(r: RiskRecord) -> Option<RiskFactor> {
    Some(RiskFactor {
        subject: parse_subject(&r.subject)?,
        factor: r.factor,
        expires_at_us: r.expires_at_us.max(0) as u64,
        reason: r.reason,
    })
}

/// Loads the risk factors in force from the store into the limiter, and the threat
/// ladder's holds (see [`super::holds`]).
pub async fn refresh_risk(state: &GatewayState) {
    match state
        .store
        .risk_factors(portcullis_limits::now_us() as i64)
        .await
    {
        Ok(records) => {
            super::holds::apply(state, &records);
            state
                .limiter
                .risk()
                .replace(records.into_iter().filter_map(risk_from_record).collect())
        }
        Err(e) => tracing::warn!(error = %e, "cannot load risk factors; keeping the last ones"),
    }
}

/// Flushes usage every `interval` and reloads risk factors every `risk_interval`, until
/// aborted; the caller flushes once more at shutdown.
pub async fn run(state: Arc<GatewayState>, interval: Duration, risk_interval: Duration) {
    let mut last_risk = std::time::Instant::now();
    loop {
        tokio::time::sleep(interval.min(risk_interval)).await;
        flush(&state.limiter, &state.store).await;
        if last_risk.elapsed() >= risk_interval {
            refresh_risk(&state).await;
            last_risk = std::time::Instant::now();
        }
    }
}
