//! The executor: its options from `[executor]` and `[log]`, and the models it serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use splai_config::Settings;
use splai_executor::engine::EngineConfig;
use splai_executor::models::Models;
use splai_executor::service::ExecutorOptions;
use splai_executor::shell::ShellLimits;
use splai_ingest::log::EventLog;
use splai_store::artifacts::ArtifactStore;

use crate::{Handle, Shutdown};

/// The executor's options from the settings, serving `models` (which executors in one process
/// share); `worker_id` defaults to host and pid, `slots` overrides `executor.slots`.
pub fn options(
    settings: &Settings,
    worker_id: Option<String>,
    slots: Option<u32>,
    models: Arc<Models>,
) -> ExecutorOptions {
    let e = &settings.executor;
    ExecutorOptions {
        worker_id: worker_id.unwrap_or_else(default_worker_id),
        slots: slots.unwrap_or(if e.slots == 0 { default_slots() } else { e.slots }),
        light_slots: e.light_slots,
        engines: models.engines(),
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
        result_cache: e.result_cache,
        models,
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string());
    format!("{}-{}", host.as_deref().unwrap_or("host"), std::process::id())
}

/// The models of `executor.model_dir`, their engines sized by the settings.
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
        Models::discover(Path::new(&e.model_dir))
            .with_llm_weights(
                e.llm_weights.parse().unwrap_or_default(), // one of LLM_WEIGHTS (validated)
                e.llm_padding.parse().unwrap_or_default(), // one of LLM_PADDING (validated)
            )
            .with_engine(engine),
    )
}

/// Attempts an executor runs at once in its ordinary slots by default: one per core (tools that
/// are not light, embeddings; an LLM's inference fills its engine's sequences instead).
pub fn default_slots() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The host paths the `shell` tool's sandbox hides even under a path it shows: the read model's
/// SQLite file, the embedded log and a local artifact store (the sandbox shows only system paths
/// and its own files, so these matter only when they sit under `/etc` or `/usr`).
fn private_paths(settings: &Settings) -> Vec<PathBuf> {
    let local = |url: &str| {
        ["sqlite://", "sqlite:", "file://"]
            .iter()
            .find_map(|p| url.strip_prefix(p))
            .map(|rest| PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    // The SQLite file's directory is the data directory.
    paths.extend(local(&settings.store.url).and_then(|f| f.parent().map(Path::to_path_buf)));
    paths.extend(local(&settings.artifacts.url));
    paths.push(settings.log.embedded.path.clone().into());
    paths.retain(|p| !p.as_os_str().is_empty());
    paths.into_iter().map(|p| std::path::absolute(&p).unwrap_or(p)).collect()
}

/// Run an executor with `opts` on `log` until `shutdown`; it hands back what it runs on the way out.
pub fn start(
    log: Arc<dyn EventLog>,
    artifacts: ArtifactStore,
    opts: ExecutorOptions,
    shutdown: Shutdown,
) -> Handle {
    let task = splai_executor::service::run(log, artifacts, opts, shutdown);
    Handle::Task("executor", tokio::spawn(async move { task.await.map_err(Into::into) }))
}
