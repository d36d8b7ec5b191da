//! `portcullis config`: the configuration version in force, and reloading it from its file
//! without a restart (as `kill -HUP` does, but with the outcome printed).

use super::{AdminClient, Rendered};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration version in force and the file it came from.
    Show,
    /// Re-read the configuration file and apply it; a file that does not load changes
    /// nothing and its error is shown.
    Reload,
}

pub(super) async fn call(client: &AdminClient, command: ConfigCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        ConfigCommand::Show => (client.call("GET", "/admin/v1/config", None).await?, |v| {
            format!(
                "version {}\nfile    {}",
                v["version"],
                v["file"].as_str().unwrap_or("(none: embedded defaults)")
            )
        }),
        ConfigCommand::Reload => (
            client.call("POST", "/admin/v1/config/reload", None).await?,
            |v| {
                let join = |v: &Value| {
                    let names: Vec<&str> = v
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if names.is_empty() {
                        "(none)".to_owned()
                    } else {
                        names.join(", ")
                    }
                };
                format!(
                    "reloaded: version {}\napplied          {}\nrestart needed   {}",
                    v["version"],
                    join(&v["applied"]),
                    join(&v["restart_needed"])
                )
            },
        ),
    })
}
