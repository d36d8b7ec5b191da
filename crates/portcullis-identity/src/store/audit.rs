//! The audit log: who did what, when, from where. Append-only.

use super::{now, Store, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: i64,
    /// `admin`, `key:<id>` or `gateway`.
    pub actor: String,
    /// e.g. `tenant.create`, `key.create`, `key.revoke`, `key.browser_use`.
    pub action: String,
    pub target: String,
    /// Where the action came from: a peer address or a listener.
    pub source: String,
    pub detail: String,
}

impl Store {
    pub async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        if let Some(pg) = &self.pg {
            return pg
                .record_audit([actor, action, target, source, detail])
                .await;
        }
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
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        if let Some(pg) = &self.pg {
            return pg.audit_events(limit).await;
        }
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
