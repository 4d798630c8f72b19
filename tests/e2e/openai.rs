//! The OpenAI-compatible endpoints with the official `openai` Python package against a running
//! `splai up` on the real models: a chat completion answers with real text and usage; streaming
//! gives several chunks whose concatenation equals the non-streamed text (same seed, greedy);
//! completions; embeddings of the model's dimension, similar closer than unrelated; the models
//! of the live workers; OpenAI's error shape. Each call is an ordinary job in the job API.

use std::time::{Duration, Instant};

use crate::common::{Up, get, job_state};
use splai_events::JobState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_works_against_splai() {
    if !crate::common::models_present() {
        return;
    }
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python).args(["-c", "import openai"]).output().unwrap();
    if !probe.status.success() {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "the openai package is missing: set SPLAI_TEST_PYTHON (scripts/test does)"
        );
        eprintln!("skipped: the openai package is not installed");
        return;
    }
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let url = up.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).args(["tests/py/openai_client.py", &url]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(seen["chunks"].as_u64().unwrap() >= 3, "{seen}");
    // Every call was an ordinary job.
    let (_, jobs) = get(&up.url, "/v1/jobs?limit=50", None).await.unwrap();
    let types: Vec<&str> =
        jobs["jobs"].as_array().unwrap().iter().filter_map(|j| j["type"].as_str()).collect();
    assert!(types.iter().filter(|t| **t == "chat").count() >= 3, "{types:?}");
    assert!(types.contains(&"embed"), "{types:?}");
}

const LONG: &str = "Write a very long story about a lighthouse keeper and the sea, chapter by chapter.";

/// The job id of an OpenAI response id (`chatcmpl-{job}`).
fn job_of(chunk: &str) -> Option<String> {
    chunk
        .split("\n\n")
        .filter_map(splai_client::parse_event)
        .find_map(|e| e.data["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).map(str::to_string))
}

/// The job's inference attempt stopped: its executor reported it ended (revoked by the cancel),
/// so the model is no longer generating for it.
async fn generation_stopped(url: &str, job: &str) {
    crate::common::wait_until("the cancelled attempt's end", Duration::from_secs(60), async || {
        let (_, tasks) =
            get(url, &format!("/v1/jobs/{job}/tasks"), None).await.ok_or("no answer".to_string())?;
        let attempts: Vec<&serde_json::Value> = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["attempts"].as_array().into_iter().flatten())
            .collect();
        let stopped = !attempts.is_empty()
            && attempts
                .iter()
                .all(|a| crate::common::attempt_state(a) != splai_events::AttemptState::Running);
        if stopped { Ok(()) } else { Err(tasks.to_string()) }
    })
    .await;
}

/// Issue 16 item 9: a `stream: true` chat completion whose client goes away after the first
/// tokens cancels its job, with the reason, instead of generating on for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_client_that_goes_away_cancels_its_job() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &[]).await;
    let body = serde_json::json!({"messages": [{"role": "user", "content": LONG}], "max_tokens": 2000,
                                  "stream": true});
    let mut response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", up.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (mut seen, mut job) = (String::new(), None);
    // Read until generated text arrives, so the job is running on the model when we leave.
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 3 {
        let bytes = tokio::time::timeout(Duration::from_secs(120), response.chunk())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .expect("the stream ended before any text");
        seen.push_str(&String::from_utf8_lossy(&bytes));
        job = job.or_else(|| job_of(&seen));
    }
    let job = job.expect("chunks carry the job id");
    drop(response);
    let ended = crate::common::wait_job(&up.url, &job, None, Duration::from_secs(60)).await;
    assert_eq!(job_state(&ended), JobState::Cancelled, "{ended}");
    assert!(ended["reason"].as_str().unwrap_or("").contains("client_disconnected"), "{ended}");
    generation_stopped(&up.url, &job).await;
}

/// The same for a non-streaming call: its connection closes while the job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_client_that_goes_away_cancels_its_job() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &[]).await;
    let body = serde_json::json!({"messages": [{"role": "user", "content": LONG}], "max_tokens": 2000});
    let url = format!("{}/v1/chat/completions", up.url);
    let call = tokio::spawn(async move { reqwest::Client::new().post(url).json(&body).send().await });
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let (_, jobs) = get(&up.url, "/v1/jobs?state=running", None).await.unwrap();
        if let Some(id) = jobs["jobs"].as_array().and_then(|j| j.first()).and_then(|j| j["job_id"].as_str()) {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the call's job never ran: {jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    call.abort(); // drops the connection
    assert!(call.await.unwrap_err().is_cancelled());
    let ended = crate::common::wait_job(&up.url, &job, None, Duration::from_secs(60)).await;
    assert_eq!(job_state(&ended), JobState::Cancelled, "{ended}");
    assert!(ended["reason"].as_str().unwrap_or("").contains("client_disconnected"), "{ended}");
    generation_stopped(&up.url, &job).await;
}

/// Concurrent chat jobs (they name no model) run together as sequences of the model's engine on
/// `splai up`'s default layout, not one per ordinary slot: six are running at once (two
/// executors have one ordinary slot each, so running them there would stop at two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chat_jobs_run_together_in_the_engine() {
    if !crate::common::models_present() {
        return;
    }
    let up = Up::start("", &[], &[]).await;
    let ids: Vec<String> = (0..6).map(|i| format!("together-{i}")).collect();
    for id in &ids {
        let body = serde_json::json!({"type": "chat", "job_id": id, "cache": false,
            "input": {"messages": [{"role": "user", "content": LONG}], "max_tokens": 2000}});
        assert_eq!(crate::common::post(&up.url, "/v1/jobs", &body, None).await.0, 202);
    }
    crate::common::wait_until("six chat jobs running at once", Duration::from_secs(120), async || {
        let mut running = 0;
        for id in &ids {
            running += crate::common::tasks_in(&up.url, id, None, splai_events::TaskState::Running).await;
        }
        if running == ids.len() { Ok(()) } else { Err(format!("{running} running")) }
    })
    .await;
    for id in &ids {
        reqwest::Client::new().delete(format!("{}/v1/jobs/{id}", up.url)).send().await.unwrap();
    }
}
