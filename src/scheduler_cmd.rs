//! `splai scheduler`: the scheduler against the configured log until Ctrl-C / SIGTERM.

use anyhow::Context;
use splai_config::Settings;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::runner::{RunOptions, spawn};

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    splai_telemetry::metrics::global().describe(splai_dataflow::runner::SERIES);
    crate::metrics_server::spawn(&settings.telemetry.metrics_listen).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle = spawn(log, options(settings)?, run_options(settings)?, rx);
    tracing::info!(backend = ?settings.log.backend, "scheduler started");
    shutdown_signal().await;
    tracing::info!("shutting down");
    tx.send(true).ok();
    tokio::task::spawn_blocking(move || handle.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))??;
    Ok(())
}

/// How the scheduler reads the log, with the intake gate when auth is on.
pub fn run_options(settings: &Settings) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        topic_prefix: settings.log.topic_prefix.clone(),
        partitions: settings.log.partitions,
        tick_ms: settings.scheduler.tick_ms,
        group: format!("{}scheduler", settings.log.topic_prefix),
        gate: splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(std::sync::Arc::new),
        timely_workers: settings.scheduler.timely_workers as usize,
    })
}

/// The scheduler's options: `[scheduler]` plus the policy gate's placement rules.
pub fn options(settings: &Settings) -> anyhow::Result<SchedulerOptions> {
    let mut opts = SchedulerOptions::from(&settings.scheduler);
    opts.policy = std::sync::Arc::new(splai_ingest::policy::PolicySet::load(&settings.policy.file)?);
    opts.admission = splai_dataflow::AdmissionLimits::from(&settings.gateway);
    Ok(opts)
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
