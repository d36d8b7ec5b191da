//! The usage ledger and risk factors in SQLite (the SQL is shared: `usage_sql`).

use super::SqliteStore;
use crate::records::*;
use crate::usage_sql::{sqlite, totals, usage_rows_query, usage_total_query, UPSERT};
use crate::StoreError;

impl SqliteStore {
    /// Adds usage rows to the ledger in one transaction.
    pub(crate) async fn add_usage(&self, rows: Vec<UsageRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with_connection(move |c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut statement = tx.prepare_cached(&sqlite(UPSERT))?;
                for r in &rows {
                    statement.execute(rusqlite::params![
                        r.day,
                        r.tenant,
                        r.key_id,
                        r.model,
                        r.requests,
                        r.input_tokens,
                        r.output_tokens,
                        r.cost_nanos
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The sum of the rows a filter selects.
    pub(crate) async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageRow, StoreError> {
        let (sql, values) = usage_total_query(filter, "");
        self.with_connection(move |c| {
            let row = c.query_row(
                &sqlite(&sql),
                rusqlite::params_from_iter(values.iter()),
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
            )?;
            Ok(totals(row))
        })
        .await
    }

    /// The rows a filter selects, oldest day first.
    pub(crate) async fn usage_rows(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let (sql, values) = usage_rows_query(filter);
        self.with_connection(move |c| {
            let mut statement = c.prepare(&sqlite(&sql))?;
            let rows = statement.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    tenant: r.get(1)?,
                    key_id: r.get(2)?,
                    model: r.get(3)?,
                    requests: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                    cost_nanos: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Sets (or replaces) a principal's risk factor.
    pub(crate) async fn set_risk(&self, record: RiskRecord) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO risk_factors (subject, factor, expires_at_us, reason, set_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject) DO UPDATE SET factor = excluded.factor,
                 expires_at_us = excluded.expires_at_us, reason = excluded.reason,
                 set_at = excluded.set_at";
        self.with_connection(move |c| {
            c.execute(
                &sqlite(SQL),
                rusqlite::params![
                    record.subject,
                    record.factor,
                    record.expires_at_us,
                    record.reason,
                    record.set_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes a principal's risk factor; false if it had none.
    pub(crate) async fn clear_risk(&self, subject: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM risk_factors WHERE subject = $1";
        let subject = subject.to_owned();
        self.with_connection(move |c| Ok(c.execute(&sqlite(SQL), [subject])? > 0))
            .await
    }

    /// Risk factors that have not expired at `now_us`.
    pub(crate) async fn risk_factors(&self, now_us: i64) -> Result<Vec<RiskRecord>, StoreError> {
        const SQL: &str = "SELECT subject, factor, expires_at_us, reason, set_at FROM risk_factors
             WHERE expires_at_us > $1 ORDER BY subject";
        self.with_connection(move |c| {
            let mut statement = c.prepare(&sqlite(SQL))?;
            let rows = statement.query_map([now_us], |r| {
                Ok(RiskRecord {
                    subject: r.get(0)?,
                    factor: r.get(1)?,
                    expires_at_us: r.get(2)?,
                    reason: r.get(3)?,
                    set_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
