//! The command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis_config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A security gateway for OpenAI-compatible inference APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config it runs on embedded defaults.
    Serve {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file (with environment overrides) and exit.
    CheckConfig {
        /// TOML configuration file.
        file: PathBuf,
    },
    /// Run the OpenAI-compatible upstream simulator.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Delay before response headers, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Streaming pace; 0 streams as fast as possible.
        #[arg(long, default_value_t = 0.0)]
        tokens_per_second: f64,
        /// Completion length in tokens.
        #[arg(long, default_value_t = 16)]
        output_tokens: usize,
        /// Fault to inject, as JSON: '{"kind":"status","status":500}', '{"kind":"hang"}',
        /// '{"kind":"reset_mid_stream","after_chunks":3}', '{"kind":"garbage"}'.
        #[arg(long)]
        fault: Option<String>,
        /// Do not record requests (for benchmarks).
        #[arg(long)]
        no_record: bool,
    },
    /// Start the simulator and the gateway together and print a first request to try.
    Demo {
        /// Port of the gateway's public listener (the admin listener takes the next one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Manage tenants through the admin API.
    Tenants {
        #[command(subcommand)]
        command: crate::commands::admin::TenantCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Manage API keys through the admin API.
    Keys {
        #[command(subcommand)]
        command: crate::commands::admin::KeyCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Manage the keys that sign short-lived tokens.
    Tokens {
        #[command(subcommand)]
        command: crate::commands::admin::TokenCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Show recorded usage (requests, tokens, cost) through the admin API.
    Usage {
        #[command(subcommand)]
        command: crate::commands::admin::UsageCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Scale down or suspend a tenant's or key's limits through the admin API.
    Risk {
        #[command(subcommand)]
        command: crate::commands::admin::RiskCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Try the input and output guards on your own data.
    Guard {
        #[command(subcommand)]
        command: crate::commands::guard::GuardCommand,
    },
    /// Show the most recent audit events.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Read the audit trail's request records (`requests tail [--follow]`).
    Requests {
        #[command(subcommand)]
        command: crate::commands::admin::RequestsCommand,
        #[command(flatten)]
        target: crate::commands::admin::AdminTarget,
    },
    /// Load generator for the benchmark: saturation throughput or latency at a fixed rate.
    Load(LoadArgs),
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Full URL, e.g. http://127.0.0.1:8080/v1/chat/completions.
    #[arg(long)]
    url: String,
    /// Requests per second; without it the load saturates.
    #[arg(long)]
    rate: Option<f64>,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Run time, like "10s".
    #[arg(long, default_value = "10s", value_parser = humantime_duration)]
    duration: std::time::Duration,
    /// Ask for streamed completions and report time to first byte.
    #[arg(long)]
    stream: bool,
    #[arg(long, default_value = "sim-chat")]
    model: String,
    /// Sent as Authorization: Bearer.
    #[arg(long, env = "PORTCULLIS_LOAD_API_KEY")]
    api_key: Option<String>,
}

fn humantime_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<humantime::Duration>()
        .map(Into::into)
        .map_err(|e| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(config.as_deref()).context("invalid configuration")?;
            crate::logging::init(&config.log);
            crate::commands::serve::serve(config).await
        }
        Command::CheckConfig { file } => {
            let config = Config::load(Some(&file)).context("invalid configuration")?;
            println!(
                "configuration OK: {} upstream(s), {} model(s), public listener {}",
                config.upstreams.len(),
                config.models.len(),
                config.listeners.public
            );
            Ok(())
        }
        Command::Sim {
            listen,
            latency_ms,
            tokens_per_second,
            output_tokens,
            fault,
            no_record,
        } => {
            crate::logging::init(&Default::default());
            let fault = match fault {
                Some(json) => serde_json::from_str(&json).context("invalid --fault")?,
                None => Default::default(),
            };
            let sim = portcullis_sim::Simulator::new(portcullis_sim::SimOptions {
                latency_ms,
                tokens_per_second,
                output_tokens,
                fault,
                record: !no_record,
                ..Default::default()
            });
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            tracing::info!(addr = %listener.local_addr()?, "simulator listening");
            tokio::select! {
                _ = sim.serve(listener) => {}
                _ = crate::commands::serve::terminate() => {}
            }
            Ok(())
        }
        Command::Demo { port } => crate::commands::demo::run(port).await,
        Command::Tenants { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Tenants(command))
                .await
        }
        Command::Keys { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Keys(command))
                .await
        }
        Command::Tokens { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Tokens(command))
                .await
        }
        Command::Usage { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Usage(command))
                .await
        }
        Command::Risk { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Risk(command))
                .await
        }
        Command::Guard { command } => crate::commands::guard::run(command),
        Command::Audit { limit, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Audit { limit })
                .await
        }
        Command::Requests { command, target } => {
            crate::commands::admin::run(target, crate::commands::admin::Request::Requests(command))
                .await
        }
        Command::Load(args) => {
            let plan = portcullis_sim::load::LoadPlan {
                url: args.url,
                rate: args.rate,
                connections: args.connections.max(1),
                duration: args.duration,
                stream: args.stream,
                model: args.model,
                api_key: args.api_key,
            };
            let report = portcullis_sim::load::run(plan)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}
