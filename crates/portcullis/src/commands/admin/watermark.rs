//! `portcullis watermark detect --remote|--all-tenants` and `portcullis watermark probes`:
//! the admin API's `/admin/v1/watermark` routes.

use super::{AdminClient, Rendered};
use crate::commands::watermark::{read_suspect, WatermarkCommand};
use serde_json::{json, Value};

pub(super) async fn call(
    client: &AdminClient,
    command: WatermarkCommand,
) -> anyhow::Result<Rendered> {
    match command {
        WatermarkCommand::Detect {
            input,
            tenant,
            all_tenants,
            alpha,
            ..
        } => {
            let suspect = read_suspect(&input)?;
            let tenants = if all_tenants {
                json!("all")
            } else {
                json!(tenant)
            };
            let body = json!({
                "texts": suspect.texts,
                "embeddings": suspect.embeddings,
                "tenants": tenants,
                "alpha": alpha,
            });
            let value = client
                .call("POST", "/admin/v1/watermark/detect", Some(body))
                .await?;
            Ok((value, summary))
        }
        WatermarkCommand::Probes { count } => {
            let value = client
                .call(
                    "GET",
                    &format!("/admin/v1/watermark/probes?count={count}"),
                    None,
                )
                .await?;
            Ok((value, |v| {
                v["data"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| json!({"text": p["text"]}).to_string())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            }))
        }
    }
}

/// One line per key: verdict, corrected p-value, slots and hits.
fn summary(v: &Value) -> String {
    let mut lines = vec![format!(
        "detected: {} (alpha {})",
        v["detected"], v["alpha"]
    )];
    for s in v["texts"]["scores"].as_array().into_iter().flatten() {
        lines.push(format!(
            "text {} @{}: p_adjusted {:.2e}, {} of {} slots agree",
            s["key"].as_str().unwrap_or(""),
            s["version"].as_str().unwrap_or(""),
            s["p_adjusted"].as_f64().unwrap_or(1.0),
            s["hits"],
            s["slots"]
        ));
    }
    for e in v["embeddings"].as_array().into_iter().flatten() {
        lines.push(format!(
            "vectors @{}: p_adjusted {:.2e}, delta cos {:.4} ({} backdoor, {} benign)",
            e["version"].as_str().unwrap_or(""),
            e["p_adjusted"].as_f64().unwrap_or(1.0),
            e["delta_cos"].as_f64().unwrap_or(0.0),
            e["backdoor"],
            e["benign"]
        ));
    }
    lines.join("\n")
}
