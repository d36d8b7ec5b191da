//! Request records in PostgreSQL (the SQL is shared: `requests_sql`).

use super::{pg, PgStore};
use crate::records::*;
use crate::requests_sql::{select, LAST_SEQ, PRUNE};
use crate::StoreError;
use tokio_postgres::types::ToSql;

/// One statement for a whole batch: each column as an array.
const INSERT_MANY: &str =
    "INSERT INTO request_records (id, at_us, tenant, key_id, model, decision, code, record)
     SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                          $6::TEXT[], $7::TEXT[], $8::TEXT[])";

impl PgStore {
    pub(crate) async fn add_requests(&self, rows: Vec<StoredRequest>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&StoredRequest) -> &String| -> Vec<&str> {
            rows.iter().map(|r| f(r).as_str()).collect()
        };
        let ids = column(|r| &r.id);
        let at: Vec<i64> = rows.iter().map(|r| r.at_us).collect();
        let tenants = column(|r| &r.tenant);
        let keys = column(|r| &r.key_id);
        let models = column(|r| &r.model);
        let decisions = column(|r| &r.decision);
        let codes = column(|r| &r.code);
        let records = column(|r| &r.record);
        self.client()
            .await?
            .execute(
                INSERT_MANY,
                &[
                    &ids, &at, &tenants, &keys, &models, &decisions, &codes, &records,
                ],
            )
            .await
            .map_err(pg)
            .map(|_| ())
    }

    pub(crate) async fn requests(&self, query: &RequestQuery) -> Result<RequestPage, StoreError> {
        let (sql, texts, numbers) = select(query);
        let mut params: Vec<&(dyn ToSql + Sync)> = texts.iter().map(|v| v as _).collect();
        params.extend(numbers.iter().map(|v| v as &(dyn ToSql + Sync)));
        let client = self.client().await?;
        // The end first: a row committed between the two reads is then read next time, not
        // skipped.
        let last_seq: i64 = client.query_one(LAST_SEQ, &[]).await.map_err(pg)?.get(0);
        let rows = client.query(&sql, &params).await.map_err(pg)?;
        Ok(RequestPage {
            rows: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            last_seq,
        })
    }

    pub(crate) async fn prune_requests(&self, before_us: i64) -> Result<u64, StoreError> {
        self.client()
            .await?
            .execute(PRUNE, &[&before_us])
            .await
            .map_err(pg)
    }
}
