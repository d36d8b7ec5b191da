//! `/admin/v1/tenants`: create (operators only), list and show (a tenant-scoped actor sees
//! its own tenant only).

use super::reply::{created, invalid, not_found, ok, parse, store_error, valid_name};
use super::Admin;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, Audience, ErrorKind};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    audience: String,
    #[serde(default = "default_plan")]
    plan: String,
}

fn default_plan() -> String {
    "default".into()
}

impl Admin<'_> {
    pub(super) async fn list_tenants(&self) -> Result<Response<GatewayBody>, ApiError> {
        let mut tenants = self.state.store.tenants().await.map_err(store_error)?;
        if let Some(own) = self.actor.scope() {
            tenants.retain(|t| t.name == own);
        }
        ok(json!({"data": tenants}))
    }

    pub(super) async fn show_tenant(&self, name: &str) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.may_see(name, "tenant")?;
        match self.state.store.tenant(name).await.map_err(store_error)? {
            Some(t) => ok(json!(t)),
            None => Err(not_found("tenant")),
        }
    }

    pub(super) async fn create_tenant(
        &self,
        body: &[u8],
    ) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let new: NewTenant = parse(body)?;
        let audience = Audience::parse(&new.audience).ok_or_else(|| {
            invalid(
                "audience",
                "`audience` must be internal, partner or customer.",
            )
        })?;
        if !valid_name(&new.name) {
            return Err(invalid(
                "name",
                "`name` must be 1-64 characters of lowercase letters, digits, `-`, `_` or `.`, \
                 beginning with a letter or digit.",
            ));
        }
        let plans = self.state.settings().plans.clone();
        if plans.plan(&new.plan).is_none() {
            let known: Vec<&str> = plans.plan_names().collect();
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!("`plan` must be a configured plan: {}.", known.join(", ")),
            )
            .with_param("plan")
            .with_code("invalid_value"));
        }
        let tenant = self
            .state
            .store
            .create_tenant(&new.name, audience, &new.plan)
            .await
            .map_err(store_error)?;
        self.reload_cache().await?;
        self.audit(
            "tenant.create",
            &tenant.name,
            &format!("audience={} plan={}", new.audience, new.plan),
        )
        .await?;
        created(json!(tenant))
    }
}
