//! `portcullis risk set|clear|list`: scale a principal's limits down for a while.

use super::{list, AdminClient, Rendered};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum RiskCommand {
    /// Scale a principal's limits by FACTOR (0 suspends) for a while.
    Set {
        /// `tenant:NAME` or `key:ID`.
        subject: String,
        /// What the limits are multiplied by: 0.001 to 1, or 0 to suspend.
        #[arg(long)]
        factor: f64,
        /// How long, like "10m" or "2h".
        #[arg(long = "for")]
        duration: String,
        /// Why, for the audit log and `risk list`.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a principal's risk factor.
    Clear {
        /// `tenant:NAME` or `key:ID`.
        subject: String,
    },
    /// Risk factors in force.
    List,
}

/// Calls the admin API for `command`; returns the answer and how to show it as text.
pub(super) async fn call(client: &AdminClient, command: RiskCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        RiskCommand::Set {
            subject,
            factor,
            duration,
            reason,
        } => {
            let ttl = humantime::parse_duration(&duration)
                .with_context(|| format!("invalid --for `{duration}`"))?;
            (
                client
                    .call(
                        "PUT",
                        &format!("/admin/v1/risk/{subject}"),
                        Some(json!({"factor": factor, "ttl_seconds": ttl.as_secs().max(1), "reason": reason})),
                    )
                    .await?,
                risk_line,
            )
        }
        RiskCommand::Clear { subject } => (
            client
                .call("DELETE", &format!("/admin/v1/risk/{subject}"), None)
                .await?,
            |v| format!("cleared {}", v["subject"].as_str().unwrap_or("")),
        ),
        RiskCommand::List => (client.call("GET", "/admin/v1/risk", None).await?, |v| {
            list(v, risk_line)
        }),
    })
}

fn risk_line(v: &Value) -> String {
    let subject = match (v["subject"]["kind"].as_str(), v["subject"]["id"].as_str()) {
        (Some(k), Some(id)) => format!("{k}:{id}"),
        _ => String::new(),
    };
    format!(
        "{subject} factor={} until {} reason={}",
        v["factor"],
        super::show::time(&v["expires_at_us"], true),
        v["reason"].as_str().unwrap_or("")
    )
}
