//! `portcullis tenants|keys|audit`: the admin API from the command line.
//!
//! Talks to the admin listener over HTTP (`--admin-url`), with the admin token from
//! `--admin-token`, `PORTCULLIS_ADMIN_TOKEN`, or `portcullis-data/admin-token`. `--output json`
//! prints the API's JSON unchanged for scripts; the default is a short human-readable form.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[derive(Args)]
pub struct AdminTarget {
    /// Base URL of the admin listener.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ADMIN_URL",
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
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        /// internal, partner or customer.
        #[arg(long)]
        audience: String,
        #[arg(long, default_value = "default")]
        plan: String,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { name: String },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        /// live or test.
        #[arg(long, default_value = "live")]
        environment: String,
        /// Role to grant (repeatable); default `inference`.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Model the key may use (repeatable); default every model.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Lifetime, like "30d"; default from `[identity] default_key_lifetime`.
        #[arg(long)]
        expires_in: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// `secret` (default) or `publishable` (browsers, from --allowed-origin only).
        #[arg(long)]
        kind: Option<String>,
        /// CIDR the key may be used from (repeatable).
        #[arg(long = "allowed-ip")]
        allowed_ips: Vec<String>,
        /// Browser origin a publishable key may be used from (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one key.
    Show { id: String },
    /// Issue a successor with the same scope; the old key works for --grace more.
    Rotate {
        id: String,
        #[arg(long, default_value = "1h")]
        grace: String,
    },
    /// Revoke a key at once.
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Start signing tokens with a new key; tokens signed by the old one stay valid until they
    /// expire.
    RotateKey,
}

#[derive(Subcommand)]
pub enum UsageCommand {
    /// Usage totals and daily rows (this month unless told otherwise).
    Show {
        #[arg(long)]
        tenant: Option<String>,
        /// A key id.
        #[arg(long)]
        key: Option<String>,
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

#[derive(Subcommand)]
pub enum RiskCommand {
    /// Scale a principal's limits by FACTOR (0 suspends) for a while.
    Set {
        /// `tenant:NAME` or `key:ID`.
        subject: String,
        #[arg(long)]
        factor: f64,
        /// How long, like "10m" or "2h".
        #[arg(long = "for")]
        duration: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a principal's risk factor.
    Clear { subject: String },
    /// Risk factors in force.
    List,
}

pub enum Request {
    Usage(UsageCommand),
    Risk(RiskCommand),
    Tokens(TokenCommand),
    Tenants(TenantCommand),
    Keys(KeyCommand),
    Audit { limit: u32 },
}

pub async fn run(target: AdminTarget, request: Request) -> anyhow::Result<()> {
    let token = match target.admin_token.clone() {
        Some(t) => t,
        None => std::fs::read_to_string("portcullis-data/admin-token")
            .map(|t| t.trim().to_owned())
            .context("no admin token: pass --admin-token or set PORTCULLIS_ADMIN_TOKEN")?,
    };
    let client = AdminClient {
        base: target.admin_url.trim_end_matches('/').to_owned(),
        token,
    };
    let (value, render): (Value, fn(&Value) -> String) = match request {
        Request::Tenants(TenantCommand::Create {
            name,
            audience,
            plan,
        }) => (
            client
                .call(
                    "POST",
                    "/admin/v1/tenants",
                    Some(json!({"name": name, "audience": audience, "plan": plan})),
                )
                .await?,
            tenant_line,
        ),
        Request::Usage(UsageCommand::Show {
            tenant,
            key,
            model,
            period,
            from,
            to,
        }) => {
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
        Request::Risk(RiskCommand::Set {
            subject,
            factor,
            duration,
            reason,
        }) => {
            let ttl = humantime::parse_duration(&duration)
                .with_context(|| format!("invalid --for `{duration}`"))?;
            (
                client
                    .call(
                        "PUT",
                        &format!("/admin/v1/risk/{subject}"),
                        Some(json!({"factor": factor, "ttl_seconds": ttl.as_secs().max(1), "reason": reason})),
                    )
                    .await?,
                risk_line,
            )
        }
        Request::Risk(RiskCommand::Clear { subject }) => (
            client
                .call("DELETE", &format!("/admin/v1/risk/{subject}"), None)
                .await?,
            |v| format!("cleared {}", v["subject"].as_str().unwrap_or("")),
        ),
        Request::Risk(RiskCommand::List) => {
            (client.call("GET", "/admin/v1/risk", None).await?, |v| {
                list(v, risk_line)
            })
        }
        Request::Tokens(TokenCommand::RotateKey) => (
            client
                .call("POST", "/admin/v1/signing-keys/rotate", Some(json!({})))
                .await?,
            |v| format!("now signing with {}", v["kid"].as_str().unwrap_or("")),
        ),
        Request::Tenants(TenantCommand::List) => {
            (client.call("GET", "/admin/v1/tenants", None).await?, |v| {
                list(v, tenant_line)
            })
        }
        Request::Tenants(TenantCommand::Show { name }) => (
            client
                .call("GET", &format!("/admin/v1/tenants/{name}"), None)
                .await?,
            tenant_line,
        ),
        Request::Keys(KeyCommand::Create {
            tenant,
            environment,
            roles,
            models,
            expires_in,
            description,
            kind,
            allowed_ips,
            allowed_origins,
        }) => {
            let mut body =
                json!({"tenant": tenant, "environment": environment, "description": description});
            if !roles.is_empty() {
                body["roles"] = json!(roles);
            }
            if !models.is_empty() {
                body["models"] = json!(models);
            }
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            if let Some(k) = kind {
                body["kind"] = json!(k);
            }
            if !allowed_ips.is_empty() {
                body["allowed_ips"] = json!(allowed_ips);
            }
            if !allowed_origins.is_empty() {
                body["allowed_origins"] = json!(allowed_origins);
            }
            (
                client.call("POST", "/admin/v1/keys", Some(body)).await?,
                |v| {
                    format!(
                        "{}\n\nkey: {}\nThe key is shown only now: store it in a secret manager.",
                        key_line(v),
                        v["key"].as_str().unwrap_or("")
                    )
                },
            )
        }
        Request::Keys(KeyCommand::List { tenant }) => {
            let path = match tenant {
                Some(t) => format!("/admin/v1/keys?tenant={t}"),
                None => "/admin/v1/keys".into(),
            };
            (client.call("GET", &path, None).await?, |v| {
                list(v, key_line)
            })
        }
        Request::Keys(KeyCommand::Rotate { id, grace }) => (
            client
                .call(
                    "POST",
                    &format!("/admin/v1/keys/{id}/rotate"),
                    Some(json!({"grace": grace})),
                )
                .await?,
            |v| {
                format!(
                    "{}\n\nkey: {}\nreplaces {} (which stops working at {}). The key is shown only now.",
                    key_line(v),
                    v["key"].as_str().unwrap_or(""),
                    v["replaces"].as_str().unwrap_or(""),
                    v["replaced_key_expires_at"]
                )
            },
        ),
        Request::Keys(KeyCommand::Show { id }) => (
            client
                .call("GET", &format!("/admin/v1/keys/{id}"), None)
                .await?,
            key_line,
        ),
        Request::Keys(KeyCommand::Revoke { id, reason }) => (
            client
                .call(
                    "POST",
                    &format!("/admin/v1/keys/{id}/revoke"),
                    Some(json!({"reason": reason})),
                )
                .await?,
            |v| format!("revoked {}", v["id"].as_str().unwrap_or("")),
        ),
        Request::Audit { limit } => (
            client
                .call("GET", &format!("/admin/v1/audit?limit={limit}"), None)
                .await?,
            |v| {
                list(v, |e| {
                    format!(
                        "{}  {:<8} {:<18} {:<18} {} {}",
                        e["at"],
                        e["actor"].as_str().unwrap_or(""),
                        e["action"].as_str().unwrap_or(""),
                        e["target"].as_str().unwrap_or(""),
                        e["source"].as_str().unwrap_or(""),
                        e["detail"].as_str().unwrap_or("")
                    )
                })
            },
        ),
    };
    match target.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        Output::Text => println!("{}", render(&value)),
    }
    Ok(())
}

fn list(v: &Value, line: fn(&Value) -> String) -> String {
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

fn tenant_line(t: &Value) -> String {
    format!(
        "{:<24} audience={:<9} plan={}",
        t["name"].as_str().unwrap_or(""),
        t["audience"].as_str().unwrap_or(""),
        t["plan"].as_str().unwrap_or("")
    )
}

fn key_line(k: &Value) -> String {
    let state = if k["revoked_at"].is_null() {
        "active"
    } else {
        "revoked"
    };
    format!(
        "{}  tenant={} env={} roles={} expires_at={} {}",
        k["id"].as_str().unwrap_or(""),
        k["tenant"].as_str().unwrap_or(""),
        k["environment"].as_str().unwrap_or(""),
        k["roles"],
        k["expires_at"],
        state
    )
}

struct AdminClient {
    base: String,
    token: String,
}

impl AdminClient {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
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

fn risk_line(v: &Value) -> String {
    let subject = match (v["subject"]["kind"].as_str(), v["subject"]["id"].as_str()) {
        (Some(k), Some(id)) => format!("{k}:{id}"),
        _ => String::new(),
    };
    format!(
        "{subject} factor={} until_us={} reason={}",
        v["factor"],
        v["expires_at_us"],
        v["reason"].as_str().unwrap_or("")
    )
}
