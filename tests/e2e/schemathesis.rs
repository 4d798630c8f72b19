//! The OpenAPI document checked with schemathesis (PyPI) against a running `splai up`, with every
//! conformance check: no 5xx, every status and content type the document names, every body its
//! schema — and request schemas close enough to the validator that generated bodies are not
//! mostly refused. The stateful phase is left out: schemathesis infers a link from `POST /v1/jobs`
//! to `GET /v1/workers` with an `id` parameter that operation does not have, and stops on it.

use crate::common::Up;

const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// The operations that run real inference for each accepted request (a debug build decoding up
/// to `max_tokens` 4 096): fewer examples, a longer timeout.
const GENERATING: &str = "^/v1/(chat/completions|completions|embeddings)$";

fn schemathesis() -> Option<std::path::PathBuf> {
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let bin = std::path::Path::new(&python).with_file_name("schemathesis");
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
        "schemathesis missing: set SPLAI_TEST_PYTHON (scripts/test does)"
    );
    eprintln!("skipped: schemathesis is not installed");
    None
}

/// Run schemathesis over `spec` with every check; its report, or a failure naming what it found.
async fn run(
    bin: std::path::PathBuf,
    spec: String,
    operations: [&'static str; 2],
    examples: &str,
    timeout: &str,
) -> String {
    let examples = examples.to_string();
    let timeout = timeout.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["run", &spec, "--checks", CHECKS, "--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", &examples, "--request-timeout", &timeout, "--seed", "20261207"])
            .args(operations)
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_every_answer_documented_and_no_server_error() {
    let Some(bin) = schemathesis() else { return };
    // Small body limit: oversize bodies are part of what it tries.
    let up = Up::start("", &["gateway.max_body_bytes=65536"], &["--executors", "1"]).await;
    let spec = format!("{}/openapi.json", up.url);
    let report = run(bin.clone(), spec.clone(), ["--exclude-path-regex", GENERATING], "60", "30").await;
    assert!(
        !report.contains("Schema validation mismatch"),
        "an operation refused most bodies its request schema allows:\n{report}"
    );
    run(bin, spec, ["--include-path-regex", GENERATING], "5", "120").await;
}
