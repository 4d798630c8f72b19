//! `splai scheduler`: the scheduler against the configured log until Ctrl-C / SIGTERM.

use anyhow::Context;
use splai_config::Settings;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    let artifacts = splai_store::artifacts::ArtifactStore::open(&settings.artifacts)
        .context("opening the artifact store (scheduler snapshots)")?;
    splai_telemetry::metrics::global().describe(splai_dataflow::runner::SERIES);
    crate::metrics_server::spawn(&settings.telemetry.metrics_listen).await?;
    let (stop, shutdown) = splai_stack::shutdown_channel();
    let scheduler = splai_stack::scheduler::start(settings, log, &artifacts, shutdown)?;
    tracing::info!(backend = ?settings.log.backend, "scheduler started");
    // It may stop by itself (deposed by a standby, or an error): the process ends with it.
    let mut ended = Box::pin(scheduler.join());
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            stop.send(true).ok();
            ended.await
        }
        result = &mut ended => result,
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
