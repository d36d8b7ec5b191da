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
    /// Where the admin commands go and how they print: accepted before or after the command,
    /// as with kubectl and gh.
    #[command(flatten)]
    target: crate::commands::admin::AdminTarget,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config it runs on embedded defaults.
    Serve {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log lines as `text` or `json` (for log shippers); overrides `[log] format`.
        #[arg(long, value_parser = ["text", "json"])]
        log_format: Option<String>,
    },
    /// Check a configuration file (with environment overrides) and exit.
    CheckConfig {
        /// TOML configuration file (also accepted as --config, like `serve`).
        #[arg(required_unless_present = "config")]
        file: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long, short, conflicts_with = "file")]
        config: Option<PathBuf>,
    },
    /// Print the configuration reference (every field, its type, default and meaning) as
    /// Markdown; docs/config.md is this output.
    ConfigReference,
    /// Run the OpenAI-compatible upstream simulator, or (`sim traffic`) write simulated
    /// traffic for the threat detector.
    #[command(args_conflicts_with_subcommands = true)]
    Sim {
        #[command(subcommand)]
        command: Option<crate::commands::hunt::SimCommand>,
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
        /// Fault to inject, as JSON: '{"kind":"none"}', '{"kind":"status","status":500}',
        /// '{"kind":"hang"}', '{"kind":"hang_mid_stream","after_chunks":3}',
        /// '{"kind":"reset_mid_stream","after_chunks":3}', '{"kind":"garbage"}'.
        #[arg(long)]
        fault: Option<String>,
        /// Answer with this text instead of generated words.
        #[arg(long)]
        reply: Option<String>,
        /// Stream --reply in pieces of this many characters (0: word by word).
        #[arg(long, default_value_t = 0)]
        chunk_chars: usize,
        /// Report `usage` in answers (false imitates servers that never do).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        report_usage: bool,
        /// Fields merged into every response and chunk, as a JSON object (debug data the
        /// gateway must drop).
        #[arg(long)]
        extra_fields: Option<String>,
        /// Generate --output-tokens whatever the request's max_tokens (a runaway upstream).
        #[arg(long)]
        ignore_max_tokens: bool,
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
    },
    /// Manage API keys through the admin API.
    Keys {
        #[command(subcommand)]
        command: crate::commands::admin::KeyCommand,
    },
    /// Manage the keys that sign short-lived tokens.
    Tokens {
        #[command(subcommand)]
        command: crate::commands::admin::TokenCommand,
    },
    /// Show recorded usage (requests, tokens, cost) through the admin API.
    Usage {
        #[command(subcommand)]
        command: crate::commands::admin::UsageCommand,
    },
    /// Scale down or suspend a tenant's or key's limits through the admin API.
    Risk {
        #[command(subcommand)]
        command: crate::commands::admin::RiskCommand,
    },
    /// Try the input and output guards on your own data.
    Guard {
        #[command(subcommand)]
        command: crate::commands::guard::GuardCommand,
    },
    /// See what the extraction detector flagged, and clear or allow a principal.
    Threats {
        #[command(subcommand)]
        command: crate::commands::admin::ThreatCommand,
    },
    /// Run the extraction detector over recorded traffic, or score it against labels.
    Detect {
        #[command(subcommand)]
        command: crate::commands::hunt::DetectCommand,
    },
    /// Detect the forensic watermark in a suspect model's outputs.
    Watermark {
        #[command(subcommand)]
        command: crate::commands::watermark::WatermarkCommand,
    },
    /// Show the most recent audit events.
    Audit {
        /// How many of the newest events.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show the configuration in force, or reload it from its file without a restart.
    Config {
        #[command(subcommand)]
        command: crate::commands::admin::ConfigCommand,
    },
    /// Read the audit trail's request records (`requests tail [--follow]`).
    Requests {
        #[command(subcommand)]
        command: crate::commands::admin::RequestsCommand,
    },
    /// Load generator for the benchmark: saturation throughput or latency at a fixed rate.
    Load(LoadArgs),
    /// Exit 0 when a health URL answers 200 within --timeout (container health checks: the
    /// image has no curl).
    Health {
        /// The URL to ask, like http://127.0.0.1:8081/healthz.
        #[arg(long, default_value = "http://127.0.0.1:8081/healthz")]
        url: String,
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = humantime_duration)]
        timeout: std::time::Duration,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (portcullis.1 and one per command, portcullis-keys.1, ...) to --dir.
    Man {
        /// Where to write them (created if missing), like /usr/local/share/man/man1.
        #[arg(long)]
        dir: PathBuf,
    },
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
    /// The model to ask for.
    #[arg(long, default_value = "sim-chat")]
    model: String,
    /// Sent as Authorization: Bearer.
    #[arg(long, env = "PORTCULLIS_LOAD_API_KEY")]
    api_key: Option<String>,
    /// Grow the user message with ordinary prose to about this many characters (the default
    /// request is a system and a user message of about 300 bytes in all).
    #[arg(long)]
    prompt_chars: Option<usize>,
}

fn humantime_duration(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<humantime::Duration>()
        .map(Into::into)
        .map_err(|e| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, log_format } => {
            let file = config;
            let mut config = Config::load(file.as_deref()).context("invalid configuration")?;
            if let Some(format) = log_format {
                config.log.format = format;
            }
            crate::logging::init(&config.log);
            crate::commands::serve::serve(config, file).await
        }
        Command::ConfigReference => {
            print!("{}", portcullis_config::reference::markdown());
            Ok(())
        }
        Command::CheckConfig { file, config } => {
            let file = file.or(config).context("give the configuration file")?;
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
            command: Some(command),
            ..
        } => crate::commands::hunt::run_sim(command, &cli.target).await,
        Command::Threats { command } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Threats(command),
            )
            .await
        }
        Command::Detect { command } => {
            crate::commands::hunt::run_detect(command, cli.target.output_file())
        }
        Command::Sim {
            command: None,
            listen,
            latency_ms,
            tokens_per_second,
            output_tokens,
            fault,
            reply,
            chunk_chars,
            report_usage,
            extra_fields,
            ignore_max_tokens,
            no_record,
        } => {
            crate::logging::init(&Default::default());
            let fault = match fault {
                Some(json) => serde_json::from_str(&json).context("invalid --fault")?,
                None => Default::default(),
            };
            let extra_fields = match extra_fields {
                Some(json) => serde_json::from_str(&json)
                    .context("invalid --extra-fields: give a JSON object")?,
                None => Default::default(),
            };
            let sim = portcullis_sim::Simulator::new(portcullis_sim::SimOptions {
                latency_ms,
                tokens_per_second,
                output_tokens,
                fault,
                record: !no_record,
                reply,
                chunk_chars,
                report_usage,
                extra_fields,
                ignore_max_tokens,
                ..Default::default()
            });
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "simulator listening");
            println!("simulator on http://{addr}/v1 (options: PUT http://{addr}/_sim/options)");
            tokio::select! {
                _ = sim.serve(listener) => {}
                _ = crate::commands::serve::terminate() => {}
            }
            Ok(())
        }
        Command::Demo { port } => crate::commands::demo::run(port).await,
        Command::Tenants { command } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Tenants(command),
            )
            .await
        }
        Command::Keys { command } => {
            crate::commands::admin::run(cli.target, crate::commands::admin::Request::Keys(command))
                .await
        }
        Command::Tokens { command } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Tokens(command),
            )
            .await
        }
        Command::Usage { command } => {
            crate::commands::admin::run(cli.target, crate::commands::admin::Request::Usage(command))
                .await
        }
        Command::Risk { command } => {
            crate::commands::admin::run(cli.target, crate::commands::admin::Request::Risk(command))
                .await
        }
        Command::Guard { command } => crate::commands::guard::run(command),
        Command::Watermark { command } => match crate::commands::watermark::run_local(command)? {
            None => Ok(()),
            Some(remote) => {
                crate::commands::admin::run(
                    cli.target,
                    crate::commands::admin::Request::Watermark(remote),
                )
                .await
            }
        },
        Command::Audit { limit } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Audit { limit },
            )
            .await
        }
        Command::Config { command } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Config(command),
            )
            .await
        }
        Command::Requests { command } => {
            crate::commands::admin::run(
                cli.target,
                crate::commands::admin::Request::Requests(command),
            )
            .await
        }
        Command::Health { url, timeout } => crate::commands::health::check(&url, timeout).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: the generator panics on a closed pipe (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "portcullis", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).or_else(|e| {
                match e.kind() {
                    std::io::ErrorKind::BrokenPipe => Ok(()),
                    _ => Err(e),
                }
            })?;
            Ok(())
        }
        Command::Man { dir } => crate::commands::man::write(&dir),
        Command::Load(args) => {
            let plan = portcullis_sim::load::LoadPlan {
                url: args.url,
                rate: args.rate,
                connections: args.connections.max(1),
                duration: args.duration,
                stream: args.stream,
                model: args.model,
                api_key: args.api_key,
                prompt_chars: args.prompt_chars,
            };
            let report = portcullis_sim::load::run(plan)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for in `--help`.
    #[test]
    fn every_option_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "portcullis", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:#?}");
    }

    /// Admin options are global: before or after the command.
    #[test]
    fn admin_options_go_before_or_after_the_command() {
        use clap::Parser;
        for args in [
            vec!["portcullis", "--output", "json", "keys", "list"],
            vec!["portcullis", "keys", "list", "--output", "json"],
            vec![
                "portcullis",
                "--admin-url",
                "http://h:1",
                "keys",
                "--output",
                "json",
                "list",
            ],
        ] {
            Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
