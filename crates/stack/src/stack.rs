//! Gateway, scheduler and executors in one process (`splai up`, the tests, the benchmarks).

use std::sync::Arc;

use anyhow::Context;
use splai_config::Settings;
use splai_ingest::log::EventLog;
use splai_store::artifacts::ArtifactStore;

use crate::{Handle, executor, gateway, scheduler, shutdown_channel};

/// How many executors a [`Stack`] runs and how they are sized.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Executors in the process (at least one); they share the models.
    pub executors: u32,
    /// Slots of each executor; by default the slots `executor.slots` gives (one per core plus the
    /// LLM engine's sequences when 0) split among the executors.
    pub slots_per_executor: Option<u32>,
}

/// Gateway, scheduler and executors running in this process.
#[derive(Debug)]
pub struct Stack {
    /// The gateway's base URL.
    pub url: String,
    /// The log every component reads and writes.
    pub log: Arc<dyn EventLog>,
    pub artifacts: ArtifactStore,
    stop: tokio::sync::watch::Sender<bool>,
    gateway: Handle,
    scheduler: Handle,
    executors: Vec<Handle>,
}

impl Stack {
    /// Start everything on the configured log, read model and artifact store.
    pub async fn start(settings: &Settings, opts: &StackOptions) -> anyhow::Result<Stack> {
        let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
        let artifacts = ArtifactStore::open(&settings.artifacts)?;
        let listener = gateway::bind(settings).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, shutdown) = shutdown_channel();
        let gateway =
            gateway::start(settings, log.clone(), artifacts.clone(), listener, shutdown.clone()).await?;
        let scheduler = scheduler::start(settings, log.clone(), &artifacts, shutdown.clone())?;
        let models = executor::models(settings);
        let count = opts.executors.max(1);
        let slots = opts.slots_per_executor.map(|s| s.max(1)).unwrap_or_else(|| {
            let total = match settings.executor.slots {
                0 => executor::default_slots(),
                n => n,
            };
            total.div_ceil(count).max(1)
        });
        let executors = (0..count)
            .map(|i| {
                // Stable across restarts: a restarted executor re-registers under its old id,
                // which tells the scheduler at once that the attempts it had were lost.
                let id = format!("up-{i}");
                let mut opts = executor::options(settings, Some(id), Some(slots), models.clone());
                // They share one engine per model: each offers its share of its sequences.
                opts.engines.values_mut().for_each(|n| *n = n.div_ceil(count).max(1));
                executor::start(log.clone(), artifacts.clone(), opts, shutdown.clone())
            })
            .collect();
        Ok(Stack { url, log, artifacts, stop, gateway, scheduler, executors })
    }

    /// Stop everything: executors hand back what they run, then the scheduler and the gateway end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.send(true).ok();
        for executor in self.executors {
            executor.join().await?;
        }
        self.scheduler.join().await?;
        self.gateway.join().await
    }
}
