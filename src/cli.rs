//! Command-line surface: global config flags, then a subcommand.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use splai_config::{Loader, Settings};

#[derive(Debug, Parser)]
#[command(name = "splai", version, about = "SPLAI: a distributed runtime for AI task graphs on CPUs")]
pub struct Cli {
    /// TOML file layered over the embedded defaults.
    #[arg(long, short = 'c', global = true, env = "SPLAI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting, e.g. `--set log.backend=kafka` (repeatable; wins over file and env).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run gateway + scheduler + executors in one process on the embedded default.
    Up(crate::up::UpArgs),
    /// Run the HTTP gateway (API, read-model projection, SSE) against the configured services.
    Gateway,
    /// Run the scheduler (the timely/differential dataflow) against the configured log.
    Scheduler {
        /// Timely workers (threads) of the dataflow (default: scheduler.timely_workers).
        #[arg(short = 'w', long = "workers")]
        workers: Option<u32>,
    },
    /// Run an executor: inference, embeddings, tools and aggregation.
    Executor {
        /// Worker id (default: hostname-pid).
        #[arg(long)]
        id: Option<String>,
    },
    /// Submit a job (from a JSON/YAML file or flags); `--wait` follows it and prints the result.
    Submit(crate::client::commands::SubmitArgs),
    /// List jobs, newest first.
    Jobs {
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One job: status, the DAG as a tree with task states, and the result.
    Job { id: String },
    /// Cancel a job (idempotent).
    Cancel { id: String },
    /// Follow a job's event stream (SSE), from the start or after an event id.
    Logs {
        id: String,
        #[arg(long)]
        after: Option<String>,
    },
    /// Workers: capabilities, utilization, live or not.
    Workers,
    /// A job's artifacts with lineage; `--task T` prints that task's output.
    Artifacts {
        id: String,
        #[arg(long)]
        task: Option<String>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The wire contract's JSON Schemas and the OpenAPI document, checked into `contract/`.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// The event log.
    Log {
        #[command(subcommand)]
        action: LogAction,
    },
    /// Write a synthetic recorded log (closed-loop simulation in virtual time).
    Gen(crate::replay::GenArgs),
    /// Feed a recorded log through the scheduler as fast as possible; print events/s.
    Replay(crate::replay::ReplayArgs),
    /// Kubernetes: the SPLAIJob operator, the CRDs, SPLAIPolicy rendering.
    Operator {
        #[command(subcommand)]
        action: crate::operator_cmd::OperatorAction,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (defaults → file → SPLAI_ env → --set) as TOML.
    Show,
    /// Print the embedded defaults with every field's documentation.
    Defaults,
}

#[derive(Debug, Subcommand)]
pub enum LogAction {
    /// Delete the scheduler's input records its oldest valid recorded snapshot holds (not
    /// `control`, and never past what a consumer group that commits has not read); exit 1 when
    /// no recorded snapshot is valid.
    Compact,
}

#[derive(Debug, Subcommand)]
pub enum ContractAction {
    /// Write the schemas and the OpenAPI document this build generates; exit 1, writing nothing,
    /// when that would break the current contract version.
    Generate {
        #[arg(long, default_value = "contract")]
        dir: std::path::PathBuf,
    },
    /// Exit 1 when the checked-in files differ from what this build generates, saying whether
    /// the difference breaks the contract (then bump the envelope version).
    Check {
        #[arg(long, default_value = "contract")]
        dir: std::path::PathBuf,
        /// Also exit 1 when the checked-in files break the same version's files at this commit
        /// (CI passes the parent commit).
        #[arg(long)]
        base: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Re-check the whole hash chain in the read model (`store.url`); exit 1 naming the first
    /// broken record.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Print the sha256 to put in `gateway.tokens.NAME.sha256` for a token.
    Hash { token: String },
    /// Make a new random token and print it with its hash.
    New,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Append + consume throughput of the configured event log (embedded or kafka).
    Log(crate::bench::log::LogBenchArgs),
    /// The fan-out DAG users submit (split → maps → reduce) over REST: one job alone, and many at once.
    Fanout(crate::bench::fanout::FanoutBenchArgs),
    /// Per-hop overhead of a chain of short tasks through a full in-process stack.
    Hops(crate::bench::hops::HopsBenchArgs),
    /// CPU inference speed: SmolLM2 prefill/decode tokens/s, MiniLM embeddings/s.
    Infer(crate::bench::infer::InferBenchArgs),
    /// Concurrent chat requests through a full in-process stack (continuous batching).
    Chat(crate::bench::chat::ChatBenchArgs),
    /// MiniLM sentence embeddings, optionally beside sentence-transformers on torch.
    Embed(crate::bench::embed::EmbedBenchArgs),
    /// Control-plane throughput: no-op tasks end to end through a full in-process stack.
    Noop(crate::bench::noop::NoopBenchArgs),
    /// batch_analysis over records on a generated ticket file, scored against its truth.
    Analysis(crate::bench::analysis::AnalysisBenchArgs),
    /// Scale-out on real inference: the same batch_analysis jobs on 1, 2, … executors.
    Scale(crate::bench::scale::ScaleBenchArgs),
    /// Resumability: a long job with everything SIGKILLed mid-way and restarted.
    Resume(crate::bench::resume::ResumeBenchArgs),
    /// Scheduler start to live after N jobs of history: full replay, then from a snapshot.
    Recovery(crate::bench::recovery::RecoveryBenchArgs),
    /// SIGKILL of the leading scheduler with a standby: how long until the standby leads.
    Failover(crate::bench::failover::FailoverBenchArgs),
    /// Run every benchmark and write the report section of docs/benchmarks.md.
    Report(crate::bench::report::ReportArgs),
}

/// Load and validate the layered settings once.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Loader::new().file(cli.config.as_deref()).overrides(&cli.set)?.load().context("invalid configuration")
}

/// Run a client command against the configured gateway.
fn client_cmd<F, Fut>(cli: &Cli, f: F) -> anyhow::Result<u8>
where
    F: FnOnce(crate::client::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u8>>,
{
    let settings = settings(cli)?;
    let client = crate::client::from_settings(&settings.client)?;
    tokio::runtime::Runtime::new()?.block_on(f(client))
}

/// Run `cli`; the exit code on success (1: a followed job did not succeed, or a broken audit
/// chain). Every command is dispatched here, once.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    use crate::client::commands as c;
    let done = |r: anyhow::Result<()>| r.map(|()| 0);
    match &cli.command {
        Command::Up(args) => {
            let settings = settings(&cli)?;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let executors = args.executors.unwrap_or(cores).max(1);
            crate::threads::pin_inference_threads(crate::threads::per_attempt(
                settings.executor.inference_threads,
                executors,
            ))?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "up")?;
            tokio::runtime::Runtime::new()?.block_on(crate::up::run(&settings, args))
        }
        Command::Gateway => {
            let settings = settings(&cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "gateway")?;
            done(tokio::runtime::Runtime::new()?.block_on(crate::gateway_cmd::run(&settings)))
        }
        Command::Scheduler { workers } => {
            let mut settings = settings(&cli)?;
            if let Some(w) = workers {
                anyhow::ensure!((1..=64).contains(w), "-w takes 1 to 64 timely workers, not {w}");
                settings.scheduler.timely_workers = *w;
            }
            let _telemetry = splai_telemetry::init(&settings.telemetry, "scheduler")?;
            done(tokio::runtime::Runtime::new()?.block_on(crate::scheduler_cmd::run(&settings)))
        }
        Command::Executor { id } => {
            let settings = settings(&cli)?;
            let slots = crate::executor_cmd::options(&settings, id.clone()).slots;
            crate::threads::pin_inference_threads(crate::threads::per_attempt(
                settings.executor.inference_threads,
                slots,
            ))?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "executor")?;
            done(tokio::runtime::Runtime::new()?.block_on(crate::executor_cmd::start(&settings, id.clone())))
        }
        Command::Operator { action } => {
            let settings = settings(&cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "operator")?;
            done(crate::operator_cmd::run(&settings, action))
        }
        Command::Submit(args) => client_cmd(&cli, |cl| async move { c::submit(&cl, args).await }),
        Command::Jobs { state, limit } => {
            client_cmd(&cli, |cl| async move { c::jobs(&cl, state.as_deref(), *limit).await })
        }
        Command::Job { id } => client_cmd(&cli, |cl| async move { c::job(&cl, id).await }),
        Command::Cancel { id } => client_cmd(&cli, |cl| async move { c::cancel(&cl, id).await }),
        Command::Logs { id, after } => {
            client_cmd(&cli, |cl| async move { c::logs(&cl, id, after.clone()).await })
        }
        Command::Workers => client_cmd(&cli, |cl| async move { c::workers(&cl).await }),
        Command::Artifacts { id, task } => {
            client_cmd(&cli, |cl| async move { c::artifacts(&cl, id, task.as_deref()).await })
        }
        Command::Audit { action: AuditAction::Verify } => audit_verify(&settings(&cli)?),
        Command::Token { action: TokenAction::Hash { token } } => {
            println!("{}", splai_gateway::auth::token_hash(token));
            Ok(0)
        }
        Command::Token { action: TokenAction::New } => {
            let token = format!("splai_{}", uuid::Uuid::new_v4().simple());
            println!("token  {token}\nsha256 {}", splai_gateway::auth::token_hash(&token));
            Ok(0)
        }
        Command::Config { action: ConfigAction::Defaults } => {
            print!("{}", splai_config::DEFAULT_TOML);
            Ok(0)
        }
        Command::Config { action: ConfigAction::Show } => {
            print!("{}", settings(&cli)?.to_toml());
            Ok(0)
        }
        Command::Contract { action: ContractAction::Generate { dir } } => crate::contract::generate(dir),
        Command::Contract { action: ContractAction::Check { dir, base } } => {
            crate::contract::check(dir, base.as_deref())
        }
        Command::Log { action: LogAction::Compact } => log_compact(&settings(&cli)?),
        Command::Gen(args) => done(crate::replay::gen_cmd(&settings(&cli)?, args)),
        Command::Replay(args) => done(crate::replay::replay_cmd(&settings(&cli)?, args)),
        Command::Bench { target } => done(bench(&cli, target)),
    }
}

/// `splai log compact`: 0 after deleting what the oldest valid snapshot holds, 1 when none is.
fn log_compact(settings: &Settings) -> anyhow::Result<u8> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let log = splai_ingest::log::open_log(&settings.log).await?;
        let artifacts = splai_store::artifacts::ArtifactStore::open(&settings.artifacts)?;
        let store = splai_stack::scheduler::snapshot_store(&artifacts);
        let gate = splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(std::sync::Arc::new);
        let writer = splai_ingest::log::EventWriter::new(log, settings.log.topic_prefix.clone());
        match splai_dataflow::snapshots::compact(&writer, store.as_ref(), gate).await {
            Ok(cuts) => {
                for c in &cuts {
                    println!(
                        "{}/{}: {} records below offset {} deleted",
                        c.topic, c.partition, c.deleted, c.before
                    );
                }
                println!("deleted {} records", cuts.iter().map(|c| c.deleted).sum::<u64>());
                Ok(0)
            }
            Err(splai_dataflow::snapshots::CompactError::NoSnapshot) => {
                eprintln!("splai log compact: {}", splai_dataflow::snapshots::CompactError::NoSnapshot);
                Ok(1)
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `splai audit verify`: 0 when the audit chain and its anchors on the log check out, else 1.
fn audit_verify(settings: &Settings) -> anyhow::Result<u8> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let key = splai_gateway::audit::key(&settings.gateway);
        let store = splai_store::Store::connect(&settings.store).await?.with_audit_key(&key);
        let log = splai_ingest::log::open_log(&settings.log).await?;
        let gate = splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(std::sync::Arc::new);
        let writer = splai_ingest::log::EventWriter::new(log, settings.log.topic_prefix.clone());
        let verdict = splai_gateway::audit::verify(&store, &writer, gate).await?;
        if !verdict.keyed {
            println!("warning: the audit chain is unkeyed (no gateway.audit_key or signing_key)");
        }
        if verdict.ok {
            println!(
                "audit chain OK: {} records, {} anchor(s) on the log checked (up to record {})",
                verdict.records,
                verdict.anchors_checked,
                verdict.anchored_seq.unwrap_or(0)
            );
            Ok(0)
        } else {
            println!(
                "audit chain BROKEN at record {}: {}",
                verdict.first_broken_seq.unwrap_or(0),
                verdict.reason.unwrap_or_default()
            );
            Ok(1)
        }
    })
}

fn bench(cli: &Cli, target: &BenchTarget) -> anyhow::Result<()> {
    let runtime = || tokio::runtime::Runtime::new();
    match target {
        BenchTarget::Infer(args) => crate::bench::infer::run(&settings(cli)?.executor.model_dir, args),
        BenchTarget::Embed(args) => crate::bench::embed::run(&settings(cli)?.executor.model_dir, args),
        BenchTarget::Scale(args) => runtime()?.block_on(crate::bench::scale::measure(args)).map(|_| ()),
        BenchTarget::Resume(args) => runtime()?.block_on(crate::bench::resume::measure(args)).map(|_| ()),
        BenchTarget::Report(args) => runtime()?.block_on(crate::bench::report::run(args)),
        BenchTarget::Failover(args) => runtime()?.block_on(crate::bench::failover::run(args)),
        BenchTarget::Noop(args) => runtime()?.block_on(crate::bench::noop::run(&settings(cli)?, args)),
        BenchTarget::Recovery(args) => {
            let settings = settings(cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "bench")?;
            runtime()?.block_on(crate::bench::recovery::run(&settings, args))
        }
        BenchTarget::Analysis(args) => {
            runtime()?.block_on(crate::bench::analysis::run(&settings(cli)?, args))
        }
        BenchTarget::Chat(args) => runtime()?.block_on(crate::bench::chat::run(&settings(cli)?, args)),
        BenchTarget::Fanout(args) => runtime()?.block_on(crate::bench::fanout::run(&settings(cli)?, args)),
        BenchTarget::Hops(args) => runtime()?.block_on(crate::bench::hops::run(&settings(cli)?, args)),
        BenchTarget::Log(args) => {
            let settings = settings(cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "bench")?;
            runtime()?.block_on(crate::bench::log::run(&settings, args))
        }
    }
}
