//! Chaos, short and bounded, all on 127.0.0.1 with real processes on one embedded log:
//! - an executor frozen (SIGSTOP) mid-task past the heartbeat ttl, then thawed (SIGCONT): the
//!   task is retried elsewhere, the frozen attempt's late report is fenced, exactly one success
//!   counts, and the job's result is the survivor's;
//! - the gateway SIGKILLed mid-job and restarted: the job finishes, the read model catches up,
//!   and an SSE client resuming with `Last-Event-ID` across the restart sees no gap and no
//!   duplicate.
//! - a retry storm: every attempt of many tasks times out; backoff spaces the attempts, each task
//!   stops at its retry budget in a dead letter, and the runtime keeps serving;
//! - `infra`: the Kafka broker (tansu, durable S3 storage) SIGKILLed and restarted, and
//!   PostgreSQL crash-restarted, mid-run on the distributed stack, with the log reconciled against
//!   the read model afterwards.

mod infra;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{
    get, job_state, post, read_stream, splai, start_gateway, task_state, wait_job, wait_ready, wait_until,
};
use serde_json::{Value, json};
use splai_events::{AttemptState, Event, JobState, TaskState, Topic};
use splai_ingest::log::{EventReader, EventWriter, open_log};

/// Task `task` of job `job` with its attempts, as `/v1/jobs/{job}/tasks` shows it.
async fn task_of(url: &str, job: &str, task: &str) -> Value {
    let (_, tasks) = get(url, &format!("/v1/jobs/{job}/tasks"), None).await.unwrap();
    tasks["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["task_id"] == task))
        .cloned()
        .unwrap_or_default()
}

/// Whether `task` has an attempt on `worker` that `pred` holds for.
fn has_attempt(task: &Value, worker: &str, pred: impl Fn(&Value) -> bool) -> bool {
    task["attempts"].as_array().is_some_and(|a| a.iter().any(|a| a["worker_id"] == worker && pred(a)))
}

fn stack() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("splai.toml");
    std::fs::write(&config, crate::common::base_config(dir.path())).unwrap();
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_executor_is_replaced_and_its_late_report_fenced() {
    let (_dir, config) = stack();
    let (_g, url) = start_gateway(&config, &[]);
    let _s = splai(&config, &["scheduler"], false);
    let frozen = splai(&config, &["executor", "--id", "frozen"], false);
    wait_ready(&url, None).await;
    let job = json!({"type": "explicit", "job_id": "freeze-1", "dag": {"tasks": [
        {"id": "slow", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 1500}}},
        {"id": "after", "kind": "aggregation", "parents": ["slow"], "inputs": {"mode": {"literal": "concat"}, "part-0": {"output": {"task": "slow"}}}}]}});
    assert_eq!(post(&url, "/v1/jobs", &job, None).await.0, 202);
    wait_until("`slow` to run on the executor to be frozen", Duration::from_secs(30), async || {
        let slow = task_of(&url, "freeze-1", "slow").await;
        // Null until the task is projected.
        if !slow.is_null() && task_state(&slow) == TaskState::Running { Ok(()) } else { Err(slow) }
    })
    .await;
    frozen.signal("-STOP"); // no beats, no progress: the ttl (1.5 s) runs out
    let _survivor = splai(&config, &["executor", "--id", "survivor"], false);
    wait_until("the retry of `slow` on the survivor", Duration::from_secs(30), async || {
        let slow = task_of(&url, "freeze-1", "slow").await;
        if has_attempt(&slow, "survivor", |_| true) { Ok(()) } else { Err(slow) }
    })
    .await;
    frozen.signal("-CONT"); // wakes up, finishes its (stale) attempt and reports it
    let done = wait_job(&url, "freeze-1", None, Duration::from_secs(60)).await;
    assert_eq!(job_state(&done), JobState::Succeeded, "{done}");
    // The frozen attempt's late report (its result, or its failure once it reads its revoke)
    // reaches the read model; what follows holds with it there.
    let slow = wait_until("the frozen attempt's late report", Duration::from_secs(30), async || {
        let slow = task_of(&url, "freeze-1", "slow").await;
        if has_attempt(&slow, "frozen", |a| crate::common::attempt_state(a) != AttemptState::Running) {
            Ok(slow)
        } else {
            Err(slow)
        }
    })
    .await;
    let attempts = slow["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "retried elsewhere: {slow}");
    assert_eq!(attempts[0]["worker_id"], "frozen");
    let current = slow["attempt"].as_i64().unwrap();
    let winner = attempts.iter().find(|a| a["attempt"].as_i64() == Some(current)).unwrap();
    assert_eq!(
        (winner["worker_id"].as_str(), crate::common::attempt_state(winner)),
        (Some("survivor"), AttemptState::Succeeded),
        "{slow}"
    );
    // The task's artifact, and what `after` read, is the survivor's attempt.
    let (_, lineage) = get(&url, "/v1/jobs/freeze-1/lineage", None).await.unwrap();
    let node =
        |id: &str| lineage["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id).unwrap().clone();
    let slow_artifact = node("slow")["artifact"].clone();
    assert!(
        slow_artifact.as_str().unwrap().ends_with(&format!("/slow/{current}/output.json")),
        "{slow_artifact}"
    );
    assert_eq!(node("after")["inputs"], json!([slow_artifact]), "the dependent read the counted attempt");
    let (_, job) = get(&url, "/v1/jobs/freeze-1", None).await.unwrap();
    assert_eq!(job["tasks_succeeded"], 2, "the late report counts no second success: {job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_restarts_mid_job_and_streams_resume_without_gaps() {
    let (_dir, config) = stack();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let listen_set = format!("gateway.listen={listen}");
    let (g1, url) = start_gateway(&config, &["--set", &listen_set]);
    let _s = splai(&config, &["scheduler"], false);
    let _e = splai(&config, &["executor", "--id", "steady"], false);
    wait_ready(&url, None).await;
    let steps: Vec<Value> = (0..12)
        .map(|i| {
            let parents: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
            json!({"id": format!("s{i}"), "kind": "tool_execution", "parents": parents,
                   "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 250}}})
        })
        .collect();
    let job = json!({"type": "explicit", "job_id": "restart-1", "dag": {"tasks": steps}});
    assert_eq!(post(&url, "/v1/jobs", &job, None).await.0, 202);
    // What a client saw before the gateway died: the job under way.
    let seen_before =
        wait_until("a first task of restart-1 to succeed", Duration::from_secs(30), async || {
            let (_, tasks) = get(&url, "/v1/jobs/restart-1/tasks", None).await.unwrap();
            let n = tasks["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| task_state(t) == TaskState::Succeeded)
                .count();
            if n > 0 { Ok(n) } else { Err(tasks) }
        })
        .await;
    assert!(seen_before < 12, "mid-job: {seen_before}");
    drop(g1); // SIGKILL
    // The job goes on without a gateway: stay down until the log holds more task successes than
    // the client saw before the kill, so the new gateway has events to catch up on.
    let settings = splai_config::Loader::new().file(Some(&config)).load().unwrap();
    let writer = EventWriter::new(open_log(&settings.log).await.unwrap(), settings.log.topic_prefix.clone());
    let mut log = EventReader::subscribe(writer, "chaos-observer", &[Topic::JobEvents], None).await.unwrap();
    let mut in_log = BTreeSet::new();
    wait_until("the log to pass what the killed gateway saw", Duration::from_secs(30), async || {
        for (_, e) in log.poll(1000, Duration::from_millis(100)).await.unwrap().events {
            if let Event::TaskStateChanged(t) = e.event
                && t.job_id == "restart-1"
                && t.state == TaskState::Succeeded
            {
                in_log.insert(t.task_id);
            }
        }
        if in_log.len() > seen_before {
            Ok(())
        } else {
            Err(format!("{} task(s) succeeded in the log, {seen_before} seen", in_log.len()))
        }
    })
    .await;
    let (_g2, url2) = start_gateway(&config, &["--set", &listen_set]);
    assert_eq!(url2, url);
    wait_ready(&url, None).await;
    let done = wait_job(&url, "restart-1", None, Duration::from_secs(60)).await;
    assert_eq!(job_state(&done), JobState::Succeeded, "{done}");
    // The stream across the restart: whole, and resumed from the middle, agree exactly.
    // (Last-Event-ID 0: the whole history, not a snapshot.)
    let all = read_stream(&url, "restart-1", Some("0")).await;
    let ids: Vec<i64> = all.iter().filter_map(|e| e.0.as_deref()?.parse().ok()).collect();
    assert_eq!(ids.first(), Some(&1));
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive ids: {ids:?}");
    let mid = all.len() / 3;
    let resumed = read_stream(&url, "restart-1", all[mid].0.as_deref()).await;
    assert_eq!(resumed, all[mid + 1..].to_vec());
    let succeeded_updates =
        all.iter().filter(|e| e.1 == "task.update" && task_state(&e.2) == TaskState::Succeeded).count();
    assert_eq!(succeeded_updates, 12, "each task's success appears once in the stream");
}

/// A retry storm: many tasks whose every attempt times out. Backoff (exponential, jittered) spaces
/// the attempts, each task stops at its retry budget and is dead-lettered with the reason, the
/// jobs fail naming it, and the runtime keeps serving: a normal job afterwards succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_storm_is_spaced_by_backoff_and_ends_in_dead_letters() {
    const STORMY: usize = 6;
    const RETRIES: usize = 2;
    const BASE_MS: i64 = 400;
    let sets = ["scheduler.retry_base_ms=400", "scheduler.retry_cap_ms=2000", "scheduler.tick_ms=20"];
    let mut up = crate::common::Up::start("", &sets, &["--executors", "4"]).await;
    let url = up.url.clone();
    for i in 0..STORMY {
        // `stuck` outlives its 1 s timeout on every attempt; `quick` is fine.
        let job = json!({"type": "explicit", "job_id": format!("storm-{i}"), "dag": {"tasks": [
            {"id": "stuck", "kind": "tool_execution", "timeout_s": 1, "max_retries": RETRIES,
             "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 5000}}},
            {"id": "quick", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 10}}}]}});
        assert_eq!(post(&url, "/v1/jobs", &job, None).await.0, 202);
    }
    for i in 0..STORMY {
        let job = wait_job(&url, &format!("storm-{i}"), None, Duration::from_secs(90)).await;
        assert_eq!(job_state(&job), JobState::Failed, "{job}");
        assert_eq!(job["failed_task"], "stuck", "{job}");
        assert!(job["reason"].as_str().unwrap().contains("timed out"), "{job}");
        let (_, tasks) = get(&url, &format!("/v1/jobs/storm-{i}/tasks"), None).await.unwrap();
        let stuck =
            tasks["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == "stuck").unwrap().clone();
        assert_eq!(task_state(&stuck), TaskState::DeadLettered, "{stuck}");
        let mut starts: Vec<i64> = stuck["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["started_at_ms"].as_i64())
            .collect();
        starts.sort();
        assert_eq!(starts.len(), RETRIES + 1, "exactly the retry budget, no more: {stuck}");
        for (n, pair) in starts.windows(2).enumerate() {
            // Attempt n+2 waits for attempt n+1's 1 s timeout plus at least half its backoff.
            let min_backoff = BASE_MS * (1 << n) / 2;
            assert!(pair[1] - pair[0] >= 1000 + min_backoff - 100, "attempts too close: {starts:?}");
        }
    }
    let (_, letters) = get(&url, "/v1/admin/dead-letter", None).await.unwrap();
    let storm_letters = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["job_id"].as_str().is_some_and(|j| j.starts_with("storm-")))
        .count();
    assert_eq!(storm_letters, STORMY, "{letters}");
    assert!(up.process.is_running(), "splai up survived the storm");
    let calm = json!({"type": "explicit", "job_id": "after-storm", "dag": {"tasks": [
        {"id": "t", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 10}}}]}});
    assert_eq!(post(&url, "/v1/jobs", &calm, None).await.0, 202);
    let after = wait_job(&url, "after-storm", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&after), JobState::Succeeded, "{after}");
}
