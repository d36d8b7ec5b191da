//! `/admin/v1/risk`: principals whose limits are scaled down or suspended. Operators only.

use super::reply::{invalid, ok, store_error};
use super::Admin;
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
        self.actor.require_global()?;
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
