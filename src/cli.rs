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
    /// Run the scheduler (the timely/differential dataflow) against the configured log.
    Scheduler,
    /// Run an executor: tools and aggregation (inference arrives with the model runtime).
    Executor {
        /// Worker id (default: hostname-pid).
        #[arg(long)]
        id: Option<String>,
    },
    /// Write a synthetic recorded log (closed-loop simulation in virtual time).
    Gen(crate::replay::GenArgs),
    /// Feed a recorded log through the scheduler as fast as possible; print events/s.
    Replay(crate::replay::ReplayArgs),
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
pub enum BenchTarget {
    /// Append + consume throughput of the configured event log (embedded or kafka).
    Log(crate::bench::log::LogBenchArgs),
    /// CPU inference speed: SmolLM2 prefill/decode tokens/s, MiniLM embeddings/s.
    Infer(crate::bench::infer::InferBenchArgs),
}

/// Load and validate the layered settings once.
pub fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    Loader::new().file(cli.config.as_deref()).overrides(&cli.set)?.load().context("invalid configuration")
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Config { action: ConfigAction::Defaults } => {
            print!("{}", splai_config::DEFAULT_TOML);
            Ok(())
        }
        Command::Config { action: ConfigAction::Show } => {
            print!("{}", settings(&cli)?.to_toml());
            Ok(())
        }
        Command::Scheduler => {
            let settings = settings(&cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "scheduler")?;
            tokio::runtime::Runtime::new()?.block_on(crate::scheduler_cmd::run(&settings))
        }
        Command::Executor { id } => {
            let settings = settings(&cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "executor")?;
            tokio::runtime::Runtime::new()?.block_on(crate::executor_cmd::start(&settings, id.clone()))
        }
        Command::Gen(args) => crate::replay::gen_cmd(&settings(&cli)?, args),
        Command::Replay(args) => crate::replay::replay_cmd(&settings(&cli)?, args),
        Command::Bench { target: BenchTarget::Infer(args) } => {
            let settings = settings(&cli)?;
            crate::bench::infer::run(&settings.executor.model_dir, args)
        }
        Command::Bench { target: BenchTarget::Log(args) } => {
            let settings = settings(&cli)?;
            let _telemetry = splai_telemetry::init(&settings.telemetry, "bench")?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::bench::log::run(&settings, args))
        }
    }
}
