//! Result caching by lineage (issue 18) through `splai up` on the real models: the same
//! `batch_analysis` run again reuses every output (each task's lineage names the artifact it was
//! copied from), a changed record re-runs only the tasks it reaches, and `cache: false` runs
//! everything. Prints the rerun's speed-up (measured here, not asserted).

use std::time::{Duration, Instant};

use crate::common::{Up, get, job_state, post, wait_job};
use serde_json::{Value, json};
use splai_events::JobState;

const TICKETS: [&str; 6] = [
    "#101 [billing] The invoice PDF is blank when exported. Seen by 4 users since Monday.",
    "#102 [search] Search takes over ten seconds to answer. Seen by 9 users since Friday.",
    "#103 [billing] Downloaded invoices have blank pages. Seen by 2 users since the update.",
    "#104 [search] The results page is extremely slow to appear. Seen by 12 users since Monday.",
    "#105 [billing] The exported invoice PDF comes out empty. Seen by 7 users since Tuesday.",
    "#106 [login] Password reset email never arrives. Seen by 3 users since yesterday.",
];

async fn run(url: &str, id: &str, lines: &[&str], cache: Option<bool>) -> (Value, f64) {
    let mut request = json!({"type": "batch_analysis", "job_id": id,
        "input": {"mode": "records", "text": lines.join("\n")}});
    if let Some(c) = cache {
        request["cache"] = json!(c);
    }
    let started = Instant::now();
    let (status, body) = post(url, "/v1/jobs", &request, None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(url, id, None, Duration::from_secs(600)).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    (job, took)
}

/// Task id → the artifact it was copied from (`None`: it ran).
async fn reuse(url: &str, id: &str) -> Vec<(String, Option<String>)> {
    let (status, lineage) = get(url, &format!("/v1/jobs/{id}/lineage"), None).await.unwrap();
    assert_eq!(status, 200, "{lineage}");
    let mut out: Vec<(String, Option<String>)> = lineage["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["provenance"]["cache_key"].is_string(), "every task here is cacheable: {t}");
            (
                t["task_id"].as_str().unwrap().to_string(),
                t["provenance"]["cached_from"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_reuse_outputs_changed_inputs_rerun_and_cache_false_opts_out() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let (first, cold) = run(&up.url, "first", &TICKETS, None).await;
    assert!(reuse(&up.url, "first").await.iter().all(|(_, from)| from.is_none()), "nothing to reuse yet");
    let (again, warm) = run(&up.url, "again", &TICKETS, None).await;
    eprintln!("rerun of the same batch_analysis: {cold:.2} s first (models loading), {warm:.2} s cached");
    for (task, from) in reuse(&up.url, "again").await {
        let from = from.unwrap_or_else(|| panic!("{task} ran again instead of reusing"));
        assert!(from.starts_with(&format!("default/first/{task}/")), "{task} reused {from}");
    }
    assert_eq!(first["result"]["table"], again["result"]["table"], "the reused answer is the same answer");

    // One record changed: its extraction, the embedding batch holding it and the table run.
    let mut changed = TICKETS;
    changed[4] = "#105 [billing] The exported invoice PDF comes out empty. Seen by 8 users since Tuesday.";
    run(&up.url, "changed", &changed, None).await;
    let ran: Vec<String> = reuse(&up.url, "changed")
        .await
        .into_iter()
        .filter(|(_, from)| from.is_none())
        .map(|(t, _)| t)
        .collect();
    assert_eq!(ran, vec!["embed-00000", "extract-00004", "table"]);

    let (_, uncached) = run(&up.url, "uncached", &TICKETS, Some(false)).await;
    eprintln!(
        "with the models already loaded: {uncached:.2} s uncached vs {warm:.2} s cached: {:.1}x",
        uncached / warm
    );
    let (status, lineage) = get(&up.url, "/v1/jobs/uncached/lineage", None).await.unwrap();
    assert_eq!(status, 200);
    for t in lineage["tasks"].as_array().unwrap() {
        assert!(t["provenance"].is_null(), "cache: false neither reuses nor files: {t}");
    }
}

/// An explicit job of one pure tool task (cacheable), run as `id`.
async fn split(url: &str, id: &str) {
    let request = json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
        {"id": "split", "kind": "tool_execution", "inputs": {"tool": {"literal": "split_lines"},
         "text": {"literal": "a\nb\nc"}, "lines_per_chunk": {"literal": 1}}}]}});
    let (status, body) = post(url, "/v1/jobs", &request, None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(url, id, None, Duration::from_secs(60)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_with_the_result_cache_off_neither_reuses_nor_files() {
    let up = Up::start("", &["executor.result_cache=false"], &[]).await;
    split(&up.url, "once").await;
    split(&up.url, "twice").await;
    for id in ["once", "twice"] {
        let (status, lineage) = get(&up.url, &format!("/v1/jobs/{id}/lineage"), None).await.unwrap();
        assert_eq!(status, 200, "{lineage}");
        let task = &lineage["tasks"][0];
        assert_eq!(task["task_id"], "split", "{lineage}");
        assert!(task["provenance"].is_null(), "the cache is off: {task}");
    }
}
