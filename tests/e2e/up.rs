//! `splai up` as a user runs it: a real `batch_analysis` job with fan-out on the real models, the
//! process SIGKILLed mid-job and started again on the same data directory: the job still
//! succeeds, no succeeded task runs again, the result and artifacts come through the API, and
//! the CLI client (`submit --wait`, `job`, `artifacts`, `jobs`) works against it with clear exit
//! codes.

use std::process::Command;
use std::time::Duration;

use crate::common::{Up, get, job_state, post, succeeded_attempts, wait_job};
use serde_json::json;
use splai_events::{JobState, TaskState};

fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_splai"));
    splai_config::without_settings_env(&mut cmd);
    let out = cmd.args(["--set", &format!("client.url={url}")]).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_survives_a_kill_mid_job_and_the_cli_drives_it() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let tickets: String = std::fs::read_to_string("examples/support-tickets.txt")
        .unwrap()
        .lines()
        .take(12)
        .collect::<Vec<_>>()
        .join("\n");
    let request = json!({"type": "batch_analysis", "job_id": "up-batch",
        "input": {"text": tickets, "chunk_lines": 4, "max_tokens": 24,
                  "question": "Name the main problem in these tickets in one short sentence."}});
    let (status, body) = post(&up.url, "/v1/jobs", &request, None).await;
    assert_eq!(status, 202, "{body}");
    crate::common::wait_until("two tasks to succeed", Duration::from_secs(240), async || {
        let done = crate::common::tasks_in(&up.url, "up-batch", None, TaskState::Succeeded).await;
        if done >= 2 { Ok(()) } else { Err(format!("{done} succeeded")) }
    })
    .await;
    let dir = up.kill();
    let up = Up::start_in(dir, "", &[], &["--executors", "2"]).await;
    let job = wait_job(&up.url, "up-batch", None, Duration::from_secs(300)).await;
    let history = crate::common::task_history(&up.url, "up-batch", None).await;
    eprintln!("task history across the restart:\n{history}");
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}\n{history}");
    assert_eq!(job["tasks_total"], 6);
    assert!(
        job["result"]["text"].as_str().unwrap_or("").split_whitespace().count() >= 3,
        "{}",
        job["result"]
    );
    let (_, tasks) = get(&up.url, "/v1/jobs/up-batch/tasks?limit=100", None).await.unwrap();
    for t in tasks["tasks"].as_array().unwrap() {
        let wins = succeeded_attempts(t);
        assert_eq!(wins, 1, "succeeded exactly once across the restart: {t}");
    }

    // The CLI against the same process.
    let (code, out, err) = cli(&up.url, &["job", "up-batch"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("split [tool_execution] {}", TaskState::Succeeded))
            && out.contains(&format!("\n  map-0 [llm_inference] {}", TaskState::Succeeded)),
        "{out}"
    );
    let (code, out, _) = cli(&up.url, &["artifacts", "up-batch"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 6, "{out}");
    let (code, out, _) = cli(&up.url, &["jobs"]);
    assert_eq!(code, 0);
    assert!(out.contains("up-batch") && out.contains(&JobState::Succeeded.to_string()), "{out}");

    let dir = up.dir.as_ref().unwrap().path().to_path_buf();
    let good = dir.join("good.json");
    std::fs::write(&good, json!({"type": "explicit", "dag": {"tasks": [{"id": "words", "kind": "tool_execution",
        "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "three small words"}}}]}}).to_string()).unwrap();
    let (code, out, err) = cli(&up.url, &["submit", "-f", good.to_str().unwrap(), "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"count\": 3"), "{out}");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "type: explicit\nmax_retries: 0\ndag:\n  tasks:\n    - id: nope\n      kind: tool_execution\n      inputs:\n        tool: {literal: shell}\n").unwrap();
    let (code, _, err) = cli(&up.url, &["submit", "-f", bad.to_str().unwrap(), "--wait"]);
    assert_eq!(code, 1, "a failed job exits 1: {err}");
    assert!(err.contains("not enabled"), "{err}");
    let (code, _, err) = cli(&up.url, &["submit", "--type", "explicit", "--input", "{}"]);
    assert_eq!(code, 2, "an admission error exits 2");
    assert!(err.contains("400 missing_dag"), "{err}");
    let (code, _, err) = cli("http://127.0.0.1:9", &["jobs"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the gateway"), "{err}");
    assert!(up.stop().success(), "SIGTERM stops splai up cleanly");
}
