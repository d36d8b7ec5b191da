//! `portcullis watermark detect`: scores a suspect model's outputs for the gateway's text
//! watermark, under the global key and the named tenants' keys of every secret version, and
//! prints the evidence (slots, hits, z, exact p-values, corrected verdict) as JSON.

use anyhow::Context;
use clap::Subcommand;
use portcullis_watermark::{Evidence, KeyRing};
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum WatermarkCommand {
    /// Score JSON lines with a `text` field (a suspect model's answers).
    Detect {
        /// JSON lines file; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// A tenant to test for attribution (repeatable).
        #[arg(long)]
        tenant: Vec<String>,
        /// False-alarm rate of the verdict, after correction for the keys tested.
        #[arg(long, default_value_t = 1e-6)]
        alpha: f64,
        /// Environment variable with the secrets (`version:secret,...`, newest first).
        #[arg(long, default_value = "PORTCULLIS_WATERMARK_SECRETS")]
        secrets_env: String,
    },
}

pub fn run(command: WatermarkCommand) -> anyhow::Result<()> {
    match command {
        WatermarkCommand::Detect {
            input,
            tenant,
            alpha,
            secrets_env,
        } => {
            let spec = std::env::var(&secrets_env)
                .with_context(|| format!("the environment variable {secrets_env} is not set"))?;
            let ring = KeyRing::parse(&spec).map_err(anyhow::Error::msg)?;
            let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&input)
                        .with_context(|| format!("cannot open {}", input.display()))?,
                ))
            };
            let mut evidence = Evidence::new();
            for (i, line) in reader.lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(&line)
                    .with_context(|| format!("line {}: not JSON", i + 1))?;
                let text = value
                    .get("text")
                    .and_then(Value::as_str)
                    .with_context(|| format!("line {}: no \"text\" string", i + 1))?;
                evidence.add_text(text);
            }
            let detection = evidence.score(&ring, &tenant, alpha);
            println!("{}", serde_json::to_string_pretty(&detection)?);
            Ok(())
        }
    }
}
