//! `portcullis tenants create|list|show`.

use super::{list, AdminClient, Rendered};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Lowercase letters, digits, `-`, `_` and `.` (not first).
        name: String,
        /// internal, partner or customer.
        #[arg(long)]
        audience: String,
        /// A plan from the configuration's `[plans]` (limits, quotas and guards).
        #[arg(long, default_value = "default")]
        plan: String,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show {
        /// The tenant's name.
        name: String,
    },
}

/// Calls the admin API for `command`; returns the answer and how to show it as text.
pub(super) async fn call(client: &AdminClient, command: TenantCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        TenantCommand::Create {
            name,
            audience,
            plan,
        } => (
            client
                .call(
                    "POST",
                    "/admin/v1/tenants",
                    Some(json!({"name": name, "audience": audience, "plan": plan})),
                )
                .await?,
            tenant_line,
        ),
        TenantCommand::List => (client.call("GET", "/admin/v1/tenants", None).await?, |v| {
            list(v, tenant_line)
        }),
        TenantCommand::Show { name } => (
            client
                .call("GET", &format!("/admin/v1/tenants/{name}"), None)
                .await?,
            tenant_line,
        ),
    })
}

fn tenant_line(t: &Value) -> String {
    format!(
        "{:<24} audience={:<9} plan={}",
        t["name"].as_str().unwrap_or(""),
        t["audience"].as_str().unwrap_or(""),
        t["plan"].as_str().unwrap_or("")
    )
}
