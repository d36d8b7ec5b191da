//! `portcullis sim traffic` and `portcullis detect replay|eval`: the threat detector offline.
//! The traffic simulator writes seeded, labelled traffic; replay runs the gateway's own
//! detector over recorded traffic in its recorded time; eval scores it against labels.

use anyhow::Context;
use clap::Subcommand;
use portcullis_hunt::{eval, replay, simulate, Detector, Limits};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

// `--output FILE` (traffic, verdicts) is the global `--output`, which the admin commands
// read as a format: one flag name for "where the result goes" across the command line.

#[derive(Subcommand)]
pub enum SimCommand {
    /// Write seeded traffic of legitimate personas and extraction campaigns, with labels.
    Traffic {
        /// Scenario file (TOML): personas and campaigns (see the README).
        #[arg(long)]
        scenario: PathBuf,
        /// Seed of every random choice: the same seed writes the same traffic.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Ground truth per key (JSON lines).
        #[arg(long)]
        labels: PathBuf,
        /// Send the traffic to the gateway at this URL (its public listener) instead of
        /// writing it: each simulated tenant and key is created through the admin API
        /// (`--admin-url`, `--admin-token`), and the labels name the real key ids.
        #[arg(long, value_name = "URL")]
        send: Option<String>,
        /// With `--send`: the first requests only.
        #[arg(long, requires = "send")]
        max_requests: Option<u64>,
        /// With `--send`: requests in flight at once.
        #[arg(long, default_value_t = 8, requires = "send")]
        concurrency: usize,
        /// With `--send`: the model chat, completion and responses requests name.
        #[arg(long, default_value = "chat", requires = "send")]
        model: String,
        /// With `--send`: the model embedding requests name.
        #[arg(long, default_value = "embed", requires = "send")]
        embedding_model: String,
    },
}

#[derive(Subcommand)]
pub enum DetectCommand {
    /// Run the detector over recorded traffic; one verdict line per key and per tenant.
    Replay {
        /// Recorded traffic (JSON lines; see the README); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// A gateway configuration whose `[detect]` settings to replay with (its models,
        /// tenants and keys are not needed: the traffic's are taken as recorded).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Most keys held at once (the least recently seen are forgotten first); default
        /// the configuration's `[detect] max_keys`.
        #[arg(long)]
        max_keys: Option<usize>,
    },
    /// Replay labelled traffic and report detection, false positives and cost.
    Eval {
        /// Recorded traffic (JSON lines, as for replay); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Ground truth per key (JSON lines: key, tenant, label, class, campaign).
        #[arg(long)]
        labels: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn reader(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
}

fn writer(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufWriter::new(std::io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
}

pub async fn run_sim(
    command: SimCommand,
    target: &super::admin::AdminTarget,
) -> anyhow::Result<()> {
    let SimCommand::Traffic {
        scenario,
        seed,
        labels,
        send,
        max_requests,
        concurrency,
        model,
        embedding_model,
    } = command;
    let text = std::fs::read_to_string(&scenario)
        .with_context(|| format!("cannot read {}", scenario.display()))?;
    let scenario: simulate::Scenario = toml::from_str(&text)
        .with_context(|| format!("invalid scenario {}", scenario.display()))?;
    if let Some(base) = send {
        let admin = super::admin::client(target)?;
        let mut label_out = writer(&labels)?;
        let to = super::sim_send::Send {
            base: &base,
            max_requests,
            concurrency,
            model: &model,
            embedding_model: &embedding_model,
        };
        return super::sim_send::send(&admin, &scenario, seed, to, &mut label_out).await;
    }
    let output = target.output_file();
    let mut traffic = writer(&output)?;
    let mut label_out = writer(&labels)?;
    let written = simulate::simulate(&scenario, seed, &mut traffic, &mut label_out)?;
    traffic.flush()?;
    label_out.flush()?;
    eprintln!(
        "{} requests from {} accounts (seed {seed})",
        written.events, written.accounts
    );
    Ok(())
}

pub fn run_detect(command: DetectCommand, output: PathBuf) -> anyhow::Result<()> {
    match command {
        DetectCommand::Replay {
            input,
            config,
            max_keys,
        } => {
            let detect = match &config {
                Some(path) => {
                    portcullis_config::Config::load(Some(path))
                        .with_context(|| format!("invalid configuration {}", path.display()))?
                        .detect
                }
                None => portcullis_config::Detect::default(),
            };
            let keys = max_keys.unwrap_or(detect.max_keys).max(1);
            let mut detector = Detector::new(Limits {
                keys,
                tenants: keys / 5 + 1,
            });
            let stats = replay::replay(reader(&input)?, &mut detector, |_, _, _, _| {})?;
            let mut out = writer(&output)?;
            let verdicts = detector.verdicts();
            for v in &verdicts {
                serde_json::to_writer(&mut out, v)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            report_skips(&stats);
            let flagged = verdicts.iter().filter(|v| v.flagged).count();
            eprintln!(
                "{} requests replayed in {:.1} s; {} verdicts, {flagged} flagged; detector p50 {:.1} µs, p99 {:.1} µs per request",
                stats.events,
                stats.wall_seconds,
                verdicts.len(),
                stats.percentile_us(50.0),
                stats.percentile_us(99.0)
            );
            Ok(())
        }
        DetectCommand::Eval {
            input,
            labels,
            json,
        } => {
            let labels = eval::read_labels(reader(&labels)?)?;
            let (report, stats) = eval::evaluate(reader(&input)?, &labels)?;
            report_skips(&stats);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}

fn report_skips(stats: &replay::ReplayStats) {
    if let Some((line, why)) = &stats.first_skip {
        eprintln!(
            "skipped {} line(s) that are not recorded requests; the first, line {line}: {why}",
            stats.skipped
        );
    }
}
