//! The audit log: who did what, when, from where. Append-only.

use super::SqliteStore;
use crate::records::*;
use crate::{now, StoreError};

impl SqliteStore {
    pub(crate) async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let values = (
            now(),
            actor.to_owned(),
            action.to_owned(),
            target.to_owned(),
            source.to_owned(),
            detail.to_owned(),
        );
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO audit_events (at, actor, action, target, source, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                values,
            )?;
            Ok(())
        })
        .await
    }

    /// The most recent events, newest first.
    pub(crate) async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.with_connection(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, at, actor, action, target, source, detail FROM audit_events
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(AuditEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    source: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
