//! Distributed mode: `splai gateway`, `splai scheduler` and two `splai executor` processes over
//! Kafka (tansu), PostgreSQL and S3 (SeaweedFS), configured by a file. A real `batch_analysis` job
//! with fan-out runs on the real models while the scheduler is SIGKILLed and restarted mid-job; it
//! still succeeds, no succeeded task runs twice, lineage is intact and artifacts are readable
//! through the API. Then a job produced straight to the `jobs` topic by an ordinary Kafka client
//! (the `confluent-kafka` Python package) runs and is visible through the API.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Proc, get, job_state, post, splai, succeeded_attempts, wait_job};
use serde_json::{Value, json};
use splai_events::{JobState, TaskState};
use splai_store::audit::AuditRecord;

pub(crate) fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
                "{name} not set (run scripts/test)"
            );
            eprintln!("skipped: {name} not set (run scripts/test)");
            None
        }
    }
}

pub(crate) const TOKEN: &str = "dist-token";

/// gateway + scheduler + two executors as processes over Kafka, a fresh PostgreSQL database and S3.
pub(crate) struct Cluster {
    pub(crate) url: String,
    pub(crate) run: String,
    brokers: String,
    pub(crate) config: std::path::PathBuf,
    db_url: String,
    pub(crate) scheduler: Proc,
    _rest: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(extra_executor: &str) -> Option<Cluster> {
        Self::start_with("", extra_executor).await
    }

    /// [`Cluster::start`] with more `[scheduler]` keys.
    pub(crate) async fn start_with(extra_scheduler: &str, extra_executor: &str) -> Option<Cluster> {
        let brokers = env("SPLAI_TEST_KAFKA_BROKERS")?;
        Self::start_on(&brokers, &[], extra_scheduler, extra_executor).await
    }

    /// [`Cluster::start_with`] on the broker `brokers`, its `jobs` topic created first with these
    /// topic configs (e.g. a retention).
    pub(crate) async fn start_on(
        brokers: &str,
        jobs_topic: &[(&str, &str)],
        extra_scheduler: &str,
        extra_executor: &str,
    ) -> Option<Cluster> {
        let brokers = brokers.to_string();
        let (Some(pg), Some(s3), Some(bucket)) =
            (env("SPLAI_TEST_POSTGRES_URL"), env("SPLAI_TEST_S3_ENDPOINT"), env("SPLAI_TEST_S3_BUCKET"))
        else {
            return None;
        };
        let run = format!("d{}x{}", std::process::id(), rand_suffix());
        if !jobs_topic.is_empty() {
            create_topic(&brokers, &format!("{run}.jobs"), PARTITIONS, jobs_topic).await;
        }
        // A database of its own, so the read model starts empty.
        let db_url = crate::common::create_database(&pg, &run);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("splai.toml");
        let services = crate::common::services_config(
            &run,
            PARTITIONS,
            &brokers,
            &db_url,
            &s3,
            &bucket,
            ("dist", TOKEN),
        );
        std::fs::write(
            &config,
            format!(
                r#"{services}
[scheduler]
tick_ms = 20
heartbeat_ttl_ms = 3000
retry_base_ms = 100
retry_cap_ms = 400
{extra_scheduler}
[executor]
slots = 1
heartbeat_interval_ms = 500
model_dir = "{models}"
{extra_executor}
"#,
                models = splai_executor::test_models::models_dir().display()
            ),
        )
        .unwrap();
        let stack = crate::common::start_processes(&config, &run, 2, Some(TOKEN)).await;
        let mut rest = stack.executors;
        rest.push(stack.gateway);
        Some(Cluster {
            url: stack.url,
            run,
            brokers,
            config,
            db_url,
            scheduler: stack.scheduler,
            _rest: rest,
            _dir: dir,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_over_kafka_postgres_and_s3() {
    if !crate::common::models_present() {
        return;
    }
    let Some(mut cluster) = Cluster::start("").await else { return };
    let (url, run, brokers, config) =
        (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone(), cluster.config.clone());
    // A real batch_analysis: 3 chunks → 3 inference tasks → reduce → summary.
    let tickets: String = std::fs::read_to_string("examples/support-tickets.txt")
        .unwrap()
        .lines()
        .take(12)
        .collect::<Vec<_>>()
        .join("\n");
    let request = json!({"type": "batch_analysis", "job_id": format!("{run}-batch"),
        "input": {"text": tickets, "chunk_lines": 4, "max_tokens": 24,
                  "question": "Name the main problem in these tickets in one short sentence."}});
    let (status, accepted) = post(&url, "/v1/jobs", &request, Some(TOKEN)).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["job_id"].as_str().unwrap().to_string();

    // Kill -9 the scheduler once the first inference task has succeeded, then start another.
    crate::common::wait_until("two tasks to succeed", Duration::from_secs(240), async || {
        let done = crate::common::tasks_in(&url, &job_id, Some(TOKEN), TaskState::Succeeded).await;
        if done >= 2 { Ok(()) } else { Err(format!("{done} succeeded")) }
    })
    .await;
    cluster.scheduler.0.kill().unwrap();
    cluster.scheduler.0.wait().unwrap();
    let _scheduler2 = splai(&config, &["scheduler"], false);

    let job = wait_job(&url, &job_id, Some(TOKEN), Duration::from_secs(300)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(job["tasks_total"], 6, "split + 3 map + reduce + summary");
    let text = job["result"]["text"].as_str().unwrap_or_default();
    assert!(text.split_whitespace().count() >= 3, "real model output: {}", job["result"]);

    let (_, tasks) = get(&url, &format!("/v1/jobs/{job_id}/tasks?limit=100"), Some(TOKEN)).await.unwrap();
    let tasks = tasks["tasks"].as_array().unwrap().clone();
    for t in &tasks {
        let wins = succeeded_attempts(t);
        assert_eq!(wins, 1, "a succeeded task ran exactly once: {t}");
    }
    let (_, lineage) = get(&url, &format!("/v1/jobs/{job_id}/lineage"), Some(TOKEN)).await.unwrap();
    let node =
        |id: &str| lineage["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == id).unwrap().clone();
    let mut maps: Vec<Value> = (0..3).map(|i| node(&format!("map-{i}"))["artifact"].clone()).collect();
    let mut reduce_inputs = node("reduce")["inputs"].as_array().unwrap().clone();
    maps.sort_by_key(|v| v.to_string());
    reduce_inputs.sort_by_key(|v| v.to_string());
    assert_eq!(reduce_inputs, maps, "reduce read every map output");
    assert_eq!(node("summary")["inputs"], json!([node("reduce")["artifact"]]));
    let summary_attempt = node("summary")["attempt"].as_i64().unwrap();
    let (status, content) =
        get(&url, &format!("/v1/jobs/{job_id}/artifacts/summary/{summary_attempt}"), Some(TOKEN))
            .await
            .unwrap();
    assert_eq!(status, 200);
    assert_eq!(content["text"], job["result"]["text"], "the artifact on S3 is the result");

    // An ordinary Kafka client produces jobs with an API token header and reads the outcomes; the
    // same job without a token, or with the token of another tenant, is rejected with the reason.
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let kafka_job = format!("{run}-from-kafka");
    // The states a `job_state_changed` ends a job in, by their wire names, for the consumer.
    let ended =
        [JobState::Succeeded, JobState::Failed, JobState::Cancelled].map(|s| format!("\"{s}\"")).join(", ");
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{brokers}"}})
def submit(job_id, tenant, headers):
    envelope = {{"v": 1, "id": job_id, "ts_ms": int(time.time() * 1000), "tenant": tenant,
      "kind": "job_request",
      "body": {{"type": "explicit", "job_id": job_id, "dag": {{"tasks": [
        {{"id": "count", "kind": "tool_execution", "inputs": {{"tool": {{"literal": "regex"}}, "pattern": {{"literal": "\\w+"}}, "text": {{"literal": "produced by confluent-kafka"}}}}}}]}}}}}}
    p.produce("{run}.jobs", key=job_id, value=json.dumps(envelope), headers=headers)
submit("{kafka_job}", "acme", [("authorization", b"Bearer {token}")])
submit("{kafka_job}-anonymous", "acme", None)
submit("{kafka_job}-other-tenant", "globex", [("authorization", b"Bearer {token}")])
assert p.flush(10) == 0
# A plain consumer reads the outcomes from job-events.
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{brokers}", "group.id": "{run}-py-outcome", "auto.offset.reset": "earliest",
               "session.timeout.ms": 6000}})
c.subscribe(["{run}.job-events"])
wanted = {{"{kafka_job}", "{kafka_job}-anonymous", "{kafka_job}-other-tenant"}}
deadline = time.time() + 90
while wanted and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    e = json.loads(m.value())
    b = e["body"]
    if b.get("job_id") not in wanted:
        continue
    if e["kind"] == "job_state_changed" and b["state"] in ({ended}):
        print("outcome", b["job_id"], b["state"])
        wanted.discard(b["job_id"])
    elif e["kind"] == "job_rejected":
        print("rejected", b["job_id"], b["code"], b["reason"])
        wanted.discard(b["job_id"])
c.close()
"#,
        token = TOKEN
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("No module named 'confluent_kafka'")
    {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "confluent-kafka missing: set SPLAI_TEST_PYTHON (scripts/test does)"
        );
        eprintln!("skipped the Kafka-client part: confluent-kafka is not installed");
        return;
    }
    assert!(out.status.success(), "producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("outcome {kafka_job} {}", JobState::Succeeded)),
        "a plain consumer read the outcome: {said}"
    );
    assert!(
        said.contains(&format!(
            "rejected {kafka_job}-anonymous unauthenticated refused at intake: no `authorization"
        )),
        "a job without a token is refused with the reason: {said}"
    );
    assert!(
        said.contains(&format!("rejected {kafka_job}-other-tenant forbidden refused at intake: token `dist` belongs to tenant `acme`")),
        "a token of another tenant is refused: {said}"
    );
    let job = wait_job(&url, &kafka_job, Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    assert_eq!(job["result"]["count"], 4, "{job}");

    // The documented Python example: a record built from the types generated from the contract's
    // JSON Schema, produced to `jobs`, followed on `job-events` through the generated union.
    let typed_job = format!("{run}-typed");
    let out = Command::new(&python)
        .args(["examples/python/kafka_job.py", "--brokers", &brokers, "--prefix", &format!("{run}.")])
        .args(["--tenant", "acme", "--token", TOKEN, "--job-id", &typed_job])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said.trim(), "succeeded");
    let job = wait_job(&url, &typed_job, Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job["result"]["count"], 5, "{job}");
}

/// Partitions of a [`Cluster`]'s topics.
const PARTITIONS: u32 = 2;

/// Create `topic` with `configs`, as an operator would before the stack's first start (SPLAI
/// leaves an existing topic alone).
async fn create_topic(brokers: &str, topic: &str, partitions: u32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let mut new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new = new.set(key, value);
    }
    let created = admin.create_topics([&new], &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(Result::is_ok), "creating {topic}: {created:?}");
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000
}

/// Issue 16 item 1 on tansu: a control record acts only on its own tenant's job. Tenant globex's
/// producer, with its own valid token, cannot cancel, requeue or archive acme's job (each is
/// answered on `dead-letter` as if there were no such job); acme's own `cancel_job` cancels it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_records_from_another_tenant_do_not_act_on_a_job() {
    const OTHER: &str = "globex-token";
    let other = crate::common::token_table("globex", OTHER, "globex", &["submitter", "operator"]);
    let Some(cluster) = Cluster::start(&other).await else { return };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    let job_id = format!("{run}-a-secret-1");
    let long = json!({"type": "explicit", "job_id": job_id, "dag": {"tasks": [
        {"id": "wait", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 60000}}}]}});
    let (status, body) = post(&url, "/v1/jobs", &long, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Not found until the read model has projected the job.
        let (status, job) = get(&url, &format!("/v1/jobs/{job_id}"), Some(TOKEN)).await.unwrap();
        if status == 200 && job_state(&job) == JobState::Running {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(&url, &format!("/v1/jobs/{job_id}"), Some(OTHER)).await.unwrap().0,
        404,
        "globex cannot see it"
    );

    // globex produces a cancel, a requeue and an archive for acme's job (same key: same
    // partition, in this order), and waits for the three refusals.
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer, Consumer
p = Producer({{"bootstrap.servers": "{brokers}"}})
def control(kind, body, tenant, token, n):
    envelope = {{"v": 1, "id": "{run}-%s-%s" % (kind, n), "ts_ms": int(time.time() * 1000), "tenant": tenant,
                 "kind": kind, "body": body}}
    p.produce("{run}.control", key="{job_id}", value=json.dumps(envelope),
              headers=[("authorization", ("Bearer " + token).encode())])
control("cancel_job", {{"job_id": "{job_id}", "reason": "not yours"}}, "globex", "{other}", 1)
control("requeue_dead_letter", {{"job_id": "{job_id}"}}, "globex", "{other}", 2)
control("archive_job", {{"job_id": "{job_id}"}}, "globex", "{other}", 3)
assert p.flush(10) == 0
c = Consumer({{"bootstrap.servers": "{brokers}", "group.id": "{run}-py-dl", "auto.offset.reset": "earliest",
               "session.timeout.ms": 6000}})
c.subscribe(["{run}.dead-letter"])
deadline = time.time() + 60
refused = 0
while time.time() < deadline and refused < 3:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    e = json.loads(m.value())
    if e["kind"] == "dead_letter" and "{job_id}" in e["body"]["reason"]:
        print("refused", e["tenant"], e["body"]["reason"])
        refused += 1
c.close()
"#,
        other = OTHER
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("No module named 'confluent_kafka'")
    {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "confluent-kafka missing");
        return;
    }
    assert!(out.status.success(), "producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("refused globex cancel_job: tenant `globex` has no job `{job_id}` (yet)")),
        "globex's cancel is answered as if there were no such job: {said}"
    );
    assert!(
        said.contains(&format!("refused globex requeue_dead_letter: tenant `globex` has no job `{job_id}`")),
        "globex's requeue is refused with the reason: {said}"
    );
    assert!(
        said.contains(&format!("refused globex archive_job: tenant `globex` has no job `{job_id}`")),
        "globex's archive is refused with the reason: {said}"
    );
    let (_, job) = get(&url, &format!("/v1/jobs/{job_id}"), Some(TOKEN)).await.unwrap();
    assert_eq!(
        job_state(&job),
        JobState::Running,
        "globex's cancel and archive did not act on acme's job: {job}"
    );

    // acme's own cancel, produced to Kafka with acme's token, does.
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{brokers}"}})
envelope = {{"v": 1, "id": "{run}-own-cancel", "ts_ms": int(time.time() * 1000), "tenant": "acme",
             "kind": "cancel_job", "body": {{"job_id": "{job_id}", "reason": "mine"}}}}
p.produce("{run}.control", key="{job_id}", value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
assert p.flush(10) == 0
"#
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let job = wait_job(&url, &job_id, Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job_state(&job), JobState::Cancelled, "{job}");

    // And acme's own archive archives it.
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{brokers}"}})
envelope = {{"v": 1, "id": "{run}-own-archive", "ts_ms": int(time.time() * 1000), "tenant": "acme",
             "kind": "archive_job", "body": {{"job_id": "{job_id}"}}}}
p.produce("{run}.control", key="{job_id}", value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
assert p.flush(10) == 0
"#
    );
    let out = Command::new(&python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    while job_state(&get(&url, &format!("/v1/jobs/{job_id}"), Some(TOKEN)).await.unwrap().1)
        != JobState::Archived
    {
        assert!(Instant::now() < deadline, "acme's archive did not act");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run a Python script that uses `confluent-kafka`; its stdout, or `None` (skipped) when the
/// package is missing and services are not required.
/// A Python script (confluent-kafka) that reads `topic` from its beginning and prints, as JSON,
/// `shown` (an expression of the record `m` and its decoded envelope `e`) for the first record
/// where `found` holds (within 60 s).
fn first_record(brokers: &str, topic: &str, found: &str, shown: &str) -> String {
    format!(
        r#"
import json, time, uuid
from confluent_kafka import Consumer
c = Consumer({{"bootstrap.servers": "{brokers}", "group.id": "py-" + uuid.uuid4().hex, "auto.offset.reset": "earliest",
               "session.timeout.ms": 6000}})
c.subscribe(["{topic}"])
deadline = time.time() + 60
while time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    e = json.loads(m.value())
    if {found}:
        print(json.dumps({shown}))
        break
c.close()
"#
    )
}

fn kafka_client(script: &str) -> Option<String> {
    let python = std::env::var("SPLAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).args(["-c", script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'confluent_kafka'") {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "confluent-kafka missing");
        return None;
    }
    assert!(out.status.success(), "the Kafka client failed: {stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Issue 16 item 10 on tansu + PostgreSQL: a producer that retries a `job_request` with the same
/// (tenant, idempotency key) under a new envelope id gets an answer on `job-events` naming the
/// original job, and a record the read model can never store (a NUL byte, which PostgreSQL's
/// text refuses) is dead-lettered with the reason while projection goes on: both used to freeze
/// every tenant's read model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_is_answered_and_no_record_stalls_the_read_model() {
    let Some(cluster) = Cluster::start("").await else { return };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer, Consumer
p = Producer({{"bootstrap.servers": "{brokers}"}})
def submit(envelope_id, key, model):
    body = {{"type": "explicit", "idempotency_key": key, "dag": {{"tasks": [
        {{"id": "count", "kind": "tool_execution", "inputs": {{"tool": {{"literal": "regex"}}, "pattern": {{"literal": "\\w+"}}, "text": {{"literal": "one two"}}}}}}]}}}}
    if model:
        body["model"] = model
    envelope = {{"v": 1, "id": envelope_id, "ts_ms": int(time.time() * 1000), "tenant": "acme", "kind": "job_request", "body": body}}
    p.produce("{run}.jobs", key=envelope_id, value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
    assert p.flush(10) == 0
submit("{run}-first", "order-7", None)
submit("{run}-retry", "order-7", None)
submit("{run}-nul", "order-8", "bad\u0000model")
"#
    ) + &first_record(
        &brokers,
        &format!("{run}.job-events"),
        &format!(r#"e["kind"] == "job_rejected" and e["body"]["job_id"] == "{run}-retry""#),
        r#"[e["body"]["code"], e["body"]["duplicate_of"]]"#,
    );
    let Some(said) = kafka_client(&script) else { return };
    assert!(
        said.contains(&format!(r#"["duplicate_idempotency_key", "{run}-first"]"#)),
        "the retry is answered with the original job's id: {said}"
    );
    let first = wait_job(&url, &format!("{run}-first"), Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job_state(&first), JobState::Succeeded, "{first}");
    let (_, retry) = get(&url, &format!("/v1/jobs/{run}-retry"), Some(TOKEN)).await.unwrap();
    assert_eq!(job_state(&retry), JobState::Rejected, "{retry}");
    assert!(retry["reason"].as_str().unwrap_or("").contains(&format!("`{run}-first`")), "{retry}");

    // The read model goes on: the refused record is a dead letter, and a later REST job runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let letter = loop {
        let (_, letters) = get(&url, "/v1/admin/dead-letter", Some(TOKEN)).await.unwrap();
        let found = letters["dead_letters"].as_array().and_then(|rows| {
            rows.iter().find(|d| d["reason"].as_str().is_some_and(|r| r.contains("cannot project"))).cloned()
        });
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no dead letter for the refused record: {letters}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(letter["reason"].as_str().unwrap().contains("job_request"), "{letter}");
    let later = json!({"type": "explicit", "job_id": format!("{run}-later"), "dag": {"tasks": [
        {"id": "count", "kind": "tool_execution", "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "a b c"}}}]}});
    let (status, body) = post(&url, "/v1/jobs", &later, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&url, &format!("{run}-later"), Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
}

/// Issue 16 item 10: a record the database does not refuse outright, but that fails every time
/// while the database answers (here a trigger raising a generic error for one job), is
/// dead-lettered after a few tries instead of being retried forever, and projection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_keeps_failing_while_the_database_answers_is_set_aside() {
    let Some(cluster) = Cluster::start("").await else { return };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    let trigger = r#"
CREATE FUNCTION poison() RETURNS trigger AS $$
BEGIN
  IF NEW.job_id LIKE '%-poison' THEN RAISE EXCEPTION 'poisoned by the test' USING ERRCODE = 'P0001'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER poison BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION poison();"#;
    let status = std::process::Command::new("psql").args([&cluster.db_url, "-qc", trigger]).status().unwrap();
    assert!(status.success(), "installing the trigger");
    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "{brokers}"}})
body = {{"type": "explicit", "job_id": "{run}-poison", "dag": {{"tasks": [
    {{"id": "count", "kind": "tool_execution", "inputs": {{"tool": {{"literal": "regex"}}, "pattern": {{"literal": "\\w+"}}, "text": {{"literal": "one"}}}}}}]}}}}
envelope = {{"v": 1, "id": "{run}-poison", "ts_ms": int(time.time() * 1000), "tenant": "acme", "kind": "job_request", "body": body}}
p.produce("{run}.jobs", key="{run}-poison", value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
assert p.flush(10) == 0
print("produced")
"#
    );
    let Some(said) = kafka_client(&script) else { return };
    assert!(said.contains("produced"), "{said}");
    let letter = crate::common::wait_until(
        "a dead letter for the record that keeps failing",
        Duration::from_secs(60),
        async || {
            let (_, letters) =
                get(&url, "/v1/admin/dead-letter", Some(TOKEN)).await.ok_or("no answer".to_string())?;
            letters["dead_letters"]
                .as_array()
                .and_then(|rows| {
                    rows.iter()
                        .find(|d| {
                            d["reason"].as_str().is_some_and(|r| {
                                r.contains("poisoned by the test") && r.contains("job_request")
                            })
                        })
                        .cloned()
                })
                .ok_or(letters.to_string())
        },
    )
    .await;
    assert!(
        letter["reason"].as_str().unwrap().contains("cannot project this `job_request` record"),
        "{letter}"
    );
    // Projection went on: a later job is read back to its end.
    let later = json!({"type": "explicit", "job_id": format!("{run}-after"), "dag": {"tasks": [
        {"id": "count", "kind": "tool_execution", "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "a b"}}}]}});
    let (status, body) = post(&url, "/v1/jobs", &later, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&url, &format!("{run}-after"), Some(TOKEN), Duration::from_secs(60)).await;
    assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
}

/// Issue 16 item 4 on tansu + PostgreSQL: a tenant's `max_active_jobs` holds for concurrent REST
/// submits (the count and the insert are one atomic step) and for a job its producer sends
/// straight to Kafka (refused by the scheduler with REST's code, on `job-events`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_job_quota_holds_for_concurrent_submits_and_for_a_producer() {
    let Some(cluster) = Cluster::start("\n[gateway.tenants.acme]\nmax_active_jobs = 2\n").await else {
        return;
    };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    let long = |n: usize| {
        json!({"type": "explicit", "job_id": format!("{run}-long-{n}"), "dag": {"tasks": [
            {"id": "nap", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 60000}}}]}})
    };
    let submits: Vec<_> = (0..8)
        .map(|n| {
            let (url, body) = (url.clone(), long(n));
            tokio::spawn(async move { post(&url, "/v1/jobs", &body, Some(TOKEN)).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for s in submits {
        let (status, body) = s.await.unwrap();
        if status == 429 {
            assert_eq!(body["code"], "quota_exceeded", "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [202, 202, 429, 429, 429, 429, 429, 429], "exactly the quota is admitted");

    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer, Consumer
p = Producer({{"bootstrap.servers": "{brokers}"}})
body = {{"type": "explicit", "job_id": "{run}-produced", "dag": {{"tasks": [{{"id": "a", "kind": "aggregation"}}]}}}}
envelope = {{"v": 1, "id": "{run}-produced", "ts_ms": int(time.time() * 1000), "tenant": "acme", "kind": "job_request", "body": body}}
p.produce("{run}.jobs", key="{run}-produced", value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
assert p.flush(10) == 0
"#
    ) + &first_record(
        &brokers,
        &format!("{run}.job-events"),
        &format!(
            r#"e["body"].get("job_id") == "{run}-produced" and e["kind"] in ("job_rejected", "job_admitted")"#
        ),
        r#"[e["kind"], e["body"].get("code"), e["body"].get("reason")]"#,
    );
    let Some(said) = kafka_client(&script) else { return };
    assert!(said.starts_with(r#"["job_rejected", "quota_exceeded", "tenant `acme` has 2 jobs"#), "{said}");
}

/// Issue 16 item 6 on tansu + PostgreSQL: the gateway writes the audit chain's head to the
/// `control` topic (signed), and verification reads those anchors back from Kafka.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_is_anchored_on_kafka() {
    const ADMIN: &str = "auditor-token";
    let admin = crate::common::token_table("auditor", ADMIN, "acme", &["admin"]);
    let Some(cluster) = Cluster::start(&admin).await else { return };
    let (url, run) = (cluster.url.clone(), cluster.run.clone());
    let job = json!({"type": "explicit", "job_id": format!("{run}-audited"), "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    assert_eq!(post(&url, "/v1/jobs", &job, Some(TOKEN)).await.0, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = get(&url, "/v1/admin/audit/verify", Some(ADMIN)).await.unwrap();
        assert_eq!((status, v["ok"].as_bool(), v["keyed"].as_bool()), (200, Some(true), Some(true)), "{v}");
        if v["anchors_checked"].as_u64().unwrap_or(0) >= 1 && v["anchored_seq"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no anchor read back from Kafka: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Issue 16 item 4 (rates) on tansu + PostgreSQL: a tenant's submit rate holds for jobs its
/// producer sends straight to Kafka as it does for REST. With burst 2 and a rate so low that no
/// token comes back during the test (one per 1000 s), REST admits 2 and refuses the third with
/// 429; five `job_request`s produced at once with the tenant's token (the scheduler keeps a
/// bucket of its own for them) are answered on `job-events`: 2 `job_admitted`, 3 `job_rejected`
/// with the 429's code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_submit_rate_is_held_like_rests() {
    let rate = "\n[gateway.tenants.acme]\nsubmit_rate_per_s = 0.001\nsubmit_burst = 2\n";
    let Some(cluster) = Cluster::start(rate).await else { return };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    let quick = |id: String| json!({"type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    let mut statuses = Vec::new();
    let mut refusal = None;
    for n in 0..3 {
        let (status, body) = post(&url, "/v1/jobs", &quick(format!("{run}-rest-{n}")), Some(TOKEN)).await;
        statuses.push(status);
        if status == 429 {
            refusal = Some(body);
        }
    }
    assert_eq!(statuses, [202, 202, 429], "REST: the burst, then the rate");
    let refusal = refusal.unwrap();
    assert_eq!(refusal["code"], "rate_limited", "{refusal}");
    // Produced at once, whether the scheduler is live yet or still catching up: a request it
    // replays with no decision on the log is decided when it goes live, under the same limits.

    let script = format!(
        r#"
import json, time
from confluent_kafka import Producer, Consumer
p = Producer({{"bootstrap.servers": "{brokers}"}})
ids = ["{run}-produced-%d" % n for n in range(5)]
for job_id in ids:
    body = {{"type": "explicit", "job_id": job_id, "dag": {{"tasks": [{{"id": "a", "kind": "aggregation"}}]}}}}
    envelope = {{"v": 1, "id": job_id, "ts_ms": int(time.time() * 1000), "tenant": "acme", "kind": "job_request", "body": body}}
    p.produce("{run}.jobs", key=job_id, value=json.dumps(envelope), headers=[("authorization", b"Bearer {TOKEN}")])
assert p.flush(10) == 0
c = Consumer({{"bootstrap.servers": "{brokers}", "group.id": "{run}-py-rate", "auto.offset.reset": "earliest",
               "session.timeout.ms": 6000}})
c.subscribe(["{run}.job-events"])
wanted = set(ids)
deadline = time.time() + 60
while wanted and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    e = json.loads(m.value())
    b = e["body"]
    if b.get("job_id") in wanted and e["kind"] in ("job_rejected", "job_admitted"):
        print(json.dumps({{"kind": e["kind"], "job_id": b["job_id"], "code": b.get("code"), "reason": b.get("reason")}}))
        wanted.discard(b["job_id"])
c.close()
"#
    );
    let Some(said) = kafka_client(&script) else { return };
    let answers: Vec<Value> = said.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), 5, "every produced job is answered: {said}");
    let admitted: Vec<&Value> = answers.iter().filter(|a| a["kind"] == "job_admitted").collect();
    let rejected: Vec<&Value> = answers.iter().filter(|a| a["kind"] == "job_rejected").collect();
    assert_eq!((admitted.len(), rejected.len()), (2, 3), "the burst is admitted, the rest refused: {said}");
    for r in &rejected {
        assert_eq!(
            (&r["code"], &r["reason"]),
            (&refusal["code"], &refusal["message"]),
            "refused with REST's 429 code and message: {said}"
        );
    }
    for a in admitted {
        let job = wait_job(&url, a["job_id"].as_str().unwrap(), Some(TOKEN), Duration::from_secs(60)).await;
        assert_eq!(job_state(&job), JobState::Succeeded, "{job}");
    }
}

/// Issue 16 item 1 on tansu + PostgreSQL + S3: a job id belongs to its tenant. Tenants acme and
/// globex both submit job `{run}-shared` over REST (both 202, no 409) with different inputs; each
/// reads back its own job, its own result and only its own artifacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_id_in_two_tenants_is_two_jobs_on_kafka_and_postgres() {
    const OTHER: &str = "globex-token";
    let other = crate::common::token_table("globex", OTHER, "globex", &["submitter", "reader"]);
    let Some(cluster) = Cluster::start(&other).await else { return };
    let (url, run) = (cluster.url.clone(), cluster.run.clone());
    let job_id = format!("{run}-shared");
    // acme counts 3 words, globex 5.
    let tenants = [("acme", TOKEN, "one two three", 3), ("globex", OTHER, "a b c d e", 5)];
    for (tenant, token, text, _) in tenants {
        let job = json!({"type": "explicit", "job_id": job_id, "dag": {"tasks": [
            {"id": "count", "kind": "tool_execution", "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": text}}}]}});
        let (status, body) = post(&url, "/v1/jobs", &job, Some(token)).await;
        assert_eq!((status, body["job_id"].as_str()), (202, Some(job_id.as_str())), "{tenant}: {body}");
    }
    for (tenant, token, _, words) in tenants {
        let job = wait_job(&url, &job_id, Some(token), Duration::from_secs(60)).await;
        assert_eq!(job_state(&job), JobState::Succeeded, "{tenant}: {job}");
        assert_eq!(job["result"]["count"], words, "{tenant} reads its own job: {job}");
        let (status, listed) = get(&url, &format!("/v1/jobs/{job_id}/artifacts"), Some(token)).await.unwrap();
        assert_eq!(status, 200, "{tenant}: {listed}");
        let artifacts = listed["artifacts"].as_array().unwrap();
        assert_eq!(artifacts.len(), 1, "{tenant} sees one artifact, its own: {listed}");
        let path = artifacts[0]["path"].as_str().unwrap();
        assert!(path.starts_with(&format!("{tenant}/{job_id}/")), "{tenant}: {listed}");
        let (status, content) =
            get(&url, &format!("/v1/jobs/{job_id}/artifacts/count/{}", artifacts[0]["attempt"]), Some(token))
                .await
                .unwrap();
        assert_eq!((status, &content["count"]), (200, &json!(words)), "{tenant}'s artifact: {content}");
        let (_, lineage) = get(&url, &format!("/v1/jobs/{job_id}/lineage"), Some(token)).await.unwrap();
        assert_eq!(lineage["tasks"][0]["artifact"], path, "{tenant}'s lineage: {lineage}");
    }
}

/// Issue 16 item 6 on tansu + PostgreSQL: once the log holds an anchor of the audit chain's head,
/// rewriting the chain in the database consistently, with the audit key (here: the head record,
/// acme's `job.submit`, made to name another job, its keyed hash recomputed), passes every
/// in-database check but not the anchor: `splai audit verify` exits 1 and it and the API name
/// the record and the anchored hash: "the chain was rewritten".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_a_rewritten_chain_against_anchors_on_kafka() {
    const ADMIN: &str = "auditor-token";
    let admin = crate::common::token_table("auditor", ADMIN, "acme", &["admin"]);
    let Some(cluster) = Cluster::start(&admin).await else { return };
    let (url, run, config) = (cluster.url.clone(), cluster.run.clone(), cluster.config.clone());
    let job_id = format!("{run}-audited");
    let job =
        json!({"type": "explicit", "job_id": job_id, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    assert_eq!(post(&url, "/v1/jobs", &job, Some(TOKEN)).await.0, 202);
    // `splai audit verify`: exit code, stdout, stderr. Unlike the API it adds no record to the
    // chain, so the chain stays at its head while we wait for the head's anchor.
    let verify = || {
        let out = crate::common::splai_command()
            .arg("--config")
            .arg(&config)
            .args(["audit", "verify"])
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let head = crate::common::wait_until(
        "an anchor of the chain's head on the log",
        Duration::from_secs(60),
        async || {
            let (code, said, stderr) = verify();
            // "audit chain OK: N records, K anchor(s) on the log checked (up to record M)"
            let numbers: Vec<i64> =
                said.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
            match (code, numbers.as_slice()) {
                (Some(0), [records, _, anchored])
                    if said.starts_with("audit chain OK") && records == anchored =>
                {
                    Ok(*records)
                }
                _ => Err(format!("exit {code:?}: {said}{stderr}")),
            }
        },
    )
    .await;
    let psql = |sql: &str| {
        let out = Command::new("psql").args([&cluster.db_url, "-AtXqc", sql]).output().unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let row: Value =
        serde_json::from_str(&psql(&format!("SELECT row_to_json(a) FROM audit_events a WHERE seq = {head}")))
            .unwrap();
    assert_eq!((&row["action"], &row["subject"]), (&json!("job.submit"), &json!(job_id)), "the head: {row}");
    let original = AuditRecord {
        seq: head,
        ts_ms: row["ts_ms"].as_i64().unwrap(),
        tenant: row["tenant"].as_str().unwrap().into(),
        actor: row["actor"].as_str().unwrap().into(),
        action: row["action"].as_str().unwrap().into(),
        subject: row["subject"].as_str().unwrap().into(),
        detail: row["detail"].as_str().unwrap().into(),
        prev_hash: row["prev_hash"].as_str().unwrap().into(),
        hash: row["hash"].as_str().unwrap().into(),
    };
    // Whoever rewrites the chain here holds the audit key (derived from the signing key).
    let settings = splai_config::Loader::new().file(Some(&config)).load().unwrap();
    let key = splai_gateway::audit::key(&settings.gateway);
    assert_eq!(original.expected_hash(&key), original.hash, "the test computes the chain's hashes");
    let rewritten = AuditRecord { subject: format!("{run}-innocent"), ..original.clone() };
    let updated = psql(&format!(
        "UPDATE audit_events SET subject = '{}', hash = '{}' WHERE seq = {head} AND hash = '{}'
           AND NOT EXISTS (SELECT 1 FROM audit_events WHERE seq > {head}) RETURNING seq",
        rewritten.subject,
        rewritten.expected_hash(&key),
        original.hash
    ));
    assert_eq!(updated.trim(), head.to_string(), "the head record was rewritten (and still the head)");

    let broken = format!("record {head}'s hash differs from the one the log anchored at ");
    let named = format!("({}): the chain was rewritten", original.hash);
    let (code, said, stderr) = verify();
    assert_eq!(code, Some(1), "{said}{stderr}");
    assert!(
        said.starts_with(&format!("audit chain BROKEN at record {head}: {broken}")) && said.contains(&named),
        "{said}{stderr}"
    );
    let (status, v) = get(&url, "/v1/admin/audit/verify", Some(ADMIN)).await.unwrap();
    assert_eq!((status, &v["ok"], &v["first_broken_seq"]), (200, &json!(false), &json!(head)), "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&broken) && reason.ends_with(&named), "{v}");
}

/// Issue 21 item 6 on tansu + PostgreSQL: the scheduler's `metrics` topic, read by a plain Kafka
/// consumer (confluent-kafka), carries each tenant's scope figures; the gateway's
/// `/v1/metrics/live` shows a caller only its own tenant's scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_stream_is_read_by_a_kafka_consumer_and_by_each_tenant() {
    const OTHER: &str = "globex-token";
    let other = crate::common::token_table("globex", OTHER, "globex", &["submitter", "reader"]);
    let Some(cluster) = Cluster::start(&other).await else { return };
    let (url, run, brokers) = (cluster.url.clone(), cluster.run.clone(), cluster.brokers.clone());
    for (token, id) in [(TOKEN, format!("{run}-acme")), (OTHER, format!("{run}-globex"))] {
        let job =
            json!({"type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
        assert_eq!(post(&url, "/v1/jobs", &job, Some(token)).await.0, 202);
        let done = wait_job(&url, &id, Some(token), Duration::from_secs(60)).await;
        assert_eq!(job_state(&done), JobState::Succeeded, "{done}");
    }
    let found = r#"e["kind"] == "scope_metrics" and m.key() == b"acme/-" and e["body"]["succeeded"] >= 1"#;
    let script = first_record(
        &brokers,
        &format!("{run}.metrics"),
        found,
        r#"{"tenant": e["tenant"], "body": e["body"]}"#,
    );
    let Some(said) = kafka_client(&script) else { return };
    let record: Value = serde_json::from_str(said.trim()).unwrap_or_else(|e| panic!("{e}: {said}"));
    assert_eq!(record["tenant"], "acme", "{record}");
    assert_eq!(
        (record["body"]["admitted"].as_u64(), record["body"]["window_ms"].as_u64()),
        (Some(1), Some(60_000))
    );
    assert!(record["body"]["run_ms"]["count"].as_u64() >= Some(1), "{record}");

    // Through the gateway (the read model keeps the newest record per key): a reader sees only
    // its own tenant's scopes; an operator (acme's token) every tenant's.
    for (token, tenants) in [(OTHER, vec!["globex"]), (TOKEN, vec!["acme", "globex"])] {
        let live = crate::common::wait_until(
            "the tenant's scope in the read model",
            Duration::from_secs(30),
            async || {
                let (status, v) =
                    get(&url, "/v1/metrics/live", Some(token)).await.ok_or("no answer".to_string())?;
                let found = v["scopes"].as_array().is_some_and(|s| {
                    s.iter().filter(|x| x["succeeded"].as_u64() >= Some(1)).count() == tenants.len()
                });
                if status == 200 && found { Ok(v) } else { Err(format!("{status} {v}")) }
            },
        )
        .await;
        let seen: Vec<&str> =
            live["scopes"].as_array().unwrap().iter().map(|s| s["tenant"].as_str().unwrap()).collect();
        assert_eq!(seen, tenants, "{live}");
        assert_eq!(live["cluster"]["live_workers"].as_u64(), Some(2), "two executors: {live}");
    }
}
