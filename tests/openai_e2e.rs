//! The OpenAI-compatible endpoints with the official `openai` Python package against a running
//! `splai up` on the real models: a chat completion answers with real text and usage; streaming
//! gives several chunks whose concatenation equals the non-streamed text (same seed, greedy);
//! completions; embeddings of the model's dimension, similar closer than unrelated; the models
//! of the live workers; OpenAI's error shape. Each call is an ordinary job in the job API.

mod common;

use common::{Up, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_works_against_splai() {
    if !common::models_present() {
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
