//! Alert rules evaluated every `telemetry.alert_interval`, beside the request path. The one
//! fact the records cannot tell, whether a presented invalid key is a revoked key, is asked
//! of the store here (a few lookups per interval, never per request).

use crate::state::GatewayState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most key ids looked up per evaluation.
const MOST_LOOKUPS: usize = 100;

pub(crate) fn spawn(
    state: &Arc<GatewayState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    // Runs with no rules too: a configuration reload may add some.
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let store = state.store.clone();
                    state.telemetry.evaluate_alerts(|candidates| revoked(store, candidates)).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// Those of the presented key ids that are revoked keys, with their attempts.
async fn revoked(
    store: portcullis_identity::Store,
    mut candidates: Vec<(String, u64)>,
) -> Vec<(String, u64)> {
    // The most tried first, so a flood of made-up ids cannot hide a revoked one.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut out = Vec::new();
    for (id, attempts) in candidates.into_iter().take(MOST_LOOKUPS) {
        match store.key(&id).await {
            Ok(Some(key)) if key.revoked_at.is_some() => out.push((id, attempts)),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot check presented keys for the revoked-key alert");
                break;
            }
        }
    }
    out
}
