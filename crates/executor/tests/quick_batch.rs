//! Quick attempts (pure tools, aggregations) that reach an executor together are reported in one
//! append: a fan-out's maps cost the log one write per executor, and the scheduler one batch to
//! step on, instead of one each. Slow work (a `sleep`) is reported on its own, not held back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use splai_config::ArtifactSettings;
use splai_events::*;
use splai_executor::models::Models;
use splai_executor::service::{ExecutorOptions, run};
use splai_ingest::log::{
    EmbeddedLog, EventLog, EventReader, EventWriter, LogConsumer, LogError, Record, Subscription,
};
use splai_store::artifacts::ArtifactStore;

/// The embedded log, counting the appends that carry attempt outcomes.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn EventLog>,
    outcome_appends: AtomicUsize,
}

#[async_trait]
impl EventLog for Counting {
    async fn create_topics(&self, topics: &[String], partitions: u32) -> Result<(), LogError> {
        self.inner.create_topics(topics, partitions).await
    }
    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<SourcePosition>, LogError> {
        let outcome = |r: &Record| r.payload.windows(19).any(|w| w == b"\"attempt_succeeded\"");
        if records.iter().any(outcome) {
            self.outcome_appends.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.append(topic, records).await
    }
    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn LogConsumer>, LogError> {
        self.inner.subscribe(subscription).await
    }
    async fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.inner.partitions(topic).await
    }
    async fn high_watermarks(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        self.inner.high_watermarks(topic).await
    }
    async fn log_starts(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        self.inner.log_starts(topic).await
    }
    async fn delete_before(&self, topic: &str, partition: u32, offset: u64) -> Result<u64, LogError> {
        self.inner.delete_before(topic, partition, offset).await
    }
    async fn committed_floor(&self, topic: &str) -> Result<Vec<Option<u64>>, LogError> {
        self.inner.committed_floor(topic).await
    }
}

const WORKER: &str = "w-quick";

fn assign(task: &str, inputs: serde_json::Value) -> Envelope {
    let inputs: BTreeMap<String, ResolvedInput> = serde_json::from_value(inputs).expect("inputs");
    let a = Assign {
        attempt: AttemptId { job_id: "job-q".into(), task_id: task.into(), attempt: 1 },
        worker_id: WORKER.into(),
        kind: TaskKind::ToolExecution,
        inputs,
        requirements: Requirements::default(),
        deadline_ms: now_ms() + 60_000,
        cache: true,
        expand: false,
        light: true,
        engine: false,
    };
    Envelope::new(format!("assign-{task}"), now_ms(), "acme", Event::Assign(a))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_attempts_that_arrive_together_are_reported_in_one_append() {
    let dir = tempfile::tempdir().unwrap();
    let embedded =
        EmbeddedLog::open(&dir.path().join("log.sqlite"), false, Duration::from_millis(10)).await.unwrap();
    let log = Arc::new(Counting { inner: Arc::new(embedded), outcome_appends: AtomicUsize::new(0) });
    let artifacts = ArtifactStore::open(&ArtifactSettings {
        url: format!("file://{}", dir.path().join("artifacts").display()),
        s3_endpoint: String::new(),
        s3_region: "us-east-1".into(),
    })
    .unwrap();
    let opts = ExecutorOptions {
        worker_id: WORKER.into(),
        slots: 1,
        light_slots: 64,
        engines: BTreeMap::new(),
        heartbeat_interval_ms: 60_000,
        labels: BTreeMap::new(),
        shell: None,
        topic_prefix: "q.".into(),
        partitions: 1,
        result_cache: true,
        models: Arc::new(Models::discover(dir.path())),
    };
    let writer = EventWriter::new(log.clone(), "q.");
    writer.create_all_topics(1).await.unwrap();
    let mut reader =
        EventReader::subscribe(writer.clone(), "test", &[Topic::TaskEvents], None).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let executor = tokio::spawn(run(log.clone(), artifacts, opts, stopped));

    // Registered: its assignments may go out (it skips what its partition held before it).
    let mut beats =
        EventReader::subscribe(writer.clone(), "beats", &[Topic::Heartbeats], None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    'registering: loop {
        assert!(Instant::now() < deadline, "the executor never registered");
        for (_, e) in beats.poll(100, Duration::from_millis(200)).await.unwrap().events {
            if matches!(e.event, Event::WorkerRegistered(_)) {
                break 'registering;
            }
        }
    }

    // Twelve regexes and a slow `sleep`, in one append: one poll hands them all over.
    let mut batch: Vec<Envelope> = (0..12)
        .map(|i| {
            assign(
                &format!("map-{i}"),
                json!({"tool": {"literal": "regex"}, "pattern": {"literal": "n(\\d+)"},
                "group": {"literal": 1}, "text": {"literal": format!("line n{i}")}}),
            )
        })
        .collect();
    batch.push(assign("nap", json!({"tool": {"literal": "sleep"}, "ms": {"literal": 300}})));
    writer.append(&batch).await.unwrap();

    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while order.len() < 13 {
        assert!(Instant::now() < deadline, "only {order:?} succeeded");
        for (_, e) in reader.poll(100, Duration::from_millis(200)).await.unwrap().events {
            if let Event::AttemptSucceeded(s) = e.event {
                order.push(s.attempt.task_id);
            }
        }
    }
    // The nap is not among the quick ones: they did not wait for it.
    assert_eq!(order.last().map(String::as_str), Some("nap"), "{order:?}");
    assert_eq!(
        log.outcome_appends.load(Ordering::SeqCst),
        2,
        "the twelve maps in one append, the nap in its own"
    );
    stop.send(true).unwrap();
    executor.await.unwrap().unwrap();
}
