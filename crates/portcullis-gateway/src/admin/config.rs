//! `/admin/v1/config`: which configuration version is in force, and reloading it from its
//! file (as `SIGHUP` does). Operators only: the configuration spans tenants.

use super::reply::ok;
use super::Admin;
use crate::reload::ReloadError;
use crate::respond::GatewayBody;
use http::Response;
use portcullis_core::{ApiError, ErrorKind};
use serde_json::json;

impl Admin<'_> {
    /// `GET /admin/v1/config`: the settings version in force and the file it came from.
    pub(super) async fn config_status(&self) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        let file = self.state.config_file().await;
        ok(json!({
            "version": self.state.settings().version,
            "file": file.map(|f| f.display().to_string()),
        }))
    }

    /// `POST /admin/v1/config/reload`: re-reads the file and applies it; a file that does not
    /// load changes nothing and its error is returned. Audited either way.
    pub(super) async fn reload_config(&self) -> Result<Response<GatewayBody>, ApiError> {
        self.actor.require_global()?;
        match self.state.reload_config().await {
            Ok(done) => {
                let detail = format!("version {}", done.version);
                self.audit("config.reload", "config", &detail).await?;
                ok(json!(done))
            }
            Err(e) => {
                self.audit("config.reload_refused", "config", &e.to_string())
                    .await?;
                let code = match e {
                    ReloadError::NoFile => "no_configuration_file",
                    ReloadError::Invalid(_) => "invalid_configuration",
                };
                Err(ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!("The configuration was not reloaded; the one in force is kept: {e}"),
                )
                .with_code(code))
            }
        }
    }
}
