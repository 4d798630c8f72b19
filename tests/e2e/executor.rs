//! Scheduler + executor on the embedded log, end to end: a DAG of tools and an aggregation runs to
//! completion, artifacts are written and verified, lineage names every parent's artifact, and the
//! same inputs give byte-identical artifacts.

use std::time::{Duration, Instant};

use serde_json::json;
use splai_config::Loader;
use splai_events::now_ms;
use splai_events::*;
use splai_ingest::log::{EventReader, EventWriter};
use splai_stack::StackOptions;
use splai_store::artifacts::ArtifactStore;

/// The whole stack in this process on a fresh data directory: an embedded log with `prefix`,
/// one executor of `slots` slots beating every `beat_ms`, models from `model_dir`.
struct Stack {
    stack: splai_stack::Stack,
    writer: EventWriter,
    artifacts: ArtifactStore,
    _dir: tempfile::TempDir,
}

struct Sizes {
    slots: u32,
    beat_ms: u64,
    ttl_ms: u64,
    task_timeout_s: u32,
}

impl Stack {
    async fn start(prefix: &str, model_dir: &std::path::Path, sizes: Sizes) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let settings = Loader::new()
            .overrides([
                format!("log.topic_prefix={prefix}"),
                "log.partitions=2".into(),
                format!("log.embedded.path={d}/log.sqlite"),
                "log.embedded.poll_interval_ms=10".into(),
                format!("store.url=sqlite://{d}/splai.sqlite"),
                format!("artifacts.url=file://{d}/artifacts"),
                "gateway.listen=127.0.0.1:0".into(),
                "scheduler.tick_ms=20".into(),
                format!("scheduler.heartbeat_ttl_ms={}", sizes.ttl_ms),
                "scheduler.retry_base_ms=100".into(),
                "scheduler.retry_cap_ms=1000".into(),
                "scheduler.default_max_retries=1".into(),
                format!("scheduler.default_task_timeout_s={}", sizes.task_timeout_s),
                format!("executor.heartbeat_interval_ms={}", sizes.beat_ms),
                format!("executor.model_dir={}", model_dir.display()),
            ])
            .unwrap()
            .load()
            .unwrap();
        let opts = StackOptions { executors: 1, slots_per_executor: Some(sizes.slots) };
        let stack = splai_stack::Stack::start(&settings, &opts).await.unwrap();
        let writer = EventWriter::new(stack.log.clone(), prefix);
        writer.create_all_topics(2).await.unwrap();
        Stack { artifacts: stack.artifacts.clone(), writer, stack, _dir: dir }
    }

    async fn stop(self) {
        self.stack.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_and_aggregation_run_end_to_end_with_lineage() {
    let no_models = std::env::temp_dir().join("splai-no-models");
    let sizes = Sizes { slots: 2, beat_ms: 500, ttl_ms: 2_000, task_timeout_s: 30 };
    let stack = Stack::start("e.", &no_models, sizes).await;
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
    let sizes = Sizes { slots: 1, beat_ms: 1_000, ttl_ms: 5_000, task_timeout_s: 120 };
    let stack = Stack::start("c.", &models, sizes).await;
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
