//! Load, short and bounded: concurrent clients submit small DAGs and follow each job's SSE stream
//! for a fixed window, against one `splai up` and against the distributed mode (processes over
//! Kafka, PostgreSQL and S3). No request fails, every job ends `succeeded`, every stream ends
//! with the job's final state, and each process's peak RSS (VmHWM) stays bounded; the figures
//! are printed. `SPLAI_TEST_LOAD_SECS` / `SPLAI_TEST_LOAD_CLIENTS` make it longer/wider.

use std::time::{Duration, Instant};

use crate::common::{Up, job_state, post, read_stream_with, start_processes, status_event_state, wait_job};
use serde_json::json;
use splai_events::JobState;

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// `clients` concurrent clients, each submitting a small DAG and following its SSE stream to the
/// end, again and again for `secs`. Every request must succeed; returns the jobs run.
async fn drive(url: &str, token: Option<&'static str>, secs: u64, clients: usize, tag: &str) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for c in 0..clients {
        let (url, tag) = (url.to_string(), tag.to_string());
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                let id = format!("{tag}-{c}-{n}");
                n += 1;
                let job = json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
                    {"id": "a", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 20}}},
                    {"id": "b", "kind": "tool_execution", "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\\\d+"}, "text": {"literal": "1 2 3"}}},
                    {"id": "m", "kind": "aggregation", "parents": ["a", "b"], "inputs": {"mode": {"literal": "concat"},
                        "part-0": {"output": {"task": "a"}}, "part-1": {"output": {"task": "b"}}}}]}});
                let (status, body) = post(&url, "/v1/jobs", &job, token).await;
                assert_eq!(status, 202, "submit {id}: {body}");
                let events = read_stream_with(&url, &id, None, token).await;
                // The last state the stream told: a `job.status` event, or the opening snapshot
                // when the job had already finished before the stream was opened.
                let last_status = events.iter().rev().find_map(|e| match e.1.as_str() {
                    "job.status" => status_event_state(&e.2),
                    "job.snapshot" => Some(job_state(&e.2["job"])),
                    _ => None,
                });
                assert_eq!(last_status, Some(JobState::Succeeded), "{id} stream: {events:?}");
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
        let job = wait_job(url, id, token, Duration::from_secs(30)).await;
        assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    }
    assert!(jobs.len() >= clients, "every client finished at least one job");
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_submit_and_stream_without_errors() {
    let secs = knob("SPLAI_TEST_LOAD_SECS", 8);
    let clients = knob("SPLAI_TEST_LOAD_CLIENTS", 8) as usize;
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let jobs = drive(&up.url, None, secs, clients, "load").await;
    let rss = peak_rss_mb(up.process.id());
    println!(
        "load (splai up): {clients} clients for {secs} s: {} jobs ({:.1}/s), 0 errors, peak RSS {rss:.0} MiB",
        jobs.len(),
        jobs.len() as f64 / secs as f64
    );
    assert!(rss > 0.0 && rss < 1024.0, "peak RSS {rss:.0} MiB");
}

/// The same load against the distributed mode: gateway, scheduler and two executors as processes
/// over Kafka (tansu), PostgreSQL and S3 (SeaweedFS), with auth on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_against_the_distributed_mode() {
    let (Ok(brokers), Ok(pg), Ok(s3), Ok(bucket)) = (
        std::env::var("SPLAI_TEST_KAFKA_BROKERS"),
        std::env::var("SPLAI_TEST_POSTGRES_URL"),
        std::env::var("SPLAI_TEST_S3_ENDPOINT"),
        std::env::var("SPLAI_TEST_S3_BUCKET"),
    ) else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "services not configured");
        return;
    };
    const TOKEN: &str = "load-token";
    let secs = knob("SPLAI_TEST_LOAD_SECS", 8);
    let clients = knob("SPLAI_TEST_LOAD_CLIENTS", 8) as usize;
    let run = format!("l{}x{}", std::process::id(), Instant::now().elapsed().subsec_nanos() % 100_000);
    let db_url = crate::common::create_database(&pg, &run);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("splai.toml");
    let services = crate::common::services_config(&run, 4, &brokers, &db_url, &s3, &bucket, ("load", TOKEN));
    std::fs::write(
        &config,
        format!(
            r#"{services}
[scheduler]
tick_ms = 20
[executor]
slots = 4
heartbeat_interval_ms = 500
model_dir = "{dir}/models"
"#,
            dir = dir.path().display(),
        ),
    )
    .unwrap();
    let stack = start_processes(&config, &run, 2, Some(TOKEN)).await;
    let jobs = drive(&stack.url, Some(TOKEN), secs, clients, &run).await;
    let named = [("gateway".to_string(), &stack.gateway), ("scheduler".to_string(), &stack.scheduler)];
    let rss: Vec<(String, f64)> = named
        .into_iter()
        .chain(stack.executors.iter().enumerate().map(|(i, p)| (format!("executor-{}", i + 1), p)))
        .map(|(name, p)| (name, peak_rss_mb(p.0.id())))
        .collect();
    println!(
        "load (distributed): {clients} clients for {secs} s: {} jobs ({:.1}/s), 0 errors, peak RSS MiB {rss:?}",
        jobs.len(),
        jobs.len() as f64 / secs as f64
    );
    for (name, mb) in &rss {
        assert!(*mb > 0.0 && *mb < 1024.0, "{name} peak RSS {mb:.0} MiB");
    }
}
