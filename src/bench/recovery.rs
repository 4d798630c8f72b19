//! `splai bench recovery --history N`: how long a scheduler takes from start to live after N jobs
//! of history (issue 21 item 2). The history is a closed-loop simulation (`splai gen`'s: the real
//! scheduler deciding, simulated executors reporting) appended to a fresh embedded log. Then:
//! 1. a scheduler starts with no snapshot on the log: a full replay (the figure without
//!    snapshots); live, it takes a snapshot as of the end of the history;
//! 2. a scheduler starts again (`--restarts` times; the median is reported): it restores that
//!    snapshot and replays only the tail.
//!
//! Reported: both start times, the records each replayed, the snapshot's size (without its job
//! ids, kept beside it), the job ids' size and when the restored scheduler had read them (it runs
//! the jobs in flight before; a new job id waits for them), and the time the live scheduler
//! spent taking the snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use splai_config::Settings;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::sim::{Shape, SimConfig, simulate};
use splai_ingest::log::{EventWriter, open_log};
use splai_store::artifacts::ArtifactStore;

#[derive(Debug, clap::Args)]
pub struct RecoveryBenchArgs {
    /// Jobs of history on the log before the scheduler starts.
    #[arg(long, default_value_t = 10_000)]
    pub history: u32,
    /// Shape of each job (`chain:N` or `fanout:N`).
    #[arg(long, default_value = "chain:2")]
    pub shape: Shape,
    /// Starts from the snapshot (the median is reported: a start of a few milliseconds is noisy).
    #[arg(long, default_value_t = 5)]
    pub restarts: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveryReport {
    pub history_jobs: u32,
    pub log_records: u64,
    pub full_replay_s: f64,
    pub full_replay_records: u64,
    pub from_snapshot_s: f64,
    pub from_snapshot_replayed_records: u64,
    pub snapshot_bytes: u64,
    pub job_ids_bytes: u64,
    /// Start to every job id read (the restored scheduler).
    pub job_ids_read_s: f64,
    pub snapshot_take_s: f64,
    /// Taking a snapshot in a scheduler restored from one.
    pub restored_snapshot_take_s: f64,
}

pub async fn run(settings: &Settings, args: &RecoveryBenchArgs) -> anyhow::Result<()> {
    let r = measure(settings, args).await?;
    println!(
        "recovery history_jobs={} log_records={} full_replay_s={:.3} full_replay_records={} from_snapshot_s={:.4} from_snapshot_replayed_records={} snapshot_bytes={} job_ids_bytes={} job_ids_read_s={:.4} snapshot_take_s={:.3} restored_snapshot_take_s={:.3}",
        r.history_jobs,
        r.log_records,
        r.full_replay_s,
        r.full_replay_records,
        r.from_snapshot_s,
        r.from_snapshot_replayed_records,
        r.snapshot_bytes,
        r.job_ids_bytes,
        r.job_ids_read_s,
        r.snapshot_take_s,
        r.restored_snapshot_take_s
    );
    Ok(())
}

pub async fn measure(settings: &Settings, args: &RecoveryBenchArgs) -> anyhow::Result<RecoveryReport> {
    let (_dir, mut s) = super::scratch_settings(settings, "recovery")?;
    s.scheduler.snapshot_every_events = 1;
    s.scheduler.snapshot_min_interval_ms = 0;
    s.scheduler.snapshot_keep = 2;
    let log = open_log(&s.log).await.context("opening the scratch log")?;
    let writer = EventWriter::new(log.clone(), s.log.topic_prefix.clone());
    writer.create_all_topics(s.log.partitions).await?;

    let started = Instant::now();
    let log_records = write_history(&writer, SchedulerOptions::from(&s.scheduler), args).await?;
    eprintln!(
        "history: {} jobs, {log_records} records in {:.1}s",
        args.history,
        started.elapsed().as_secs_f64()
    );
    let artifacts = ArtifactStore::open(&s.artifacts)?;

    let before = input_records(&writer).await?;
    let first = start_once(&s, log.clone(), &artifacts, true).await?;
    let first_take = take_sum_count();
    let first_take_s = first_take.0 / first_take.1.max(1.0);
    let after = input_records(&writer).await?;
    eprintln!("records the first scheduler wrote to its own inputs, by topic: {:?}", diff(&before, &after));
    let mut restarts = Vec::new();
    for _ in 0..args.restarts.max(1) {
        let again = start_once(&s, log.clone(), &artifacts, false).await?;
        if again.restored == 0 {
            bail!("a start after the first restored no snapshot");
        }
        restarts.push(again);
    }
    let median = |of: fn(&Start) -> f64| {
        let mut v: Vec<f64> = restarts.iter().map(of).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (from_snapshot_s, job_ids_read_s) = (median(|s| s.seconds), median(|s| s.job_ids_read_s));
    // Taking a snapshot again once restored: the job ids are copied from the restored ones.
    let before_take = take_sum_count();
    start_once(&s, log.clone(), &artifacts, true).await?;
    let after_take = take_sum_count();
    let restored_take_s = (after_take.0 - before_take.0) / (after_take.1 - before_take.1).max(1.0);
    let second = &restarts[0];
    let recorded = splai_dataflow::snapshots::recorded(&writer, None).await?;
    let newest = recorded.last().context("no snapshot recorded")?;
    let snapshot = artifacts.get(&newest.artifact).await.context("reading the newest snapshot back")?;
    let ids = splai_dataflow::stored_ids(&snapshot)?.context("the snapshot keeps its job ids inline")?;
    Ok(RecoveryReport {
        history_jobs: args.history,
        log_records,
        full_replay_s: first.seconds,
        full_replay_records: first.replayed,
        from_snapshot_s,
        from_snapshot_replayed_records: second.replayed,
        snapshot_bytes: newest.artifact.size_bytes,
        job_ids_bytes: ids.size_bytes,
        job_ids_read_s,
        snapshot_take_s: first_take_s,
        restored_snapshot_take_s: restored_take_s,
    })
}

/// The simulated history, appended in large batches (each envelope to its own topic) while the
/// simulation runs on a blocking thread.
async fn write_history(
    writer: &EventWriter,
    opts: SchedulerOptions,
    args: &RecoveryBenchArgs,
) -> anyhow::Result<u64> {
    let cfg = SimConfig {
        jobs: args.history,
        shape: args.shape,
        workers: 64,
        slots: 8,
        duration_ms: 50,
        fail_rate: 0.0,
        jobs_per_s: 2_000.0,
        tenants: 4,
        seed: 7,
        max_step_ms: 100,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<splai_events::Envelope>>(4);
    let sim = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut open = true;
        simulate(&cfg, opts, &mut |e| {
            chunk.push(e.clone());
            if chunk.len() == CHUNK && open {
                open = tx.blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_ok();
            }
        });
        if open && !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    let mut total = 0;
    while let Some(chunk) = rx.recv().await {
        total += chunk.len() as u64;
        writer.append(&chunk).await?;
    }
    sim.await.context("the simulation panicked")?;
    Ok(total)
}

const CHUNK: usize = 20_000;

struct Start {
    seconds: f64,
    replayed: u64,
    restored: u64,
    /// Start to every job id of the restored snapshot read (0 when none was restored).
    job_ids_read_s: f64,
}

/// Start a scheduler on the log, wait until it is live (and, when `snapshot`, until it recorded a
/// snapshot), stop it; what its start cost.
async fn start_once(
    s: &Settings,
    log: Arc<dyn splai_ingest::log::EventLog>,
    artifacts: &ArtifactStore,
    snapshot: bool,
) -> anyhow::Result<Start> {
    let metrics = splai_telemetry::metrics::global();
    metrics.set("splai_scheduler_start_seconds", &[], -1.0);
    metrics.set("splai_scheduler_start_job_ids_seconds", &[], -1.0);
    let before =
        splai_dataflow::snapshots::recorded(&EventWriter::new(log.clone(), s.log.topic_prefix.clone()), None)
            .await?
            .len();
    let (stop, shutdown) = splai_stack::shutdown_channel();
    let handle = splai_stack::scheduler::start(s, log.clone(), artifacts, shutdown)?;
    let deadline = Instant::now() + Duration::from_secs(3_600);
    let seconds = loop {
        let text = metrics.render(&[]);
        match gauge(&text, "splai_scheduler_start_seconds") {
            Some(v) if v >= 0.0 => break v,
            _ if Instant::now() > deadline => bail!("the scheduler did not go live within an hour"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let text = metrics.render(&[]);
    let replayed = gauge(&text, "splai_scheduler_start_replayed_events").unwrap_or(0.0) as u64;
    let restored = gauge(&text, "splai_scheduler_start_snapshot_events").unwrap_or(0.0) as u64;
    let job_ids_read_s = if restored == 0 {
        0.0
    } else {
        loop {
            match gauge(&metrics.render(&[]), "splai_scheduler_start_job_ids_seconds") {
                Some(v) if v >= 0.0 => break v,
                _ if Instant::now() > deadline => bail!("the job ids were not read within an hour"),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    if snapshot {
        let writer = EventWriter::new(log.clone(), s.log.topic_prefix.clone());
        while splai_dataflow::snapshots::recorded(&writer, None).await?.len() <= before {
            if Instant::now() > deadline {
                bail!("no snapshot recorded within an hour");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop.send(true).ok();
    handle.join().await?;
    Ok(Start { seconds, replayed, restored, job_ids_read_s })
}

/// Records per input topic.
async fn input_records(writer: &EventWriter) -> anyhow::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for topic in splai_dataflow::runner::INPUTS {
        let name = writer.topic(topic);
        let n = writer.log().high_watermarks(&name).await?.iter().sum();
        out.push((name, n));
    }
    Ok(out)
}

fn diff(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    before.iter().zip(after).map(|((t, b), (_, a))| (t.clone(), a - b)).collect()
}

fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The seconds spent taking snapshots so far in this process, and how many were taken.
fn take_sum_count() -> (f64, f64) {
    let text = splai_telemetry::metrics::global().render(&[]);
    let name = "splai_scheduler_snapshot_seconds";
    (
        gauge(&text, &format!("{name}_sum")).unwrap_or(0.0),
        gauge(&text, &format!("{name}_count")).unwrap_or(0.0),
    )
}
