//! An executor SIGKILLed mid-task loses nothing: real `splai scheduler` and `splai executor`
//! processes share an embedded log; the first executor is killed while its attempt runs, its
//! heartbeats stop, the scheduler's ttl retracts it, and the task's next attempt runs on a second
//! executor to success. The killed attempt never reports success.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::Proc;
use splai_config::Loader;
use splai_events::now_ms;
use splai_events::*;
use splai_ingest::log::{EventLog, EventReader, EventWriter, open_log};

fn splai(sets: &[String], args: &[&str]) -> Proc {
    let mut cmd = crate::common::splai_command();
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::inherit());
    Proc(cmd.spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_executor_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sets = vec![
        format!("log.embedded.path={}", dir.path().join("log.sqlite").display()),
        format!("artifacts.url=file://{}", dir.path().join("artifacts").display()),
        "scheduler.tick_ms=20".into(),
        "scheduler.heartbeat_ttl_ms=1000".into(),
        "scheduler.retry_base_ms=50".into(),
        "scheduler.retry_cap_ms=200".into(),
        "executor.heartbeat_interval_ms=200".into(),
        "executor.shell_tool=true".into(),
        "executor.slots=1".into(),
    ];
    let settings = Loader::new().overrides(&sets).unwrap().load().unwrap();
    let log: Arc<dyn EventLog> = open_log(&settings.log).await.unwrap();
    let writer = EventWriter::new(log.clone(), settings.log.topic_prefix.clone());
    writer.create_all_topics(settings.log.partitions).await.unwrap();
    let mut watch = EventReader::subscribe(
        writer.clone(),
        "test-watch",
        &[Topic::Assignments, Topic::TaskEvents, Topic::JobEvents],
        None,
    )
    .await
    .unwrap();

    let _scheduler = splai(&sets, &["scheduler"]);
    let mut doomed = Some(splai(&sets, &["executor", "--id", "doomed"]));
    let mut survivor = None;

    // One slow shell task, then a fast one that reads its output: the slow one is in flight when
    // its executor dies.
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": "kill-j1",
        "dag": {"tasks": [
            {"id": "slow", "kind": "tool_execution", "requirements": {"tools": ["shell"]},
             "inputs": {"tool": {"literal": "shell"}, "command": {"literal": "sleep 2; echo finished"}}},
            {"id": "after", "kind": "tool_execution", "parents": ["slow"],
             "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "fin\\w+"},
                        "text": {"output": {"task": "slow", "pointer": "/stdout"}}}}
        ]}
    }))
    .unwrap();
    writer
        .append(&[Envelope::new("kill-req-1", now_ms(), "acme", Event::JobRequest(request))])
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut assigns: Vec<(String, u32, String)> = Vec::new();
    let mut succeeded: Vec<(String, u32, String)> = Vec::new();
    let mut outcome = None;
    while outcome.is_none() {
        assert!(
            Instant::now() < deadline,
            "job did not finish; assigns {assigns:?}, succeeded {succeeded:?}"
        );
        let batch = watch.poll(100, Duration::from_millis(100)).await.unwrap();
        for (_, e) in batch.events {
            match e.event {
                Event::Assign(a) => {
                    assigns.push((a.attempt.task_id.clone(), a.attempt.attempt, a.worker_id.clone()))
                }
                Event::AttemptStarted(s) if s.worker_id == "doomed" && s.attempt.task_id == "slow" => {
                    // Mid-task: the executor writes `AttemptStarted` once the attempt has run
                    // for a moment, and the shell command sleeps for 2 s. Kill -9, then bring
                    // up another.
                    if let Some(mut p) = doomed.take() {
                        p.0.kill().unwrap();
                        p.0.wait().unwrap();
                        survivor = Some(splai(&sets, &["executor", "--id", "survivor"]));
                    }
                }
                Event::AttemptSucceeded(s) => {
                    succeeded.push((s.attempt.task_id.clone(), s.attempt.attempt, s.worker_id.clone()))
                }
                Event::JobStateChanged(s)
                    if s.job_id == "kill-j1"
                        && matches!(
                            s.state,
                            JobState::Succeeded | JobState::Failed | JobState::Cancelled
                        ) =>
                {
                    outcome = Some((s.state, s.reason))
                }
                _ => {}
            }
        }
    }
    assert_eq!(outcome, Some((JobState::Succeeded, None)), "assigns {assigns:?}");
    assert!(doomed.is_none() && survivor.is_some(), "the executor was never killed mid-task");
    // The slow task: first on the doomed worker, then retried on the survivor, and succeeded once.
    let slow: Vec<_> = assigns.iter().filter(|a| a.0 == "slow").collect();
    assert_eq!(slow.first().map(|a| a.2.as_str()), Some("doomed"), "{assigns:?}");
    assert!(slow.iter().any(|a| a.2 == "survivor" && a.1 > 1), "{assigns:?}");
    let slow_ok: Vec<_> = succeeded.iter().filter(|s| s.0 == "slow").collect();
    assert_eq!(slow_ok.len(), 1, "{succeeded:?}");
    assert_eq!(slow_ok[0].2, "survivor");
    assert!(succeeded.iter().any(|s| s.0 == "after"), "{succeeded:?}");
}
