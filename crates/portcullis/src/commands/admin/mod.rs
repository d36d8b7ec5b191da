//! `portcullis tenants|keys|tokens|usage|risk|threats|audit|requests|watermark`: the admin API from the command line, a
//! file per command.
//!
//! Talks to the admin listener over HTTP (`--admin-url`), with the admin token from
//! `--admin-token`, `PORTCULLIS_ADMIN_TOKEN`, or `portcullis-data/admin-token`. `--output json`
//! prints the API's JSON unchanged for scripts; the default is a short human-readable form.

mod audit;
mod config;
mod keys;
mod requests;
mod risk;
mod show;
mod tenants;
mod threats;
mod tokens;
mod usage;
mod watermark;

pub use config::ConfigCommand;
pub use keys::KeyCommand;
pub use requests::RequestsCommand;
pub use risk::RiskCommand;
pub use tenants::TenantCommand;
pub use threats::ThreatCommand;
pub use tokens::TokenCommand;
pub use usage::UsageCommand;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Where `serve` writes the admin token with the embedded defaults, relative to the working
/// directory.
const DEFAULT_TOKEN_FILE: &str = "portcullis-data/admin-token";

/// The admin API's answer, and how to show it as text.
type Rendered = (Value, fn(&Value) -> String);

#[derive(Args)]
#[command(next_help_heading = "Admin API (any admin command; before or after it)")]
pub struct AdminTarget {
    /// Base URL of the admin listener.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ADMIN_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8081"
    )]
    admin_url: String,
    /// Admin token (default: $PORTCULLIS_ADMIN_TOKEN, then portcullis-data/admin-token).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Output: `text` or `json` for the admin commands (default text); for `sim traffic`
    /// and `detect replay`, the file to write (default standard output).
    #[arg(long, global = true, value_name = "FORMAT|FILE")]
    output: Option<String>,
}

impl AdminTarget {
    /// The admin commands' output format.
    fn format(&self) -> anyhow::Result<Output> {
        match self.output.as_deref() {
            None | Some("text") => Ok(Output::Text),
            Some("json") => Ok(Output::Json),
            Some(other) => {
                anyhow::bail!("--output is `text` or `json` for admin commands, not {other:?}")
            }
        }
    }

    /// `--output` as a file to write (`sim traffic`, `detect replay`); `-` when not given.
    pub fn output_file(&self) -> std::path::PathBuf {
        self.output.as_deref().unwrap_or("-").into()
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

pub enum Request {
    Usage(UsageCommand),
    Risk(RiskCommand),
    Threats(ThreatCommand),
    Tokens(TokenCommand),
    Tenants(TenantCommand),
    Keys(KeyCommand),
    Audit { limit: u32 },
    Requests(RequestsCommand),
    Config(ConfigCommand),
    Watermark(crate::commands::watermark::WatermarkCommand),
}

/// The admin API client for `target`: its URL, and the token from `--admin-token`,
/// `PORTCULLIS_ADMIN_TOKEN` or the data directory.
pub(crate) fn client(target: &AdminTarget) -> anyhow::Result<AdminClient> {
    let token = match target.admin_token.clone() {
        Some(t) => t,
        None => {
            let path = std::path::Path::new(DEFAULT_TOKEN_FILE);
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            std::fs::read_to_string(path)
                .map(|t| t.trim().to_owned())
                .with_context(|| {
                    format!(
                        "no admin token: pass --admin-token, set PORTCULLIS_ADMIN_TOKEN, or run \
                         from the directory the gateway writes its data to (looked for {})",
                        shown.display()
                    )
                })?
        }
    };
    Ok(AdminClient {
        base: target.admin_url.trim_end_matches('/').to_owned(),
        token,
    })
}

pub async fn run(target: AdminTarget, request: Request) -> anyhow::Result<()> {
    let client = client(&target)?;
    let format = target.format()?;
    if let Request::Requests(command) = request {
        return requests::run(&client, command, format).await;
    }
    let (value, render) = match request {
        Request::Tenants(command) => tenants::call(&client, command).await?,
        Request::Keys(command) => keys::call(&client, command).await?,
        Request::Tokens(command) => tokens::call(&client, command).await?,
        Request::Usage(command) => usage::call(&client, command).await?,
        Request::Risk(command) => risk::call(&client, command).await?,
        Request::Threats(command) => threats::call(&client, command).await?,
        Request::Audit { limit } => audit::call(&client, limit).await?,
        Request::Config(command) => config::call(&client, command).await?,
        Request::Watermark(command) => watermark::call(&client, command).await?,
        Request::Requests(_) => unreachable!("handled above"),
    };
    match format {
        Output::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        Output::Text => println!("{}", render(&value)),
    }
    Ok(())
}

pub(super) fn list(v: &Value, line: fn(&Value) -> String) -> String {
    let rows: Vec<String> = v["data"]
        .as_array()
        .map(|a| a.iter().map(line).collect())
        .unwrap_or_default();
    if rows.is_empty() {
        "(none)".into()
    } else {
        rows.join("\n")
    }
}

pub(crate) struct AdminClient {
    base: String,
    token: String,
}

impl AdminClient {
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{status}: {message}");
        }
        Ok(value)
    }
}
