//! Request records in SQLite (the SQL is shared: `requests_sql`).

use super::SqliteStore;
use crate::records::*;
use crate::requests_sql::{select, INSERT, LAST_SEQ, PRUNE};
use crate::usage_sql::sqlite;
use crate::StoreError;

impl SqliteStore {
    pub(crate) async fn add_requests(&self, rows: Vec<StoredRequest>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut statement = tx.prepare_cached(&sqlite(INSERT))?;
                for r in &rows {
                    statement.execute(rusqlite::params![
                        r.id, r.at_us, r.tenant, r.key_id, r.model, r.decision, r.code, r.record
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn requests(&self, query: &RequestQuery) -> Result<RequestPage, StoreError> {
        let (sql, texts, numbers) = select(query);
        self.with_connection(move |c| {
            let last_seq: i64 = c.query_row(LAST_SEQ, [], |r| r.get(0))?;
            let mut values: Vec<rusqlite::types::Value> = texts
                .into_iter()
                .map(rusqlite::types::Value::from)
                .collect();
            values.extend(numbers.into_iter().map(rusqlite::types::Value::from));
            let mut statement = c.prepare(&sqlite(&sql))?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(RequestPage {
                rows: rows.collect::<Result<_, _>>()?,
                last_seq,
            })
        })
        .await
    }

    pub(crate) async fn prune_requests(&self, before_us: i64) -> Result<u64, StoreError> {
        self.with_connection(move |c| Ok(c.execute(&sqlite(PRUNE), [before_us])? as u64))
            .await
    }
}
