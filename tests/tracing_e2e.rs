//! One trace per job across gateway, scheduler and executor: `splai up` exports over OTLP to the
//! receiver `scripts/services` starts; a job submitted with a `traceparent` shows up there as the
//! admission, planning, scheduling decision, attempt and artifact-write spans of that trace, and
//! the job's `trace_id` in the API is that trace.

mod common;

use std::time::{Duration, Instant};

use common::{Up, get, wait_job};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_across_the_services() {
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
    let up = Up::start("", &[&format!("telemetry.otlp_endpoint={endpoint}")], &["--executors", "1"]).await;
    let trace = format!("{:032x}", (std::process::id() as u128) << 64 | 0x5a5a_1234);
    let job = json!({"type": "explicit", "job_id": "traced-1", "dag": {"tasks": [
        {"id": "a", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 5}}},
        {"id": "b", "kind": "aggregation", "parents": ["a"]}]}});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/jobs", up.url))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let accepted: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(accepted["trace_id"], trace.as_str(), "the job continues the caller's trace");
    let done = wait_job(&up.url, "traced-1", None, Duration::from_secs(30)).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(get(&up.url, "/v1/jobs/traced-1", None).await.unwrap().1["trace_id"], trace.as_str());
    assert!(up.stop().success()); // flushes the exporter

    let wanted = ["admission", "planning", "schedule", "attempt", "artifact.write"];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let ours: Vec<&str> = text.lines().filter(|l| l.to_ascii_lowercase().contains(&trace)).collect();
        let missing: Vec<&&str> =
            wanted.iter().filter(|name| !ours.iter().any(|l| l.contains(&format!("\"{name}\"")))).collect();
        if missing.is_empty() {
            assert!(ours.iter().any(|l| l.contains("splai-up")), "service name on the spans");
            return;
        }
        assert!(Instant::now() < deadline, "spans {missing:?} of trace {trace} never reached {file}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
