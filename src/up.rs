//! `splai up`: gateway + scheduler + executors in one process, on the embedded default (embedded
//! log, SQLite read model, local artifacts, models from `./models`). Data lives under `data/`
//! and survives a restart: the scheduler replays its log, so jobs in flight resume.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use splai_config::{LogBackend, Settings};
use splai_stack::{Stack, StackOptions};

use crate::client::Client;
use crate::client::commands::{SubmitArgs, request_of, wait};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Executors in this process, one slot each (default: one per core).
    #[arg(long)]
    pub executors: Option<u32>,
    /// Run the demo once everything is up: which problems recur in
    /// `examples/support-tickets-table.json` (a real `batch_analysis` records job on the local
    /// models: a ranked table of causes with counts and ticket ids), print it, then stop.
    #[arg(long)]
    pub demo: bool,
    /// Like `--demo` with your own request file (JSON or YAML).
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
}

pub async fn run(settings: &Settings, args: &UpArgs) -> anyhow::Result<u8> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let executors = args.executors.unwrap_or(cores).max(1);
    let stack = Stack::start(settings, &StackOptions { executors, slots_per_executor: None }).await?;
    let url = stack.url.clone();
    println!("SPLAI is up: gateway, scheduler and {executors} executor(s) in this process");
    println!("  API      {url}/v1/jobs   (OpenAPI: {url}/openapi.json)");
    println!("  UI       {url}/ui/   (jobs, DAGs, workers, charts)");
    println!("  health   {url}/readyz   metrics {url}/metrics");
    let backend = match settings.log.backend {
        LogBackend::Embedded => format!("embedded log at {}", settings.log.embedded.path),
        LogBackend::Kafka => format!("Kafka at {}", settings.log.kafka.brokers),
    };
    println!("  data     {backend}; read model {}; artifacts {}", settings.store.url, settings.artifacts.url);
    println!("  models   {}", settings.executor.model_dir);
    if !settings.gateway.auth {
        println!("  auth     OFF (embedded default: every caller is trusted; tenant from X-SPLAI-Tenant)");
    }
    let request = match (&args.run, args.demo) {
        (Some(file), _) => Some(file.clone()),
        (None, true) => Some(PathBuf::from("examples/support-tickets-table.json")),
        _ => None,
    };
    let outcome = match request {
        Some(file) => match crate::client::local(&url) {
            Ok(client) => run_one(&client, &file).await,
            Err(e) => Err(e.into()),
        },
        None => {
            println!("Ctrl-C stops it; jobs in flight resume at the next start.");
            crate::scheduler_cmd::shutdown_signal().await;
            Ok(0)
        }
    };
    println!("stopping…");
    stack.shutdown().await?;
    outcome
}

/// Wait until the gateway is ready and an executor is live.
pub async fn wait_ready(client: &Client) -> anyhow::Result<()> {
    Ok(client.wait_ready(1, Duration::from_secs(60)).await?)
}

/// Once ready, submit `file` and follow it.
pub async fn run_one(client: &Client, file: &std::path::Path) -> anyhow::Result<u8> {
    wait_ready(client).await?;
    let args = SubmitArgs {
        file: Some(file.to_path_buf()),
        job_type: None,
        input: None,
        text_file: None,
        prompt: None,
        model: None,
        priority: None,
        idempotency_key: None,
        wait: true,
    };
    let request = request_of(&args)?;
    let (_, accepted) = client.post("/v1/jobs", &request, None).await?;
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_string();
    println!("submitted {} as job {job_id}; following it…", file.display());
    let started = Instant::now();
    let code = wait(client, &job_id, true).await?;
    println!("(job {job_id} took {:.1} s)", started.elapsed().as_secs_f64());
    Ok(code)
}
