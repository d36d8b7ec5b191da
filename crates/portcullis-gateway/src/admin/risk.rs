//! `/admin/v1/risk`: principals whose limits are scaled down or suspended. Operators only.

use super::reply::{invalid, ok, store_error};
use super::Admin;
use crate::background::holds;
use crate::background::ledger::{parse_subject, subject_name};
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::ApiError;
use portcullis_identity::RiskRecord;
use portcullis_limits::{now_us, RiskFactor};
use serde::Deserialize;
use serde_json::json;

impl Admin<'_> {
    pub(super) fn list_risk(&self) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        ok(json!({"data": self.state.limiter.risk().active(now_us())}))
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
        self.actor.require_global()?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SetRisk {
            /// As written: a tiny literal (`1e-400`) reads as 0, which would suspend.
            factor: Box<serde_json::value::RawValue>,
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
        let factor = risk_factor(request.factor.get()).ok_or_else(|| {
            invalid(
                "factor",
                "`factor` must be 0 (suspended) or a number from 0.001 to 1.",
            )
        })?;
        if request.ttl_seconds == 0 || request.ttl_seconds > 90 * 86_400 {
            return Err(invalid(
                "ttl_seconds",
                "`ttl_seconds` must be 1 to 7776000 (90 days).",
            ));
        }
        let now = now_us();
        let factor = RiskFactor {
            subject: parsed,
            factor,
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
        self.actor.require_global()?;
        let existed = self.lift_risk(subject).await?;
        self.audit("risk.clear", subject, "").await?;
        ok(json!({"subject": subject, "cleared": existed}))
    }

    /// Removes a principal's risk factor, and a key's ladder holds (restriction, required
    /// token re-exchange), from the store and this replica; returns whether there was any. The subject must be `tenant:NAME` or `key:ID`.
    pub(super) async fn lift_risk(&self, subject: &str) -> Result<bool, ApiError> {
        let parsed = parse_subject(subject)
            .ok_or_else(|| invalid("subject", "The subject must be `tenant:NAME` or `key:ID`."))?;
        let mut existed = self
            .state
            .store
            .clear_risk(subject)
            .await
            .map_err(store_error)?;
        for hold in holds::names_for(subject) {
            existed |= self
                .state
                .store
                .clear_risk(&hold)
                .await
                .map_err(store_error)?;
        }
        self.state.limiter.risk().clear(&parsed);
        holds::lift(self.state, subject);
        Ok(existed)
    }
}

/// A risk factor as written: 0 exactly, or 0.001 to 1. A non-zero literal too small for a
/// float (`1e-400`) is refused rather than read as 0.
fn risk_factor(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let written_zero = !mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    match value {
        0.0 if written_zero => Some(0.0),
        v if (0.001..=1.0).contains(&v) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn risk_factors_are_read_as_written() {
        for (text, expected) in [
            ("0", Some(0.0)),
            ("0.0", Some(0.0)),
            ("0e5", Some(0.0)),
            ("0.2", Some(0.2)),
            ("1", Some(1.0)),
            ("1e-400", None),
            ("0.0001", None),
            ("1.5", None),
            ("-0.5", None),
            ("\"0.5\"", None),
        ] {
            assert_eq!(super::risk_factor(text), expected, "{text}");
        }
    }
}
