//! The key cache kept current: reloaded when the store's key revision moves (PostgreSQL
//! pushes changes; polling is the backstop), and keys' last-use times written in batches.

use crate::state::GatewayState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Reloads the key cache when the store's key revision moved: at once when PostgreSQL
/// notifies a change, and by polling every interval in any case (the only mechanism with
/// SQLite, and the backstop for a lost notification connection).
pub(crate) fn spawn_refresh_and_last_used_flush(
    state: &Arc<GatewayState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usage = tokio::time::interval(LAST_USED_FLUSH_INTERVAL);
        usage.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // PostgreSQL pushes changes (LISTEN/NOTIFY); polling stays as the backstop.
        let mut pushed = state.store.key_changes();
        loop {
            let notified = async {
                match pushed.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ticker.tick() => refresh(&state).await,
                Some(()) = notified => refresh(&state).await,
                _ = usage.tick() => flush_last_used(&state).await,
                _ = shutdown.changed() => {
                    flush_last_used(&state).await;
                    return;
                }
            }
        }
    });
}

async fn refresh(state: &GatewayState) {
    if let Err(e) = state.keys.refresh(&state.store).await {
        tracing::error!(error = %e, "cannot refresh the key cache");
    }
}

/// How often keys' last-use times are written to the store.
const LAST_USED_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

async fn flush_last_used(state: &GatewayState) {
    if let Err(e) = state.keys.flush_last_used(&state.store).await {
        tracing::error!(error = %e, "cannot record key usage");
    }
}
