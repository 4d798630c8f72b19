//! `splai up`: gateway + scheduler + executors in one process, on the embedded default (embedded
//! log, SQLite read model, local artifacts, models from `./models`). Data lives under `data/`
//! and survives a restart: the scheduler replays its log, so jobs in flight resume.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use splai_config::{LogBackend, Settings};
use splai_dataflow::runner::spawn;
use splai_store::Store;
use splai_store::artifacts::ArtifactStore;

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

/// Gateway, scheduler and executors running in this process.
pub struct Stack {
    pub url: String,
    stop: tokio::sync::watch::Sender<bool>,
    gateway: tokio::task::JoinHandle<Result<(), splai_gateway::GatewayError>>,
    scheduler: std::thread::JoinHandle<Result<(), splai_ingest::log::LogError>>,
    workers: Vec<tokio::task::JoinHandle<Result<(), splai_ingest::log::LogError>>>,
}

impl Stack {
    /// Start everything on the configured services with `executors` executors, which share the
    /// models (one engine per LLM, using every core) and split the slots `executor.slots` gives
    /// (by default one per core plus the engine's sequences).
    pub async fn start(settings: &Settings, executors: u32) -> anyhow::Result<Stack> {
        Self::start_sized(settings, executors, None).await
    }

    /// Start everything with `executors` executors of `slots` slots each.
    pub async fn start_with_slots(settings: &Settings, executors: u32, slots: u32) -> anyhow::Result<Stack> {
        Self::start_sized(settings, executors, Some(slots.max(1))).await
    }

    async fn start_sized(settings: &Settings, executors: u32, slots: Option<u32>) -> anyhow::Result<Stack> {
        let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
        let store = Store::connect(&settings.store).await.context("opening the read model")?;
        let artifacts = ArtifactStore::open(&settings.artifacts)?;
        let listener = tokio::net::TcpListener::bind(&settings.gateway.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (set another with --set gateway.listen=HOST:PORT)",
                settings.gateway.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let gateway = tokio::spawn({
            let (settings, log, rx) = (settings.clone(), log.clone(), stop_rx.clone());
            let artifacts = artifacts.clone();
            async move { splai_gateway::serve(&settings, log, store, artifacts, listener, rx).await }
        });
        let run_opts = crate::scheduler_cmd::run_options(settings)?;
        let scheduler =
            spawn(log.clone(), crate::scheduler_cmd::options(settings)?, run_opts, stop_rx.clone());
        let models = crate::executor_cmd::models(settings);
        let slots = slots.unwrap_or_else(|| {
            let total = match settings.executor.slots {
                0 => crate::executor_cmd::default_slots(&models),
                n => n,
            };
            total.div_ceil(executors.max(1)).max(1)
        });
        let mut workers = Vec::new();
        for i in 0..executors {
            // Stable across restarts: a restarted executor re-registers under its old id, which tells
            // the scheduler at once that the attempts it had were lost.
            let id = format!("up-{i}");
            let opts = crate::executor_cmd::options_with(settings, Some(id), Some(slots), models.clone());
            let worker = splai_executor::service::run(log.clone(), artifacts.clone(), opts, stop_rx.clone());
            workers.push(tokio::spawn(worker));
        }
        Ok(Stack { url: format!("http://{addr}"), stop, gateway, scheduler, workers })
    }

    /// Stop everything: executors hand back what they run, the scheduler and gateway end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.send(true).ok();
        for w in self.workers {
            w.await??;
        }
        let scheduler = self.scheduler;
        tokio::task::spawn_blocking(move || scheduler.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))??;
        self.gateway.await??;
        Ok(())
    }
}

pub async fn run(settings: &Settings, args: &UpArgs) -> anyhow::Result<u8> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let executors = args.executors.unwrap_or(cores).max(1);
    let stack = Stack::start(settings, executors).await?;
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
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get("/readyz").await.is_ok();
        let live = client
            .get("/v1/workers")
            .await
            .ok()
            .and_then(|w| w["workers"].as_array().map(|a| a.iter().any(|w| w["live"] == true)))
            .unwrap_or(false);
        if ready && live {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the gateway did not become ready with a live executor within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
