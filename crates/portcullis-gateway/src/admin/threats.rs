//! `/admin/v1/threats`: what the extraction detector sees and what its ladder did; clearing
//! a key (its throttle or suspension lifted, its ladder reset) and allowing a principal.
//! Permission `admin:threats`, operators only.

use super::reply::{invalid, not_found, ok, query_param};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::ApiError;
use serde_json::json;

impl Admin<'_> {
    fn threats(&self) -> Result<&crate::background::threats::Threats, ApiError> {
        self.state.threats.as_deref().ok_or_else(|| {
            invalid(
                "detect",
                "The threat detector is off (`[detect] enabled = false`).",
            )
        })
    }

    /// `GET /admin/v1/threats[?min_risk=0.5]`: keys and tenants at or above the risk
    /// (default 0.5), riskiest first, with the ladder's recent actions.
    pub(super) fn list_threats(&self, query: &str) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let threats = self.threats()?;
        let min_risk = match query_param(query, "min_risk") {
            None => 0.5,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid("min_risk", "`min_risk` must be a number from 0 to 1."))?,
        };
        ok(json!({
            "data": threats.verdicts(min_risk),
            "actions": threats.actions(),
            "detector": threats.stats(),
            "shared_across_replicas": threats.shared(),
        }))
    }

    /// `GET /admin/v1/threats/{key}`: one key's verdict and reasons.
    pub(super) fn show_threat(&self, key: &str) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let verdict = self
            .threats()?
            .key_verdict(key)
            .ok_or_else(|| not_found("key seen by the detector"))?;
        ok(json!(verdict))
    }

    /// `DELETE /admin/v1/threats/{tenant:NAME|key:ID}`: lifts the ladder's throttle or
    /// suspension and lets the ladder start again from the bottom.
    pub(super) async fn clear_threat(
        &self,
        subject: &str,
    ) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let threats = self.threats()?;
        let existed = self.lift_risk(subject).await?;
        if let Some(key) = subject.strip_prefix("key:") {
            threats.reset(key).await;
        }
        self.audit("threat.clear", subject, "").await?;
        ok(json!({"subject": subject, "cleared": existed}))
    }

    /// `POST /admin/v1/threats/{tenant:NAME|key:ID}/allow`: observed, never acted on,
    /// until a restart or reload (list it under `[detect] allow` to keep it); its throttle
    /// or suspension is lifted.
    pub(super) async fn allow_threat(
        &self,
        subject: &str,
    ) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let threats = self.threats()?;
        self.lift_risk(subject).await?;
        threats.allow(subject);
        self.audit("threat.allow", subject, "").await?;
        ok(json!({"subject": subject, "allowed": true}))
    }
}
