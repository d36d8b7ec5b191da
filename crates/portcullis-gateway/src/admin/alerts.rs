//! `/admin/v1/alerts`: the alert rules and the states of their alerts.

use super::reply::ok;
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::ApiError;
use serde_json::json;

impl Admin<'_> {
    /// `GET /admin/v1/alerts`: every alert firing, pending or resolved within the hour, with
    /// the rules. Operators only: rules span tenants.
    pub(super) fn alerts(&self) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let alerts = self.state.telemetry.alerts();
        let rules: Vec<_> = alerts
            .rules()
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "kind": r.kind,
                    "threshold": r.threshold,
                    "window_seconds": r.window.as_secs(),
                    "for_seconds": r.for_.as_secs(),
                    "tenant": r.tenant,
                })
            })
            .collect();
        let alerts = alerts.list();
        ok(json!({"data": alerts, "rules": rules}))
    }
}
