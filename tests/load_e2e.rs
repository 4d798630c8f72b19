//! Load, short and bounded: concurrent clients submit small DAGs and follow each job's SSE stream
//! against one `splai up` for a fixed window. No request fails, every job ends `succeeded`, every
//! stream ends with the terminal event, and the process's peak RSS (VmHWM) stays bounded; the
//! figures are printed. `SPLAI_TEST_LOAD_SECS` / `SPLAI_TEST_LOAD_CLIENTS` make it longer/wider.

mod common;

use std::time::{Duration, Instant};

use common::{Up, post, read_stream, wait_job};
use serde_json::json;

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_submit_and_stream_without_errors() {
    let secs: u64 = std::env::var("SPLAI_TEST_LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let clients: usize =
        std::env::var("SPLAI_TEST_LOAD_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let url = up.url.clone();
    let until = Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for c in 0..clients {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                let id = format!("load-{c}-{n}");
                n += 1;
                let job = json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
                    {"id": "a", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 20}}},
                    {"id": "b", "kind": "tool_execution", "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\\\d+"}, "text": {"literal": "1 2 3"}}},
                    {"id": "m", "kind": "aggregation", "parents": ["a", "b"], "inputs": {"mode": {"literal": "concat"},
                        "part-0": {"output": {"task": "a"}}, "part-1": {"output": {"task": "b"}}}}]}});
                let (status, body) = post(&url, "/v1/jobs", &job, None).await;
                assert_eq!(status, 202, "submit {id}: {body}");
                let events = read_stream(&url, &id, None).await;
                // The last state the stream told: a `job.status` event, or the opening snapshot
                // when the job had already finished before the stream was opened.
                let last_status = events.iter().rev().find_map(|e| match e.1.as_str() {
                    "job.status" => Some(e.2["state"].clone()),
                    "job.snapshot" => Some(e.2["job"]["state"].clone()),
                    _ => None,
                });
                assert_eq!(last_status, Some(json!("succeeded")), "{id} stream: {events:?}");
                done.push(id);
            }
            done
        }));
    }
    let mut jobs = Vec::new();
    for h in handles {
        jobs.extend(h.await.unwrap());
    }
    for id in &jobs {
        let job = wait_job(&url, id, None, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "succeeded", "{job}");
    }
    let rss = peak_rss_mb(up.child.id());
    println!(
        "load: {clients} clients for {secs} s: {} jobs ({:.1}/s), 0 errors, peak RSS {rss:.0} MiB",
        jobs.len(),
        jobs.len() as f64 / secs as f64
    );
    assert!(jobs.len() >= clients, "every client finished at least one job");
    assert!(rss > 0.0 && rss < 1024.0, "peak RSS {rss:.0} MiB");
}
