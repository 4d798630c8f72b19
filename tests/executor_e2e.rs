//! Scheduler + executor on the embedded log, end to end: a DAG of tools and an aggregation runs to
//! completion, artifacts are written and verified, lineage names every parent's artifact, and the
//! same inputs give byte-identical artifacts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use splai_config::ArtifactSettings;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::runner::{RunOptions, spawn};
use splai_events::now_ms;
use splai_events::*;
use splai_executor::service::{ExecutorOptions, run as run_executor};
use splai_ingest::log::{EmbeddedLog, EventLog, EventReader, EventWriter};
use splai_ingest::plan::Limits;
use splai_store::artifacts::ArtifactStore;

/// A scheduler and one executor on a fresh embedded log, with artifacts in a local directory.
struct Stack {
    writer: EventWriter,
    artifacts: ArtifactStore,
    stop: tokio::sync::watch::Sender<bool>,
    scheduler: std::thread::JoinHandle<Result<(), splai_ingest::log::LogError>>,
    executor: tokio::task::JoinHandle<Result<(), splai_ingest::log::LogError>>,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start(prefix: &str, executor: ExecutorOptions, ttl_ms: u64, task_timeout_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(
            EmbeddedLog::open(&dir.path().join("log.sqlite"), false, Duration::from_millis(10))
                .await
                .unwrap(),
        );
        let writer = EventWriter::new(log.clone(), prefix);
        writer.create_all_topics(2).await.unwrap();
        let artifacts = ArtifactStore::open(&ArtifactSettings {
            url: format!("file://{}", dir.path().join("artifacts").display()),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
        })
        .unwrap();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let opts = SchedulerOptions {
            heartbeat_ttl_ms: ttl_ms,
            retry_base_ms: 100,
            retry_cap_ms: 1_000,
            default_max_retries: 1,
            max_lost_attempts: 8,
            decision_resend_ms: 5_000,
            unschedulable_timeout_ms: 0,
            default_task_timeout_ms: task_timeout_ms,
            tenants: Default::default(),
            limits: Limits::default(),
            policy: Default::default(),
            admission: Default::default(),
        };
        let run = RunOptions {
            topic_prefix: prefix.into(),
            partitions: 2,
            tick_ms: 20,
            group: "scheduler".into(),
            gate: None,
            timely_workers: 1,
        };
        let scheduler = spawn(log.clone(), opts, run, stop_rx.clone());
        let executor = tokio::spawn(run_executor(log, artifacts.clone(), executor, stop_rx));
        Stack { writer, artifacts, stop, scheduler, executor, _dir: dir }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.executor.await.unwrap().unwrap();
        let scheduler = self.scheduler;
        tokio::task::spawn_blocking(move || scheduler.join().unwrap().unwrap()).await.unwrap();
    }
}

fn executor(
    worker_id: &str,
    slots: u32,
    heartbeat_interval_ms: u64,
    prefix: &str,
    model_dir: std::path::PathBuf,
) -> ExecutorOptions {
    ExecutorOptions {
        worker_id: worker_id.into(),
        slots,
        heartbeat_interval_ms,
        labels: Default::default(),
        shell: None,
        topic_prefix: prefix.into(),
        partitions: 2,
        models: std::sync::Arc::new(splai_executor::models::Models::discover(&model_dir)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_and_aggregation_run_end_to_end_with_lineage() {
    let no_models = std::env::temp_dir().join("splai-no-models");
    let stack = Stack::start("e.", executor("exec-1", 2, 500, "e.", no_models), 2_000, 30_000).await;
    let (writer, artifacts) = (stack.writer.clone(), stack.artifacts.clone());

    let tickets =
        "ticket 1: login fails\nticket 2: invoice blank\nticket 3: login loops\nticket 4: slow search";
    let dag = json!({"tasks": [
        {"id": "split", "kind": "tool_execution", "inputs": {"tool": {"literal": "split_lines"}, "text": {"literal": tickets}, "lines_per_chunk": {"literal": 2}}},
        {"id": "find-0", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "ticket (\\d+): login"}, "group": {"literal": 1}, "text": {"output": {"task": "split", "pointer": "/chunks/0"}}}},
        {"id": "find-1", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "ticket (\\d+): login"}, "group": {"literal": 1}, "text": {"output": {"task": "split", "pointer": "/chunks/1"}}}},
        {"id": "merge", "kind": "aggregation", "parents": ["find-0", "find-1"], "inputs": {"mode": {"literal": "json_merge"}, "part-0": {"output": {"task": "find-0"}}, "part-1": {"output": {"task": "find-1"}}}},
        {"id": "bad", "kind": "tool_execution", "parents": ["merge"], "inputs": {"tool": {"literal": "shell"}}}
    ]});
    for job in ["e2e-1", "e2e-2"] {
        let mut request: JobRequest =
            serde_json::from_value(json!({"type": "explicit", "job_id": job, "dag": dag})).unwrap();
        request.max_retries = Some(0);
        writer
            .append(&[Envelope::new(format!("req-{job}"), now_ms(), "acme", Event::JobRequest(request))])
            .await
            .unwrap();
    }

    let mut watch =
        EventReader::subscribe(writer.clone(), "watch", &[Topic::TaskEvents, Topic::JobEvents], None)
            .await
            .unwrap();
    let mut successes: Vec<AttemptSucceeded> = Vec::new();
    let mut failures: Vec<AttemptFailed> = Vec::new();
    let mut ended = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ended.len() < 2 {
        assert!(Instant::now() < deadline, "jobs did not end: {ended:?}, successes {}", successes.len());
        for (_, e) in watch.poll(100, Duration::from_millis(100)).await.unwrap().events {
            match e.event {
                Event::AttemptSucceeded(s) => successes.push(s),
                Event::AttemptFailed(f) => failures.push(f),
                Event::JobStateChanged(s) if matches!(s.state, JobState::Failed | JobState::Succeeded) => {
                    ended.push(s)
                }
                _ => {}
            }
        }
    }
    // The `shell` task (after the merge) fails non-retryably with a specific message and fails
    // its job.
    for s in &ended {
        assert_eq!(s.state, JobState::Failed);
        assert_eq!(s.failed_task.as_deref(), Some("bad"));
        assert!(s.reason.as_deref().unwrap().contains("tool `shell` is not enabled"), "{s:?}");
    }
    assert!(failures.iter().all(|f| !f.retryable && f.attempt.task_id == "bad"));

    let find = |job: &str, task: &str| {
        successes.iter().find(|s| s.attempt.job_id == job && s.attempt.task_id == task).cloned()
    };
    for job in ["e2e-1", "e2e-2"] {
        let merge = find(job, "merge").expect("merge ran");
        let parents = vec![find(job, "find-0").unwrap().artifact, find(job, "find-1").unwrap().artifact];
        let mut expected = parents.clone();
        expected.sort();
        assert_eq!(merge.inputs, expected, "lineage names both parents' artifacts");
        let out: serde_json::Value =
            serde_json::from_slice(&artifacts.get(&merge.artifact).await.unwrap()).unwrap();
        assert_eq!(out["merged"]["matches"], json!(["1"]), "{out}");
        assert_eq!(out["conflicts"][0]["dropped"], json!(["3"]), "{out}");
        assert_eq!(find(job, "split").unwrap().inputs, vec![], "literal inputs have no lineage");
    }
    // Same inputs, same bytes.
    assert_eq!(
        find("e2e-1", "merge").unwrap().artifact.sha256,
        find("e2e-2", "merge").unwrap().artifact.sha256
    );

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_job_runs_real_inference_end_to_end() {
    if splai_executor::test_models::smollm2().is_none() {
        return;
    }
    let models = splai_executor::test_models::models_dir();
    let stack = Stack::start("c.", executor("llm-1", 1, 1_000, "c.", models), 5_000, 120_000).await;
    let (writer, artifacts) = (stack.writer.clone(), stack.artifacts.clone());
    let request: JobRequest = serde_json::from_value(json!({
        "type": "chat", "job_id": "chat-1", "model": "smollm2-135m-instruct",
        "input": {"prompt": "What is the capital of France?", "max_tokens": 24}
    }))
    .unwrap();
    let embed: JobRequest = serde_json::from_value(json!({
        "type": "embed", "job_id": "embed-1", "model": "all-minilm-l6-v2",
        "input": {"texts": ["A cat sits on the mat.", "A kitten is sitting on a rug.", "The stock market fell sharply today."]}
    }))
    .unwrap();
    writer
        .append(&[
            Envelope::new("req-chat", now_ms(), "acme", Event::JobRequest(request)),
            Envelope::new("req-embed", now_ms(), "acme", Event::JobRequest(embed)),
        ])
        .await
        .unwrap();

    let mut watch =
        EventReader::subscribe(writer.clone(), "watch", &[Topic::TaskEvents, Topic::JobEvents], None)
            .await
            .unwrap();
    let mut progress = 0;
    let mut success = None;
    let mut merged = None;
    let mut finished = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "chat job did not finish");
        for (_, e) in watch.poll(100, Duration::from_millis(100)).await.unwrap().events {
            match e.event {
                Event::AttemptProgress(_) => progress += 1,
                Event::AttemptSucceeded(s) if s.attempt.job_id == "chat-1" => success = Some(s),
                Event::AttemptSucceeded(s) if s.attempt.task_id == "merge" => merged = Some(s),
                Event::AttemptFailed(f) => panic!("inference failed: {f:?}"),
                Event::JobStateChanged(s) if s.state == JobState::Succeeded => {
                    finished.insert(s.job_id);
                }
                _ => {}
            }
        }
        if finished.len() == 2 {
            break;
        }
    }
    let success = success.expect("a success event");
    let usage = success.usage.expect("token counts");
    assert!(usage.prompt_tokens > 5 && usage.completion_tokens > 0, "{usage:?}");
    assert!(progress > 0, "tokens were streamed as progress events");
    let out: serde_json::Value =
        serde_json::from_slice(&artifacts.get(&success.artifact).await.unwrap()).unwrap();
    assert!(out["text"].as_str().unwrap().contains("Paris"), "{out}");
    assert_eq!(out["model"], "smollm2-135m-instruct");
    let merged = merged.expect("the embed job merged its batches");
    let vectors: serde_json::Value =
        serde_json::from_slice(&artifacts.get(&merged.artifact).await.unwrap()).unwrap();
    assert_eq!(vectors["count"], 3);
    assert_eq!(vectors["vectors"][0].as_array().unwrap().len(), 384);
    stack.stop().await;
}
