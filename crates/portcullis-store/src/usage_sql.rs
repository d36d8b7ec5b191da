//! The usage ledger's and risk factors' SQL, shared by both backends: what each key used per
//! day and model, and which principals have their limits scaled down.
//!
//! Usage rows are daily roll-ups keyed by (day, tenant, key, model), added to with one upsert
//! per row, so replicas writing the same row concurrently add up instead of overwriting each
//! other. Months and totals are sums over days; the day is the local day in the limits'
//! configured time zone.

use crate::records::{UsageFilter, UsageRow};

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
pub(crate) const UPSERT: &str = "INSERT INTO usage_daily
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
pub(crate) fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The sums a filter selects. `cast` follows each sum: PostgreSQL sums BIGINT into NUMERIC,
/// so it casts back with `::BIGINT`; SQLite needs nothing.
pub(crate) fn usage_total_query(filter: &UsageFilter, cast: &str) -> (String, Vec<String>) {
    let (clause, values) = conditions(filter);
    let sum = |column: &str| format!("COALESCE(SUM({column}), 0){cast}");
    let sql = format!(
        "SELECT {}, {}, {}, {} FROM usage_daily {clause}",
        sum("requests"),
        sum("input_tokens"),
        sum("output_tokens"),
        sum("cost_nanos")
    );
    (sql, values)
}

/// The totals row of [`usage_total_query`]'s four sums.
pub(crate) fn totals(v: [i64; 4]) -> UsageRow {
    UsageRow {
        requests: v[0],
        input_tokens: v[1],
        output_tokens: v[2],
        cost_nanos: v[3],
        ..UsageRow::default()
    }
}

/// The rows a filter selects, oldest day first (at most 10,000).
pub(crate) fn usage_rows_query(filter: &UsageFilter) -> (String, Vec<String>) {
    let (clause, values) = conditions(filter);
    let sql = format!(
        "SELECT day, tenant, key_id, model, requests, input_tokens, output_tokens, cost_nanos
         FROM usage_daily {clause} ORDER BY day, tenant, key_id, model LIMIT 10000"
    );
    (sql, values)
}
