//! The usage ledger and the risk factors: what each key used per day and model, and which
//! principals have their limits scaled down.
//!
//! Usage rows are daily roll-ups keyed by (day, tenant, key, model), added to with one upsert
//! per row, so replicas writing the same row concurrently add up instead of overwriting each
//! other. Months and totals are sums over days; the day is the local day in the limits'
//! configured time zone.

use super::postgres::pg;
use super::{Store, StoreError};
use serde::Serialize;

pub(crate) const MIGRATION: &str = "CREATE TABLE usage_daily (
         day TEXT NOT NULL,
         tenant TEXT NOT NULL,
         key_id TEXT NOT NULL,
         model TEXT NOT NULL,
         requests INTEGER NOT NULL,
         input_tokens INTEGER NOT NULL,
         output_tokens INTEGER NOT NULL,
         cost_nanos INTEGER NOT NULL,
         PRIMARY KEY (day, tenant, key_id, model)
     );
     CREATE INDEX usage_daily_tenant ON usage_daily (tenant, day);
     CREATE INDEX usage_daily_key ON usage_daily (key_id, day);
     CREATE TABLE risk_factors (
         subject TEXT PRIMARY KEY,
         factor REAL NOT NULL,
         expires_at_us INTEGER NOT NULL,
         reason TEXT NOT NULL,
         set_at INTEGER NOT NULL
     );";

pub(crate) const MIGRATION_PG: &str = "CREATE TABLE usage_daily (
         day TEXT NOT NULL,
         tenant TEXT NOT NULL,
         key_id TEXT NOT NULL,
         model TEXT NOT NULL,
         requests BIGINT NOT NULL,
         input_tokens BIGINT NOT NULL,
         output_tokens BIGINT NOT NULL,
         cost_nanos BIGINT NOT NULL,
         PRIMARY KEY (day, tenant, key_id, model)
     );
     CREATE INDEX usage_daily_tenant ON usage_daily (tenant, day);
     CREATE INDEX usage_daily_key ON usage_daily (key_id, day);
     CREATE TABLE risk_factors (
         subject TEXT PRIMARY KEY,
         factor DOUBLE PRECISION NOT NULL,
         expires_at_us BIGINT NOT NULL,
         reason TEXT NOT NULL,
         set_at BIGINT NOT NULL
     )";

/// One day's usage of one key on one model, or a sum of such rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub tenant: String,
    pub key_id: String,
    pub model: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
}

/// Which usage rows to read: days from `from` to `to` inclusive (`YYYY-MM-DD`; a month is
/// `YYYY-MM-01` to `YYYY-MM-31`), optionally one tenant, key or model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A stored risk factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskRecord {
    /// `tenant:NAME` or `key:ID`.
    pub subject: String,
    pub factor: f64,
    pub expires_at_us: i64,
    pub reason: String,
    pub set_at: i64,
}

const UPSERT: &str = "INSERT INTO usage_daily
     (day, tenant, key_id, model, requests, input_tokens, output_tokens, cost_nanos)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (day, tenant, key_id, model) DO UPDATE SET
         requests = usage_daily.requests + excluded.requests,
         input_tokens = usage_daily.input_tokens + excluded.input_tokens,
         output_tokens = usage_daily.output_tokens + excluded.output_tokens,
         cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos";

/// The WHERE clause of a filter (with `$n` placeholders) and its values.
fn conditions(filter: &UsageFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    for (column, op, value) in [
        ("tenant", "=", &filter.tenant),
        ("key_id", "=", &filter.key_id),
        ("model", "=", &filter.model),
        ("day", ">=", &filter.from),
        ("day", "<=", &filter.to),
    ] {
        if let Some(v) = value {
            values.push(v.clone());
            clauses.push(format!("{column} {op} ${}", values.len()));
        }
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, values)
}

/// `$n` placeholders are SQLite's `?n` too, so one query text serves both.
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Store {
    /// Adds usage rows to the ledger in one transaction.
    pub async fn add_usage(&self, rows: Vec<UsageRow>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(store) = &self.pg {
            let mut client = store.client().await?;
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
            return tx.commit().await.map_err(pg);
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
    pub async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageRow, StoreError> {
        let (clause, values) = conditions(filter);
        let sql = format!(
            "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(input_tokens), 0),
                    COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_nanos), 0)
             FROM usage_daily {clause}"
        );
        let totals = |v: [i64; 4]| UsageRow {
            requests: v[0],
            input_tokens: v[1],
            output_tokens: v[2],
            cost_nanos: v[3],
            ..UsageRow::default()
        };
        if let Some(store) = &self.pg {
            // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
            let sql = sql
                .replace(
                    "COALESCE(SUM(requests), 0)",
                    "COALESCE(SUM(requests), 0)::BIGINT",
                )
                .replace(
                    "COALESCE(SUM(input_tokens), 0)",
                    "COALESCE(SUM(input_tokens), 0)::BIGINT",
                )
                .replace(
                    "COALESCE(SUM(output_tokens), 0)",
                    "COALESCE(SUM(output_tokens), 0)::BIGINT",
                )
                .replace(
                    "COALESCE(SUM(cost_nanos), 0)",
                    "COALESCE(SUM(cost_nanos), 0)::BIGINT",
                );
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                values.iter().map(|v| v as _).collect();
            let row = store
                .client()
                .await?
                .query_one(&sql, &params)
                .await
                .map_err(pg)?;
            return Ok(totals([row.get(0), row.get(1), row.get(2), row.get(3)]));
        }
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
    pub async fn usage_rows(&self, filter: &UsageFilter) -> Result<Vec<UsageRow>, StoreError> {
        let (clause, values) = conditions(filter);
        let sql = format!(
            "SELECT day, tenant, key_id, model, requests, input_tokens, output_tokens, cost_nanos
             FROM usage_daily {clause} ORDER BY day, tenant, key_id, model LIMIT 10000"
        );
        if let Some(store) = &self.pg {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                values.iter().map(|v| v as _).collect();
            let rows = store
                .client()
                .await?
                .query(&sql, &params)
                .await
                .map_err(pg)?;
            return Ok(rows
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
                .collect());
        }
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
    pub async fn set_risk(&self, record: RiskRecord) -> Result<(), StoreError> {
        const SQL: &str =
            "INSERT INTO risk_factors (subject, factor, expires_at_us, reason, set_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject) DO UPDATE SET factor = excluded.factor,
                 expires_at_us = excluded.expires_at_us, reason = excluded.reason,
                 set_at = excluded.set_at";
        if let Some(store) = &self.pg {
            store
                .client()
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
            return Ok(());
        }
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
    pub async fn clear_risk(&self, subject: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM risk_factors WHERE subject = $1";
        if let Some(store) = &self.pg {
            let n = store
                .client()
                .await?
                .execute(SQL, &[&subject])
                .await
                .map_err(pg)?;
            return Ok(n > 0);
        }
        let subject = subject.to_owned();
        self.with_connection(move |c| Ok(c.execute(&sqlite(SQL), [subject])? > 0))
            .await
    }

    /// Risk factors that have not expired at `now_us`.
    pub async fn risk_factors(&self, now_us: i64) -> Result<Vec<RiskRecord>, StoreError> {
        const SQL: &str = "SELECT subject, factor, expires_at_us, reason, set_at FROM risk_factors
             WHERE expires_at_us > $1 ORDER BY subject";
        if let Some(store) = &self.pg {
            let rows = store
                .client()
                .await?
                .query(SQL, &[&now_us])
                .await
                .map_err(pg)?;
            return Ok(rows
                .iter()
                .map(|r| RiskRecord {
                    subject: r.get(0),
                    factor: r.get(1),
                    expires_at_us: r.get(2),
                    reason: r.get(3),
                    set_at: r.get(4),
                })
                .collect());
        }
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
