//! The executor process: register, beat, run assigned attempts up to `slots` at once, report.
//!
//! Assignments are read from this worker's own partition of `assignments` (manual assignment, so
//! no group rebalancing) and filtered by worker id. A `(task, attempt)` seen before is ignored
//! (at-least-once delivery, exactly-once effect). Work runs on blocking threads, never on the
//! async runtime. Each attempt has a deadline (its lease); a `Revoke` stops it before it reports
//! success. On shutdown the executor stops taking work, waits briefly for running attempts and
//! sends `WorkerLeaving` naming any it hands back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use splai_events::*;
use splai_ingest::log::{EventLog, EventReader, EventWriter, LogError, partition_for};
use splai_store::artifacts::ArtifactStore;
use tokio::sync::{Semaphore, watch};

use crate::attempt::{Stop, Taken};

/// The tenant of worker-scoped records (registration, heartbeats, leaving) and of the
/// scheduler's answers to them.
const SYSTEM: &str = "system";
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
/// What the attempts of an executor share.
pub(crate) struct Shared {
    writer: EventWriter,
    pub(crate) artifacts: ArtifactStore,
    pub(crate) worker_id: String,
    pub(crate) shell: Option<ShellLimits>,
    pub(crate) models: Arc<Models>,
    pub(crate) result_cache: bool,
    /// Running attempts by (tenant, attempt): two tenants may use the same job id.
    running: Mutex<HashMap<(String, AttemptId), Arc<Stop>>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn id(&self, what: &str) -> String {
        format!("{}:{what}:{}:{}", self.worker_id, now_ms(), self.seq.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) async fn emit(&self, tenant: &str, traceparent: Option<String>, event: Event) {
        let envelope =
            Envelope::new(self.id(event.kind()), now_ms(), tenant, event).with_traceparent(traceparent);
        self.append(vec![envelope]).await;
    }

    /// Ended attempts' reports in one append (each attempt's events in order), after which they
    /// no longer run here.
    pub(crate) async fn report(&self, reports: Vec<crate::attempt::Report>) {
        let mut envelopes = Vec::new();
        let mut ended = Vec::with_capacity(reports.len());
        for r in reports {
            for (at, event) in r.events {
                let envelope = Envelope::new(self.id(event.kind()), at, &r.tenant, event);
                envelopes.push(envelope.with_traceparent(r.traceparent.clone()));
            }
            // Its span ends once the report is on the log.
            ended.push(((r.tenant, r.attempt), r.span));
        }
        self.append(envelopes).await;
        let mut running = self.running.lock().expect("running lock");
        for (key, _span) in ended {
            running.remove(&key);
        }
    }

    async fn append(&self, envelopes: Vec<Envelope>) {
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
        // Quick attempts of this batch run together and are reported in one append.
        let mut quick = Vec::new();
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
                    let taken = Taken {
                        tenant: e.tenant.clone(),
                        traceparent: e.traceparent.clone(),
                        assign: a.clone(),
                        stop: cancel,
                        slots: pool.clone(),
                    };
                    if crate::attempt::is_quick(a) {
                        quick.push(taken);
                    } else {
                        tokio::spawn(crate::attempt::run_alone(shared.clone(), taken));
                    }
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
        if !quick.is_empty() {
            tokio::spawn(crate::attempt::run_together(shared.clone(), quick));
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
