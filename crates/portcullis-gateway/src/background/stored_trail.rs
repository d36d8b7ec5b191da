//! The audit trail's copy in the store (`telemetry.audit.store`, on by default with
//! PostgreSQL): request records written in batches beside the request path, where every
//! replica's can be read together, and pruned after `telemetry.audit.retention_days`.
//!
//! Records come from a telemetry tap (a bounded queue: when the store is slower than the
//! traffic, records are dropped and counted, never waited for). The writer wakes every
//! [`WRITE_EVERY`], not per record. A batch the store refuses is kept for the next attempt, up
//! to the queue's size.

use crate::state::GatewayState;
use portcullis_identity::store::StoredRequest;
use portcullis_telemetry::RequestRecord;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// How often queued records are written (and so how late one may be read back).
pub const WRITE_EVERY: Duration = Duration::from_millis(200);
/// Most records per statement.
const BATCH: usize = 1000;
/// How often expired records are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The writer's state: the tap, and what the store has not yet accepted.
pub struct StoredTrail {
    inner: Mutex<Pending>,
    retention: Duration,
    capacity: usize,
}

struct Pending {
    tap: mpsc::Receiver<Arc<RequestRecord>>,
    unwritten: Vec<StoredRequest>,
}

impl StoredTrail {
    pub fn new(
        tap: mpsc::Receiver<Arc<RequestRecord>>,
        capacity: usize,
        retention: Duration,
    ) -> StoredTrail {
        StoredTrail {
            inner: Mutex::new(Pending {
                tap,
                unwritten: Vec::new(),
            }),
            retention,
            capacity,
        }
    }
}

/// The columns a record is filtered by, and the record itself.
pub fn row(record: &RequestRecord) -> Option<StoredRequest> {
    let at_us = record
        .start
        .parse::<jiff::Timestamp>()
        .map_or(0, |t| t.as_microsecond());
    Some(StoredRequest {
        id: record.id.clone(),
        at_us,
        tenant: record.tenant().to_owned(),
        key_id: record.key_id().to_owned(),
        model: record.model.clone().unwrap_or_default(),
        decision: record.decision.action.clone(),
        code: record.decision.code.clone().unwrap_or_default(),
        record: serde_json::to_string(record).ok()?,
    })
}

/// Writes what is queued. Returns false when the store refused it (it is kept).
pub async fn flush(state: &GatewayState) -> bool {
    let Some(trail) = &state.stored_trail else {
        return true;
    };
    let mut pending = trail.inner.lock().await;
    let Pending { tap, unwritten } = &mut *pending;
    while let Ok(record) = tap.try_recv() {
        if let Some(row) = row(&record) {
            unwritten.push(row);
        }
    }
    while !unwritten.is_empty() {
        let batch: Vec<StoredRequest> = unwritten.iter().take(BATCH).cloned().collect();
        let n = batch.len();
        if let Err(e) = state.store.add_requests(batch).await {
            tracing::error!(error = %e, queued = unwritten.len(), "cannot write request records to the store; keeping them for the next attempt");
            // Beyond the queue's size the oldest go: the trail must not grow without bound
            // while the store is away.
            let excess = unwritten.len().saturating_sub(trail.capacity);
            if excess > 0 {
                unwritten.drain(..excess);
                state.telemetry.count_dropped(excess as u64);
            }
            return false;
        }
        unwritten.drain(..n);
    }
    true
}

/// Writes every [`WRITE_EVERY`] and prunes every hour, until aborted (shutdown flushes once
/// more first).
pub async fn run(state: Arc<GatewayState>) {
    let Some(trail) = &state.stored_trail else {
        return;
    };
    let retention = trail.retention;
    let mut last_prune: Option<Instant> = None;
    loop {
        flush(&state).await;
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            let before = portcullis_limits::now_us() as i64 - retention.as_micros() as i64;
            match state.store.prune_requests(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired request records removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove expired request records"),
            }
        }
        tokio::time::sleep(WRITE_EVERY).await;
    }
}
