//! `splai executor`: one executor process against the configured log and artifact store.

use anyhow::Context;
use splai_config::Settings;
use splai_executor::service::ExecutorOptions;
use splai_store::artifacts::ArtifactStore;

pub async fn start(settings: &Settings, worker_id: Option<String>) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    let artifacts = ArtifactStore::open(&settings.artifacts)?;
    splai_telemetry::metrics::global().describe(splai_executor::service::SERIES);
    crate::metrics_server::spawn(&settings.telemetry.metrics_listen).await?;
    let opts = options(settings, worker_id);
    let (stop, shutdown) = splai_stack::shutdown_channel();
    let executor = splai_stack::executor::start(log, artifacts, opts, shutdown);
    crate::scheduler_cmd::shutdown_signal().await;
    stop.send(true).ok();
    executor.join().await
}

/// The options of this process's one executor (its own models).
pub fn options(settings: &Settings, worker_id: Option<String>) -> ExecutorOptions {
    splai_stack::executor::options(settings, worker_id, None, splai_stack::executor::models(settings))
}
