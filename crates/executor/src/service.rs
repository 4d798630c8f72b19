//! The executor process: register, beat, run assigned attempts up to `slots` at once, report.
//!
//! Assignments are read from this worker's own partition of `assignments` (manual assignment, so
//! no group rebalancing) and filtered by worker id. A `(task, attempt)` seen before is ignored
//! (at-least-once delivery, exactly-once effect). Work runs on blocking threads, never on the
//! async runtime. Each attempt has a deadline (its lease); a `Revoke` stops it before it reports
//! success. On shutdown the executor stops taking work, waits briefly for running attempts and
//! sends `WorkerLeaving` naming any it hands back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use splai_events::*;
use splai_ingest::log::{EventLog, EventReader, EventWriter, LogError, partition_for};
use splai_store::artifacts::ArtifactStore;
use tokio::sync::{Semaphore, watch};

use tracing::Instrument;

use crate::execute::{Context, execute};

/// The tenant of worker-scoped records (registration, heartbeats, leaving) and of the
/// scheduler's answers to them.
const SYSTEM: &str = "system";
use crate::inputs::resolve;
use crate::models::Models;
use crate::shell::ShellLimits;
use crate::tools::BUILT_IN;
use crate::utilization::{CpuSampler, rss_mb, total_memory_mb};
use splai_events::now_ms;

/// What `splai executor` exports on `telemetry.metrics_listen`.
pub const SERIES: &[(&str, &str, &str)] = &[
    ("splai_executor_attempts_total", "counter", "Attempts finished, by task kind and outcome."),
    ("splai_executor_attempt_seconds", "histogram", "Attempt wall time, by task kind and outcome."),
    ("splai_executor_running", "gauge", "Attempts running now, by worker."),
    ("splai_executor_slots", "gauge", "Slots, by worker."),
    (
        "splai_executor_light_slots",
        "gauge",
        "Slots of the pool for light attempts (tools, aggregations), by worker.",
    ),
    ("splai_executor_cpu_percent", "gauge", "CPU utilization of the process (0-100 x cores), by worker."),
    ("splai_engine_capacity", "gauge", "Sequences an LLM engine steps together at most, by model."),
    ("splai_engine_active", "gauge", "Sequences an LLM engine runs now, by model."),
    ("splai_engine_waiting", "gauge", "Requests waiting for room in an LLM engine, by model."),
    ("splai_engine_steps_total", "counter", "Forward passes of an LLM engine, by model."),
    (
        "splai_engine_sequence_steps_total",
        "counter",
        "Sequences summed over steps (/ steps = mean batch), by model.",
    ),
    ("splai_engine_kv_blocks", "gauge", "KV blocks of an LLM engine's pool (16 positions each), by model."),
    (
        "splai_engine_kv_blocks_taken",
        "gauge",
        "KV blocks held by sequences and cached prefixes or reserved by sequences, by model.",
    ),
    (
        "splai_engine_prefix_tokens_reused_total",
        "counter",
        "Prompt tokens taken from the prefix cache, by model.",
    ),
];

#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub worker_id: String,
    pub slots: u32,
    /// Light attempts (tools but `shell`, aggregations) it runs at once beside `slots`, so DAG
    /// plumbing never waits behind inference; 0: they take ordinary slots.
    pub light_slots: u32,
    /// Per language model, the sequences of its engine this executor offers (all of them, or
    /// its share when executors of one process share the engine); their `llm_inference`
    /// attempts take these, not `slots`.
    pub engines: BTreeMap<String, u32>,
    pub heartbeat_interval_ms: u64,
    pub labels: BTreeMap<String, String>,
    /// Limits of the `shell` tool when the operator enabled it; `None` keeps it off.
    pub shell: Option<ShellLimits>,
    pub topic_prefix: String,
    pub partitions: u32,
    /// Whether finished work is looked up in and added to the tenant's result cache.
    pub result_cache: bool,
    /// The models it offers, loaded on first use. Executors of one process may share them, and
    /// with them each LLM's engine (`splai up`).
    pub models: Arc<Models>,
}

/// How often an executor commits how far it read its assignments.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long an attempt may run before its `AttemptStarted` is written on its own.
const STARTED_GRACE: Duration = Duration::from_millis(20);
/// Aggregations and pure tools (`cache::pure_tool`) reading at most this much run on the
/// attempt's own task, not a blocking thread.
const INLINE_BYTES: u64 = 256 * 1024;

struct Shared {
    writer: EventWriter,
    artifacts: ArtifactStore,
    worker_id: String,
    shell: Option<ShellLimits>,
    models: Arc<Models>,
    result_cache: bool,
    /// Running attempts by (tenant, attempt): two tenants may use the same job id.
    running: Mutex<HashMap<(String, AttemptId), Arc<Stop>>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn id(&self, what: &str) -> String {
        format!("{}:{what}:{}:{}", self.worker_id, now_ms(), self.seq.fetch_add(1, Ordering::Relaxed))
    }

    async fn emit(&self, tenant: &str, traceparent: Option<String>, event: Event) {
        self.emit_all(tenant, traceparent, vec![(now_ms(), event)]).await;
    }

    /// Several events in one append, in order, each with the time it happened (epoch ms).
    async fn emit_all(&self, tenant: &str, traceparent: Option<String>, events: Vec<(u64, Event)>) {
        let envelopes: Vec<Envelope> = events
            .into_iter()
            .map(|(at, event)| {
                Envelope::new(self.id(event.kind()), at, tenant, event).with_traceparent(traceparent.clone())
            })
            .collect();
        // A report is a fact the scheduler needs (dropping an `AttemptSucceeded` holds the
        // attempt's slot until its deadline, then runs it again): retry until the log takes it.
        // A heartbeat is not worth retrying; the next one says more.
        let only_beats = envelopes.iter().all(|e| matches!(e.event, Event::Heartbeat(_)));
        let mut backoff = Duration::from_millis(100);
        while let Err(error) = self.writer.append(&envelopes).await {
            if only_beats {
                tracing::warn!(error = %splai_telemetry::chain(&error), "sending a heartbeat failed");
                return;
            }
            tracing::error!(error = %splai_telemetry::chain(&error), ?backoff, "reporting to the log failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// Run until `shutdown` turns true.
pub async fn run(
    log: Arc<dyn EventLog>,
    artifacts: ArtifactStore,
    opts: ExecutorOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LogError> {
    let writer = EventWriter::new(log.clone(), opts.topic_prefix.clone());
    writer.create_all_topics(opts.partitions).await?;
    let partitions = log.partitions(&writer.topic(Topic::Assignments)).await?;
    let mine = partition_for(&opts.worker_id, partitions);
    let mut reader = EventReader::subscribe(
        writer.clone(),
        &format!("executor-{}", opts.worker_id),
        &[Topic::Assignments],
        Some(vec![mine]),
    )
    .await?;
    // Assignments already in our partition belong to an earlier process under this id (or to no
    // one): registering again ends them in the scheduler, which assigns anew, so they are skipped.
    let assignments = writer.topic(Topic::Assignments);
    let before_us = log.high_watermarks(&assignments).await?.get(mine as usize).copied().unwrap_or(0);
    let mut tools: Vec<String> = BUILT_IN.iter().map(|t| t.to_string()).collect();
    if opts.shell.is_some() {
        tools.push("shell".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let shared = Arc::new(Shared {
        writer: writer.clone(),
        artifacts,
        worker_id: opts.worker_id.clone(),
        shell: opts.shell.clone(),
        models: opts.models.clone(),
        result_cache: opts.result_cache,
        running: Mutex::new(HashMap::new()),
        seq: Default::default(),
    });
    let registration = WorkerRegistered {
        worker_id: opts.worker_id.clone(),
        cores,
        memory_mb: total_memory_mb(),
        slots: opts.slots,
        light_slots: opts.light_slots,
        engines: opts.engines.clone(),
        models: shared.models.names(),
        tools,
        labels: opts.labels.clone(),
        heartbeat_interval_ms: opts.heartbeat_interval_ms,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    shared.emit(SYSTEM, None, Event::WorkerRegistered(registration)).await;
    tracing::info!(worker = %opts.worker_id, partition = mine, slots = opts.slots, light_slots = opts.light_slots,
        engines = ?opts.engines, "executor registered");

    let slots = Arc::new(Semaphore::new(opts.slots.max(1) as usize));
    let light_slots = Arc::new(Semaphore::new(opts.light_slots as usize));
    let engine_slots: HashMap<String, Arc<Semaphore>> =
        opts.engines.iter().map(|(m, n)| (m.clone(), Arc::new(Semaphore::new(*n as usize)))).collect();
    let mut seen: HashSet<(String, AttemptId)> = HashSet::new();
    // A deposed scheduler's decisions behind a newer leader's fence are not acted on.
    let mut fence = splai_events::EpochFilter::default();
    let mut cpu = CpuSampler::default();
    cpu.sample(cores);
    let mut beat_seq = 0u64;
    let mut next_beat = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if Instant::now() >= next_beat {
            beat_seq += 1;
            let running: Vec<AttemptId> =
                shared.running.lock().expect("running lock").keys().map(|(_, a)| a.clone()).collect();
            let cpu_pct = cpu.sample(cores);
            let m = splai_telemetry::metrics::global();
            m.describe(SERIES);
            let w = opts.worker_id.as_str();
            m.set("splai_executor_cpu_percent", &[("worker", w)], cpu_pct);
            m.set("splai_executor_running", &[("worker", w)], running.len() as f64);
            m.set("splai_executor_slots", &[("worker", w)], f64::from(opts.slots));
            m.set("splai_executor_light_slots", &[("worker", w)], f64::from(opts.light_slots));
            let mut engines = BTreeMap::new();
            for llm in shared.models.loaded_llms() {
                let (engine, labels) = (llm.engine(), [("model", llm.name.as_str())]);
                let stats = engine.stats();
                let get =
                    |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
                m.set("splai_engine_capacity", &labels, engine.capacity() as f64);
                m.set("splai_engine_active", &labels, get(&stats.active));
                m.set("splai_engine_waiting", &labels, get(&stats.waiting));
                m.set("splai_engine_steps_total", &labels, get(&stats.steps));
                m.set("splai_engine_sequence_steps_total", &labels, get(&stats.sequences_stepped));
                m.set("splai_engine_prefix_tokens_reused_total", &labels, get(&stats.prefix_tokens_reused));
                m.set("splai_engine_kv_blocks", &labels, get(&stats.kv_blocks));
                m.set("splai_engine_kv_blocks_taken", &labels, get(&stats.kv_blocks_taken));
                let load =
                    EngineLoad { active: get(&stats.active) as u32, waiting: get(&stats.waiting) as u32 };
                engines.insert(llm.name.clone(), load);
            }
            let hb = Heartbeat {
                worker_id: opts.worker_id.clone(),
                seq: beat_seq,
                cpu_pct,
                memory_used_mb: rss_mb(),
                running,
                warm_models: shared.models.warm(),
                engines,
            };
            shared.emit(SYSTEM, None, Event::Heartbeat(hb)).await;
            next_beat = Instant::now() + Duration::from_millis(opts.heartbeat_interval_ms);
        }
        let wait = next_beat.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
        let batch = tokio::select! {
            b = reader.poll(100, wait) => b?,
            _ = shutdown.changed() => break,
        };
        for (position, e) in &batch.events {
            if position.offset < before_us || !fence.admits(position, e) {
                continue;
            }
            match &e.event {
                Event::Assign(a) if a.worker_id == opts.worker_id => {
                    let key = (e.tenant.clone(), a.attempt.clone());
                    if !seen.insert(key.clone()) {
                        continue; // a duplicate delivery
                    }
                    let cancel = Arc::new(Stop::default());
                    shared.running.lock().expect("running lock").insert(key, cancel.clone());
                    // The scheduler placed it in a pool (light, or its model's engine); without
                    // that pool (a restart with none), it takes an ordinary slot.
                    let engine = a.requirements.model.as_ref().and_then(|m| engine_slots.get(m));
                    let pool = match engine {
                        Some(engine) if a.engine => engine,
                        _ if a.light && opts.light_slots > 0 => &light_slots,
                        _ => &slots,
                    };
                    tokio::spawn(attempt(
                        shared.clone(),
                        pool.clone(),
                        e.tenant.clone(),
                        e.traceparent.clone(),
                        a.clone(),
                        cancel,
                    ));
                }
                Event::Revoke(r) if r.worker_id == opts.worker_id => {
                    // A revoke of a stale attempt answers a heartbeat, which names attempts
                    // without their tenant ("system"): it stops that attempt of any tenant.
                    let any_tenant = e.tenant == SYSTEM;
                    for ((tenant, attempt), stop) in shared.running.lock().expect("running lock").iter() {
                        if *attempt == r.attempt && (any_tenant || *tenant == e.tenant) {
                            stop.revoke(r.reason);
                        }
                    }
                }
                _ => {}
            }
        }
        // Where this executor got to only spares a restart re-reading (it skips what came before
        // it anyway): committed about once a second, not as a log write per poll.
        reader.commit_every(&batch, COMMIT_EVERY).await?;
    }
    reader.flush_commits().await?;

    // Leaving: give running attempts a moment, then hand back the rest.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.running.lock().expect("running lock").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handed_back: Vec<AttemptId> =
        shared.running.lock().expect("running lock").keys().map(|(_, a)| a.clone()).collect();
    let leaving = WorkerLeaving { worker_id: opts.worker_id.clone(), reason: "shutdown".into(), handed_back };
    shared.emit(SYSTEM, None, Event::WorkerLeaving(leaving)).await;
    tracing::info!(worker = %opts.worker_id, "executor left");
    Ok(())
}

/// Bytes of an attempt's string inputs (literals, and parents' outputs once resolved): what a
/// quick attempt would read.
fn literal_bytes(values: &std::collections::BTreeMap<String, serde_json::Value>) -> u64 {
    values.values().map(|v| v.as_str().map_or(0, str::len) as u64).sum()
}

/// The tenant's cached output for `key` and the artifact it came from, if one is filed and still
/// reads back intact (anything else is a miss: the attempt runs).
async fn cached_output(shared: &Shared, tenant: &str, key: &str) -> Option<(serde_json::Value, String)> {
    let source = match shared.artifacts.cache_entry(tenant, key).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "cache lookup failed; running the attempt");
            return None;
        }
    };
    match shared.artifacts.get(&source).await {
        Ok(bytes) => serde_json::from_slice(&bytes).ok().map(|v| (v, source.path)),
        Err(e) => {
            tracing::warn!(error = %e, "cached output unreadable; running the attempt");
            None
        }
    }
}

/// How a running attempt is told to stop: the flag its work checks between steps, and, when the
/// scheduler revoked it, why.
#[derive(Debug, Default)]
struct Stop {
    flag: Arc<AtomicBool>,
    reason: std::sync::OnceLock<splai_events::RevokeReason>,
}

impl Stop {
    fn revoke(&self, reason: splai_events::RevokeReason) {
        let _ = self.reason.set(reason);
        self.flag.store(true, Ordering::SeqCst);
    }

    fn revoked(&self) -> Option<splai_events::RevokeReason> {
        self.reason.get().copied()
    }
}

async fn attempt(
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tenant: String,
    traceparent: Option<String>,
    a: Assign,
    stop: Arc<Stop>,
) {
    let cancel = &stop.flag;
    let Ok(_permit) = slots.acquire_owned().await else { return };
    let started = Instant::now();
    let started_ms = now_ms();
    let id = a.attempt.clone();
    let worker_id = shared.worker_id.clone();
    // The attempt's span, a child of the scheduler's decision; what it reports carries it on.
    let span = tracing::info_span!("splai.attempt", otel.name = "attempt", job_id = %id.job_id,
        task_id = %id.task_id, attempt = id.attempt, kind = ?a.kind, worker = %worker_id,
        model = a.requirements.model.as_deref().unwrap_or(""), outcome = tracing::field::Empty,
        prompt_tokens = tracing::field::Empty, completion_tokens = tracing::field::Empty,
        duration_ms = tracing::field::Empty);
    splai_telemetry::set_parent_from_traceparent(&span, traceparent.as_deref());
    let traceparent = span.in_scope(splai_telemetry::current_traceparent).or(traceparent);
    let budget = Duration::from_millis(a.deadline_ms.saturating_sub(now_ms()).max(1));
    // The log hears of the attempt from one task, in order: `AttemptStarted`, then token progress
    // from the blocking thread in small batches; the outcome is written after this task ends, so
    // it always comes last. An attempt that ends within `STARTED_GRACE` without progress has its
    // `AttemptStarted` written together with its outcome, in one append: short tasks then cost
    // the log one write, not two in a row.
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, String)>();
    let forwarder = {
        let shared = shared.clone();
        let (tenant, traceparent, id, worker_id) =
            (tenant.clone(), traceparent.clone(), id.clone(), worker_id.clone());
        tokio::spawn(async move {
            let first = match tokio::time::timeout(STARTED_GRACE, progress_rx.recv()).await {
                Ok(None) => return false, // finished quietly: the outcome write carries it
                Ok(Some(p)) => Some(p),
                Err(_) => None,
            };
            let started = AttemptStarted { attempt: id.clone(), worker_id: worker_id.clone() };
            shared.emit(&tenant, traceparent.clone(), Event::AttemptStarted(started)).await;
            let mut next = first;
            loop {
                let Some((mut tokens, mut delta)) = (match next.take() {
                    Some(p) => Some(p),
                    None => progress_rx.recv().await,
                }) else {
                    return true;
                };
                while let Ok((t, d)) = progress_rx.try_recv() {
                    tokens = t;
                    delta.push_str(&d);
                }
                let p = AttemptProgress {
                    attempt: id.clone(),
                    worker_id: worker_id.clone(),
                    tokens,
                    delta: Some(delta),
                };
                shared.emit(&tenant, traceparent.clone(), Event::AttemptProgress(p)).await;
            }
        })
    };
    let outcome = tokio::time::timeout(budget, async {
        let inputs = resolve(&shared.artifacts, &a.inputs).await?;
        let kind = a.kind;
        let values = inputs.values.clone();
        let cached = if a.cache && shared.result_cache && crate::cache::cacheable(kind, &values) {
            let (models, model) = (shared.clone(), a.requirements.model.clone());
            // Hashing a model's weights the first time reads the file: off the async threads.
            let identity =
                tokio::task::spawn_blocking(move || models.models.identity(kind, model.as_deref()))
                    .await
                    .map_err(|e| crate::AttemptError::transient(format!("hashing the model failed: {e}")))??;
            let key = crate::cache::key(kind, &values, identity.as_ref().map(|(id, _)| id.as_str()));
            let hit = cached_output(&shared, &tenant, &key).await;
            Some((key, identity.map(|(_, sha)| sha), hit))
        } else {
            None
        };
        if let Some((key, sha, Some((output, from)))) = cached {
            return Ok(((output, None), inputs.lineage, Some((key, sha, Some(from)))));
        }
        let cached = cached.map(|(key, sha, _)| (key, sha, None));
        // A small aggregation or pure tool (split, regex, template…) takes microseconds: run it
        // here rather than pay two thread switches to a blocking thread and back. Anything else
        // may take long or block.
        let read: u64 = inputs.lineage.iter().map(|r| r.size_bytes).sum::<u64>() + literal_bytes(&values);
        let quick = kind == TaskKind::Aggregation
            || (kind == TaskKind::ToolExecution
                && values.get("tool").and_then(|t| t.as_str()).is_some_and(crate::cache::pure_tool));
        let (work_shared, work_cancel, model) =
            (shared.clone(), cancel.clone(), a.requirements.model.clone());
        let work = move || {
            let mut progress = |n: u32, delta: &str| {
                let _ = progress_tx.send((n, delta.to_string()));
            };
            let mut ctx = Context {
                shell: work_shared.shell.as_ref(),
                models: &work_shared.models,
                model: model.as_deref(),
                cancel: &work_cancel,
                progress: &mut progress,
            };
            execute(kind, &values, &mut ctx)
        };
        let output = if quick && read <= INLINE_BYTES {
            work()?
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| crate::AttemptError::transient(format!("attempt thread failed: {e}")))??
        };
        Ok::<_, crate::AttemptError>((output, inputs.lineage, cached))
    })
    .await;
    // Revoked means a `Revoke` stopped it (and said why); a timeout sets the flag too, but reports
    // as a timeout.
    let revoked = stop.revoked();
    let result = match outcome {
        Err(_) => {
            cancel.store(true, Ordering::SeqCst); // stop the generation between tokens
            Err(crate::AttemptError::transient(format!("attempt timed out after {} ms", budget.as_millis())))
        }
        Ok(r) => r,
    };
    let started_written = forwarder.await.unwrap_or(false);
    let event = if let Some(reason) = revoked {
        Event::AttemptFailed(AttemptFailed {
            attempt: id.clone(),
            worker_id,
            error: format!("revoked ({})", splai_events::wire_name(&reason)),
            retryable: true,
            revoked: Some(reason),
        })
    } else {
        match result {
            Ok(((output, usage), lineage, cached)) => {
                let subdag = a.expand.then(|| crate::subdag::proposal(&output));
                let bytes = serde_json::to_vec(&output).expect("JSON values serialise");
                let write = tracing::info_span!(parent: &span, "splai.artifact.write", otel.name = "artifact.write",
                                                size_bytes = bytes.len());
                match shared.artifacts.put_output(&tenant, &id, bytes).instrument(write).await {
                    Ok(artifact) => {
                        let provenance = match cached {
                            Some((key, model_sha256, cached_from)) => {
                                if cached_from.is_none()
                                    && let Err(e) =
                                        shared.artifacts.put_cache_entry(&tenant, &key, &artifact).await
                                {
                                    tracing::warn!(error = %e, "could not file the output in the cache");
                                }
                                Some(Provenance {
                                    cache_key: key,
                                    model_sha256,
                                    executor_version: crate::cache::EXECUTOR_VERSION.to_string(),
                                    cached_from,
                                })
                            }
                            None => None,
                        };
                        Event::AttemptSucceeded(AttemptSucceeded {
                            attempt: id.clone(),
                            worker_id,
                            artifact,
                            inputs: lineage,
                            duration_ms: started.elapsed().as_millis() as u64,
                            usage,
                            provenance,
                            subdag,
                        })
                    }
                    Err(e) => Event::AttemptFailed(AttemptFailed {
                        attempt: id.clone(),
                        worker_id,
                        error: e.to_string(),
                        retryable: true,
                        revoked: None,
                    }),
                }
            }
            Err(e) => Event::AttemptFailed(AttemptFailed {
                attempt: id.clone(),
                worker_id,
                error: e.message,
                retryable: e.retryable,
                revoked: None,
            }),
        }
    };
    let outcome = match &event {
        Event::AttemptSucceeded(_) => "succeeded",
        Event::AttemptFailed(_) if revoked.is_some() => "revoked",
        _ => "failed",
    };
    let kind = splai_events::wire_name(&a.kind);
    let m = splai_telemetry::metrics::global();
    m.inc("splai_executor_attempts_total", &[("kind", &kind), ("outcome", outcome)], 1.0);
    m.observe(
        "splai_executor_attempt_seconds",
        &[("kind", &kind), ("outcome", outcome)],
        started.elapsed().as_secs_f64(),
    );
    match &event {
        Event::AttemptSucceeded(ok) => {
            span.record("outcome", "succeeded").record("duration_ms", ok.duration_ms);
            if let Some(u) = ok.usage {
                span.record("prompt_tokens", u.prompt_tokens)
                    .record("completion_tokens", u.completion_tokens);
            }
        }
        Event::AttemptFailed(_) => {
            span.record("outcome", outcome);
        }
        _ => {}
    }
    let mut report = Vec::with_capacity(2);
    if !started_written {
        let started = AttemptStarted { attempt: id.clone(), worker_id: shared.worker_id.clone() };
        report.push((started_ms, Event::AttemptStarted(started)));
    }
    report.push((now_ms(), event));
    shared.emit_all(&tenant, traceparent, report).await;
    drop(span);
    shared.running.lock().expect("running lock").remove(&(tenant, id));
}
