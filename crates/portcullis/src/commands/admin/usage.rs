//! `portcullis usage show`: requests, tokens and cost, with daily rows.

use super::{AdminClient, Rendered};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub enum UsageCommand {
    /// Usage totals and daily rows (this month unless told otherwise).
    Show {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// A key id.
        #[arg(long)]
        key: Option<String>,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// day, month or total.
        #[arg(long)]
        period: Option<String>,
        /// First day, YYYY-MM-DD (with --to).
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (with --from).
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
}

/// Calls the admin API for `command`; returns the answer and how to show it as text.
pub(super) async fn call(client: &AdminClient, command: UsageCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        UsageCommand::Show {
            tenant,
            key,
            model,
            period,
            from,
            to,
        } => {
            let query: Vec<String> = [
                ("tenant", tenant),
                ("key", key),
                ("model", model),
                ("period", period),
                ("from", from),
                ("to", to),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
            (
                client
                    .call("GET", &format!("/admin/v1/usage?{}", query.join("&")), None)
                    .await?,
                usage_text,
            )
        }
    })
}

fn usage_text(v: &Value) -> String {
    let t = &v["totals"];
    let scope = [
        ("tenant", &v["tenant"]),
        ("key", &v["key_id"]),
        ("model", &v["model"]),
    ]
    .iter()
    .filter_map(|(k, x)| x.as_str().map(|x| format!("{k}={x}")))
    .collect::<Vec<_>>()
    .join(" ");
    let period = match (v["from"].as_str(), v["to"].as_str()) {
        (Some(f), Some(t)) => format!("{f}..{t}"),
        _ => "all time".into(),
    };
    let mut out = format!(
        "{scope} {period}: {} requests, {} input + {} output tokens, cost {:.6} {}",
        t["requests"],
        t["input_tokens"],
        t["output_tokens"],
        t["cost"].as_f64().unwrap_or(0.0),
        v["currency"].as_str().unwrap_or("")
    );
    for row in v["data"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n  {} {:<20} {:<20} {:<16} requests={} input={} output={} cost={:.6}",
            row["day"].as_str().unwrap_or(""),
            row["tenant"].as_str().unwrap_or(""),
            row["key_id"].as_str().unwrap_or(""),
            row["model"].as_str().unwrap_or(""),
            row["requests"],
            row["input_tokens"],
            row["output_tokens"],
            row["cost"].as_f64().unwrap_or(0.0)
        ));
    }
    out
}
