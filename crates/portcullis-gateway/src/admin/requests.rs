//! `/admin/v1/requests`: the audit trail's request records, newest first, or those written
//! after a cursor (`portcullis requests tail --follow`). A tenant-scoped actor sees its own
//! tenant's requests only.

use super::reply::{invalid, ok, query_param};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, ErrorKind};
use portcullis_telemetry::audit::query::{self, Cursor, Filter};
use serde_json::json;

impl Admin<'_> {
    /// `GET /admin/v1/requests?tenant=&key=&model=&decision=&since=&until=&limit=&after=`.
    pub(super) async fn requests(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        let Some(sink) = self.state.telemetry.audit() else {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                "The audit trail is off (`telemetry.audit.enabled = false`).",
            )
            .with_code("audit_disabled"));
        };
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
        let after =
            match param("after") {
                Some(text) => Some(Cursor::parse(&text).ok_or_else(|| {
                    invalid("after", "`after` must be a cursor this API returned.")
                })?),
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
