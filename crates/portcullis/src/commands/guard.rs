//! `portcullis guard scan|redact`: the input screening and the output redaction the gateway
//! applies, on a file, so users can try the policies on their own data before turning them on.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use portcullis_core::Endpoint;
use portcullis_guard::Detector;
use portcullis_openai::PromptPart;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum GuardCommand {
    /// Score JSON lines (a `text` field, or a chat request's `messages`, or a `prompt`) and
    /// write one JSON line per input: score, decision and reasons.
    Scan {
        /// JSON lines file; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Score from which an input is an attack (default: the model's calibrated one).
        #[arg(long)]
        threshold: Option<f32>,
        /// What an attack leads to in the output's `decision`.
        #[arg(long, value_enum, default_value = "block")]
        policy: Policy,
    },
    /// Redact personal data and secrets in JSON lines with a `text` field: each line comes
    /// back with the redacted `text` and the `spans` found (start, end, kind; offsets in
    /// characters of the original text, as Python slices it).
    Redact {
        /// JSON lines file; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Policy {
    Block,
    Flag,
}

pub fn run(command: GuardCommand) -> anyhow::Result<()> {
    match command {
        GuardCommand::Scan {
            input,
            threshold,
            policy,
        } => scan(&input, threshold, policy),
        GuardCommand::Redact { input } => redact(&input),
    }
}

fn open(input: &PathBuf) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?,
        ))
    })
}

fn redact(input: &PathBuf) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut lines, mut items) = (0usize, 0usize);
    for (n, line) in open(input)?.lines().enumerate() {
        let line = line.context("cannot read the input")?;
        if line.trim().is_empty() {
            continue;
        }
        let result = match serde_json::from_str::<Value>(&line) {
            Err(e) => json!({"line": n + 1, "error": format!("not JSON: {e}")}),
            Ok(mut record) => match record
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_owned)
            {
                None => json!({"line": n + 1, "error": "no `text` field"}),
                Some(text) => {
                    let (redacted, spans) = portcullis_guard::redact::redact(&text);
                    lines += 1;
                    items += spans.len();
                    // Character offsets, the unit most tools (and Python) use.
                    let char_at = |byte: usize| text[..byte].chars().count();
                    record["text"] = Value::String(redacted);
                    record["spans"] = spans
                        .iter()
                        .map(|s| json!({"start": char_at(s.start), "end": char_at(s.end), "kind": s.kind.name()}))
                        .collect();
                    record
                }
            },
        };
        serde_json::to_writer(&mut out, &result)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{lines} texts, {items} items redacted");
    Ok(())
}

/// The texts a line holds: `text`, or the prompt texts of a request body, read as the gateway
/// reads them (chat `messages`, a completion `prompt`, a Responses API `input`).
fn texts(record: &Value) -> Vec<String> {
    if let Some(text) = record["text"].as_str() {
        return vec![text.to_owned()];
    }
    let Some(body) = record.as_object() else {
        return Vec::new();
    };
    let endpoint = if body.contains_key("messages") {
        Endpoint::ChatCompletions
    } else if body.contains_key("prompt") {
        Endpoint::Completions
    } else {
        Endpoint::Responses
    };
    let mut out = Vec::new();
    if let Some(api) = portcullis_openai::api(endpoint) {
        let _ = api.visit_prompt(body, &mut |part| {
            if let PromptPart::Text(_, text) = part {
                out.push(text.to_owned());
            }
            Ok(())
        });
    }
    out
}

fn scan(input: &PathBuf, threshold: Option<f32>, policy: Policy) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?,
        ))
    };
    let detector = Detector::builtin();
    let explicit = threshold.is_some();
    let threshold = threshold.unwrap_or(detector.threshold);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut scanned, mut attacks) = (0usize, 0usize);
    for (n, line) in reader.lines().enumerate() {
        let line = line.context("cannot read the input")?;
        if line.trim().is_empty() {
            continue;
        }
        let result = match serde_json::from_str::<Value>(&line) {
            Err(e) => json!({"line": n + 1, "error": format!("not JSON: {e}")}),
            Ok(record) => {
                let texts = texts(&record);
                if texts.is_empty() {
                    json!({"line": n + 1, "error": "no `text`, `messages` or `prompt` field"})
                } else {
                    let worst = texts
                        .iter()
                        .map(|t| detector.scan(t))
                        .max_by(|a, b| a.score.total_cmp(&b.score))
                        .expect("at least one text");
                    let attack = worst.score >= threshold;
                    scanned += 1;
                    attacks += attack as usize;
                    // As the gateway decides: `block` refuses sure findings (or everything
                    // above a threshold the operator set) and flags the band below.
                    let decision = match (attack, policy) {
                        (false, _) => "pass",
                        (true, Policy::Block) if explicit || worst.block => "block",
                        (true, _) => "flag",
                    };
                    let mut result = json!({
                        "line": n + 1,
                        "score": (worst.score as f64 * 10_000.0).round() / 10_000.0,
                        "decision": decision,
                        "reasons": worst.reasons,
                    });
                    if let Some(id) = record.get("id") {
                        result["id"] = id.clone();
                    }
                    result
                }
            }
        };
        serde_json::to_writer(&mut out, &result)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{scanned} inputs scanned, {attacks} at or above the threshold {threshold:.4}");
    Ok(())
}
