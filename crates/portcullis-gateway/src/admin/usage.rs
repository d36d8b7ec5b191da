//! The admin API's usage and risk routes: what tenants and keys used, and whose limits are
//! scaled down.

use super::api::{invalid, ok, store_error, Admin};
use crate::background::ledger::{flush, parse_subject, subject_name};
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::ApiError;
use portcullis_identity::{RiskRecord, UsageFilter};
use portcullis_limits::{now_us, RiskFactor};
use serde::Deserialize;
use serde_json::json;

/// Nano-units per unit of currency.
const NANOS: f64 = 1e9;

impl Admin<'_> {
    /// `GET /admin/v1/usage?tenant=&key=&model=&period=day|month|total` or `&from=&to=`
    /// (days, `YYYY-MM-DD`, in the limits' time zone). Defaults to this month.
    pub(super) async fn usage(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        let param = |name: &str| super::api::query_param(query, name);
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
        for day in [&from, &to].into_iter().flatten() {
            let day: &str = day;
            if !is_day(day) {
                return Err(invalid(
                    "from",
                    "`from` and `to` must be days as YYYY-MM-DD.",
                ));
            }
        }
        let filter = UsageFilter {
            tenant: param("tenant"),
            key_id: param("key"),
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

    /// `PUT /admin/v1/risk/{tenant:NAME|key:ID}` with `{"factor": 0.2, "ttl_seconds": 600,
    /// "reason": "..."}`: scales that principal's rate limits and concurrency by `factor` (0
    /// suspends it) until the time runs out. Applies on this replica at once and on the
    /// others at their next refresh.
    pub(super) async fn set_risk(
        &self,
        subject: &str,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SetRisk {
            factor: f64,
            ttl_seconds: u64,
            #[serde(default)]
            reason: String,
        }
        let parsed = parse_subject(subject)
            .ok_or_else(|| invalid("subject", "The subject must be `tenant:NAME` or `key:ID`."))?;
        let request: SetRisk = serde_json::from_slice(body).map_err(|e| {
            invalid(
                "body",
                &format!("Expected {{factor, ttl_seconds, reason}}: {e}."),
            )
        })?;
        if !(request.factor.is_finite() && (0.0..=1.0).contains(&request.factor)) {
            return Err(invalid(
                "factor",
                "`factor` must be between 0 (suspended) and 1.",
            ));
        }
        if request.ttl_seconds == 0 || request.ttl_seconds > 90 * 86_400 {
            return Err(invalid(
                "ttl_seconds",
                "`ttl_seconds` must be 1 to 7776000 (90 days).",
            ));
        }
        let now = now_us();
        let factor = RiskFactor {
            subject: parsed,
            factor: request.factor,
            expires_at_us: now + request.ttl_seconds * 1_000_000,
            reason: request.reason.chars().take(500).collect(),
        };
        self.state
            .store
            .set_risk(RiskRecord {
                subject: subject_name(&factor.subject),
                factor: factor.factor,
                expires_at_us: factor.expires_at_us as i64,
                reason: factor.reason.clone(),
                set_at: now as i64,
            })
            .await
            .map_err(store_error)?;
        self.state.limiter.risk().set(factor.clone());
        self.audit(
            "risk.set",
            subject,
            &format!(
                "factor={} ttl_seconds={}",
                factor.factor, request.ttl_seconds
            ),
        )
        .await?;
        ok(json!(factor))
    }

    pub(super) async fn clear_risk(
        &self,
        subject: &str,
    ) -> Result<Response<GatewayBody>, ApiError> {
        let parsed = parse_subject(subject)
            .ok_or_else(|| invalid("subject", "The subject must be `tenant:NAME` or `key:ID`."))?;
        let existed = self
            .state
            .store
            .clear_risk(subject)
            .await
            .map_err(store_error)?;
        self.state.limiter.risk().clear(&parsed);
        self.audit("risk.clear", subject, "").await?;
        ok(json!({"subject": subject, "cleared": existed}))
    }
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
