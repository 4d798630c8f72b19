//! Sub-DAGs at run time (issue 18 part 4) through `splai up`: the gateway, the scheduler and two
//! executors. A `split_lines` task cuts a text into 50 lines (a list whose length is known only
//! when it runs); a `map` task turns them into one task per line plus a reduce; the job's last
//! task reads the reduce. Then the process is killed and started again on the same data: the
//! scheduler replays its log and reaches the same final state — no task runs again, the
//! lineage is unchanged — and goes on to run new work.

use std::time::Duration;

use crate::common::{Up, get, job_state, post, task_state, wait_job};
use serde_json::{Value, json};
use splai_events::{JobState, TaskState};

fn request(id: &str, lines: usize) -> Value {
    let text: Vec<String> =
        (0..lines).map(|i| format!("ticket {i}: printer on floor {} jams", i % 7)).collect();
    json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
        {"id": "split", "kind": "tool_execution",
         "inputs": {"tool": {"literal": "split_lines"}, "text": {"literal": text.join("\n")},
                    "lines_per_chunk": {"literal": 1}}},
        {"id": "map", "kind": "tool_execution", "parents": ["split"], "expand": {},
         "inputs": {"tool": {"literal": "map"},
                    "items": {"output": {"task": "split", "pointer": "/chunks"}},
                    "task": {"literal": {"kind": "tool_execution", "inputs": {
                        "tool": {"literal": "template"}, "template": {"literal": "[{{item}}]"}}}},
                    "reduce": {"literal": {"kind": "aggregation", "inputs": {"mode": {"literal": "concat"}}}}}},
        {"id": "report", "kind": "aggregation", "parents": ["map"],
         "inputs": {"part-0": {"output": {"task": "map", "pointer": "/text"}}}},
    ]}})
}

/// Task id → (state, attempt, artifact path, input paths), from the job's lineage.
async fn lineage(url: &str, id: &str) -> Vec<(String, TaskState, u64, String, Vec<String>)> {
    let (status, body) = get(url, &format!("/v1/jobs/{id}/lineage"), None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut tasks: Vec<_> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut inputs: Vec<String> =
                t["inputs"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
            inputs.sort();
            (
                t["task_id"].as_str().unwrap().to_string(),
                task_state(t),
                t["attempt"].as_u64().unwrap(),
                t["artifact"].as_str().unwrap_or("-").to_string(),
                inputs,
            )
        })
        .collect();
    tasks.sort();
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_over_a_runtime_list_of_fifty_runs_and_replays_to_the_same_state() {
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let (status, body) = post(&up.url, "/v1/jobs", &request("map50", 50), None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&up.url, "map50", None, Duration::from_secs(120)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(job["tasks_total"], 54, "split, map, 50 items, the reduce and the report: {job}");
    let expected: Vec<String> =
        (0..50).map(|i| format!("[ticket {i}: printer on floor {} jams]", i % 7)).collect();
    assert_eq!(job["result"]["text"], expected.join("\n\n"), "every item, in order, through the reduce");

    let before = lineage(&up.url, "map50").await;
    assert_eq!(before.len(), 54);
    assert!(
        before.iter().all(|(_, state, attempt, _, _)| *state == TaskState::Succeeded && *attempt == 1),
        "{before:?}"
    );
    let item = before.iter().find(|t| t.0 == "map.item-049").expect("an appended task in the lineage");
    assert_eq!(item.4, Vec::<String>::new(), "an item's input is a literal the map wrote");
    let report = before.iter().find(|t| t.0 == "report").unwrap();
    assert_eq!(report.4, vec!["default/map50/map.reduce/1/output.json"], "the report read the reduce");
    let (_, tasks) = get(&up.url, "/v1/jobs/map50/tasks?limit=100", None).await.unwrap();
    assert_eq!(tasks["tasks"].as_array().map(Vec::len), Some(54), "{tasks}");

    // Killed and started again: the scheduler replays the log, appended tasks included.
    let dir = up.kill();
    let up = Up::start_in(dir, "", &[], &["--executors", "2"]).await;
    let (status, body) = post(&up.url, "/v1/jobs", &request("after", 3), None).await;
    assert_eq!(status, 202, "{body}");
    let after = wait_job(&up.url, "after", None, Duration::from_secs(120)).await;
    assert_eq!(job_state(&after), JobState::Succeeded, "the replayed scheduler runs new work: {after}");
    let job = wait_job(&up.url, "map50", None, Duration::from_secs(10)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(job["tasks_total"], 54);
    assert_eq!(lineage(&up.url, "map50").await, before, "nothing ran again; the lineage is the same");
}
