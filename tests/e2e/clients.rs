//! The generated clients, used as a team would: the Python package (`pip install ./clients/python`,
//! which `scripts/pyenv` installs into the test venv) against a running `splai up`.

use crate::common::Up;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_submits_follows_resumes_cancels_and_raises_typed_errors() {
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python).args(["-c", "import splai, splai_api"]).output().unwrap();
    if !probe.status.success() {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "the Python client is not installed: set SPLAI_TEST_PYTHON (scripts/test does)"
        );
        eprintln!("skipped: the Python client is not installed");
        return;
    }
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).args(["tests/py/splai_client.py", &url]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["cancelled"], "cancelled", "{seen}");
    assert_eq!(seen["error"]["status"], 400, "{seen}");
}

/// The TypeScript client (`clients/typescript`, built by `scripts/clients`) with Node's test runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_submits_follows_resumes_cancels_and_throws_typed_errors() {
    let built = std::path::Path::new("clients/typescript/dist/test/client.test.js");
    if !built.is_file() {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "the TypeScript client is not built: run scripts/clients (scripts/test does)"
        );
        eprintln!("skipped: the TypeScript client is not built");
        return;
    }
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--test", "clients/typescript/dist/test/"])
            .env("SPLAI_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("# pass 1") && report.contains("# skipped 0"), "{report}");
}
