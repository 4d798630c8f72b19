//! `splai executor`: one executor process against the configured log and artifact store.

use std::sync::Arc;

use anyhow::Context;
use splai_config::Settings;
use splai_executor::engine::EngineConfig;
use splai_executor::models::Models;
use splai_executor::service::{ExecutorOptions, run};
use splai_executor::shell::ShellLimits;
use splai_store::artifacts::ArtifactStore;

/// The executor's options from the settings; `slots` overrides `executor.slots`.
pub fn options(settings: &Settings, worker_id: Option<String>, slots: Option<u32>) -> ExecutorOptions {
    options_with(settings, worker_id, slots, models(settings))
}

/// [`options`] for an executor that uses `models` (shared with others in the process).
pub fn options_with(
    settings: &Settings,
    worker_id: Option<String>,
    slots: Option<u32>,
    models: Arc<Models>,
) -> ExecutorOptions {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let e = &settings.executor;
    ExecutorOptions {
        worker_id: worker_id.unwrap_or_else(|| format!("{host}-{}", std::process::id())),
        slots: slots.unwrap_or(if e.slots == 0 { default_slots(&models) } else { e.slots }),
        heartbeat_interval_ms: e.heartbeat_interval_ms,
        labels: e
            .labels
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        shell: e.shell_tool.then(|| ShellLimits {
            timeout: std::time::Duration::from_millis(e.shell_timeout_ms),
            memory_bytes: e.shell_memory_mb << 20,
            max_output_bytes: e.shell_max_output_bytes as usize,
            hidden: private_paths(settings),
        }),
        topic_prefix: settings.log.topic_prefix.clone(),
        partitions: settings.log.partitions,
        models,
    }
}

/// The models of `settings.executor.model_dir`, their engines sized by the settings.
pub fn models(settings: &Settings) -> Arc<Models> {
    let e = &settings.executor;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = EngineConfig {
        max_batch: e.max_batch as usize,
        prefill_chunk: e.prefill_chunk as usize,
        kv_cache_mb: e.kv_cache_mb as usize,
        prefix_cache_mb: e.prefix_cache_mb as usize,
        threads: if e.engine_threads == 0 { cores } else { e.engine_threads as usize },
    };
    Arc::new(
        Models::discover(std::path::Path::new(&e.model_dir))
            .with_llm_weights(
                e.llm_weights.parse().unwrap_or_default(), // one of LLM_WEIGHTS (validated)
                e.llm_padding.parse().unwrap_or_default(), // one of LLM_PADDING (validated)
            )
            .with_engine(engine),
    )
}

/// Attempts an executor with `models` runs at once by default: one per core for tools,
/// aggregations and embeddings, plus the LLM engine's sequences when it has a language model.
pub fn default_slots(models: &Models) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    cores + if models.has_llm() { models.llm_capacity() as u32 } else { 0 }
}

/// The host paths the `shell` tool's sandbox hides even under a path it shows: the read model's
/// SQLite file, the embedded log and a local artifact store (the sandbox shows only system paths
/// and its own files, so these matter only when they sit under `/etc` or `/usr`).
fn private_paths(settings: &Settings) -> Vec<std::path::PathBuf> {
    let local = |url: &str| {
        ["sqlite://", "sqlite:", "file://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
            .map(|rest| std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    };
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    // The SQLite file's directory is the data directory.
    paths.extend(local(&settings.store.url).and_then(|f| f.parent().map(|d| d.to_path_buf())));
    paths.extend(local(&settings.artifacts.url));
    paths.push(settings.log.embedded.path.clone().into());
    paths.retain(|p| !p.as_os_str().is_empty());
    paths.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect()
}

pub async fn start(settings: &Settings, worker_id: Option<String>) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    let artifacts = ArtifactStore::open(&settings.artifacts)?;
    splai_telemetry::metrics::global().describe(splai_executor::service::SERIES);
    crate::metrics_server::spawn(&settings.telemetry.metrics_listen).await?;
    let opts = options(settings, worker_id, None);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(log, artifacts, opts, rx));
    crate::scheduler_cmd::shutdown_signal().await;
    tx.send(true).ok();
    task.await??;
    Ok(())
}
