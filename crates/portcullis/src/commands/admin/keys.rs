//! `portcullis keys create|list|show|rotate|revoke`: secrets are printed once, at creation.

use super::{show, AdminClient, Rendered};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// The tenant the key belongs to.
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
        /// Free text shown in listings (what the key is for).
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
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one key.
    Show {
        /// The key id (the part before the secret).
        id: String,
    },
    /// Issue a successor with the same scope; the old key works for --grace more.
    Rotate {
        /// The key id to replace.
        id: String,
        /// How long the old key keeps working.
        #[arg(long, default_value = "1h")]
        grace: String,
        /// The successor's lifetime, like "30d"; default the old key's own.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key id.
        id: String,
        /// Why, for the audit log.
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
            (client.call("GET", &path, None).await?, key_table)
        }
        KeyCommand::Rotate {
            id,
            grace,
            expires_in,
        } => (
            client
                .call(
                    "POST",
                    &format!("/admin/v1/keys/{id}/rotate"),
                    Some(match expires_in {
                        Some(e) => json!({"grace": grace, "expires_in": e}),
                        None => json!({"grace": grace}),
                    }),
                )
                .await?,
            |v| {
                format!(
                    "{}\n\nkey: {}\nreplaces {} (which stops working {}). The key is shown only now.",
                    key_line(v),
                    v["key"].as_str().unwrap_or(""),
                    v["replaces"].as_str().unwrap_or(""),
                    show::time(&v["replaced_key_expires_at"], false)
                )
            },
        ),
        KeyCommand::Show { id } => (
            client
                .call("GET", &format!("/admin/v1/keys/{id}"), None)
                .await?,
            key_detail,
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

/// One line for create and rotate: what the new key is.
fn key_line(k: &Value) -> String {
    format!(
        "{}  tenant={} env={} kind={} roles={} models={} expires {}",
        k["id"].as_str().unwrap_or(""),
        k["tenant"].as_str().unwrap_or(""),
        k["environment"].as_str().unwrap_or(""),
        k["kind"].as_str().unwrap_or("secret"),
        show::names(&k["roles"]),
        show::names(&k["models"]),
        show::time(&k["expires_at"], false),
    )
}

fn state(k: &Value) -> &'static str {
    if !k["revoked_at"].is_null() {
        "revoked"
    } else if k["expires_at"]
        .as_i64()
        .is_some_and(|e| e <= jiff::Timestamp::now().as_second())
    {
        "expired"
    } else {
        "active"
    }
}

/// Keys as a table: everything but the description and network restrictions (`keys show`).
fn key_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    vec![
                        k["id"].as_str().unwrap_or("").to_owned(),
                        k["tenant"].as_str().unwrap_or("").to_owned(),
                        k["environment"].as_str().unwrap_or("").to_owned(),
                        k["kind"].as_str().unwrap_or("secret").to_owned(),
                        show::names(&k["roles"]),
                        show::names(&k["models"]),
                        show::time(&k["expires_at"], false),
                        show::time(&k["last_used_at"], false),
                        state(k).to_owned(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    show::table(
        &[
            "ID",
            "TENANT",
            "ENV",
            "KIND",
            "ROLES",
            "MODELS",
            "EXPIRES",
            "LAST USED",
            "STATE",
        ],
        &rows,
    )
}

/// One key, every field.
fn key_detail(k: &Value) -> String {
    let text = |field: &str| {
        k[field]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("-")
            .to_owned()
    };
    let mut lines = vec![
        ("id", text("id")),
        ("tenant", text("tenant")),
        ("state", state(k).to_owned()),
        ("environment", text("environment")),
        ("kind", k["kind"].as_str().unwrap_or("secret").to_owned()),
        ("roles", show::names(&k["roles"])),
        ("models", show::names(&k["models"])),
        ("allowed ips", show::names(&k["allowed_ips"])),
        ("allowed origins", show::names(&k["allowed_origins"])),
        ("description", text("description")),
        ("created", show::time(&k["created_at"], false)),
        ("expires", show::time(&k["expires_at"], false)),
        ("last used", show::time(&k["last_used_at"], false)),
    ];
    if !k["revoked_at"].is_null() {
        lines.push(("revoked", show::time(&k["revoked_at"], false)));
        lines.push(("revoked because", text("revoked_reason")));
    }
    lines
        .iter()
        .map(|(name, value)| format!("{:<16} {value}", format!("{name}:")))
        .collect::<Vec<_>>()
        .join("\n")
}
