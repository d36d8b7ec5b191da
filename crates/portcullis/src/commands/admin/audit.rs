//! `portcullis audit`: the most recent audit events.

use super::{list, AdminClient, Rendered};

/// The newest `limit` events.
pub(super) async fn call(client: &AdminClient, limit: u32) -> anyhow::Result<Rendered> {
    Ok((
        client
            .call("GET", &format!("/admin/v1/audit?limit={limit}"), None)
            .await?,
        |v| {
            list(v, |e| {
                format!(
                    "{}  {:<8} {:<18} {:<18} {} {}",
                    super::show::time(&e["at"], false),
                    e["actor"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or(""),
                    e["target"].as_str().unwrap_or(""),
                    e["source"].as_str().unwrap_or(""),
                    e["detail"].as_str().unwrap_or("")
                )
            })
        },
    ))
}
