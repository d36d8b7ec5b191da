//! `portcullis watermark detect|probes`: the forensic watermark's test on a suspect model's
//! outputs. With the secrets in the environment it runs here; with `--remote` (implied by
//! `--all-tenants`, which needs the store's tenants) the gateway's admin API runs it, and the
//! secrets never leave the gateway.

use anyhow::Context;
use clap::Subcommand;
use portcullis_watermark::{Evidence, KeyRing};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum WatermarkCommand {
    /// Score JSON lines: `text` (a suspect model's answers), or `text` and `embedding` (a
    /// suspect encoder's vectors for the probes).
    Detect {
        /// JSON lines file; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// A tenant to test for attribution (repeatable).
        #[arg(long)]
        tenant: Vec<String>,
        /// Test every tenant in the store (through the admin API).
        #[arg(long, conflicts_with = "tenant")]
        all_tenants: bool,
        /// Run on the gateway through the admin API instead of here.
        #[arg(long)]
        remote: bool,
        /// False-alarm rate of the verdict, after correction for the keys tested.
        #[arg(long, default_value_t = 1e-6)]
        alpha: f64,
        /// Environment variable with the secrets (`version:secret,...`, newest first), when
        /// running here.
        #[arg(long, default_value = "PORTCULLIS_WATERMARK_SECRETS")]
        secrets_env: String,
    },
    /// Print verification texts for a suspect encoder (through the admin API): send each to
    /// the suspect, then `detect` its vectors.
    Probes {
        /// Texts with triggers, and as many without.
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
}

/// What the input file holds.
pub struct Suspect {
    pub texts: Vec<String>,
    pub embeddings: Vec<Value>,
}

pub fn read_suspect(input: &Path) -> anyhow::Result<Suspect> {
    let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?,
        ))
    };
    let mut suspect = Suspect {
        texts: Vec::new(),
        embeddings: Vec::new(),
    };
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(&line).with_context(|| format!("line {}: not JSON", i + 1))?;
        let text = value
            .get("text")
            .and_then(Value::as_str)
            .with_context(|| format!("line {}: no \"text\" string", i + 1))?;
        match value.get("embedding") {
            Some(Value::Array(_)) => suspect.embeddings.push(value),
            Some(_) => anyhow::bail!("line {}: \"embedding\" must be an array", i + 1),
            None => suspect.texts.push(text.to_owned()),
        }
    }
    Ok(suspect)
}

/// Runs `command` here (`None` back) or says what to ask the admin API for.
pub fn run_local(command: WatermarkCommand) -> anyhow::Result<Option<WatermarkCommand>> {
    match command {
        WatermarkCommand::Detect {
            input,
            tenant,
            all_tenants: false,
            remote: false,
            alpha,
            secrets_env,
        } => {
            let spec = std::env::var(&secrets_env).with_context(|| {
                format!(
                    "the environment variable {secrets_env} is not set (or use --remote to run \
                     on the gateway)"
                )
            })?;
            let ring = KeyRing::parse(&spec).map_err(anyhow::Error::msg)?;
            let suspect = read_suspect(&input)?;
            if !suspect.embeddings.is_empty() {
                anyhow::bail!("vectors are scored on the gateway: add --remote");
            }
            let mut evidence = Evidence::new();
            for text in &suspect.texts {
                evidence.add_text(text);
            }
            let detection = evidence.score(&ring, &tenant, alpha);
            println!("{}", serde_json::to_string_pretty(&detection)?);
            Ok(None)
        }
        other => Ok(Some(other)),
    }
}
