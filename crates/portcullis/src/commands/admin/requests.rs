//! `portcullis requests tail`: the audit trail's request records, newest last, and with
//! `--follow` the ones that arrive after, as they are written.

use super::{AdminClient, Output};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::time::Duration;

#[derive(Subcommand)]
pub enum RequestsCommand {
    /// The most recent requests; with --follow, keep printing new ones.
    Tail(TailArgs),
}

#[derive(Args)]
pub struct TailArgs {
    /// Keep printing requests as they are recorded (Ctrl-C stops).
    #[arg(long, short)]
    follow: bool,
    /// Only this tenant's requests.
    #[arg(long)]
    tenant: Option<String>,
    /// Only this key's requests.
    #[arg(long)]
    key: Option<String>,
    /// Only requests for this model.
    #[arg(long)]
    model: Option<String>,
    /// Only this decision (allowed, refused, served) or error code (input_rejected, ...).
    #[arg(long)]
    decision: Option<String>,
    /// How many recent requests to show first (1-1000).
    #[arg(long, short = 'n', default_value_t = 20)]
    lines: u32,
}

/// How often `--follow` asks for what is new.
const POLL: Duration = Duration::from_millis(500);

fn query(args: &TailArgs) -> String {
    let mut q = Vec::new();
    for (name, value) in [
        ("tenant", &args.tenant),
        ("key", &args.key),
        ("model", &args.model),
        ("decision", &args.decision),
    ] {
        if let Some(v) = value {
            q.push(format!("{name}={}", encode(v)));
        }
    }
    q.join("&")
}

/// Everything but unreserved characters (and `:`, which cursors and times carry) is
/// percent-encoded.
fn encode(value: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const VALUE: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b':');
    utf8_percent_encode(value, VALUE).to_string()
}

pub(super) async fn run(
    client: &AdminClient,
    command: RequestsCommand,
    output: Output,
) -> anyhow::Result<()> {
    let RequestsCommand::Tail(args) = command;
    let filter = query(&args);
    let first = client
        .call(
            "GET",
            &format!(
                "/admin/v1/requests?limit={}&{filter}",
                args.lines.clamp(1, 1000)
            ),
            None,
        )
        .await?;
    let mut records: Vec<Value> = first["data"].as_array().cloned().unwrap_or_default();
    records.reverse();
    print(&records, output);
    if !args.follow {
        return Ok(());
    }
    let mut cursor = first["cursor"].as_str().map(str::to_owned);
    loop {
        tokio::time::sleep(POLL).await;
        let path = match &cursor {
            Some(c) => format!("/admin/v1/requests?limit=1000&after={}&{filter}", encode(c)),
            // Nothing written yet: start from whatever comes.
            None => format!("/admin/v1/requests?limit=1000&{filter}"),
        };
        let page = client.call("GET", &path, None).await?;
        let mut records: Vec<Value> = page["data"].as_array().cloned().unwrap_or_default();
        if cursor.is_none() {
            records.reverse();
        }
        print(&records, output);
        if let Some(c) = page["cursor"].as_str() {
            cursor = Some(c.to_owned());
        }
    }
}

fn print(records: &[Value], output: Output) {
    for r in records {
        match output {
            // One record per line (JSON Lines), so that a follow can be piped.
            Output::Json => println!("{r}"),
            Output::Text => println!("{}", line(r)),
        }
    }
}

/// One request as a line: when, who, what, how it ended, what it used.
pub(super) fn line(r: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let who = match r.get("principal") {
        Some(p) => format!("{}/{}", s(&p["tenant"]), s(&p["key_id"])),
        None => "-".into(),
    };
    let decision = &r["decision"];
    let mut verdict = format!(
        "{} {}",
        decision["status"].as_u64().unwrap_or(0),
        s(&decision["action"])
    );
    if let Some(code) = decision["code"].as_str() {
        verdict.push_str(&format!(" ({code})"));
    }
    let tokens = &r["tokens"];
    let mut used = format!(
        "in={} out={}",
        tokens["input"].as_u64().unwrap_or(0),
        tokens["output"].as_u64().unwrap_or(0)
    );
    if let Some(cost) = r["cost_usd"].as_f64() {
        used.push_str(&format!(" ${cost:.6}"));
    }
    let findings: Vec<String> = r["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| format!("{}:{}:{}", s(&f["guard"]), s(&f["rule"]), s(&f["action"])))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {}  {:<24} {:<16} {:<12} {:<28} {:<24} {:>8.1}ms{}",
        s(&r["start"]),
        s(&r["id"]),
        who,
        s(&r["endpoint"]),
        r["model"].as_str().unwrap_or("-"),
        verdict,
        used,
        r["timing"]["duration_ms"].as_f64().unwrap_or(0.0),
        if findings.is_empty() {
            String::new()
        } else {
            format!("  [{}]", findings.join(" "))
        }
    )
}
