//! The gateway API against a real `splai up` process on the embedded default: every error status
//! with its JSON body, auth and tenant isolation, a job's life through the API (tasks, artifacts,
//! lineage, result), SSE resume with `Last-Event-ID` without gaps or duplicates, pagination,
//! cancellation of a running attempt, and a retrying task that dead-letters and fails its job.

use std::time::{Duration, Instant};

use crate::common::{
    Up, attempt_state, get, job_state, post, read_stream, status_event_state, task_state, tasks_in, wait_job,
    wait_until,
};
use serde_json::{Value, json};
use splai_events::{AttemptState, JobState, RevokeReason, TaskState};

fn tool_dag() -> Value {
    let tickets =
        "ticket 1: login fails\nticket 2: invoice blank\nticket 3: login loops\nticket 4: slow search";
    json!({"tasks": [
        {"id": "split", "kind": "tool_execution", "inputs": {"tool": {"literal": "split_lines"}, "text": {"literal": tickets}, "lines_per_chunk": {"literal": 2}}},
        {"id": "find-0", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "ticket (\\d+): login"}, "group": {"literal": 1}, "text": {"output": {"task": "split", "pointer": "/chunks/0"}}}},
        {"id": "find-1", "kind": "tool_execution", "parents": ["split"], "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "ticket (\\d+): login"}, "group": {"literal": 1}, "text": {"output": {"task": "split", "pointer": "/chunks/1"}}}},
        {"id": "merge", "kind": "aggregation", "parents": ["find-0", "find-1"], "inputs": {"mode": {"literal": "json_merge"}, "part-0": {"output": {"task": "find-0"}}, "part-1": {"output": {"task": "find-1"}}}}
    ]})
}

async fn raw(
    url: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{url}{path}")).body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn assert_error(got: &(u16, reqwest::header::HeaderMap, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{:?}", got.2);
    assert_eq!(got.2["code"], code, "{:?}", got.2);
    assert!(got.2["message"].as_str().is_some_and(|m| !m.is_empty()), "{:?}", got.2);
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn ok_job(id: &str) -> Value {
    json!({"type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_has_a_specific_json_body() {
    let up = Up::start("", &["gateway.max_body_bytes=4096"], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let post_raw = |headers: Vec<(&'static str, &'static str)>, body: String| async move {
        raw(url, reqwest::Method::POST, "/v1/jobs", &headers, &body).await
    };

    assert_error(
        &post_raw(vec![("content-type", "text/plain")], "{}".into()).await,
        415,
        "unsupported_media_type",
    );
    assert_error(&post_raw(vec![JSON], "{oops".into()).await, 400, "invalid_json");
    let cycle = json!({"type": "explicit", "dag": {"tasks": [
        {"id": "a", "kind": "aggregation", "parents": ["b"]}, {"id": "b", "kind": "aggregation", "parents": ["a"]}]}});
    let got = post_raw(vec![JSON], cycle.to_string()).await;
    assert_error(&got, 400, "dag_cycle");
    assert_eq!(got.2["field"], "dag.tasks");
    let unknown = json!({"type": "explicit", "dag": {"tasks": [{"id": "a", "kind": "gpu_magic"}]}});
    let got = post_raw(vec![JSON], unknown.to_string()).await;
    assert_error(&got, 400, "unknown_kind");
    assert_eq!(got.2["field"], "dag.tasks[a].kind");
    let got = post_raw(vec![JSON], json!({"type": "teleport"}).to_string()).await;
    assert_error(&got, 400, "invalid_input");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_error(&post_raw(vec![JSON], deep).await, 413, "body_too_large");
    let nested = format!("{{\"type\": \"chat\", \"input\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    assert_error(&post_raw(vec![JSON], nested).await, 400, "invalid_json");
    let big = json!({"type": "chat", "input": {"messages": [{"role": "user", "content": "x".repeat(8000)}]}});
    assert_error(&post_raw(vec![JSON], big.to_string()).await, 413, "body_too_large");
    // Job ids that would escape a path or are not ASCII: a 400 naming the field.
    for (bad, field) in [("../etc", "job_id"), ("jöb-ü", "job_id")] {
        let (status, body) = post(url, "/v1/jobs", &ok_job(bad), None).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{bad}: {body}");
    }

    assert_error(&raw(url, reqwest::Method::GET, "/v1/jobs/nope", &[], "").await, 404, "not_found");
    // A tenant header that is not a tenant name is refused, never read as `default`.
    for bad in ["../../other", "..", ".hidden", "a/b", ""] {
        let r = raw(url, reqwest::Method::GET, "/v1/jobs", &[("x-splai-tenant", bad)], "").await;
        assert_error(&r, 400, "invalid_tenant");
        assert!(r.2["message"].as_str().unwrap_or("").contains("X-SPLAI-Tenant"), "{bad:?}: {}", r.2);
    }
    // A number outside its documented range is refused naming its field, not clamped.
    let (status, body) = post(
        url,
        "/v1/jobs",
        &json!({"type": "chat", "input": {"prompt": "hi"}, "max_retries": 1_000_000_000u32}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("invalid_input"), Some("max_retries")),
        "{body}"
    );

    // Paging and stream parameters.
    assert_error(&raw(url, reqwest::Method::GET, "/v1/jobs?limit=0", &[], "").await, 400, "invalid_limit");
    assert_error(
        &raw(url, reqwest::Method::GET, "/v1/jobs?cursor=zzz", &[], "").await,
        400,
        "invalid_cursor",
    );
    assert_error(&raw(url, reqwest::Method::GET, "/v1/jobs?limit=abc", &[], "").await, 400, "bad_request");
    assert_eq!(post(url, "/v1/jobs", &ok_job("streamed-1"), None).await.0, 202);
    let got =
        raw(url, reqwest::Method::GET, "/v1/jobs/streamed-1/stream", &[("last-event-id", "x")], "").await;
    assert_error(&got, 400, "invalid_last_event_id");
    assert_error(&raw(url, reqwest::Method::PUT, "/v1/jobs", &[], "").await, 405, "method_not_allowed");
    assert_error(&raw(url, reqwest::Method::GET, "/v1/nothing", &[], "").await, 404, "not_found");
}

/// A DAG over the task limit (1 000) is a 400 `too_many_tasks` (with the default body limit: the
/// request is larger than the 4 KiB of the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_over_the_task_limit_is_refused() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let huge: Vec<Value> = (0..1500).map(|i| json!({"id": format!("t{i}"), "kind": "aggregation"})).collect();
    let (status, body) =
        post(&up.url, "/v1/jobs", &json!({"type": "explicit", "dag": {"tasks": huge}}), None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("too_many_tasks")), "{body}");
}

/// Same key + same request ⇒ the same job (200); same key, another request ⇒ 409; a job id
/// taken without a key ⇒ 409 `job_exists`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_its_job_and_refuses_another_request() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let (s1, first) = post_with_key(url, &ok_job("idem-1"), "key-1").await;
    assert_eq!(s1, 202, "{first}");
    let (s2, again) = post_with_key(url, &ok_job("idem-1"), "key-1").await;
    assert_eq!((s2, &again["job_id"]), (200, &first["job_id"]));
    let (s3, conflict) = post_with_key(url, &ok_job("idem-2"), "key-1").await;
    assert_eq!((s3, conflict["code"].as_str()), (409, Some("idempotency_conflict")), "{conflict}");
    let (s4, taken) = post(url, "/v1/jobs", &ok_job("idem-1"), None).await;
    assert_eq!((s4, taken["code"].as_str()), (409, Some("job_exists")), "{taken}");
}

/// Without auth the `X-SPLAI-Tenant` header picks the tenant: another tenant's job is simply not
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_job_is_not_found() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.as_str();
    assert_eq!(post(url, "/v1/jobs", &ok_job("mine-1"), None).await.0, 202);
    let got = raw(url, reqwest::Method::GET, "/v1/jobs/mine-1", &[("x-splai-tenant", "globex")], "").await;
    assert_error(&got, 404, "not_found");
    assert_eq!(get(url, "/v1/jobs/mine-1", None).await.unwrap().0, 200);
}

/// The submit rate: a burst of 6 (the refill, 0.01/s, adds nothing meanwhile), then 429 with
/// Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_rate_is_enforced_with_retry_after() {
    let up =
        Up::start("", &["gateway.submit_rate_per_s=0.01", "gateway.submit_burst=6"], &["--executors", "1"])
            .await;
    let url = up.url.as_str();
    for i in 0..6 {
        let (status, body) = post(url, "/v1/jobs", &ok_job(&format!("rate-{i}")), None).await;
        assert_eq!(status, 202, "submission {i} of the burst: {body}");
    }
    let limited = raw(url, reqwest::Method::POST, "/v1/jobs", &[JSON], &ok_job("rate-6").to_string()).await;
    assert_error(&limited, 429, "rate_limited");
    assert!(limited.1.get("retry-after").is_some(), "429 without Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_the_main_paths() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let (status, doc) = get(url, "/openapi.json", None).await.unwrap();
    assert_eq!(status, 200);
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/stream",
        "/v1/jobs/{id}/lineage",
        "/v1/workers",
        "/readyz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
}

async fn post_with_key(url: &str, body: &Value, key: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/jobs"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_tenants() {
    let hash = crate::common::token_hash;
    let extra = format!(
        r#"
[gateway.tokens.acme-reader]
sha256 = "{}"
tenant = "acme"
roles = ["reader"]
[gateway.tokens.acme-ci]
sha256 = "{}"
tenant = "acme"
roles = ["submitter", "reader"]
[gateway.tokens.globex]
sha256 = "{}"
tenant = "globex"
roles = ["submitter", "reader"]
"#,
        hash("r-token"),
        hash("ci-token"),
        hash("globex-token")
    );
    let up = Up::start_auth(&extra, &[], &["--executors", "1"], "ci-token").await;
    let url = up.url.as_str();
    let job = json!({"type": "explicit", "job_id": "auth-1", "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    let (status, body) = post(url, "/v1/jobs", &job, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = post(url, "/v1/jobs", &job, Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, body) = post(url, "/v1/jobs", &job, Some("r-token")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = post(url, "/v1/jobs", &job, Some("ci-token")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(get(url, "/v1/jobs/auth-1", Some("r-token")).await.unwrap().0, 200);
    let (status, body) = get(url, "/v1/jobs/auth-1", Some("globex-token")).await.unwrap();
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "ids of other tenants do not leak");
    let (_, list) = get(url, "/v1/jobs", Some("globex-token")).await.unwrap();
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(0));
    wait_job(url, "auth-1", Some("ci-token"), Duration::from_secs(20)).await;
    for path in ["", "/tasks", "/stream", "/artifacts", "/artifacts/a/1", "/lineage"] {
        let (status, body) = get(url, &format!("/v1/jobs/auth-1{path}"), Some("globex-token")).await.unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "GET /v1/jobs/auth-1{path} leaked"
        );
        assert_eq!(
            get(url, &format!("/v1/jobs/auth-1{path}"), Some("r-token")).await.unwrap().0,
            200,
            "{path}"
        );
    }
    let resp = reqwest::Client::new()
        .delete(format!("{url}/v1/jobs/auth-1"))
        .bearer_auth("globex-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "another tenant cannot cancel");
    let (status, _) =
        post(url, "/v1/admin/dead-letter/requeue", &json!({"job_id": "auth-1"}), Some("globex-token")).await;
    assert_eq!(status, 403, "requeue needs the operator role");
    assert_eq!(get(url, "/v1/jobs", None).await.unwrap().0, 401);
    assert_eq!(get(url, "/healthz", None).await.unwrap().0, 200);
}

/// With auth on the token decides the tenant: `X-SPLAI-Tenant` may repeat it, and a header that
/// is not a tenant name, or names another tenant, is refused rather than ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_a_tenant_header_must_agree_with_the_token() {
    let extra = crate::common::token_table("acme-ci", "ci-token", "acme", &["submitter", "reader"]);
    let up = Up::start_auth(&extra, &[], &["--executors", "1"], "ci-token").await;
    let url = up.url.as_str();
    let bearer = ("authorization", "Bearer ci-token");
    let same = raw(url, reqwest::Method::GET, "/v1/jobs", &[bearer, ("x-splai-tenant", "acme")], "").await;
    assert_eq!(same.0, 200, "{}", same.2);
    let other = raw(url, reqwest::Method::GET, "/v1/jobs", &[bearer, ("x-splai-tenant", "globex")], "").await;
    assert_error(&other, 403, "forbidden");
    assert!(other.2["message"].as_str().unwrap_or("").contains("`globex`"), "{}", other.2);
    for bad in ["../../other", ".hidden", ""] {
        let r = raw(url, reqwest::Method::GET, "/v1/jobs", &[bearer, ("x-splai-tenant", bad)], "").await;
        assert_error(&r, 400, "invalid_tenant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_job_quota_is_per_tenant_with_retry_after() {
    let per_tenant = "[gateway.tenants.globex]\nmax_active_jobs = 1\n";
    let up = Up::start(per_tenant, &["gateway.max_active_jobs=2"], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let nap = |id: &str| {
        json!({"type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "n", "kind": "tool_execution",
            "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 20000}}}]}})
    };
    let submit = |tenant: &'static str, body: Value| async move {
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/jobs"))
            .header("x-splai-tenant", tenant)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.headers().get("retry-after").is_some(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(submit("acme", nap("q-1")).await.0, 202);
    assert_eq!(submit("acme", nap("q-2")).await.0, 202);
    let (status, retry_after, body) = submit("acme", nap("q-3")).await;
    assert_eq!((status, body["code"].as_str(), retry_after), (429, Some("quota_exceeded"), true), "{body}");
    assert_eq!(submit("globex", nap("q-4")).await.0, 202, "the quota is per tenant");
    let (status, _, body) = submit("globex", nap("q-6")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota_exceeded")),
        "globex's own limit is 1: {body}"
    );
    let resp = reqwest::Client::new()
        .delete(format!("{url}/v1/jobs/q-1"))
        .header("x-splai-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = reqwest::Client::new()
            .get(format!("{url}/v1/jobs/q-1"))
            .header("x-splai-tenant", "acme")
            .send()
            .await
            .unwrap();
        if job_state(&r.json::<Value>().await.unwrap()) == JobState::Cancelled {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "q-1 was not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(submit("acme", nap("q-5")).await.0, 202, "room again once a job ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_through_the_api_with_lineage_sse_resume_and_pagination() {
    let up = Up::start("", &[], &["--executors", "2"]).await;
    let url = up.url.as_str();
    let (status, accepted) =
        post(url, "/v1/jobs", &json!({"type": "explicit", "job_id": "life-1", "dag": tool_dag()}), None)
            .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["trace_id"].as_str().map(str::len), Some(32));

    // A fresh connection starts with a snapshot of the job as it is then (how far the job has got
    // by then is up to the executors) and ends after the job's end.
    let fresh = read_stream(url, "life-1", None).await;
    assert_eq!(fresh[0].1, "job.snapshot", "{fresh:#?}");
    assert_eq!(fresh.last().unwrap().1, "end", "{fresh:#?}");
    let fresh_ids: Vec<i64> = fresh.iter().filter_map(|e| e.0.as_deref()?.parse().ok()).collect();
    assert!(fresh_ids.windows(2).all(|w| w[1] == w[0] + 1), "no gap after the snapshot: {fresh_ids:?}");
    // The whole history (`Last-Event-ID: 0`, no snapshot): consecutive ids from the first.
    let events = read_stream(url, "life-1", Some("0")).await;
    let ids: Vec<i64> = events.iter().filter_map(|e| e.0.as_deref()?.parse().ok()).collect();
    assert_eq!(ids.first(), Some(&1), "{events:#?}");
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids are consecutive: {ids:?}");
    assert!(
        events.iter().any(|e| e.1 == "task.update"
            && e.2["task_id"] == "merge"
            && task_state(&e.2) == TaskState::Succeeded),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.1 == "job.status" && status_event_state(&e.2) == Some(JobState::Succeeded))
    );

    // Resume from the middle: exactly the rest, no gaps, no duplicates.
    let middle = events.len() / 2;
    let resume_after = events[middle].0.clone().unwrap();
    let resumed = read_stream(url, "life-1", Some(&resume_after)).await;
    let expected: Vec<_> = events[middle + 1..].to_vec();
    assert_eq!(resumed, expected);

    let job = wait_job(url, "life-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(job["progress"], json!({"total": 4, "succeeded": 4, "failed": 0}));
    assert!(
        job["result"].to_string().contains("\"1\"") && job["result"].to_string().contains("\"3\""),
        "{}",
        job["result"]
    );

    let (_, tasks) = get(url, "/v1/jobs/life-1/tasks", None).await.unwrap();
    let tasks = tasks["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 4);
    for t in &tasks {
        assert_eq!(task_state(t), TaskState::Succeeded, "{t}");
        assert_eq!(t["attempts"].as_array().map(Vec::len), Some(1), "{t}");
        assert!(t["artifact"].as_str().is_some_and(|p| p.starts_with("default/life-1/")), "{t}");
    }
    let (_, arts) = get(url, "/v1/jobs/life-1/artifacts", None).await.unwrap();
    let arts = arts["artifacts"].as_array().unwrap().clone();
    assert_eq!(arts.len(), 4);
    let resp = reqwest::get(format!("{url}/v1/jobs/life-1/artifacts/merge/1")).await.unwrap();
    let sha = resp.headers()["x-splai-sha256"].to_str().unwrap().to_string();
    let bytes = resp.bytes().await.unwrap();
    let merge = arts.iter().find(|a| a["task_id"] == "merge").unwrap();
    assert_eq!(merge["sha256"], sha.as_str());
    assert_eq!(merge["size_bytes"], bytes.len());
    let (_, lineage) = get(url, "/v1/jobs/life-1/lineage", None).await.unwrap();
    let node =
        |id: &str| lineage["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id).unwrap().clone();
    let mut inputs: Vec<String> =
        node("merge")["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    inputs.sort();
    let mut parents = vec![
        node("find-0")["artifact"].as_str().unwrap().to_string(),
        node("find-1")["artifact"].as_str().unwrap().to_string(),
    ];
    parents.sort();
    assert_eq!(inputs, parents, "the merge read exactly its parents' artifacts");
    assert_eq!(node("find-0")["inputs"], json!([node("split")["artifact"]]));

    let rtl = json!({"type": "explicit", "job_id": "unicode-1", "dag": {"tasks": [{"id": "a", "kind": "tool_execution",
        "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "שלום ✓ 🦀 \u{0000}end"}}}]}});
    assert_eq!(post(url, "/v1/jobs", &rtl, None).await.0, 202, "unicode content is just content");
    let job = wait_job(url, "unicode-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");

    // Pagination: three more jobs, pages of two, newest first, no overlap.
    for i in 0..3 {
        let (s, _) = post(url, "/v1/jobs", &json!({"type": "explicit", "job_id": format!("page-{i}"), "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}}), None).await;
        assert_eq!(s, 202);
    }
    let (_, first) = get(url, "/v1/jobs?limit=2", None).await.unwrap();
    let cursor = first["next_cursor"].as_str().expect("a next page").to_string();
    let (_, second) = get(url, &format!("/v1/jobs?limit=2&cursor={cursor}"), None).await.unwrap();
    let cursor = second["next_cursor"].as_str().expect("a third page").to_string();
    let (_, third) = get(url, &format!("/v1/jobs?limit=2&cursor={cursor}"), None).await.unwrap();
    let ids: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["jobs"].as_array().unwrap())
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["page-2", "page-1", "page-0", "unicode-1", "life-1"]);
    assert!(third["next_cursor"].is_null());

    // Prometheus metrics describe what just happened.
    let text = metrics_once(url, |t| {
        metric_sum(t, "splai_job_latency_seconds_count{type=\"explicit\",outcome=\"succeeded\"}") >= 1.0
            && metric_sum(
                t,
                "splai_task_attempt_duration_seconds_count{kind=\"tool_execution\",outcome=\"succeeded\"}",
            ) >= 3.0
            && metric_sum(t, "splai_decision_latency_seconds_count") >= 4.0
    })
    .await;
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    };
    assert!(value("splai_job_latency_seconds_count{type=\"explicit\",outcome=\"succeeded\"}") >= 1.0);
    assert!(
        value("splai_task_attempt_duration_seconds_count{kind=\"tool_execution\",outcome=\"succeeded\"}")
            >= 3.0
    );
    assert!(value("splai_decision_latency_seconds_count") >= 4.0);
    assert!(value("splai_events_consumed_total{topic=\"job-events\"}") > 0.0);
    assert_eq!(value("splai_workers_live"), 2.0);
    let lag = "splai_consumer_lag_records{topic=\"job-events\"} ";
    assert!(text.lines().any(|l| l.starts_with(lag)), "the projector's lag is not exported:\n{text}");
    assert!(text.contains("# TYPE splai_runnable_tasks gauge"));
}

/// `splai up` with the shell tool, one retry by default and two executors of one slot each.
async fn shell_stack() -> Up {
    Up::start(
        "",
        // Two slots in all: `splai up` splits them over its two executors.
        &["executor.shell_tool=true", "scheduler.default_max_retries=1", "executor.slots=2"],
        &["--executors", "2"],
    )
    .await
}

/// The gateway's Prometheus text.
async fn metrics(url: &str) -> String {
    reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap()
}

/// The gateway's metrics once `ready` holds of them, or as they are after 15 s: the projector
/// counts what it applied just after the read model shows it.
async fn metrics_once(url: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(url).await;
        if ready(&text) || std::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples in `text` whose series starts with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_running_attempt() {
    let up = shell_stack().await;
    let url = up.url.as_str();
    let sleepy = json!({"type": "explicit", "job_id": "cancel-1", "dag": {"tasks": [
        {"id": "nap", "kind": "tool_execution", "requirements": {"tools": ["shell"]},
         "inputs": {"tool": {"literal": "shell"}, "command": {"literal": "sleep 30"}}},
        {"id": "after", "kind": "aggregation", "parents": ["nap"]}]}});
    assert_eq!(post(url, "/v1/jobs", &sleepy, None).await.0, 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, tasks) = get(url, "/v1/jobs/cancel-1/tasks", None).await.unwrap();
        if tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["task_id"] == "nap" && task_state(t) == TaskState::Running)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the task never started: {tasks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = reqwest::Client::new().delete(format!("{url}/v1/jobs/cancel-1")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let job = wait_job(url, "cancel-1", None, Duration::from_secs(20)).await;
    assert_eq!(job_state(&job), JobState::Cancelled, "{job}");
    let resp = reqwest::Client::new().delete(format!("{url}/v1/jobs/cancel-1")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "cancelling again is a no-op");
    // The running attempt was revoked and stopped: it reports, well before its 30 s sleep ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, tasks) = get(url, "/v1/jobs/cancel-1/tasks", None).await.unwrap();
        let nap = tasks["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == "nap").unwrap().clone();
        let attempt = &nap["attempts"][0];
        if attempt_state(attempt) == AttemptState::Failed {
            let why: Option<RevokeReason> = serde_json::from_value(attempt["revoked"].clone()).unwrap();
            assert_eq!(why, Some(RevokeReason::Cancelled), "revoked because the job was cancelled: {nap}");
            assert_eq!(task_state(&nap), TaskState::Cancelled, "{nap}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the revoked attempt kept running: {nap}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics_once(url, |t| {
        metric_sum(t, "splai_job_latency_seconds_count{type=\"explicit\",outcome=\"cancelled\"}") >= 1.0
    })
    .await;
    let cancelled =
        metric_sum(&text, "splai_job_latency_seconds_count{type=\"explicit\",outcome=\"cancelled\"}");
    assert!(cancelled >= 1.0, "{text}");
}

/// A task that always times out: retried once (retryable), then dead-lettered; the job fails
/// naming it, the dead letter is listed (to its tenant only) and can be requeued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_dead_letters_and_fails_its_job() {
    let up = shell_stack().await;
    let url = up.url.as_str();
    let slow = json!({"type": "explicit", "job_id": "dead-1", "dag": {"tasks": [
        {"id": "slow", "kind": "tool_execution", "timeout_s": 1, "requirements": {"tools": ["shell"]},
         "inputs": {"tool": {"literal": "shell"}, "command": {"literal": "sleep 20"}}}]}});
    assert_eq!(post(url, "/v1/jobs", &slow, None).await.0, 202);
    let job = wait_job(url, "dead-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Failed, "{job}");
    assert_eq!(job["failed_task"], "slow");
    assert!(job["reason"].as_str().unwrap().contains("timed out"), "{job}");
    let (_, tasks) = get(url, "/v1/jobs/dead-1/tasks", None).await.unwrap();
    let attempts = tasks["tasks"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "one retry: {attempts:?}");
    assert!(attempts.iter().all(|a| a["error"].as_str().unwrap().contains("timed out")));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, dl) = get(url, "/v1/admin/dead-letter", None).await.unwrap();
        if let Some(d) = dl["dead_letters"].as_array().unwrap().iter().find(|d| d["job_id"] == "dead-1") {
            assert_eq!(d["task_id"], "slow");
            assert!(d["reason"].as_str().unwrap().contains("timed out"), "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter listed: {dl}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) =
        post(url, "/v1/admin/dead-letter/requeue", &json!({"job_id": "dead-1", "task_id": "slow"}), None)
            .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["dead_letters_marked"], 1);
    // Another tenant sees none of it.
    let other = |path: &str| {
        let url = format!("{url}{path}");
        async move {
            let r = reqwest::Client::new().get(url).header("x-splai-tenant", "globex").send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, dl) = other("/v1/admin/dead-letter").await;
    assert_eq!((status, dl["dead_letters"].as_array().map(Vec::len)), (200, Some(0)), "{dl}");
    assert_eq!(other("/v1/jobs/dead-1").await.0, 404);
    let (status, audit) = other("/v1/admin/audit").await;
    assert!(
        status == 200 && audit["records"].as_array().unwrap().iter().all(|r| r["tenant"] == "globex"),
        "{audit}"
    );

    // The retry, dead-letter, latency and utilization series moved.
    let text = metrics_once(url, |t| {
        metric_sum(t, "splai_task_retries_total") >= 1.0
            && metric_sum(t, "splai_dead_letters_total") >= 1.0
            && metric_sum(t, "splai_job_latency_seconds_count{type=\"explicit\",outcome=\"failed\"}") >= 1.0
    })
    .await;
    let sum = |prefix: &str| metric_sum(&text, prefix);
    assert!(sum("splai_task_retries_total") >= 1.0, "{text}");
    assert!(sum("splai_dead_letters_total") >= 1.0, "{text}");
    assert!(sum("splai_job_latency_seconds_count{type=\"explicit\",outcome=\"failed\"}") >= 1.0, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("splai_worker_cpu_percent{worker=")).count(),
        2,
        "{text}"
    );
    assert_eq!(sum("splai_worker_slots{"), 2.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_is_tenant_scoped_exportable_and_verifiable() {
    let hash = crate::common::token_hash;
    let extra = format!(
        r#"
[gateway.tokens.acme-admin]
sha256 = "{}"
tenant = "acme"
roles = ["admin"]
[gateway.tokens.acme-reader]
sha256 = "{}"
tenant = "acme"
roles = ["reader"]
[gateway.tokens.globex-admin]
sha256 = "{}"
tenant = "globex"
roles = ["admin"]
"#,
        hash("acme-admin"),
        hash("acme-reader"),
        hash("globex-admin")
    );
    let up = Up::start_auth(&extra, &[], &["--executors", "1"], "acme-admin").await;
    let url = up.url.as_str();
    let job = json!({"type": "explicit", "job_id": "audited-1", "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    assert_eq!(post(url, "/v1/jobs", &job, Some("acme-admin")).await.0, 202);
    let bad =
        json!({"type": "explicit", "dag": {"tasks": [{"id": "a", "kind": "aggregation", "parents": ["a"]}]}});
    assert_eq!(post(url, "/v1/jobs", &bad, Some("acme-admin")).await.0, 400);
    let resp = reqwest::Client::new()
        .delete(format!("{url}/v1/jobs/audited-1"))
        .bearer_auth("acme-admin")
        .send()
        .await
        .unwrap();
    assert!([200, 202].contains(&resp.status().as_u16()));
    assert_eq!(post(url, "/v1/jobs", &json!({"type": "explicit", "job_id": "globex-1", "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}}), Some("globex-admin")).await.0, 202);

    assert_eq!(get(url, "/v1/admin/audit", Some("acme-reader")).await.unwrap().0, 403, "audit is for admins");
    let (status, audit) = get(url, "/v1/admin/audit", Some("acme-admin")).await.unwrap();
    assert_eq!(status, 200, "{audit}");
    let records = audit["records"].as_array().unwrap();
    let actions: Vec<(&str, &str)> =
        records.iter().map(|r| (r["action"].as_str().unwrap(), r["subject"].as_str().unwrap())).collect();
    assert!(actions.contains(&("job.submit", "audited-1")), "{actions:?}");
    assert!(actions.contains(&("job.reject", "-")), "{actions:?}");
    assert!(
        records.iter().all(|r| r["tenant"] == "acme" && r["actor"] == "acme-admin"),
        "only acme's records: {audit}"
    );
    let reject = records.iter().find(|r| r["action"] == "job.reject").unwrap();
    assert!(reject["detail"].as_str().unwrap().contains("dag_cycle"), "{reject}");
    let (_, globex) = get(url, "/v1/admin/audit", Some("globex-admin")).await.unwrap();
    assert!(globex["records"].as_array().unwrap().iter().all(|r| r["tenant"] == "globex"));
    assert!(globex["records"].as_array().unwrap().iter().any(|r| r["subject"] == "globex-1"));

    let csv = reqwest::Client::new()
        .get(format!("{url}/v1/admin/audit?format=csv&action=job.submit"))
        .bearer_auth("acme-admin")
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("seq,ts_ms,tenant,actor,action,subject,detail,prev_hash,hash\n"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",job.submit,")), "{csv}");

    let (_, verdict) = get(url, "/v1/admin/audit/verify", Some("acme-admin")).await.unwrap();
    assert_eq!(verdict["ok"], true, "{verdict}");
    // Tamper with the second record in the database: the API and the CLI both name it.
    let db = up.dir.as_ref().unwrap().path().join("splai.sqlite");
    let out = std::process::Command::new("python3")
        .args(["-c", &format!("import sqlite3; c = sqlite3.connect('{}'); c.execute(\"UPDATE audit_events SET actor = 'mallory' WHERE seq = 2\"); c.commit()", db.display())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, verdict) = get(url, "/v1/admin/audit/verify", Some("acme-admin")).await.unwrap();
    assert_eq!(
        (verdict["ok"].clone(), verdict["first_broken_seq"].clone()),
        (json!(false), json!(2)),
        "{verdict}"
    );
    // The CLI reads the same settings as the gateway (here given on the command line).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_splai"))
        .arg("--config")
        .arg(&up.config)
        .args([
            "--set",
            "gateway.auth=true",
            "--set",
            "gateway.signing_key=up-e2e-signing-key-0123456789abcdef",
        ])
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BROKEN at record 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `splai up` with one cloud-labelled executor and a policy: trial tenants submit no batch jobs,
/// confidential data goes to no chat model, restricted data runs only on on-prem workers. The
/// stack and the `--set` that names the policy file.
async fn policy_stack() -> (Up, String) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"
default = "allow"
[[rules]]
name = "no-batch-for-trial"
tenants = ["trial"]
priorities = ["batch"]
action = "deny"
reason = "trial tenants cannot submit batch jobs"
[[rules]]
name = "no-confidential-chat"
job_types = ["chat"]
data_classifications = ["confidential"]
action = "deny"
reason = "confidential data is not sent to chat models"
[[rules]]
name = "restricted-on-prem"
data_classifications = ["restricted"]
require_worker_labels = ["site=on-prem"]
reason = "restricted data runs only on on-prem workers"
"#,
    )
    .unwrap();
    let policy_set = format!("policy.file={}", policy.display());
    let up = Up::start_in(dir, "", &[&policy_set, "executor.labels=[\"site=cloud\"]"], &["--executors", "1"])
        .await;
    (up, policy_set)
}

/// The policy gate at admission: a denied request is a 403 with the rule and its reason, a rule
/// applies only to what it names, and the denial is audited for the tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denies_at_admission_and_audits_it() {
    let (up, _) = policy_stack().await;
    let url = up.url.as_str();
    let client = reqwest::Client::new();
    let submit_as = |tenant: &'static str, body: Value| {
        let request = client.post(format!("{url}/v1/jobs")).header("x-splai-tenant", tenant).json(&body);
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let batch = json!({"type": "explicit", "priority": "batch", "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    let (status, body) = submit_as("trial", batch.clone()).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("policy_denied")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("trial tenants cannot submit batch jobs"), "{body}");
    assert_eq!(submit_as("acme", batch).await.0, 202, "the rule names the trial tenant only");

    let chat = json!({"type": "chat", "data_classification": "confidential", "input": {"messages": [{"role": "user", "content": "hi"}]}});
    let (status, body) = post(url, "/v1/jobs", &chat, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("policy_denied")),
        "denied by classification: {body}"
    );
    assert!(body["message"].as_str().unwrap().contains("no-confidential-chat"), "{body}");

    let resp = client
        .get(format!("{url}/v1/admin/audit?action=policy.decision"))
        .header("x-splai-tenant", "trial")
        .send()
        .await
        .unwrap();
    let trial: Value = resp.json().await.unwrap();
    assert!(
        trial["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"].as_str().unwrap().contains("\"allowed\":false")),
        "{trial}"
    );
}

/// The policy gate at placement: a restricted task waits, saying why, while only a cloud worker
/// is live, then runs on an on-prem worker; both decisions are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_placement_waits_for_a_labelled_worker_and_audits_it() {
    let (up, policy_set) = policy_stack().await;
    let url = up.url.as_str();
    let restricted = json!({"type": "explicit", "job_id": "secret-1", "data_classification": "restricted", "dag": {"tasks": [
        {"id": "t", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 1}}}]}});
    assert_eq!(post(url, "/v1/jobs", &restricted, None).await.0, 202);
    // The scheduler has looked at the task with the cloud worker live and said it cannot go there.
    wait_until(
        "secret-1's task to say it waits for an on-prem worker",
        Duration::from_secs(30),
        async || {
            let (_, tasks) = get(url, "/v1/jobs/secret-1/tasks", None).await.unwrap();
            let t = &tasks["tasks"][0];
            let waits = t["reason"].as_str().is_some_and(|r| r.contains("site=on-prem"));
            // `waits` first: until the task is projected there is no state to read.
            if waits && task_state(t) == TaskState::Runnable { Ok(()) } else { Err(tasks) }
        },
    )
    .await;
    let mut onprem = crate::common::splai_command();
    let mut onprem = onprem
        .arg("--config")
        .arg(&up.config)
        .args([
            "--set",
            &policy_set,
            "--set",
            "executor.labels=[\"site=on-prem\"]",
            "executor",
            "--id",
            "onprem-1",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let job = wait_job(url, "secret-1", None, Duration::from_secs(30)).await;
    let _ = onprem.kill();
    let _ = onprem.wait();
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    let (_, tasks) = get(url, "/v1/jobs/secret-1/tasks", None).await.unwrap();
    assert_eq!(tasks["tasks"][0]["attempts"][0]["worker_id"], "onprem-1", "{tasks}");

    // Every decision is in the audit log: admission by the gateway, placement by the scheduler.
    let records = wait_until("the audited placement of secret-1", Duration::from_secs(10), async || {
        let (_, audit) = get(url, "/v1/admin/audit?action=policy.decision", None).await.unwrap();
        let records = audit["records"].as_array().cloned().unwrap_or_default();
        if records.iter().any(|r| r["actor"] == "scheduler" && r["subject"] == "secret-1") {
            Ok(records)
        } else {
            Err(audit)
        }
    })
    .await;
    let placement = records.iter().find(|r| r["actor"] == "scheduler" && r["subject"] == "secret-1").unwrap();
    assert!(placement["detail"].as_str().unwrap().contains("restricted-on-prem"), "{placement}");
    assert!(
        records.iter().any(|r| r["subject"] == "secret-1" && r["actor"] == "anonymous"),
        "admission recorded: {records:?}"
    );
}

/// A job's `timeout_s` is enforced (issue 16 item 7): at the deadline the job fails with
/// `deadline_exceeded` in its state, reason and event stream, and its running attempt is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_deadline_fails_the_job_and_stops_its_attempt() {
    let up = Up::start("", &[], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let slow = json!({"type": "explicit", "job_id": "deadline-1", "timeout_s": 1, "dag": {"tasks": [
        {"id": "nap", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 60000}}},
        {"id": "after", "kind": "aggregation", "parents": ["nap"]}]}});
    let (status, body) = post(url, "/v1/jobs", &slow, None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(url, "deadline-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Failed, "{job}");
    let reason = job["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("deadline_exceeded"), "{job}");
    // The job's stream ends with the same state and reason.
    let events = crate::common::read_stream(url, "deadline-1", Some("0")).await;
    let last = events.iter().rev().find(|e| e.1 == "job.status").expect("a job.status event");
    assert_eq!(crate::common::status_event_state(&last.2), Some(JobState::Failed), "{last:?}");
    assert!(last.2["reason"].as_str().unwrap_or("").starts_with("deadline_exceeded"), "{last:?}");
    let history = crate::common::task_history(url, "deadline-1", None).await;
    assert!(history.contains(&format!("after attempt 0 {}", TaskState::Cancelled)), "{history}");
    // The executor was told to stop the nap: its attempt ends long before its 60 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, tasks) = get(url, "/v1/jobs/deadline-1/tasks", None).await.unwrap();
        let nap = tasks["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == "nap").cloned().unwrap();
        if nap["attempts"].as_array().is_some_and(|a| a.iter().any(|a| !a["finished_at_ms"].is_null())) {
            break;
        }
        assert!(Instant::now() < deadline, "the running attempt was not stopped: {nap}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 16 item 8: a job for a model no live worker offers says why it waits — on the job
/// (`waiting`), its task, the SSE stream and `splai job` — and after
/// `scheduler.unschedulable_timeout_ms` fails with that reason instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_work_says_why_and_then_fails() {
    let up = Up::start("", &["scheduler.unschedulable_timeout_ms=4000"], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let job = json!({"type": "chat", "job_id": "nowhere-1", "model": "gpt-9", "input": {"prompt": "hi"}});
    let (status, body) = post(url, "/v1/jobs", &job, None).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let (_, job) = get(url, "/v1/jobs/nowhere-1", None).await.unwrap();
        if let Some(w) = job["waiting"].as_array().and_then(|w| w.first()).cloned() {
            break w;
        }
        assert!(
            job_state(&job) == JobState::Queued && Instant::now() < deadline,
            "no reason to wait was given: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = waiting["reason"].as_str().unwrap();
    assert!(reason.starts_with("no live worker offers model `gpt-9`"), "{waiting}");
    let shown = crate::common::splai_command()
        .args(["--set", &format!("client.url={url}"), "job", "nowhere-1"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("waiting: task"), "`splai job` shows why: {shown}");

    let ended = wait_job(url, "nowhere-1", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&ended), JobState::Failed, "{ended}");
    let why = ended["reason"].as_str().unwrap_or("");
    assert!(why.contains("unschedulable: no live worker offers model `gpt-9` for 4 s"), "{ended}");
    let history = crate::common::task_history(url, "nowhere-1", None).await;
    assert!(
        history.contains(&format!(
            "{} worker=- reason=no live worker offers model `gpt-9`",
            TaskState::Runnable
        )),
        "SSE: {history}"
    );
}

/// Issue 16 item 2: a job is (tenant, id). Another tenant's id is no oracle — submitting it is
/// an ordinary 202, not 409 `job_exists` — and no collision: both tenants' jobs of one id run,
/// each tenant sees only its own (job, tasks, artifacts, stream), and the id stays the first
/// tenant's own after the second used it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_id_in_two_tenants_is_two_jobs() {
    let hash = crate::common::token_hash;
    let extra = format!(
        "[gateway.tokens.acme]\nsha256 = \"{}\"\ntenant = \"acme\"\nroles = [\"submitter\", \"reader\"]\n\
         [gateway.tokens.globex]\nsha256 = \"{}\"\ntenant = \"globex\"\nroles = [\"submitter\", \"reader\"]\n",
        hash("acme-token"),
        hash("globex-token")
    );
    let up = Up::start_auth(&extra, &[], &["--executors", "1"], "acme-token").await;
    let url = up.url.as_str();
    let job = |text: &str| {
        json!({"type": "explicit", "job_id": "shared-1", "dag": {"tasks": [{"id": "count", "kind": "tool_execution",
            "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": text}}}]}})
    };
    let (status, body) = post(url, "/v1/jobs", &job("acme has three"), Some("acme-token")).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(url, "/v1/jobs", &job("globex has these four"), Some("globex-token")).await;
    assert_eq!(status, 202, "another tenant's id tells nothing and is free to use: {body}");
    let (status, body) = post(url, "/v1/jobs", &job("again"), Some("acme-token")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("job_exists")),
        "a tenant's own id is taken: {body}"
    );

    let acme = wait_job(url, "shared-1", Some("acme-token"), Duration::from_secs(30)).await;
    let globex = wait_job(url, "shared-1", Some("globex-token"), Duration::from_secs(30)).await;
    assert_eq!((job_state(&acme), acme["tenant"].as_str()), (JobState::Succeeded, Some("acme")), "{acme}");
    assert_eq!(
        (job_state(&globex), globex["tenant"].as_str()),
        (JobState::Succeeded, Some("globex")),
        "{globex}"
    );
    assert_eq!(acme["result"]["count"], 3, "acme's result is acme's: {acme}");
    assert_eq!(globex["result"]["count"], 4, "globex's result is globex's: {globex}");
    for (token, tenant) in [("acme-token", "acme"), ("globex-token", "globex")] {
        let (_, artifacts) = get(url, "/v1/jobs/shared-1/artifacts", Some(token)).await.unwrap();
        let paths: Vec<&str> =
            artifacts["artifacts"].as_array().unwrap().iter().filter_map(|a| a["path"].as_str()).collect();
        assert!(
            !paths.is_empty() && paths.iter().all(|p| p.starts_with(&format!("{tenant}/"))),
            "{artifacts}"
        );
        let history = crate::common::task_history(url, "shared-1", Some(token)).await;
        assert_eq!(
            history.matches(&format!("count attempt 1 {}", TaskState::Succeeded)).count(),
            1,
            "{tenant}'s stream is its own: {history}"
        );
    }
}

/// Issue 16 item 6 end to end: the gateway anchors the audit chain's head on the log, and
/// `splai audit verify` — reading those anchors back from the log — names a tail deleted from the
/// database after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_a_tail_deleted_after_its_anchor() {
    let sets = ["gateway.audit_key=e2e-audit-key-0123456789abcdef", "gateway.audit_anchor_interval_ms=100"];
    let up = Up::start("", &sets, &["--executors", "1"]).await;
    let url = up.url.clone();
    for n in 0..3 {
        let job = json!({"type": "explicit", "job_id": format!("audited-{n}"), "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
        assert_eq!(post(&url, "/v1/jobs", &job, None).await.0, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let anchored = loop {
        let (_, v) = get(&url, "/v1/admin/audit/verify", None).await.unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["keyed"], true, "{v}");
        if v["anchored_seq"].as_i64().unwrap_or(0) >= 3 {
            break v["anchored_seq"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "no anchor reached the log: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let config = up.config.clone();
    let dir = up.kill();
    let db = dir.path().join("splai.sqlite");
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let deleted = std::process::Command::new(python)
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM audit_events WHERE seq > 1'); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(deleted.success());
    let mut verify = crate::common::splai_command();
    verify.arg("--config").arg(&config);
    for s in sets {
        verify.args(["--set", s]);
    }
    let out = verify.args(["audit", "verify"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("BROKEN at record 2") && said.contains("were deleted"), "{said}");
    assert!(anchored >= 3, "records 2..{anchored} were anchored");
}

/// Issue 16 item 5 through a real executor: a `shell` command sees neither the data directory
/// (read model, log, artifacts) nor the config file, by absolute path or by `../`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_command_sees_no_data_directory_and_no_config() {
    let up = Up::start("", &["executor.shell_tool=true"], &["--executors", "1"]).await;
    let url = up.url.as_str();
    let dir = up.dir.as_ref().unwrap().path().display().to_string();
    let private = [
        format!("{dir}/splai.sqlite"),
        format!("{dir}/log.sqlite"),
        format!("{dir}/artifacts"),
        up.config.display().to_string(),
        format!("../../../../../../..{dir}/log.sqlite"),
    ];
    let command = format!(
        "for p in {}; do if [ -e \"$p\" ]; then echo \"SEEN $p\"; fi; done; echo checked",
        private.join(" ")
    );
    let job = json!({"type": "explicit", "job_id": "peek", "dag": {"tasks": [
        {"id": "peek", "kind": "tool_execution", "requirements": {"tools": ["shell"]},
         "inputs": {"tool": {"literal": "shell"}, "command": {"literal": command}}}]}});
    assert_eq!(post(url, "/v1/jobs", &job, None).await.0, 202);
    let done = wait_job(url, "peek", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&done), JobState::Succeeded, "{done}");
    let out: Value =
        reqwest::get(format!("{url}/v1/jobs/peek/artifacts/peek/1")).await.unwrap().json().await.unwrap();
    let stdout = out["stdout"].as_str().unwrap_or_default();
    assert!(stdout.contains("checked"), "the command ran: {out}");
    assert!(!stdout.contains("SEEN"), "the sandbox showed a private path: {stdout}");
}

/// Light work (tools, aggregations) runs from each executor's pool of its own: with every
/// ordinary slot held by a long `shell` command, a fan-out of tool and aggregation tasks still
/// runs to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_tasks_run_while_every_slot_is_busy() {
    let up = Up::start(
        "",
        &["executor.shell_tool=true", "executor.slots=1", "executor.light_slots=4"],
        &["--executors", "1"],
    )
    .await;
    let url = up.url.as_str();
    let busy = json!({"type": "explicit", "job_id": "busy", "dag": {"tasks": [
        {"id": "nap", "kind": "tool_execution", "requirements": {"tools": ["shell"]},
         "inputs": {"tool": {"literal": "shell"}, "command": {"literal": "sleep 60"}}}]}});
    assert_eq!(post(url, "/v1/jobs", &busy, None).await.0, 202);
    wait_until("the shell command to hold the executor's one slot", Duration::from_secs(30), async || {
        match tasks_in(url, "busy", None, TaskState::Running).await {
            1 => Ok(()),
            n => Err(format!("{n} running")),
        }
    })
    .await;
    let mut tasks = vec![json!({"id": "split", "kind": "tool_execution",
        "inputs": {"tool": {"literal": "split_lines"}, "text": {"literal": "a\nb\nc\nd\ne\nf"}, "lines_per_chunk": {"literal": 1}}})];
    for i in 0..6 {
        tasks.push(json!({"id": format!("m{i}"), "kind": "aggregation", "parents": ["split"],
            "inputs": {"part": {"output": {"task": "split", "pointer": format!("/chunks/{i}")}}}}));
    }
    tasks.push(
        json!({"id": "reduce", "kind": "aggregation", "parents": ["m0", "m1", "m2", "m3", "m4", "m5"]}),
    );
    let fanout = json!({"type": "explicit", "job_id": "plumbing", "dag": {"tasks": tasks}});
    let (status, body) = post(url, "/v1/jobs", &fanout, None).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(url, "plumbing", None, Duration::from_secs(30)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(
        tasks_in(url, "busy", None, TaskState::Running).await,
        1,
        "the shell command still holds its slot"
    );
    let resp = reqwest::Client::new().delete(format!("{url}/v1/jobs/busy")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
}
