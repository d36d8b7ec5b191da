//! The usage ledger and risk factors in PostgreSQL (the SQL is shared: `usage_sql`).

use super::{pg, PgStore};
use crate::records::*;
use crate::usage_sql::{totals, usage_rows_query, usage_total_query, UPSERT};
use crate::StoreError;

impl PgStore {
    /// Adds usage rows to the ledger in one transaction.
    pub(crate) async fn add_usage(&self, rows: Vec<UsageRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let statement = tx.prepare(UPSERT).await.map_err(pg)?;
        for r in &rows {
            tx.execute(
                &statement,
                &[
                    &r.day,
                    &r.tenant,
                    &r.key_id,
                    &r.model,
                    &r.requests,
                    &r.input_tokens,
                    &r.output_tokens,
                    &r.cost_nanos,
                ],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// The sum of the rows a filter selects.
    pub(crate) async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageRow, StoreError> {
        // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
        let (sql, values) = usage_total_query(filter, "::BIGINT");
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as _).collect();
        let row = self
            .client()
            .await?
            .query_one(&sql, &params)
            .await
            .map_err(pg)?;
        Ok(totals([row.get(0), row.get(1), row.get(2), row.get(3)]))
    }

    /// The rows a filter selects, oldest day first.
    pub(crate) async fn usage_rows(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let (sql, values) = usage_rows_query(filter);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v as _).collect();
        let rows = self
            .client()
            .await?
            .query(&sql, &params)
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| UsageRow {
                day: r.get(0),
                tenant: r.get(1),
                key_id: r.get(2),
                model: r.get(3),
                requests: r.get(4),
                input_tokens: r.get(5),
                output_tokens: r.get(6),
                cost_nanos: r.get(7),
            })
            .collect())
    }

    /// Sets (or replaces) a principal's risk factor.
    pub(crate) async fn set_risk(&self, record: RiskRecord) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO risk_factors (subject, factor, expires_at_us, reason, set_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject) DO UPDATE SET factor = excluded.factor,
                 expires_at_us = excluded.expires_at_us, reason = excluded.reason,
                 set_at = excluded.set_at";
        self.client()
            .await?
            .execute(
                SQL,
                &[
                    &record.subject,
                    &record.factor,
                    &record.expires_at_us,
                    &record.reason,
                    &record.set_at,
                ],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Removes a principal's risk factor; false if it had none.
    pub(crate) async fn clear_risk(&self, subject: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM risk_factors WHERE subject = $1";
        let n = self
            .client()
            .await?
            .execute(SQL, &[&subject])
            .await
            .map_err(pg)?;
        Ok(n > 0)
    }

    /// Risk factors that have not expired at `now_us`.
    pub(crate) async fn risk_factors(&self, now_us: i64) -> Result<Vec<RiskRecord>, StoreError> {
        const SQL: &str = "SELECT subject, factor, expires_at_us, reason, set_at FROM risk_factors
             WHERE expires_at_us > $1 ORDER BY subject";
        let rows = self
            .client()
            .await?
            .query(SQL, &[&now_us])
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| RiskRecord {
                subject: r.get(0),
                factor: r.get(1),
                expires_at_us: r.get(2),
                reason: r.get(3),
                set_at: r.get(4),
            })
            .collect())
    }
}
