//! Usage on its way to the durable ledger (the store), and the ledger's interface.
//!
//! Settled usage is added to an in-process table keyed by day, tenant, key and model; the
//! gateway drains it into the store every `flush_interval` and at shutdown, as one upsert per
//! row. Quota counters that a backend does not hold are seeded from the ledger's totals, so
//! quotas survive a restart (memory backend) and a Redis that lost its data.

use crate::quota::QuotaSeed;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Where settled usage lands, and what it says so far.
pub trait Ledger: Send + Sync {
    /// The total the ledger holds for a quota's scope, period and measure.
    fn total<'a>(
        &'a self,
        seed: &'a QuotaSeed,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

/// One row of the ledger: a day's usage by one key of one tenant on one model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub day: String,
    pub tenant: String,
    pub key_id: String,
    pub model: String,
}

/// Amounts, added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Nano-units of the configured currency.
    pub cost_nanos: u64,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_nanos += other.cost_nanos;
    }
}

/// Settled usage not yet written to the store.
#[derive(Debug, Default)]
pub struct PendingUsage {
    rows: Mutex<HashMap<UsageKey, Totals>>,
}

impl PendingUsage {
    pub fn add(&self, key: UsageKey, totals: Totals) {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .add(&totals);
    }

    /// Everything pending, leaving nothing behind.
    pub fn take(&self) -> Vec<(UsageKey, Totals)> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }

    /// Puts rows back after a failed write, merged with what arrived meanwhile.
    pub fn restore(&self, rows: Vec<(UsageKey, Totals)>) {
        let mut pending = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        for (key, totals) in rows {
            pending.entry(key).or_default().add(&totals);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}
