//! One trace per job across the three processes: `splai gateway`, `splai scheduler` and
//! `splai executor` on one embedded log, each exporting over OTLP to the receiver
//! `scripts/services` starts. A job submitted with a `traceparent` arrives there as one trace:
//! admission (gateway, child of the caller's span) → planning; → one `schedule` span per decision
//! (scheduler, child of admission) → `attempt` (executor, child of its decision) →
//! `artifact.write`. The job's `trace_id` in the API is that trace.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::{get, job_state, splai, wait_job, wait_ready};
use serde_json::{Value, json};
use splai_events::JobState;

/// (service, name, parent span id) of every span of `trace` in the receiver's file, by span id.
fn spans_of(file: &str, trace: &str) -> HashMap<String, (String, String, String)> {
    let mut out = HashMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        let Ok(doc) = serde_json::from_str::<Value>(line) else { continue };
        for rs in doc["request"]["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or("")
                .to_string();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    if s["traceId"].as_str().map(str::to_ascii_lowercase).as_deref() == Some(trace) {
                        out.insert(
                            s["spanId"].as_str().unwrap_or("").to_string(),
                            (
                                service.clone(),
                                s["name"].as_str().unwrap_or("").to_string(),
                                s["parentSpanId"].as_str().unwrap_or("").to_string(),
                            ),
                        );
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_across_gateway_scheduler_and_executor() {
    let (Ok(endpoint), Ok(file)) =
        (std::env::var("SPLAI_TEST_OTLP_ENDPOINT"), std::env::var("SPLAI_TEST_OTLP_FILE"))
    else {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "SPLAI_TEST_OTLP_ENDPOINT/FILE not set"
        );
        eprintln!("skipped: SPLAI_TEST_OTLP_ENDPOINT not set (run scripts/test)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("splai.toml");
    std::fs::write(
        &config,
        format!("{}\n[telemetry]\notlp_endpoint = \"{endpoint}\"\n", crate::common::base_config(dir.path())),
    )
    .unwrap();
    let (gateway, url) = crate::common::start_gateway(&config, &[]);
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (scheduler_metrics, executor_metrics) = (free_port(), free_port());
    let scheduler_listen = format!("telemetry.metrics_listen=127.0.0.1:{scheduler_metrics}");
    let executor_listen = format!("telemetry.metrics_listen=127.0.0.1:{executor_metrics}");
    let scheduler = splai(&config, &["--set", &scheduler_listen, "scheduler"], false);
    let executor = splai(&config, &["--set", &executor_listen, "executor", "--id", "traced-w1"], false);
    wait_ready(&url, None).await;

    let trace = format!("{:032x}", (u128::from(std::process::id()) << 64) | 0x7ace_0001);
    let caller_span = "00f067aa0ba902b7";
    let job = json!({"type": "explicit", "job_id": "traced-1", "dag": {"tasks": [
        {"id": "a", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 5}}},
        {"id": "b", "kind": "aggregation", "parents": ["a"]}]}});
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/jobs"))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["trace_id"], trace.as_str(), "the job continues the caller's trace");
    let done = wait_job(&url, "traced-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&done), JobState::Succeeded, "{done}");
    assert_eq!(get(&url, "/v1/jobs/traced-1", None).await.unwrap().1["trace_id"], trace.as_str());

    // The scheduler and the executor serve their own /metrics.
    let scrape = |port: u16| async move {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap()
    };
    let value = |text: &str, series: &str| -> f64 {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
    };
    let s = scrape(scheduler_metrics).await;
    assert!(value(&s, "splai_scheduler_decisions_total") >= 2.0, "{s}");
    assert!(value(&s, "splai_scheduler_events_total{topic=\"task-events\"}") >= 2.0, "{s}");
    assert!(s.contains("# TYPE splai_scheduler_decision_latency_seconds histogram"), "{s}");
    let e = scrape(executor_metrics).await;
    assert_eq!(
        value(&e, "splai_executor_attempts_total{kind=\"tool_execution\",outcome=\"succeeded\"}"),
        1.0,
        "{e}"
    );
    assert_eq!(
        value(&e, "splai_executor_attempts_total{kind=\"aggregation\",outcome=\"succeeded\"}"),
        1.0,
        "{e}"
    );
    assert!(e.contains("splai_executor_cpu_percent{worker=\"traced-w1\"}"), "{e}");
    executor.stop();
    scheduler.stop();
    gateway.stop();

    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = spans_of(&file, &trace);
        let count = |name: &str| spans.values().filter(|(_, n, _)| n == name).count();
        if count("admission") == 1
            && count("planning") == 1
            && count("schedule") >= 2
            && count("attempt") >= 2
            && count("artifact.write") >= 2
        {
            break spans;
        }
        assert!(Instant::now() < deadline, "the trace never completed at the receiver: {spans:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_name = |name: &str| -> Vec<(&String, &(String, String, String))> {
        spans.iter().filter(|(_, (_, n, _))| n == name).collect()
    };
    let (admission_id, (service, _, parent)) = by_name("admission")[0];
    assert_eq!(
        (service.as_str(), parent.as_str()),
        ("splai-gateway", caller_span),
        "admission continues the caller"
    );
    assert_eq!(by_name("planning")[0].1.2, *admission_id, "planning is part of admission");
    for (id, (service, _, parent)) in by_name("schedule") {
        assert_eq!(service, "splai-scheduler");
        assert_eq!(parent, admission_id, "decision {id} hangs off the admission");
    }
    for (id, (service, _, parent)) in by_name("attempt") {
        assert_eq!(service, "splai-executor");
        let (_, parent_name, _) = &spans[parent];
        assert_eq!(parent_name, "schedule", "attempt {id} is a child of its decision");
    }
    for (_, (service, _, parent)) in by_name("artifact.write") {
        assert_eq!(service, "splai-executor");
        assert_eq!(spans[parent].1, "attempt");
    }
}
