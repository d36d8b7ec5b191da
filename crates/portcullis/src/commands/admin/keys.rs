//! `portcullis keys create|list|show|rotate|revoke`: secrets are printed once, at creation.

use super::{list, AdminClient, Rendered};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// live or test.
        #[arg(long, default_value = "live")]
        environment: String,
        /// Role to grant (repeatable); default `inference`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Model the key may use (repeatable); default every model.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Lifetime, like "30d"; default from `[identity] default_key_lifetime`.
        #[arg(long)]
        expires_in: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// `secret` (default) or `publishable` (browsers, from --allowed-origin only).
        #[arg(long)]
        kind: Option<String>,
        /// CIDR the key may be used from (repeatable).
        #[arg(long = "allowed-ip")]
        allowed_ips: Vec<String>,
        /// Browser origin a publishable key may be used from (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one key.
    Show { id: String },
    /// Issue a successor with the same scope; the old key works for --grace more.
    Rotate {
        id: String,
        #[arg(long, default_value = "1h")]
        grace: String,
    },
    /// Revoke a key at once.
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Calls the admin API for `command`; returns the answer and how to show it as text.
pub(super) async fn call(client: &AdminClient, command: KeyCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        KeyCommand::Create {
            tenant,
            environment,
            roles,
            models,
            expires_in,
            description,
            kind,
            allowed_ips,
            allowed_origins,
        } => {
            let mut body =
                json!({"tenant": tenant, "environment": environment, "description": description});
            if !roles.is_empty() {
                body["roles"] = json!(roles);
            }
            if !models.is_empty() {
                body["models"] = json!(models);
            }
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            if let Some(k) = kind {
                body["kind"] = json!(k);
            }
            if !allowed_ips.is_empty() {
                body["allowed_ips"] = json!(allowed_ips);
            }
            if !allowed_origins.is_empty() {
                body["allowed_origins"] = json!(allowed_origins);
            }
            (
                client.call("POST", "/admin/v1/keys", Some(body)).await?,
                |v| {
                    format!(
                        "{}\n\nkey: {}\nThe key is shown only now: store it in a secret manager.",
                        key_line(v),
                        v["key"].as_str().unwrap_or("")
                    )
                },
            )
        }
        KeyCommand::List { tenant } => {
            let path = match tenant {
                Some(t) => format!("/admin/v1/keys?tenant={t}"),
                None => "/admin/v1/keys".into(),
            };
            (client.call("GET", &path, None).await?, |v| {
                list(v, key_line)
            })
        }
        KeyCommand::Rotate { id, grace } => (
            client
                .call(
                    "POST",
                    &format!("/admin/v1/keys/{id}/rotate"),
                    Some(json!({"grace": grace})),
                )
                .await?,
            |v| {
                format!(
                    "{}\n\nkey: {}\nreplaces {} (which stops working at {}). The key is shown only now.",
                    key_line(v),
                    v["key"].as_str().unwrap_or(""),
                    v["replaces"].as_str().unwrap_or(""),
                    v["replaced_key_expires_at"]
                )
            },
        ),
        KeyCommand::Show { id } => (
            client
                .call("GET", &format!("/admin/v1/keys/{id}"), None)
                .await?,
            key_line,
        ),
        KeyCommand::Revoke { id, reason } => (
            client
                .call(
                    "POST",
                    &format!("/admin/v1/keys/{id}/revoke"),
                    Some(json!({"reason": reason})),
                )
                .await?,
            |v| format!("revoked {}", v["id"].as_str().unwrap_or("")),
        ),
    })
}

fn key_line(k: &Value) -> String {
    let state = if k["revoked_at"].is_null() {
        "active"
    } else {
        "revoked"
    };
    format!(
        "{}  tenant={} env={} roles={} expires_at={} {}",
        k["id"].as_str().unwrap_or(""),
        k["tenant"].as_str().unwrap_or(""),
        k["environment"].as_str().unwrap_or(""),
        k["roles"],
        k["expires_at"],
        state
    )
}
