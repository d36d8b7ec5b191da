//! Last-use times of keys: recorded in memory on every authentication, written to the store
//! in batches (never once per request).

use super::KeyCache;
use crate::store::{Store, StoreError};
use std::sync::atomic::Ordering;

impl KeyCache {
    /// Writes last-use times that moved since the previous flush, in one transaction.
    pub async fn flush_last_used(&self, store: &Store) -> Result<usize, StoreError> {
        let entries = self.entries.load_full();
        let mut uses = Vec::new();
        for (id, e) in entries.iter() {
            let used = e.last_used.load(Ordering::Relaxed);
            if used > e.last_flushed.load(Ordering::Relaxed) {
                uses.push((id.clone(), used, e.last_flushed.clone()));
            }
        }
        let count = uses.len();
        store
            .record_key_use(uses.iter().map(|(id, at, _)| (id.clone(), *at)).collect())
            .await?;
        for (_, at, flushed) in uses {
            flushed.fetch_max(at, Ordering::Relaxed);
        }
        Ok(count)
    }
}
