//! `/admin/v1/usage`: what tenants, keys and models used (a tenant-scoped actor sees its own
//! tenant only).

use super::reply::{invalid, ok, query_param, store_error};
use super::Admin;
use crate::background::ledger::flush;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::ApiError;
use portcullis_identity::UsageFilter;
use portcullis_limits::now_us;
use serde_json::json;

/// Nano-units per unit of currency.
const NANOS: f64 = 1e9;

impl Admin<'_> {
    /// `GET /admin/v1/usage?tenant=&key=&model=&period=day|month|total` or `&from=&to=`
    /// (days, `YYYY-MM-DD`, in the limits' time zone). Defaults to this month.
    pub(super) async fn usage(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        let param = |name: &str| query_param(query, name);
        let today = self.state.limiter.calendar().today(now_us());
        let (from, to) = match (param("from"), param("to"), param("period").as_deref()) {
            (Some(from), Some(to), _) => (Some(from), Some(to)),
            (None, None, Some("day")) => (Some(today.day.clone()), Some(today.day.clone())),
            (None, None, Some("month") | None) => (
                Some(format!("{}-01", today.month)),
                Some(format!("{}-31", today.month)),
            ),
            (None, None, Some("total")) => (None, None),
            _ => {
                return Err(invalid(
                    "period",
                    "Give `period` (day, month or total), or both `from` and `to`.",
                ))
            }
        };
        if let (Some(first), Some(last)) = (param("from"), param("to")) {
            let (Some(first), Some(last)) = (day(&first), day(&last)) else {
                return Err(invalid(
                    "from",
                    "`from` and `to` must be calendar days as YYYY-MM-DD.",
                ));
            };
            if first > last {
                return Err(invalid("to", "`to` must not be before `from`."));
            }
        }
        let tenant = match (self.actor.scope(), param("tenant")) {
            (Some(own), Some(asked)) if asked != own => {
                return Err(super::reply::not_found("tenant"))
            }
            (Some(own), _) => Some(own.to_owned()),
            (None, asked) => asked,
        };
        let key_id = param("key");
        if let (Some(own), Some(id)) = (self.actor.scope(), &key_id) {
            let key = self.state.store.key(id).await.map_err(store_error)?;
            if key.is_none_or(|k| k.tenant != own) {
                return Err(super::reply::not_found("key"));
            }
        }
        let filter = UsageFilter {
            tenant,
            key_id,
            model: param("model"),
            from,
            to,
        };
        // This replica's settled usage first, so the answer includes it.
        flush(&self.state.limiter, &self.state.store).await;
        let total = self
            .state
            .store
            .usage_total(&filter)
            .await
            .map_err(store_error)?;
        let rows = self
            .state
            .store
            .usage_rows(&filter)
            .await
            .map_err(store_error)?;
        let currency = &self.state.limits.currency;
        let row = |r: &portcullis_identity::UsageRow| {
            json!({
                "day": r.day, "tenant": r.tenant, "key_id": r.key_id, "model": r.model,
                "requests": r.requests, "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens, "cost": r.cost_nanos as f64 / NANOS,
            })
        };
        ok(json!({
            "tenant": filter.tenant,
            "key_id": filter.key_id,
            "model": filter.model,
            "from": filter.from,
            "to": filter.to,
            "currency": currency,
            "totals": {
                "requests": total.requests,
                "input_tokens": total.input_tokens,
                "output_tokens": total.output_tokens,
                "tokens": total.input_tokens + total.output_tokens,
                "cost": total.cost_nanos as f64 / NANOS,
            },
            "data": rows.iter().map(row).collect::<Vec<_>>(),
        }))
    }
}

/// A calendar day written `YYYY-MM-DD` (`2026-13-45` is none).
fn day(s: &str) -> Option<jiff::civil::Date> {
    if s.len() != 10 {
        return None;
    }
    jiff::civil::Date::strptime("%Y-%m-%d", s).ok()
}
