//! Request records (the audit trail's per-request lines) kept in the store, where every
//! replica's can be read together: the columns they are filtered by, and the whole record as
//! JSON text. Append-only; pruned by age (`telemetry.audit.retention_days`).
//!
//! `seq` orders the rows as they were committed on one replica; the trail is read newest first,
//! or after a `seq` (`requests tail --follow`).

use crate::records::RequestQuery;

pub(crate) const MIGRATION: &str = "CREATE TABLE request_records (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         id TEXT NOT NULL,
         at_us INTEGER NOT NULL,
         tenant TEXT NOT NULL,
         key_id TEXT NOT NULL,
         model TEXT NOT NULL,
         decision TEXT NOT NULL,
         code TEXT NOT NULL,
         record TEXT NOT NULL
     );
     CREATE INDEX request_records_at ON request_records (at_us);
     CREATE INDEX request_records_tenant ON request_records (tenant, seq);";

pub(crate) const MIGRATION_PG: &str = "CREATE TABLE request_records (
         seq BIGSERIAL PRIMARY KEY,
         id TEXT NOT NULL,
         at_us BIGINT NOT NULL,
         tenant TEXT NOT NULL,
         key_id TEXT NOT NULL,
         model TEXT NOT NULL,
         decision TEXT NOT NULL,
         code TEXT NOT NULL,
         record TEXT NOT NULL
     );
     CREATE INDEX request_records_at ON request_records (at_us);
     CREATE INDEX request_records_tenant ON request_records (tenant, seq);";

pub(crate) const INSERT: &str =
    "INSERT INTO request_records (id, at_us, tenant, key_id, model, decision, code, record)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(crate) const PRUNE: &str = "DELETE FROM request_records WHERE at_us < $1";

pub(crate) const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM request_records";

/// The query for `q`, with `$n` placeholders, and its values in order: strings then numbers.
/// Every filter is a bound value, never spliced text.
pub(crate) fn select(q: &RequestQuery) -> (String, Vec<String>, Vec<i64>) {
    let mut texts = Vec::new();
    let mut numbers = Vec::new();
    let mut clauses = Vec::new();
    let mut text = |column: &str, value: &Option<String>, clauses: &mut Vec<String>| {
        if let Some(v) = value {
            texts.push(v.clone());
            clauses.push(format!("{column} = ${}", texts.len()));
        }
    };
    text("tenant", &q.tenant, &mut clauses);
    text("key_id", &q.key_id, &mut clauses);
    text("model", &q.model, &mut clauses);
    if let Some(d) = &q.decision {
        texts.push(d.clone());
        let n = texts.len();
        clauses.push(format!("(decision = ${n} OR code = ${n})"));
    }
    let first_number = texts.len();
    let mut number = |sql: &str, value: Option<i64>, clauses: &mut Vec<String>| {
        if let Some(v) = value {
            numbers.push(v);
            clauses.push(format!("{sql} ${}", first_number + numbers.len()));
        }
    };
    number("at_us >=", q.since_us, &mut clauses);
    number("at_us <=", q.until_us, &mut clauses);
    number("seq >", q.after_seq, &mut clauses);
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    // After a cursor: oldest first (what came next); otherwise the newest.
    let order = if q.after_seq.is_some() { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT seq, record FROM request_records{filter} ORDER BY seq {order} LIMIT {}",
        q.limit.clamp(1, 1000)
    );
    (sql, texts, numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_bound_values_in_order() {
        let q = RequestQuery {
            tenant: Some("acme'; DROP TABLE x; --".into()),
            decision: Some("refused".into()),
            since_us: Some(5),
            after_seq: Some(9),
            limit: 5000,
            ..Default::default()
        };
        let (sql, texts, numbers) = select(&q);
        assert_eq!(
            sql,
            "SELECT seq, record FROM request_records WHERE tenant = $1 AND (decision = $2 OR code = $2) \
             AND at_us >= $3 AND seq > $4 ORDER BY seq ASC LIMIT 1000"
        );
        assert_eq!(texts.len(), 2);
        assert_eq!(numbers, vec![5, 9]);
    }
}
