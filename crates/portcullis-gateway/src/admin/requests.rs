//! `/admin/v1/requests`: the audit trail's request records, newest first, or those written
//! after a cursor (`portcullis requests tail --follow`). A tenant-scoped actor sees its own
//! tenant's requests only. Read from the store when the trail is kept there (every replica's
//! records), else from this replica's files.

use super::reply::{invalid, ok, query_param};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, ErrorKind};
use portcullis_telemetry::audit::query::{self, Cursor, Filter};
use serde_json::json;

/// Cursors into the store's copy are `seq:<n>`.
const STORE_CURSOR: &str = "seq:";

impl Admin<'_> {
    /// `GET /admin/v1/requests?tenant=&key=&model=&decision=&since=&until=&limit=&after=`.
    pub(super) async fn requests(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        let in_store = self.state.stored_trail.is_some();
        let sink = self.state.telemetry.audit();
        if sink.is_none() && !in_store {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                "The audit trail is off (`telemetry.audit.enabled = false`).",
            )
            .with_code("audit_disabled"));
        }
        let param = |name: &str| query_param(query, name).filter(|v| !v.is_empty());
        let time = |name: &'static str| -> Result<Option<jiff::Timestamp>, ApiError> {
            param(name)
                .map(|v| {
                    v.parse::<jiff::Timestamp>().map_err(|_| {
                        invalid(name, "Times are RFC 3339, like 2026-12-04T17:00:00Z.")
                    })
                })
                .transpose()
        };
        let limit = match param("limit") {
            None => 100,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| invalid("limit", "`limit` must be a number from 1 to 1000."))?,
        };
        let tenant = match (self.actor.scope(), param("tenant")) {
            (Some(own), Some(asked)) if asked != own => {
                return Err(ApiError::new(
                    ErrorKind::Permission,
                    "This key sees its own tenant's requests only.",
                )
                .with_param("tenant")
                .with_code("cross_tenant_denied"))
            }
            (Some(own), _) => Some(own.to_owned()),
            (None, asked) => asked,
        };
        let filter = Filter {
            tenant,
            key: param("key"),
            model: param("model"),
            decision: param("decision"),
            since: time("since")?,
            until: time("until")?,
        };
        let bad_cursor = || invalid("after", "`after` must be a cursor this API returned.");
        if in_store {
            let after = match param("after") {
                Some(text) => Some(
                    text.strip_prefix(STORE_CURSOR)
                        .and_then(|n| n.parse::<i64>().ok())
                        .ok_or_else(bad_cursor)?,
                ),
                None => None,
            };
            return self.stored_requests(filter, after, limit).await;
        }
        let Some(sink) = sink else {
            return Err(ApiError::internal());
        };
        let after = match param("after") {
            Some(text) => Some(Cursor::parse(&text).ok_or_else(bad_cursor)?),
            None => None,
        };
        let dir = sink.dir().to_owned();
        let page = tokio::task::spawn_blocking(move || match after {
            Some(cursor) => query::after(&dir, &cursor, &filter, limit),
            None => query::newest(&dir, &filter, limit),
        })
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read the audit trail");
            ApiError::internal()
        })?;
        ok(json!({
            "data": page.records,
            "cursor": page.cursor.map(|c| c.to_string()),
        }))
    }
}

impl Admin<'_> {
    /// The same answer from the store's copy of the trail.
    async fn stored_requests(
        &self,
        filter: Filter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Response<GatewayBody>, ApiError> {
        // What this replica has queued is written first, so the answer includes it.
        crate::background::stored_trail::flush(self.state).await;
        let micros = |t: Option<jiff::Timestamp>| t.map(|t| t.as_microsecond());
        let query = portcullis_identity::store::RequestQuery {
            tenant: filter.tenant,
            key_id: filter.key,
            model: filter.model,
            decision: filter.decision,
            since_us: micros(filter.since),
            until_us: micros(filter.until),
            after_seq: after,
            limit: limit as u32,
        };
        let page = self
            .state
            .store
            .requests(&query)
            .await
            .map_err(super::reply::store_error)?;
        let records: Vec<serde_json::Value> = page
            .rows
            .iter()
            .filter_map(|(_, record)| serde_json::from_str(record).ok())
            .collect();
        // Following on: from the last row returned when the page is full (more may match),
        // else from the end as it was read.
        let cursor = match page.rows.last() {
            Some((seq, _)) if after.is_some() && page.rows.len() >= limit => *seq,
            _ => page.last_seq.max(after.unwrap_or(0)),
        };
        ok(json!({
            "data": records,
            "cursor": format!("{STORE_CURSOR}{cursor}"),
        }))
    }
}
