//! The OpenAPI document fuzzed with schemathesis (PyPI) against a running `splai up`: every
//! operation, generated and boundary inputs, and no response is a 5xx.

use crate::common::Up;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let bin = std::path::Path::new(&python).with_file_name("schemathesis");
    if !bin.is_file() {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "schemathesis missing: set SPLAI_TEST_PYTHON (scripts/test does)"
        );
        eprintln!("skipped: schemathesis is not installed");
        return;
    }
    // Small body limit: oversize bodies are part of what it tries.
    let up = Up::start("", &["gateway.max_body_bytes=65536"], &["--executors", "1"]).await;
    let spec = format!("{}/openapi.json", up.url);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "run",
                &spec,
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "20",
                "--request-timeout",
                "30",
            ])
            .args(["--seed", "20261126"])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
