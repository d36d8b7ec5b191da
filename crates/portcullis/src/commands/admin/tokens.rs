//! `portcullis tokens rotate-key`: a new token signing key.

use super::{AdminClient, Rendered};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Start signing tokens with a new key; tokens signed by the old one stay valid until they
    /// expire.
    RotateKey,
}

/// Calls the admin API for `command`; returns the answer and how to show it as text.
pub(super) async fn call(client: &AdminClient, command: TokenCommand) -> anyhow::Result<Rendered> {
    Ok(match command {
        TokenCommand::RotateKey => (
            client
                .call("POST", "/admin/v1/signing-keys/rotate", Some(json!({})))
                .await?,
            |v| format!("now signing with {}", v["kid"].as_str().unwrap_or("")),
        ),
    })
}
