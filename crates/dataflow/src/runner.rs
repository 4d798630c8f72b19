//! `splai scheduler`: the driver connected to the event log.
//!
//! On start it restores its newest snapshot ([`crate::snapshots`]; none: it starts empty) and
//! reads every scheduler topic from the snapshot's positions (else from the beginning; no
//! committed offsets: the log is the state) with time taken from the envelopes, which rebuilds
//! the same state including its own past decisions; when it has caught up it emits the states of
//! every job and task (deterministic ids) and goes live:
//! time follows the wall clock, every `tick_ms` even when nothing arrives, so timeouts, expiries
//! and backoffs fire on time.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use splai_events::{Envelope, EpochFilter, Topic};
use splai_ingest::intake::{Denied, Gate};
use splai_ingest::log::{EventBatch, EventLog, EventReader, EventWriter, LogError};
use tokio::sync::watch;

use crate::catch_up::{Entry, TimeMerge, entries};
use crate::driver::{Scheduler, SchedulerOptions};
use crate::leadership::{Leadership, LeaseOptions, claim, fences};
use crate::snapshots::{Positions, SnapshotPolicy, Snapshotter};

/// The topics the scheduler reads.
pub const INPUTS: [Topic; 5] =
    [Topic::Jobs, Topic::Control, Topic::Heartbeats, Topic::TaskEvents, Topic::Assignments];

/// What `splai scheduler` exports on `telemetry.metrics_listen`.
pub const SERIES: &[(&str, &str, &str)] = &[
    ("splai_scheduler_events_total", "counter", "Log records the live scheduler read, by topic."),
    ("splai_scheduler_decisions_total", "counter", "Assignments decided."),
    ("splai_scheduler_decision_latency_seconds", "histogram", "Task runnable to assigned (scheduler clock)."),
    ("splai_scheduler_runnable_tasks", "gauge", "Runnable tasks not yet assigned."),
    (
        "splai_scheduler_start_snapshot_events",
        "gauge",
        "Log records the snapshot restored at start held (0: none).",
    ),
    ("splai_scheduler_start_replayed_events", "gauge", "Log records replayed at start before going live."),
    ("splai_scheduler_start_seconds", "gauge", "Time from start to live: snapshot restore plus replay."),
    (
        "splai_scheduler_start_job_ids_seconds",
        "gauge",
        "Time from start until every job id of the restored snapshot was read (in the background; new job ids wait for it).",
    ),
    ("splai_scheduler_snapshots_total", "counter", "Snapshots written and recorded on the log."),
    ("splai_scheduler_snapshot_seconds", "histogram", "Time the scheduler thread spent taking a snapshot."),
    (
        "splai_scheduler_compacted_records_total",
        "counter",
        "Input records deleted behind the oldest snapshot kept (scheduler.compact_after_records).",
    ),
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
    /// Snapshots taken live and restored at start; `None`: every start replays the whole log.
    pub snapshots: Option<SnapshotPolicy>,
    /// Leadership among several schedulers ([`crate::leadership`]); `None`: this one decides.
    pub lease: Option<LeaseOptions>,
}

/// Why the scheduler stopped by itself.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("deposed: scheduler `{holder}` leads epoch {epoch}; this one led epoch {ours} and stops")]
    Deposed { epoch: u64, holder: String, ours: u64 },
    #[error(
        "the lease of epoch {epoch} lapsed before it was renewed (paused, or the log unreachable); stopping"
    )]
    Lapsed { epoch: u64 },
    #[error(
        "the snapshot this scheduler started from lost its job ids; stopping (it was deleted: a restart uses an older one or replays)"
    )]
    JobIds(#[source] crate::IdsError),
}

/// Where the scheduler is in its inputs, and what the leadership and fencing records read so far say.
struct Input {
    reader: EventReader,
    positions: Positions,
    /// Log records read in all (counting those of a restored snapshot).
    applied: u64,
    /// Decisions of a deposed leader behind a newer one's fence are not read back.
    fence: EpochFilter,
    leadership: Leadership,
}

impl Input {
    async fn poll(&mut self, wait: Duration) -> Result<EventBatch, LogError> {
        let mut batch = self.reader.poll(10_000, wait).await?;
        self.applied += read(&mut self.positions, &batch);
        self.leadership.observe_batch(&batch);
        let fence = &mut self.fence;
        batch.events.retain(|(at, e)| fence.admits(at, e));
        Ok(batch)
    }
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
) -> Result<(), RunError> {
    // Signed: its `snapshot_written` records go to `control`, which the gate checks.
    let started = Instant::now();
    let writer = EventWriter::new(log.clone(), run.topic_prefix.clone()).signing(run.gate.clone());
    writer.create_all_topics(run.partitions).await?;
    let partitions = log.partitions(&writer.topic(Topic::Jobs)).await?;
    let inputs: BTreeSet<(String, u32)> =
        INPUTS.iter().flat_map(|t| (0..partitions).map(|p| (writer.topic(*t), p))).collect();
    let mut starts = Positions::new();
    for topic in INPUTS {
        let name = writer.topic(topic);
        for (p, first) in log.log_starts(&name).await?.into_iter().enumerate() {
            starts.insert((name.clone(), p as u32), first);
        }
    }
    let opened = started.elapsed();
    let (recorded, restored) = match &run.snapshots {
        Some(policy) => {
            let recorded = crate::snapshots::recorded(&writer, run.gate.clone()).await?;
            tracing::debug!(took = ?started.elapsed(), n = recorded.len(), "scheduler start: snapshot records read");
            let restored = crate::snapshots::restore_newest(
                &recorded,
                policy.store.clone(),
                started,
                &opts,
                run.timely_workers,
                &inputs,
                &starts,
            )
            .await;
            (recorded, restored)
        }
        None => (Vec::new(), None),
    };
    let (mut scheduler, positions, applied) = match restored {
        Some((scheduler, positions, applied)) => (scheduler, positions, applied),
        None => {
            // Replaying a log that lost its beginning would rebuild a wrong state: refuse.
            if let Some(((topic, partition), first)) = starts.iter().find(|(_, first)| **first > 0) {
                return Err(LogError::Truncated {
                    topic: topic.clone(),
                    partition: *partition,
                    first: *first,
                }
                .into());
            }
            let beginning = inputs.iter().map(|k| (k.clone(), 0)).collect();
            (Scheduler::on_workers(opts, run.timely_workers), beginning, 0)
        }
    };
    let restored_events = applied;
    tracing::debug!(?opened, restored = ?started.elapsed(), "scheduler start: topics and log starts read, snapshot restored");
    let mut snapshotter =
        run.snapshots.clone().map(|policy| Snapshotter::new(policy, writer.clone(), &recorded, applied));
    let reader = EventReader::subscribe_from(
        writer.clone(),
        &run.group,
        &INPUTS,
        Some((0..partitions).collect()),
        positions.clone(),
    )
    .await?
    .gated(run.gate.clone());
    let mut input = Input {
        reader,
        positions,
        applied,
        fence: EpochFilter::default(),
        leadership: Leadership::default(),
    };
    let mut out = Vec::new();

    // Catch up: replay, with virtual time from the envelopes, everything appended before now.
    catch_up(&mut input, &log, &writer, &mut scheduler).await?;
    let replayed = input.applied - restored_events;
    tracing::info!(replayed, restored_events, took = ?started.elapsed(), now = scheduler.now(), "scheduler caught up");
    let epoch = match &run.lease {
        None => None,
        Some(lease) => {
            let Some(epoch) = stand_by(&mut input, &writer, &mut scheduler, lease, &mut shutdown).await?
            else {
                tracing::info!("scheduler stopped (standby)");
                return Ok(());
            };
            // Fence first: what the deposed leader appends from here on, nobody acts on. Then read
            // everything it decided before the fences back.
            append_until_done(&writer, &fences(epoch, partitions, wall_ms()), &mut shutdown).await?;
            catch_up(&mut input, &log, &writer, &mut scheduler).await?;
            tracing::info!(epoch, holder = %lease.holder, "scheduler leads");
            Some(epoch)
        }
    };
    tracing::info!(replayed, restored_events, took = ?started.elapsed(), now = scheduler.now(), "going live");
    let mut states = scheduler.go_live();
    if let (Some(lease), Some(ours)) = (&run.lease, epoch) {
        let now = wall_ms();
        states.push(claim(ours, &lease.holder, now + lease.ttl_ms, now));
    }
    stamp(&mut states, epoch);
    writer.append(&states).await?;
    let metrics = splai_telemetry::metrics::global();
    metrics.describe(SERIES);
    metrics.set("splai_scheduler_start_snapshot_events", &[], restored_events as f64);
    metrics.set("splai_scheduler_start_replayed_events", &[], replayed as f64);
    metrics.set("splai_scheduler_start_seconds", &[], started.elapsed().as_secs_f64());
    if let Some(snapshotter) = &mut snapshotter {
        snapshotter.set_epoch(epoch);
    }
    let mut latencies_seen = scheduler.stats.decision_latency_ms.len();
    let tick = Duration::from_millis(run.tick_ms);
    let mut last_tick = Instant::now();
    let mut last_renewal = Instant::now();

    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            b = input.poll(Duration::from_millis(run.tick_ms)) => b?,
            _ = shutdown.changed() => break,
        };
        if let Some(Err(error)) = scheduler.job_ids_ready() {
            return Err(RunError::JobIds(error));
        }
        if let (Some(lease), Some(ours)) = (&run.lease, epoch) {
            still_leading(&input.leadership, ours)?;
            if last_renewal.elapsed() >= Duration::from_millis(lease.ttl_ms / 3) {
                let now = wall_ms();
                out.push(claim(ours, &lease.holder, now + lease.ttl_ms, now));
                last_renewal = Instant::now();
            }
        }
        for (pos, _) in &batch.events {
            let topic = pos.topic.strip_prefix(run.topic_prefix.as_str()).unwrap_or(&pos.topic);
            metrics.inc("splai_scheduler_events_total", &[("topic", topic)], 1.0);
        }
        let mut events = ordered(batch);
        events.sort_by_key(|e| e.0.ts_ms);
        scheduler.advance(wall_ms());
        let idle = events.is_empty();
        for (e, denied, produced) in &events {
            answer(&mut scheduler, e, denied.as_ref(), *produced, &mut out)?;
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
            if let Some(ours) = epoch {
                // Paused past the lease (a standby may lead now): decide nothing more.
                if input.leadership.lapsed(wall_ms()) {
                    return Err(RunError::Lapsed { epoch: ours });
                }
            }
            stamp(&mut out, epoch);
            append_until_done(&writer, &out, &mut shutdown).await?;
            out.clear();
        }
        // After the decisions are on the log: a snapshot never holds one the log may not.
        if let Some(snapshotter) = &mut snapshotter {
            snapshotter.maybe_take(&mut scheduler, &input.positions, input.applied);
        }
    }
    if let (Some(lease), Some(ours)) = (&run.lease, epoch) {
        // Hand over at once instead of at the lease's end.
        let now = wall_ms();
        writer.append(&[claim(ours, &lease.holder, now, now)]).await?;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Stamp the leader's `epoch` on what it writes.
fn stamp(out: &mut [Envelope], epoch: Option<u64>) {
    if epoch.is_some() {
        for e in out {
            e.epoch = epoch;
        }
    }
}

/// Err when another scheduler leads a newer epoch than `ours`.
fn still_leading(leadership: &Leadership, ours: u64) -> Result<(), RunError> {
    match leadership.current() {
        Some(lease) if lease.epoch > ours => {
            Err(RunError::Deposed { epoch: lease.epoch, holder: lease.holder.clone(), ours })
        }
        _ => Ok(()),
    }
}

/// Replay, with virtual time from the envelopes and in time order across partitions, everything
/// appended to the inputs before now.
async fn catch_up(
    input: &mut Input,
    log: &Arc<dyn EventLog>,
    writer: &EventWriter,
    scheduler: &mut Scheduler,
) -> Result<(), RunError> {
    let mut behind: HashMap<(String, u32), u64> = HashMap::new();
    for topic in INPUTS {
        let name = writer.topic(topic);
        for (p, high) in log.high_watermarks(&name).await?.into_iter().enumerate() {
            if high > input.positions.get(&(name.clone(), p as u32)).copied().unwrap_or(0) {
                behind.insert((name.clone(), p as u32), high);
            }
        }
    }
    let mut merge = TimeMerge::default();
    let mut out = Vec::new();
    while !behind.is_empty() || merge.held() > 0 {
        let batch = input.poll(Duration::from_millis(300)).await?;
        for p in &batch.positions {
            let key = (p.topic.clone(), p.partition);
            if behind.get(&key).is_some_and(|high| p.offset + 1 >= *high) {
                behind.remove(&key);
            }
        }
        merge.push(batch);
        for (e, denied, produced) in &merge.release(behind.keys()) {
            scheduler.advance(e.ts_ms);
            answer(scheduler, e, denied.as_ref(), *produced, &mut out)?;
        }
        scheduler.tick(&mut out);
        out.clear();
    }
    Ok(())
}

/// Tail the log warm (replaying, as at start) until this process leads: claim the next epoch
/// whenever the lease lapses. `None` when asked to stop first.
async fn stand_by(
    input: &mut Input,
    writer: &EventWriter,
    scheduler: &mut Scheduler,
    lease: &LeaseOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<u64>, RunError> {
    let mut claimed = 0;
    let mut out = Vec::new();
    loop {
        if let Some(epoch) = input.leadership.led_by(&lease.holder) {
            return Ok(Some(epoch));
        }
        let now = wall_ms();
        let next = input.leadership.next_epoch();
        if input.leadership.lapsed(now) && claimed < next {
            tracing::info!(epoch = next, holder = %lease.holder, "no scheduler leads; claiming the lease");
            writer.append(&[claim(next, &lease.holder, now + lease.ttl_ms, now)]).await?;
            claimed = next;
        }
        let batch = tokio::select! {
            b = input.poll(Duration::from_millis(50)) => b?,
            _ = shutdown.changed() => return Ok(None),
        };
        let mut events = ordered(batch);
        events.sort_by_key(|e| e.0.ts_ms);
        for (e, denied, produced) in &events {
            scheduler.advance(e.ts_ms);
            answer(scheduler, e, denied.as_ref(), *produced, &mut out)?;
        }
        scheduler.tick(&mut out);
        out.clear();
    }
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

/// Move `positions` past everything in `batch`; how many records it held.
fn read(positions: &mut Positions, batch: &EventBatch) -> u64 {
    // A batch holds few partitions: the highest offset of each first, then one key per partition.
    let mut highest: Vec<(&str, u32, u64)> = Vec::new();
    for p in &batch.positions {
        match highest.iter_mut().find(|(t, q, _)| *q == p.partition && *t == p.topic) {
            Some((_, _, o)) => *o = (*o).max(p.offset),
            None => highest.push((&p.topic, p.partition, p.offset)),
        }
    }
    for (topic, partition, offset) in highest {
        let next = positions.entry((topic.to_string(), partition)).or_insert(0);
        *next = (*next).max(offset + 1);
    }
    batch.positions.len() as u64
}

/// A batch's envelopes, accepted or refused at intake, in one list; `true` for those a Kafka
/// producer sent with an API token.
fn ordered(batch: EventBatch) -> Vec<Entry> {
    entries(batch).into_iter().map(|(_, e)| e).collect()
}

fn answer(
    scheduler: &mut Scheduler,
    e: &Envelope,
    denied: Option<&Denied>,
    produced: bool,
    out: &mut Vec<Envelope>,
) -> Result<(), RunError> {
    // Restored from a snapshot, the scheduler reads every job id in the background: a record
    // that may ask about one it does not hold waits for them (the jobs in flight never do).
    if scheduler.needs_every_job_id(e) {
        let waited = Instant::now();
        scheduler.wait_job_ids().map_err(RunError::JobIds)?;
        tracing::info!(took = ?waited.elapsed(), id = %e.id, "waited for every job id of the snapshot");
    }
    match denied {
        None if produced => scheduler.apply_produced(e, out),
        None => scheduler.apply(e, out),
        Some(d) => scheduler.deny(e, d, out),
    }
    Ok(())
}

/// Run the scheduler on a dedicated thread (the dataflow is single-threaded and not `Send`),
/// with its own current-thread async runtime for the log I/O.
pub fn spawn(
    log: Arc<dyn EventLog>,
    opts: SchedulerOptions,
    run_opts: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<(), RunError>> {
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
