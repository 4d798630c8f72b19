//! Projects the log into the read model: `jobs` (requests produced by any client), `job-events`,
//! `task-events`, `heartbeats` and `dead-letter`. Offsets live in SQL, advanced in the effects'
//! transaction; the log's own committed position only saves re-reading. A failed batch is retried,
//! so a database restart delays the projection and loses nothing.

use std::collections::HashMap;
use std::time::Duration;

use splai_events::{
    DeadLetter, Envelope, Event, JobState, PayloadEncoding, SourcePosition, TaskState, Topic, encode,
    wire_name,
};
use splai_ingest::log::{EventReader, EventWriter, LogError};
use splai_store::{Applied, Projection, ProjectorOffsets, Store, StoreError};
use splai_telemetry::chain;
use tokio::sync::watch;

use crate::metrics::Metrics;
use splai_events::now_ms;

pub const TOPICS: [Topic; 6] =
    [Topic::Jobs, Topic::JobEvents, Topic::TaskEvents, Topic::Heartbeats, Topic::DeadLetter, Topic::Metrics];

/// Run until `shutdown`; `grown` hears of every batch that grew job streams (which jobs) and
/// `ready` turns true once the backlog present at start is projected.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    writer: EventWriter,
    store: Store,
    group: String,
    metrics: &'static Metrics,
    grown: crate::grown::Grown,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LogError> {
    let projection = Projection::new(store.clone(), &group);
    let mut reader = EventReader::subscribe(writer.clone(), &group, &TOPICS, None).await?;
    // Behind: partitions whose end at start lies past what the read model has applied.
    let applied: HashMap<(String, u32), u64> = loop {
        match ProjectorOffsets::new(&group).load(&store).await {
            Ok(rows) => break rows.into_iter().map(|p| ((p.topic, p.partition), p.offset)).collect(),
            Err(error) => {
                tracing::warn!(%error, "reading the projector's offsets failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    };
    let mut behind: HashMap<(String, u32), u64> = HashMap::new();
    for topic in TOPICS {
        let name = writer.topic(topic);
        for (p, high) in writer.log().high_watermarks(&name).await?.into_iter().enumerate() {
            let key = (name.clone(), p as u32);
            if high > applied.get(&key).copied().unwrap_or(0) {
                behind.insert(key, high);
            }
        }
    }
    let mut idle_polls = 0u32;
    let observer = Observer::start(metrics, store.clone(), writer.clone());
    // A deposed scheduler's records behind a newer leader's fence are not projected.
    let mut fence = splai_events::EpochFilter::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut batch = tokio::select! {
            b = reader.poll(500, Duration::from_millis(50)) => b?,
            _ = shutdown.changed() => break,
        };
        batch.events.retain(|(at, e)| fence.admits(at, e));
        if !batch.events.is_empty() {
            let Some(applied) = project(&projection, &writer, metrics, &batch.events, &mut shutdown).await
            else {
                break;
            };
            // Streams first: they wait on what was just committed; metrics follow off this path.
            if !applied.touched.is_empty() {
                grown.announce(applied.touched, applied.streamed);
            }
            observer.send(std::mem::take(&mut batch.events), applied.applied).await;
        }
        for p in &batch.positions {
            if behind.get(&(p.topic.clone(), p.partition)).is_some_and(|high| p.offset + 1 >= *high) {
                behind.remove(&(p.topic.clone(), p.partition));
            }
        }
        idle_polls = if batch.positions.is_empty() { idle_polls + 1 } else { 0 };
        // Caught up when every partition's start-time backlog is read (or the log stays quiet:
        // the backlog may end in records another projector already applied).
        if !*ready.borrow() && (behind.is_empty() || idle_polls >= 20) {
            ready.send_replace(true);
            tracing::info!("read model caught up with the log");
        }
        // The read model's own offsets say what is applied: the log's committed position only
        // spares re-reading, so it is written about once a second, not per batch.
        reader.commit_every(&batch, Duration::from_secs(1)).await?;
    }
    drop(observer); // it finishes what it was sent
    reader.flush_commits().await
}

/// Counts what the applied records say ([`observe`]) in a task of its own: its read-model
/// lookups and the policy decisions' audit records wait for the database, and in the projection
/// loop they were a third of its time under load, holding up every job stream behind them.
/// Batches reach it in order; a full queue holds the projection back rather than lose counts.
struct Observer {
    tx: tokio::sync::mpsc::Sender<Observed>,
}

/// A batch's records and the indexes of those it applied.
type Observed = (Vec<(SourcePosition, Envelope)>, Vec<usize>);

impl Observer {
    fn start(metrics: &'static Metrics, store: Store, writer: EventWriter) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Observed>(16);
        tokio::spawn(async move {
            let mut runnable_since: HashMap<(String, String), u64> = HashMap::new();
            let mut kinds = TaskKinds::default();
            while let Some((events, applied)) = rx.recv().await {
                let fresh: Vec<&(SourcePosition, Envelope)> = applied.iter().map(|i| &events[*i]).collect();
                observe(metrics, &store, &mut runnable_since, &mut kinds, &writer, &fresh).await;
            }
        });
        Self { tx }
    }

    /// Hand over a batch's records and which of them were applied.
    async fn send(&self, events: Vec<(SourcePosition, Envelope)>, applied: Vec<usize>) {
        // Closed only if its task panicked: the counts stop, the projection goes on.
        let _ = self.tx.send((events, applied)).await;
    }
}

/// Why a batch was not projected this time (it is retried).
#[derive(Debug, thiserror::Error)]
enum ProjectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("dead-lettering a record the read model refuses failed: {0}")]
    Log(#[from] LogError),
}

/// Failed tries at one batch after which its records are tried one by one, and one that still
/// fails while the database answers is taken for a record that can never be projected.
const SUSPECT_AFTER: u32 = 5;

/// Apply a batch, retrying while the database is away (`None` on shutdown). A record the
/// database refuses outright (a constraint, a value it cannot store), or that keeps failing while
/// the database answers, is dead-lettered with the reason and skipped: one bad record must not
/// freeze every tenant's read model.
async fn project(
    projection: &Projection,
    writer: &EventWriter,
    metrics: &Metrics,
    events: &[(SourcePosition, Envelope)],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Applied> {
    let mut backoff = Duration::from_millis(100);
    let mut failures = 0;
    loop {
        let suspect = failures >= SUSPECT_AFTER;
        let result = match projection.apply(events).await {
            Err(error) if error.is_permanent() || suspect => {
                tracing::warn!(error = %chain(&error), "the read model refused a batch; projecting it record by record");
                one_by_one(projection, writer, metrics, events, suspect).await
            }
            other => other.map_err(ProjectError::from),
        };
        match result {
            Ok(applied) => return Some(applied),
            Err(error) => {
                failures += 1;
                tracing::warn!(error = %chain(&error), failures, "projecting a batch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return None,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Each record in its own transaction (records applied before are skipped by the offsets), so
/// only the refused ones are set aside: those the database refuses outright, and, once the batch
/// is `suspect` (it failed again and again), those that fail while the database answers.
async fn one_by_one(
    projection: &Projection,
    writer: &EventWriter,
    metrics: &Metrics,
    events: &[(SourcePosition, Envelope)],
    suspect: bool,
) -> Result<Applied, ProjectError> {
    let mut all = Applied::default();
    for (i, record) in events.iter().enumerate() {
        match projection.apply(std::slice::from_ref(record)).await {
            Ok(applied) => {
                if !applied.applied.is_empty() {
                    all.applied.push(i);
                }
                for job in applied.touched {
                    if !all.touched.contains(&job) {
                        all.touched.push(job);
                    }
                }
                all.streamed.extend(applied.streamed);
            }
            Err(error) if error.is_permanent() || suspect && projection.database_answers().await => {
                refuse(writer, record, &error).await?;
                projection.skip(&record.0).await?;
                metrics.inc("splai_projection_refused_total", &[], 1.0);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(all)
}

/// Dead-letter a record the read model refuses, under an id fixed by its position (several
/// gateways may refuse it). A refused dead letter is not dead-lettered again (that could loop):
/// it is logged and skipped.
async fn refuse(
    writer: &EventWriter,
    (pos, env): &(SourcePosition, Envelope),
    error: &StoreError,
) -> Result<(), LogError> {
    let at = format!("{}:{}:{}", pos.topic, pos.partition, pos.offset);
    if matches!(env.event, Event::DeadLetter(_)) {
        tracing::error!(%error, record = %at, "the read model refuses a dead letter; skipping it");
        return Ok(());
    }
    tracing::error!(%error, record = %at, "the read model refuses a record; dead-lettering it");
    let clean = |s: &str| s.replace('\0', "\u{fffd}");
    let letter = DeadLetter {
        source: Some(pos.clone()),
        job_id: Some(clean(env.key())),
        task_id: None,
        reason: format!("the read model cannot project this `{}` record: {}", env.event.kind(), chain(error)),
        // The JSON text escapes any byte the database refused.
        payload: String::from_utf8_lossy(&encode(env)).into_owned(),
        payload_encoding: PayloadEncoding::Utf8,
    };
    let envelope =
        Envelope::new(format!("projection:{at}"), now_ms(), clean(&env.tenant), Event::DeadLetter(letter));
    writer.append(&[envelope]).await.map(|_| ())
}

/// The kind of each task of the jobs under way, from their admission: the attempt-duration
/// metric needs it for every finished attempt, and a read-model query each time would cost more
/// than projecting the attempt. A job's entry goes when it ends; a miss asks the read model.
#[derive(Default)]
struct TaskKinds(HashMap<(String, String), HashMap<String, String>>);

impl TaskKinds {
    async fn get(&self, store: &Store, tenant: &str, job: &str, task: &str, attempt: u32) -> Option<String> {
        if let Some(kind) =
            self.0.get(&(tenant.to_string(), job.to_string())).and_then(|tasks| tasks.get(task))
        {
            return Some(kind.clone());
        }
        store
            .tenant(tenant)
            .attempt_brief(job, task, attempt.into())
            .await
            .ok()
            .flatten()
            .map(|(kind, _)| kind.to_string())
    }
}

/// Count what the newly applied records say (read-model lookups are best effort: a metric must
/// never stop the projection).
async fn observe(
    metrics: &Metrics,
    store: &Store,
    runnable_since: &mut HashMap<(String, String), u64>,
    kinds: &mut TaskKinds,
    writer: &EventWriter,
    events: &[&(SourcePosition, Envelope)],
) {
    let jobs_topic = writer.topic(Topic::Jobs);
    let prefix = jobs_topic.strip_suffix(Topic::Jobs.name()).unwrap_or("");
    for (pos, env) in events {
        let topic = pos.topic.strip_prefix(prefix).unwrap_or(&pos.topic);
        metrics.inc("splai_events_consumed_total", &[("topic", topic)], 1.0);
        match &env.event {
            Event::JobAdmitted(splai_events::JobAdmitted { job_id, dag, .. })
            | Event::JobExpanded(splai_events::JobExpanded { job_id, dag, .. }) => {
                let tasks = dag.tasks.iter().map(|t| (t.id.clone(), wire_name(&t.kind))).collect();
                kinds.0.insert((env.tenant.clone(), job_id.clone()), tasks);
            }
            Event::JobStateChanged(s)
                if matches!(s.state, JobState::Succeeded | JobState::Failed | JobState::Cancelled) =>
            {
                kinds.0.remove(&(env.tenant.clone(), s.job_id.clone()));
                if let Ok(Some((job_type, submitted))) = store.tenant(&env.tenant).job_brief(&s.job_id).await
                {
                    let seconds = env.ts_ms.saturating_sub(submitted.max(0) as u64) as f64 / 1000.0;
                    let outcome = wire_name(&s.state);
                    metrics.observe(
                        "splai_job_latency_seconds",
                        &[("type", &job_type.to_string()), ("outcome", &outcome)],
                        seconds,
                    );
                }
            }
            Event::TaskStateChanged(t) => {
                let key = (t.job_id.clone(), t.task_id.clone());
                match t.state {
                    TaskState::Runnable => {
                        runnable_since.insert(key, env.ts_ms);
                    }
                    // A decision shows as `assigned`, or straight as `running` when the attempt
                    // started within the scheduler's same tick.
                    TaskState::Assigned | TaskState::Running => {
                        if let Some(since) = runnable_since.remove(&key) {
                            let seconds = env.ts_ms.saturating_sub(since) as f64 / 1000.0;
                            metrics.observe("splai_decision_latency_seconds", &[], seconds);
                        }
                    }
                    TaskState::Failed => metrics.inc("splai_task_retries_total", &[], 1.0),
                    TaskState::Succeeded | TaskState::DeadLettered | TaskState::Cancelled => {
                        runnable_since.remove(&key);
                    }
                    _ => {}
                }
            }
            Event::AttemptSucceeded(a) => {
                let at = &a.attempt;
                if let Some(kind) = kinds.get(store, &env.tenant, &at.job_id, &at.task_id, at.attempt).await {
                    let seconds = a.duration_ms as f64 / 1000.0;
                    metrics.observe(
                        "splai_task_attempt_duration_seconds",
                        &[("kind", &kind), ("outcome", "succeeded")],
                        seconds,
                    );
                }
            }
            Event::AttemptFailed(a) => {
                if let Ok(Some((kind, Some(started)))) = store
                    .tenant(&env.tenant)
                    .attempt_brief(&a.attempt.job_id, &a.attempt.task_id, a.attempt.attempt.into())
                    .await
                {
                    let seconds = env.ts_ms.saturating_sub(started.max(0) as u64) as f64 / 1000.0;
                    metrics.observe(
                        "splai_task_attempt_duration_seconds",
                        &[("kind", &kind.to_string()), ("outcome", "failed")],
                        seconds,
                    );
                }
            }
            Event::DeadLetter(_) => metrics.inc("splai_dead_letters_total", &[], 1.0),
            Event::PolicyDecision(d) => {
                let entry = splai_store::audit::AuditEntry {
                    tenant: env.tenant.clone(),
                    actor: "scheduler".into(),
                    action: "policy.decision".into(),
                    subject: d.job_id.clone(),
                    detail: serde_json::json!({"stage": wire_name(&d.stage), "allowed": d.allowed, "rule": d.rule,
                                               "reason": d.reason, "task_id": d.task_id}),
                };
                if let Err(error) = store.audit(&entry, env.ts_ms as i64).await {
                    tracing::error!(%error, "writing the audit record of a policy decision failed");
                }
            }
            _ => {}
        }
    }
}
