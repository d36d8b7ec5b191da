//! `portcullis threats list|show|clear|allow`: what the extraction detector sees, and the
//! operator's say over what its ladder did.

use super::{AdminClient, Rendered};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub enum ThreatCommand {
    /// Keys and tenants at or above a risk, riskiest first, with the ladder's actions.
    List {
        /// Lowest risk shown (0 to 1).
        #[arg(long, default_value_t = 0.5)]
        min_risk: f64,
    },
    /// One key's risk and the reasons for it.
    Show {
        /// The key id.
        key: String,
    },
    /// Lift the ladder's throttle or suspension and start its ladder again.
    Clear {
        /// `tenant:NAME` or `key:ID`.
        subject: String,
    },
    /// Observe a principal without acting on it (until restart or reload; list it under
    /// `[detect] allow` to keep it), lifting what the ladder did.
    Allow {
        /// `tenant:NAME` or `key:ID`.
        subject: String,
    },
}

pub(super) async fn call(client: &AdminClient, command: ThreatCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        ThreatCommand::List { min_risk } => (
            client
                .call(
                    "GET",
                    &format!("/admin/v1/threats?min_risk={min_risk}"),
                    None,
                )
                .await?,
            list_text,
        ),
        ThreatCommand::Show { key } => (
            client
                .call("GET", &format!("/admin/v1/threats/{key}"), None)
                .await?,
            verdict_text,
        ),
        ThreatCommand::Clear { subject } => (
            client
                .call("DELETE", &format!("/admin/v1/threats/{subject}"), None)
                .await?,
            |v| format!("cleared {}", v["subject"].as_str().unwrap_or("")),
        ),
        ThreatCommand::Allow { subject } => (
            client
                .call("POST", &format!("/admin/v1/threats/{subject}/allow"), None)
                .await?,
            |v| format!("allowed {}", v["subject"].as_str().unwrap_or("")),
        ),
    })
}

fn list_text(v: &Value) -> String {
    let mut lines: Vec<String> = v["data"]
        .as_array()
        .map(|a| a.iter().map(summary).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        lines.push("no key or tenant at that risk".into());
    }
    if let Some(actions) = v["actions"].as_array().filter(|a| !a.is_empty()) {
        lines.push(String::new());
        lines.push("actions:".into());
        for a in actions {
            lines.push(format!(
                "  {} {} {} risk={}",
                a["time"].as_str().unwrap_or(""),
                a["action"].as_str().unwrap_or(""),
                a["subject"].as_str().unwrap_or(""),
                a["risk"]
            ));
        }
    }
    lines.join("\n")
}

fn summary(v: &Value) -> String {
    format!(
        "{} {} tenant={} risk={} peak={} flagged={} requests={} cluster={} reasons={}",
        v["kind"].as_str().unwrap_or(""),
        v["id"].as_str().unwrap_or(""),
        v["tenant"].as_str().unwrap_or(""),
        v["risk"],
        v["peak_risk"],
        v["flagged"],
        v["requests"],
        v["cluster"].as_str().unwrap_or("-"),
        v["reason_codes"]
            .as_array()
            .map(|c| c
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    )
}

fn verdict_text(v: &Value) -> String {
    let mut lines = vec![summary(v)];
    if let Some(ts) = v["first_flagged_ts"].as_str() {
        lines.push(format!(
            "first flagged {ts}, at its request {}",
            v["first_flagged_request_index"]
        ));
    }
    for r in v["reasons"].as_array().into_iter().flatten() {
        lines.push(format!("  {}", r.as_str().unwrap_or("")));
    }
    lines.join("\n")
}
