//! The projection gives the same read model on SQLite (written directly, one blocking call per
//! batch) and on PostgreSQL (through sqlx): the documented sample of every event kind, in the
//! order a job lives it, applied on both and the tables compared. A batch applied again changes
//! nothing. PostgreSQL from SPLAI_TEST_POSTGRES_URL; required with SPLAI_TEST_REQUIRE_SERVICES=1.

mod common;

use splai_config::StoreSettings;
use splai_events::{Envelope, Event, SourcePosition, TaskState};
use splai_store::{Projection, Store};

const LIFECYCLE: [&str; 16] = [
    "job_request.chat",
    "job_request.explicit",
    "job_admitted",
    "job_expanded",
    "worker_registered",
    "heartbeat",
    "task_state_changed",
    "attempt_started",
    "attempt_progress",
    "attempt_failed",
    "attempt_succeeded",
    "job_state_changed",
    "job_rejected",
    "dead_letter",
    "policy_decision",
    "worker_leaving",
];

/// Each table's rows as text, columns cast so both backends print them alike.
const DUMPS: [&str; 9] = [
    "SELECT job_id || '|' || state || '|' || COALESCE(CAST(tasks_total AS TEXT), '-') || '|' || tasks_succeeded || '|' || COALESCE(reason, '-') || '|' || COALESCE(result_task, '-') FROM jobs",
    "SELECT job_id || '|' || task_id || '|' || kind || '|' || state || '|' || attempt || '|' || COALESCE(worker_id, '-') FROM tasks",
    "SELECT job_id || '|' || task_id || '|' || attempt || '|' || state || '|' || COALESCE(error, '-') || '|' || COALESCE(CAST(duration_ms AS TEXT), '-') FROM attempts",
    "SELECT path || '|' || sha256 || '|' || size_bytes FROM artifacts",
    "SELECT artifact_path || '|' || input_path FROM artifact_inputs",
    "SELECT worker_id || '|' || slots || '|' || last_beat_ms || '|' || COALESCE(CAST(left_at_ms AS TEXT), '-') FROM workers",
    "SELECT source || '|' || reason FROM dead_letters",
    "SELECT job_id || '|' || seq || '|' || source || '|' || event || '|' || data FROM job_stream",
    "SELECT projector || '|' || topic || '|' || partition || '|' || next_offset FROM projector_offsets",
];

fn batch() -> Vec<(SourcePosition, Envelope)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/samples");
    LIFECYCLE
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
            let env = splai_events::decode_str(&text).unwrap();
            let pos = SourcePosition {
                topic: format!("splai.{}", env.event.topic().name()),
                partition: 0,
                offset: i as u64,
            };
            (pos, env)
        })
        .collect()
}

async fn dump(store: &Store) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sql in DUMPS {
        let mut rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(store.pool()).await.unwrap();
        rows.sort();
        out.push(rows);
    }
    out
}

async fn project(store: &Store) -> Vec<Vec<String>> {
    let events = batch();
    let projection = Projection::new(store.clone(), "gateway");
    // In two batches, the second overlapping the first: records already applied are skipped.
    let first = projection.apply(&events[..9]).await.unwrap();
    assert_eq!(first.applied, (0..9).collect::<Vec<_>>());
    let second = projection.apply(&events[5..]).await.unwrap();
    assert_eq!(
        second.applied,
        (4..LIFECYCLE.len() - 5).collect::<Vec<_>>(),
        "only the new records are applied"
    );
    assert!(second.touched.contains(&"job-7f3a".to_string()), "{second:?}");
    // The rows the batches added, as handed to stream followers, are the stream as stored.
    let handed: Vec<_> =
        first.streamed.iter().chain(&second.streamed).filter(|r| r.job_id == "job-7f3a").collect();
    let tenant = &handed.first().expect("the batches grew the job's stream").tenant;
    let stored = store.tenant(tenant).stream_after("job-7f3a", 0, 1000).await.unwrap();
    assert_eq!(handed.iter().map(|r| &r.event).collect::<Vec<_>>(), stored.iter().collect::<Vec<_>>());
    let before = dump(store).await;
    let again = projection.apply(&events).await.unwrap();
    assert!(again.applied.is_empty() && again.touched.is_empty(), "a replay applies nothing: {again:?}");
    assert!(again.streamed.is_empty(), "a replay adds no stream rows: {again:?}");
    assert_eq!(dump(store).await, before, "a replay changes nothing");
    before
}

#[tokio::test]
async fn sqlite_and_postgres_project_alike() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("read.sqlite").display());
    let sqlite = Store::connect(&StoreSettings { url, max_connections: 2, fsync: false }).await.unwrap();
    sqlite.migrate().await.unwrap();
    let on_sqlite = project(&sqlite).await;
    let stream = &on_sqlite[7];
    assert!(stream.len() >= 5, "the job's stream grew: {stream:?}");
    assert!(on_sqlite[0].iter().any(|r| r.starts_with("job-7f3a|")), "{:?}", on_sqlite[0]);

    let Some(pg) = common::postgres().await else { return };
    let on_postgres = project(&pg).await;
    for (i, sql) in DUMPS.iter().enumerate() {
        assert_eq!(on_sqlite[i], on_postgres[i], "{sql}");
    }
}

/// The attempt row of the sample's `map-0` attempt 1: state and error.
async fn attempt_row(store: &Store) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT state, error FROM attempts WHERE job_id = 'job-7f3a' AND task_id = 'map-0' AND attempt = 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A fresh SQLite read model with the sample lifecycle's first `n` records applied.
async fn projected(n: usize) -> (tempfile::TempDir, Store, Projection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("read.sqlite").display());
    let store = Store::connect(&StoreSettings { url, max_connections: 2, fsync: false }).await.unwrap();
    store.migrate().await.unwrap();
    let projection = Projection::new(store.clone(), "gateway");
    projection.apply(&batch()[..n]).await.unwrap();
    (dir, store, projection)
}

/// What the scheduler says of the sample's `map-0` (its `task_state_changed`, sample 6, in
/// `state` for `attempt` with `reason`), at `offset` of `job-events`.
fn scheduler_says(offset: u64, state: TaskState, attempt: u32, reason: &str) -> (SourcePosition, Envelope) {
    let mut env = batch()[6].1.clone();
    env.id = format!("je-{offset}");
    let Event::TaskStateChanged(t) = &mut env.event else { panic!("sample 6 is task_state_changed") };
    (t.state, t.attempt, t.worker_id, t.reason) = (state, attempt, None, Some(reason.into()));
    (SourcePosition { topic: "splai.job-events".into(), partition: 0, offset }, env)
}

const TIMED_OUT: &str = "attempt 1 timed out (no result by its deadline)";

/// A job whose last attempt timed out reads failed with that attempt ended, even when the
/// worker's own report (on another topic) has not been read yet; the worker's report, read
/// later, gives the specific error.
#[tokio::test]
async fn an_attempt_the_scheduler_ended_reads_ended_before_its_worker_reports() {
    let (_dir, store, projection) = projected(8).await;
    assert_eq!(attempt_row(&store).await.0, "running");

    projection.apply(&[scheduler_says(100, TaskState::DeadLettered, 1, TIMED_OUT)]).await.unwrap();
    let (state, error) = attempt_row(&store).await;
    assert_eq!((state.as_str(), error.as_deref()), ("failed", Some(TIMED_OUT)));
    let worker: String = sqlx::query_scalar("SELECT worker_id FROM attempts WHERE task_id = 'map-0'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(worker, "w-node1-0", "the worker the task was on");
    projection.apply(&batch()[9..10]).await.unwrap();
    assert_eq!(attempt_row(&store).await.1.as_deref(), Some("attempt timed out after 60 s"));
}

/// The worker's report read first stays: the scheduler's verdict does not overwrite it.
#[tokio::test]
async fn a_worker_report_read_first_is_not_overwritten() {
    let (_dir, store, projection) = projected(7).await;
    let events = batch();
    let (started, failed) = (events[7].clone(), events[9].clone());
    projection
        .apply(&[started, failed, scheduler_says(100, TaskState::DeadLettered, 1, TIMED_OUT)])
        .await
        .unwrap();
    assert_eq!(attempt_row(&store).await.1.as_deref(), Some("attempt timed out after 60 s"));
}

/// Why a task not yet placed waits (`runnable` with a reason, naming its next attempt) makes
/// no attempt row.
#[tokio::test]
async fn a_waiting_reason_makes_no_attempt_row() {
    let (_dir, store, projection) = projected(8).await;
    projection.apply(&[scheduler_says(100, TaskState::Runnable, 2, "no live worker")]).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE task_id = 'map-0'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "only attempt 1");
}

/// Runnable again after the scheduler found the attempt lost: the running row ends.
#[tokio::test]
async fn a_lost_attempt_ends_its_running_row() {
    let (_dir, store, projection) = projected(8).await;
    let lost = "attempt 1 lost: not held";
    projection.apply(&[scheduler_says(100, TaskState::Runnable, 1, lost)]).await.unwrap();
    let (state, error) = attempt_row(&store).await;
    assert_eq!((state.as_str(), error.as_deref()), ("failed", Some(lost)));
}

/// The job's (succeeded, failed) task counters.
async fn counters(store: &Store) -> (i64, i64) {
    sqlx::query_as("SELECT tasks_succeeded, tasks_failed FROM jobs WHERE job_id = 'job-7f3a'")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The job's task counters follow each task's state as changes arrive: a state said twice counts
/// once, a dead-lettered task requeued and then succeeded moves from failed to succeeded.
#[tokio::test]
async fn task_counters_follow_each_tasks_latest_state() {
    let (_dir, store, projection) = projected(6).await;
    assert_eq!(counters(&store).await, (0, 0));
    // The sample job's `chat` task (the sample change names `map-0`, which the job does not have:
    // a change of a task the read model does not know counts nothing).
    projection.apply(&[scheduler_says(99, TaskState::Succeeded, 1, "r")]).await.unwrap();
    assert_eq!(counters(&store).await, (0, 0), "no such task");
    let says = |offset, state| {
        let mut said = scheduler_says(offset, state, 1, "r");
        let Event::TaskStateChanged(t) = &mut said.1.event else { unreachable!() };
        t.task_id = "chat".into();
        said
    };
    projection.apply(&[says(100, TaskState::DeadLettered)]).await.unwrap();
    assert_eq!(counters(&store).await, (0, 1));
    projection.apply(&[says(101, TaskState::DeadLettered)]).await.unwrap();
    assert_eq!(counters(&store).await, (0, 1), "said twice, counted once");
    projection.apply(&[says(102, TaskState::Runnable), says(103, TaskState::Succeeded)]).await.unwrap();
    assert_eq!(counters(&store).await, (1, 0));
    projection.apply(&[says(104, TaskState::Succeeded)]).await.unwrap();
    assert_eq!(counters(&store).await, (1, 0));
}
