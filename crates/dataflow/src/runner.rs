//! `splai scheduler`: the driver connected to the event log.
//!
//! On start it reads every scheduler topic from the beginning (no committed offsets: the log is
//! the state) with time taken from the envelopes, which rebuilds the same state including its own
//! past decisions; when it has caught up it emits a snapshot (deterministic ids) and goes live:
//! time follows the wall clock, every `tick_ms` even when nothing arrives, so timeouts, expiries
//! and backoffs fire on time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use splai_events::{Envelope, Topic};
use splai_ingest::intake::{Denied, Gate};
use splai_ingest::log::{EventBatch, EventLog, EventReader, EventWriter, LogError};
use tokio::sync::watch;

use crate::driver::{Scheduler, SchedulerOptions};

/// The topics the scheduler reads.
pub const INPUTS: [Topic; 5] =
    [Topic::Jobs, Topic::Control, Topic::Heartbeats, Topic::TaskEvents, Topic::Assignments];

/// What `splai scheduler` exports on `telemetry.metrics_listen`.
pub const SERIES: &[(&str, &str, &str)] = &[
    ("splai_scheduler_events_total", "counter", "Log records the live scheduler read, by topic."),
    ("splai_scheduler_decisions_total", "counter", "Assignments decided."),
    ("splai_scheduler_decision_latency_seconds", "histogram", "Task runnable to assigned (scheduler clock)."),
    ("splai_scheduler_runnable_tasks", "gauge", "Runnable tasks not yet assigned."),
];

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub topic_prefix: String,
    pub partitions: u32,
    pub tick_ms: u64,
    /// Consumer group name (never committed: every start replays).
    pub group: String,
    /// With auth on: who may write `jobs` and `control`.
    pub gate: Option<Arc<Gate>>,
    /// Timely workers of the dataflow (1: in the scheduler's own thread).
    pub timely_workers: usize,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run until `shutdown` turns true.
pub async fn run(
    log: Arc<dyn EventLog>,
    opts: SchedulerOptions,
    run: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LogError> {
    let writer = EventWriter::new(log.clone(), run.topic_prefix.clone());
    writer.create_all_topics(run.partitions).await?;
    let partitions = log.partitions(&writer.topic(Topic::Jobs)).await?;
    let mut reader =
        EventReader::subscribe(writer.clone(), &run.group, &INPUTS, Some((0..partitions).collect()))
            .await?
            .gated(run.gate.clone());
    let mut scheduler = Scheduler::on_workers(opts, run.timely_workers);
    let mut out = Vec::new();

    // Catch up: replay, with virtual time from the envelopes, everything appended before now.
    let mut behind: HashMap<(String, u32), u64> = HashMap::new();
    for topic in INPUTS {
        let name = writer.topic(topic);
        for (p, high) in log.high_watermarks(&name).await?.into_iter().enumerate() {
            if high > 0 {
                behind.insert((name.clone(), p as u32), high);
            }
        }
    }
    while !behind.is_empty() {
        let batch = reader.poll(10_000, Duration::from_millis(300)).await?;
        for p in &batch.positions {
            let key = (p.topic.clone(), p.partition);
            if behind.get(&key).is_some_and(|high| p.offset + 1 >= *high) {
                behind.remove(&key);
            }
        }
        let mut events = ordered(batch);
        events.sort_by_key(|e| e.0.ts_ms);
        for (e, denied, produced) in &events {
            scheduler.advance(e.ts_ms);
            answer(&mut scheduler, e, denied.as_ref(), *produced, &mut out);
        }
        scheduler.tick(&mut out);
        out.clear();
    }
    scheduler.advance(wall_ms());
    tracing::info!(events = scheduler.stats.events, now = scheduler.now(), "scheduler caught up; going live");
    let snapshot = scheduler.go_live();
    writer.append(&snapshot).await?;
    let metrics = splai_telemetry::metrics::global();
    metrics.describe(SERIES);
    let mut latencies_seen = scheduler.stats.decision_latency_ms.len();
    let tick = Duration::from_millis(run.tick_ms);
    let mut last_tick = Instant::now();

    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            b = reader.poll(10_000, Duration::from_millis(run.tick_ms)) => b?,
            _ = shutdown.changed() => break,
        };
        for (pos, _) in &batch.events {
            let topic = pos.topic.strip_prefix(run.topic_prefix.as_str()).unwrap_or(&pos.topic);
            metrics.inc("splai_scheduler_events_total", &[("topic", topic)], 1.0);
        }
        let mut events = ordered(batch);
        events.sort_by_key(|e| e.0.ts_ms);
        scheduler.advance(wall_ms());
        let idle = events.is_empty();
        for (e, denied, produced) in &events {
            answer(&mut scheduler, e, denied.as_ref(), *produced, &mut out);
        }
        // A batch of our own decisions coming back (applied as they were made) brings nothing to
        // step: no step for it, unless the clock is due one (timeouts, expiries, resends).
        if idle || scheduler.has_news() || last_tick.elapsed() >= tick {
            scheduler.tick(&mut out);
            last_tick = Instant::now();
        }
        for ms in scheduler.stats.decision_latency_ms.iter().skip(latencies_seen) {
            metrics.observe("splai_scheduler_decision_latency_seconds", &[], *ms as f64 / 1000.0);
            metrics.inc("splai_scheduler_decisions_total", &[], 1.0);
        }
        latencies_seen = scheduler.stats.decision_latency_ms.len();
        metrics.set("splai_scheduler_runnable_tasks", &[], scheduler.runnable_count() as f64);
        if !out.is_empty() {
            append_until_done(&writer, &out, &mut shutdown).await?;
            out.clear();
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Append the scheduler's decisions, retrying while the log is unavailable (a broker restart):
/// they are its state, so dropping them is not an option and exiting would only replay them.
/// Envelope ids are deterministic, so a retried partial append duplicates nothing downstream.
async fn append_until_done(
    writer: &EventWriter,
    out: &[Envelope],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), LogError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match writer.append(out).await {
            Ok(_) => return Ok(()),
            Err(e) if *shutdown.borrow() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %splai_telemetry::chain(&e), records = out.len(), ?backoff, "appending decisions failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// A batch's envelopes, accepted or refused at intake, in one list; `true` for those a Kafka
/// producer sent with an API token.
fn ordered(batch: EventBatch) -> Vec<(Envelope, Option<Denied>, bool)> {
    let producers = batch.from_producers;
    let accepted = batch.events.into_iter().map(|(pos, e)| (e, None, producers.contains(&pos)));
    accepted.chain(batch.denied.into_iter().map(|(_, e, d)| (e, Some(d), false))).collect()
}

fn answer(
    scheduler: &mut Scheduler,
    e: &Envelope,
    denied: Option<&Denied>,
    produced: bool,
    out: &mut Vec<Envelope>,
) {
    match denied {
        None if produced => scheduler.apply_produced(e, out),
        None => scheduler.apply(e, out),
        Some(d) => scheduler.deny(e, d, out),
    }
}

/// Run the scheduler on a dedicated thread (the dataflow is single-threaded and not `Send`),
/// with its own current-thread async runtime for the log I/O.
pub fn spawn(
    log: Arc<dyn EventLog>,
    opts: SchedulerOptions,
    run_opts: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<(), LogError>> {
    std::thread::Builder::new()
        .name("splai-scheduler".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LogError::Open { backend: "scheduler runtime", source: e.into() })?;
            runtime.block_on(run(log, opts, run_opts, shutdown))
        })
        .expect("spawning the scheduler thread")
}
