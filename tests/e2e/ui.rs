//! The dashboard in a real browser: headless Chromium loads `/ui` from a running `splai up` and
//! renders the jobs list, a job's DAG with each task's state, a records result as a table, and the
//! workers page. The DOM after the page's own JS ran is checked, and screenshots are taken (into
//! `$SPLAI_TEST_UI_SCREENSHOTS` when set — that is how `docs/ui/*.png` are made — else a
//! temporary directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{Up, job_state, post, wait_job};
use serde_json::json;
use splai_events::JobState;

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string()))
    });
    if found.is_none() {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "chromium is not installed (scripts/test installs it)"
        );
        eprintln!("skipped: no chromium (apt-get install chromium)");
    }
    found
}

/// Load `url` headless, let its JS run, and return the DOM; also save a screenshot to `png`.
fn render(browser: &Path, url: &str, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
        "--window-size=1280,900",
    ];
    let dom = Command::new(browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = Command::new(browser)
        .args(common)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "chromium screenshot failed: {}", String::from_utf8_lossy(&shot.stderr));
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a real page renders to more than a blank PNG ({size} bytes)");
    String::from_utf8(dom.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_jobs_a_dag_and_workers() {
    let Some(browser) = chromium() else { return };
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let url = up.url.as_str();
    let tickets =
        "ticket 1: login fails\nticket 2: invoice blank\nticket 3: login loops\nticket 4: slow search";
    let dag = json!({"tasks": [
        {"id": "split", "kind": "tool_execution", "inputs": {"tool": {"literal": "split_lines"}, "text": {"literal": tickets}, "lines_per_chunk": {"literal": 2}}},
        {"id": "find-0", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "login"}, "text": {"output": {"task": "split", "pointer": "/chunks/0"}}}},
        {"id": "find-1", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "login"}, "text": {"output": {"task": "split", "pointer": "/chunks/1"}}}},
        {"id": "merge", "kind": "aggregation", "parents": ["find-0", "find-1"], "inputs": {"mode": {"literal": "concat"}, "part-0": {"output": {"task": "find-0"}}, "part-1": {"output": {"task": "find-1"}}}}
    ]});
    assert_eq!(
        post(url, "/v1/jobs", &json!({"type": "explicit", "job_id": "ui-tickets", "dag": dag}), None).await.0,
        202
    );
    let broken = json!({"type": "explicit", "job_id": "ui-broken", "max_retries": 0, "dag": {"tasks": [
        {"id": "nope", "kind": "tool_execution", "inputs": {"tool": {"literal": "shell"}}}]}});
    assert_eq!(post(url, "/v1/jobs", &broken, None).await.0, 202);
    // A records table (the `cluster` aggregation on literal records and vectors: no model needed).
    assert_eq!(
        post(url, "/v1/jobs", &json!({"type": "explicit", "job_id": "ui-table", "dag": table_dag()}), None)
            .await
            .0,
        202
    );
    let table = wait_job(url, "ui-table", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&table), JobState::Succeeded, "{table}");
    let job = wait_job(url, "ui-tickets", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    wait_job(url, "ui-broken", None, Duration::from_secs(30)).await;

    let out = std::env::var("SPLAI_TEST_UI_SCREENSHOTS").map(PathBuf::from).ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out.as_deref().unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).unwrap();
    let b = browser.clone();
    let (jobs, dag_page, workers, table_page) = tokio::task::spawn_blocking({
        let url = url.to_string();
        let dir = dir.to_path_buf();
        move || {
            (
                render(&b, &format!("{url}/ui/#/jobs"), &dir.join("jobs.png")),
                render(&b, &format!("{url}/ui/#/job/ui-tickets"), &dir.join("job.png")),
                render(&b, &format!("{url}/ui/#/workers"), &dir.join("workers.png")),
                render(&b, &format!("{url}/ui/#/job/ui-table"), &dir.join("table.png")),
            )
        }
    })
    .await
    .unwrap();
    assert!(jobs.contains("ui-tickets") && jobs.contains("ui-broken"), "{jobs}");
    assert!(jobs.contains(">succeeded<") && jobs.contains(">failed<"), "{jobs}");
    for task in ["split", "find-0", "find-1", "merge"] {
        assert!(
            dag_page.contains(&format!("data-task=\"{task}\" data-state=\"succeeded\"")),
            "{task} drawn: {dag_page}"
        );
    }
    assert!(dag_page.contains(job["trace_id"].as_str().unwrap()), "the trace id is shown");
    assert!(dag_page.contains("output.json"), "artifact links");
    assert!(workers.contains("up-") && workers.contains(">live<"), "{workers}");
    assert!(table_page.contains("id=\"result-table\""), "the records table is drawn: {table_page}");
    assert!(table_page.contains("data-rank=\"1\" data-count=\"2\""), "{table_page}");
    assert!(table_page.contains("<td>7, 9</td>") && table_page.contains("<td>4</td>"), "{table_page}");
}

/// Issue 16 item 8: a job that cannot move says why on its page (the job's `waiting` and the
/// task's row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_shows_why_in_the_dashboard() {
    let Some(browser) = chromium() else { return };
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.clone();
    let job = json!({"type": "chat", "job_id": "ui-waiting", "model": "gpt-9", "input": {"prompt": "hi"}});
    assert_eq!(post(&url, "/v1/jobs", &job, None).await.0, 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while crate::common::get(&url, "/v1/jobs/ui-waiting", None).await.unwrap().1["waiting"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(std::time::Instant::now() < deadline, "the job never said why it waits");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let page = tokio::task::spawn_blocking(move || {
        render(&browser, &format!("{url}/ui/#/job/ui-waiting"), &tmp.path().join("waiting.png"))
    })
    .await
    .unwrap();
    assert!(page.contains("waits: no live worker offers model `gpt-9`"), "{page}");
    assert!(
        page.contains("class=\"waiting\">no live worker offers model `gpt-9`"),
        "on the task's row: {page}"
    );
}

/// A records table: the `cluster` aggregation on literal records and vectors (no model needed).
fn table_dag() -> serde_json::Value {
    json!({"tasks": [{"id": "table", "kind": "aggregation", "inputs": {
        "mode": {"literal": "cluster"},
        "record-00000": {"literal": {"id": 7, "affected_users": 3}},
        "record-00001": {"literal": {"id": 8, "affected_users": 5}},
        "record-00002": {"literal": {"id": 9, "affected_users": 1}},
        "vectors-00000": {"literal": {"vectors": [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]}},
        "texts": {"literal": ["login fails", "slow search", "login fails again"]}}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_table_downloads_as_csv() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = &up.url;
    let submit = |id: &str, dag: serde_json::Value| json!({"type": "explicit", "job_id": id, "dag": dag});
    assert_eq!(post(url, "/v1/jobs", &submit("t", table_dag()), None).await.0, 202);
    let plain =
        json!({"tasks": [{"id": "c", "kind": "aggregation", "inputs": {"part-0": {"literal": "x"}}}]});
    assert_eq!(post(url, "/v1/jobs", &submit("plain", plain), None).await.0, 202);
    let job = wait_job(url, "t", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    let resp = reqwest::get(format!("{url}/v1/jobs/t/result.csv")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    assert_eq!(csv, job["result"]["csv"].as_str().unwrap(), "the table the result carries");
    assert!(csv.lines().nth(1).is_some_and(|row| row.starts_with("1,2,")), "rank 1 has 2 records: {csv}");
    wait_job(url, "plain", None, Duration::from_secs(30)).await;
    let (status, body) = crate::common::get(url, "/v1/jobs/plain/result.csv", None).await.unwrap();
    assert_eq!((status, body["code"].as_str()), (404, Some("no_table")), "{body}");
}

/// The charts page at 1400×900 in Chromium shows every card whole: each latency bucket's bar and
/// each worker's bar inside its chart's drawing area (they were cut off when the SVG was itself
/// the padded card). The layout is measured in the browser (`tests/browser/layout.py`), not read
/// from the DOM's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_page_shows_every_bar_whole_at_1400x900() {
    let Some(browser) = chromium() else { return };
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets.sync.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_websockets {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "python `websockets` missing: set SPLAI_TEST_PYTHON (scripts/test does)"
        );
        eprintln!("skipped: python `websockets` missing (scripts/pyenv installs it)");
        return;
    }
    let up = Up::start("", &["executor.shell_tool=true"], &["--executors", "2"]).await;
    let url = up.url.clone();
    // Jobs that end in three latency buckets even on a loaded machine: the quick one under 2.5 s,
    // the others in ≤ 10 s and ≤ 30 s with seconds to spare (a 1.1 s sleep once took > 2.5 s
    // under a load of 5 on 2 cores).
    let shell = |id: &str, secs: &str| {
        json!({"type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "s", "kind": "tool_execution",
            "requirements": {"tools": ["shell"]},
            "inputs": {"tool": {"literal": "shell"}, "command": {"literal": format!("sleep {secs}")}}}]}})
    };
    let quick = json!({"type": "explicit", "job_id": "quick", "dag": {"tasks": [
        {"id": "c", "kind": "aggregation", "inputs": {"part-0": {"literal": "x"}}}]}});
    for (id, body) in [("quick", quick), ("short", shell("short", "5.5")), ("long", shell("long", "11"))] {
        assert_eq!(post(&url, "/v1/jobs", &body, None).await.0, 202);
        let job = wait_job(&url, id, None, Duration::from_secs(60)).await;
        assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/layout.py");
    // Ready: three latency bars and both workers' bars drawn.
    let ready = "document.querySelectorAll('main svg rect').length >= 5";
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(&browser)
            .arg(format!("{url}/ui/#/charts"))
            .args(["1400", "900", ready])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "layout check failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clipped"], json!([]), "hidden by the layout: {report}");
    let bars = |chart: &str| report["bars"][chart].as_array().map_or(0, Vec::len);
    assert!(bars("Job latency (submit → done)") >= 3, "{report}");
    assert_eq!(bars("Worker CPU utilization now"), 2, "{report}");
    // The per-tenant figures come from the scheduler's `metrics` stream (through the read model).
    assert!(bars("Runnable and running per tenant and model (from the metrics stream)") >= 2, "{report}");
}
