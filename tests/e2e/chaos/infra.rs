//! Infrastructure chaos on the distributed stack (gateway, scheduler and two executors as
//! processes) over a private Kafka broker — tansu on durable S3 storage (the suite's SeaweedFS),
//! so it can be SIGKILLed and restarted with its data — and a private PostgreSQL cluster that is
//! restarted with an immediate (crash) shutdown. Both happen while jobs run. Afterwards every job
//! has succeeded, no task has two successes with different results, every aggregation read its
//! parents' artifacts, and the records in the log reconcile with the read model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use splai_events::{Event, JobState, Topic};
use splai_ingest::log::{EventReader, EventWriter, open_log};

use crate::common::{self, get, job_state, post, start_processes};

const TOKEN: &str = "chaos-token";
const JOBS: usize = 8;
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !port_open(port) {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A throwaway PostgreSQL 15 cluster of this test's own (restarting the suite's would hurt the
/// tests running beside this one).
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    fn start() -> Option<Postgres> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        assert!(
            Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap().success()
        );
        let data = dir.path().join("data");
        let ok = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/initdb"),
                "-U",
                "postgres",
                "--auth=trust",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb");
        let pg = Postgres { dir, port };
        pg.ctl(&["start"]);
        Some(pg)
    }

    fn ctl(&self, action: &[&str]) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let ok = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl"), "-w", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &opts])
            .args(action)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl {action:?}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.ctl(&["-m", "immediate", "stop"]));
    }
}

/// tansu with its data on S3: killed and restarted with the same command, it keeps topics,
/// records and committed offsets.
struct Broker {
    child: Option<Child>,
    port: u16,
    cluster: String,
    s3: String,
    bucket: String,
    log: PathBuf,
}

impl Broker {
    fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &format!("s3://{}/", self.bucket), "--cluster-id", &self.cluster])
            .env("AWS_ENDPOINT", &self.s3)
            .env("AWS_ALLOW_HTTP", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu on PATH (scripts/services installs it)");
        self.child = Some(child);
        wait_port(self.port, "tansu");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Attempt timeout of the test's tasks (300 ms of work each). A record in flight when the broker
/// dies may be lost with it (an assignment or a report); the attempt's timeout is what recovers
/// it, and the default (300 s) is longer than the test waits.
const ATTEMPT_TIMEOUT_S: u32 = 10;

fn explicit_job(id: &str) -> Value {
    let sleep = |name: &str| {
        json!({"id": name, "kind": "tool_execution", "timeout_s": ATTEMPT_TIMEOUT_S,
        "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 300}}})
    };
    json!({"type": "explicit", "job_id": id, "max_retries": 5, "dag": {"tasks": [
        sleep("left"), sleep("right"),
        {"id": "join", "kind": "aggregation", "parents": ["left", "right"], "timeout_s": ATTEMPT_TIMEOUT_S, "inputs": {
            "mode": {"literal": "concat"},
            "part-0": {"output": {"task": "left"}}, "part-1": {"output": {"task": "right"}}}}]}})
}

/// Succeeded tasks across all jobs, per the API (0 while the API cannot answer).
async fn tasks_succeeded(url: &str, run: &str) -> i64 {
    match get(url, "/v1/jobs?limit=100", Some(TOKEN)).await {
        Some((200, body)) => body["jobs"]
            .as_array()
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j["job_id"].as_str().is_some_and(|id| id.starts_with(run)))
                    .map(|j| j["tasks_succeeded"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0),
        _ => 0,
    }
}

async fn wait_progress(url: &str, run: &str, at_least: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let done = tasks_succeeded(url, run).await;
        if done >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "only {done} tasks succeeded, wanted {at_least}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_postgres_restarts_mid_run() {
    let (Ok(s3), Ok(bucket)) =
        (std::env::var("SPLAI_TEST_S3_ENDPOINT"), std::env::var("SPLAI_TEST_S3_BUCKET"))
    else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "S3 (SeaweedFS) not configured");
        return;
    };
    let Some(pg) = Postgres::start() else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "PostgreSQL 15 missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = format!("c{}x{}", std::process::id(), Instant::now().elapsed().subsec_nanos() % 100_000);
    let mut broker = Broker {
        child: None,
        port: free_port(),
        cluster: format!("chaos-{run}"),
        s3: s3.clone(),
        bucket: bucket.clone(),
        log: dir.path().join("tansu.log"),
    };
    broker.start();
    let config = dir.path().join("splai.toml");
    let brokers = format!("127.0.0.1:{}", broker.port);
    let services = common::services_config(&run, 2, &brokers, &pg.url(), &s3, &bucket, ("chaos", TOKEN));
    std::fs::write(
        &config,
        format!(
            r#"{services}
[scheduler]
tick_ms = 20
heartbeat_ttl_ms = 10000
retry_base_ms = 200
retry_cap_ms = 1000
[executor]
slots = 1
heartbeat_interval_ms = 500
model_dir = "{dir}/models"
"#,
            dir = dir.path().display(),
        ),
    )
    .unwrap();
    let stack = start_processes(&config, &run, 2, Some(TOKEN)).await;
    let url = stack.url.clone();

    for i in 0..JOBS {
        let (status, body) = post(&url, "/v1/jobs", &explicit_job(&format!("{run}-{i}")), Some(TOKEN)).await;
        assert_eq!(status, 202, "{body}");
    }
    wait_progress(&url, &run, 3, Duration::from_secs(60)).await;

    // The broker dies with records in flight, stays down, and comes back with its data. The 2 s
    // are the outage under test, not a wait for a state: `kill` has already reaped the broker,
    // and a broker that is down produces nothing to wait for.
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start();
    wait_progress(&url, &run, 10, Duration::from_secs(90)).await;

    // PostgreSQL crashes (immediate shutdown: no checkpoint) and restarts.
    pg.ctl(&["-m", "immediate", "restart"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut jobs = BTreeMap::new();
    while jobs.len() < JOBS {
        for i in 0..JOBS {
            let id = format!("{run}-{i}");
            if let Some((200, job)) = get(&url, &format!("/v1/jobs/{id}"), Some(TOKEN)).await
                && job_state(&job) == JobState::Succeeded
            {
                jobs.insert(id, job);
            }
        }
        if Instant::now() >= deadline {
            let mut stuck = Vec::new();
            for i in 0..JOBS {
                let id = format!("{run}-{i}");
                if !jobs.contains_key(&id) {
                    let job = get(&url, &format!("/v1/jobs/{id}"), Some(TOKEN)).await;
                    let tasks = get(&url, &format!("/v1/jobs/{id}/tasks"), Some(TOKEN)).await;
                    stuck.push(format!("{id}: {job:?} tasks {tasks:?}"));
                }
            }
            let tansu = std::fs::read_to_string(&broker.log).unwrap_or_default();
            let tail = &tansu[tansu.len().saturating_sub(4000)..];
            let stuck_ids: BTreeSet<String> =
                (0..JOBS).map(|i| format!("{run}-{i}")).filter(|id| !jobs.contains_key(id)).collect();
            let records = log_records_of(&config, &run, &stuck_ids).await;
            panic!(
                "jobs not all succeeded:\n{}\nthe log's records of those jobs:\n{records}\ntansu log (tail):\n{tail}",
                stuck.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Lineage: each join read exactly its two parents' current artifacts. The read model projects
    // job and task events from their own topics, so right after PostgreSQL restarts a job's
    // final state may be read before its tasks' rows catch up (seen once in CI: a parent's
    // artifact still null); what is checked is that they do, not the order.
    for id in jobs.keys() {
        common::wait_until(
            &format!("{id}: the join to have read its parents' artifacts"),
            Duration::from_secs(30),
            async || {
                let (_, lineage) =
                    get(&url, &format!("/v1/jobs/{id}/lineage"), Some(TOKEN)).await.ok_or("no answer")?;
                let node = |t: &str| {
                    lineage["tasks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|n| n["task_id"] == t)
                        .cloned()
                        .unwrap_or_default()
                };
                let mut parents = vec![node("left")["artifact"].clone(), node("right")["artifact"].clone()];
                let mut inputs = node("join")["inputs"].as_array().cloned().unwrap_or_default();
                parents.sort_by_key(|v| v.to_string());
                inputs.sort_by_key(|v| v.to_string());
                if inputs == parents && parents.iter().all(Value::is_string) {
                    Ok(())
                } else {
                    Err(format!("inputs {inputs:?}, parents' artifacts {parents:?}"))
                }
            },
        )
        .await;
    }

    // Reconcile the log with the read model: read every topic back from the restarted broker.
    let settings = splai_config::Loader::new().file(Some(&config)).load().unwrap();
    let log = open_log(&settings.log).await.unwrap();
    let writer = EventWriter::new(log, settings.log.topic_prefix.clone());
    let topics = [Topic::Jobs, Topic::JobEvents, Topic::TaskEvents];
    // Read up to each partition's end as the broker states it now (not "until idle": a slow
    // broker can pause longer than any idle window).
    let mut remaining = BTreeMap::new();
    for topic in topics {
        let name = writer.topic(topic);
        for (partition, end) in writer.log().high_watermarks(&name).await.unwrap().into_iter().enumerate() {
            if end > 0 {
                remaining.insert((name.clone(), partition as u32), end);
            }
        }
    }
    let mut reader = EventReader::subscribe(writer, &format!("{run}-audit"), &topics, None).await.unwrap();
    let (mut requests, mut terminal, mut results) = (BTreeSet::new(), BTreeMap::new(), BTreeMap::new());
    let read_deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(Instant::now() < read_deadline, "the log was not read to its end: {remaining:?}");
        let batch = reader.poll(1000, Duration::from_millis(500)).await.unwrap();
        for p in &batch.positions {
            let key = (p.topic.clone(), p.partition);
            if remaining.get(&key).is_some_and(|end| p.offset + 1 >= *end) {
                remaining.remove(&key);
            }
        }
        for (_, e) in batch.events {
            match e.event {
                Event::JobRequest(r) => {
                    requests.insert(r.job_id.unwrap_or(e.id));
                }
                Event::JobStateChanged(s) => {
                    terminal.insert((s.job_id, format!("{:?}", s.state)), ());
                }
                Event::AttemptSucceeded(s) => {
                    let key = (s.attempt.job_id.clone(), s.attempt.task_id.clone());
                    results
                        .entry(key)
                        .or_insert_with(BTreeMap::new)
                        .insert(s.attempt.attempt, s.artifact.sha256);
                }
                _ => {}
            }
        }
    }
    let ours = |id: &String| id.starts_with(&run);
    assert_eq!(requests.iter().filter(|id| ours(id)).count(), JOBS, "one job_request per submitted job");
    let succeeded: BTreeSet<_> =
        terminal.keys().filter(|(id, st)| ours(id) && st == "Succeeded").map(|(id, _)| id.clone()).collect();
    assert_eq!(succeeded.len(), JOBS, "one succeeded outcome per job on job-events");
    assert!(terminal.keys().all(|(_, st)| st != "Failed" && st != "Cancelled"), "{terminal:?}");
    assert_eq!(results.len(), JOBS * 3, "every task has a success on task-events");
    for ((job, task), by_attempt) in &results {
        let distinct: BTreeSet<_> = by_attempt.values().collect();
        assert_eq!(distinct.len(), 1, "{job}/{task} succeeded twice with different results: {by_attempt:?}");
    }
    let log_successes: BTreeSet<(String, String, u32)> = results
        .iter()
        .filter(|((job, _), _)| ours(job))
        .flat_map(|((job, task), by)| by.keys().map(|n| (job.clone(), task.clone(), *n)))
        .collect();
    // A superseded attempt that also succeeded (its report held up by the broker's restart) can
    // reach the log after its job finished: the read model projects it a little later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let api_successes = loop {
        let seen = read_model_successes(&url, jobs.keys()).await;
        if seen.is_superset(&log_successes) || Instant::now() >= deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        log_successes,
        api_successes,
        "successful attempts (job, task, attempt) in the log = in the read model; only in the log: {:?}; only in the read model: {:?}",
        log_successes.difference(&api_successes).collect::<Vec<_>>(),
        api_successes.difference(&log_successes).collect::<Vec<_>>(),
    );
    let log_successes = log_successes.len();
    println!(
        "chaos infra: {JOBS} jobs, {log_successes} successful attempts for {} tasks, broker and PostgreSQL restarted",
        JOBS * 3
    );
}

/// Every record of `jobs` on the scheduler's topics, as the broker serves them now: topic,
/// partition, offset, kind and what it is about (the evidence when a job sticks).
async fn log_records_of(config: &Path, run: &str, jobs: &BTreeSet<String>) -> String {
    let settings = splai_config::Loader::new().file(Some(config)).load().unwrap();
    let log = open_log(&settings.log).await.unwrap();
    let writer = EventWriter::new(log, settings.log.topic_prefix.clone());
    let topics = [Topic::Jobs, Topic::Assignments, Topic::TaskEvents, Topic::JobEvents];
    let mut reader = EventReader::subscribe(writer, &format!("{run}-evidence"), &topics, None).await.unwrap();
    let mut lines = Vec::new();
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < Duration::from_secs(4) {
        let batch = reader.poll(1000, Duration::from_millis(500)).await.unwrap();
        if !batch.events.is_empty() {
            idle_since = Instant::now();
        }
        for (pos, e) in batch.events {
            let v = serde_json::to_value(&e).unwrap_or_default();
            let body = &v["body"];
            let job = body["job_id"].as_str().or(body["attempt"]["job_id"].as_str()).unwrap_or("");
            if jobs.contains(job) || jobs.contains(&e.id) {
                let about = [&body["task_id"], &body["attempt"], &body["state"], &body["worker_id"]]
                    .iter()
                    .filter(|x| !x.is_null())
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                lines.push(format!(
                    "{}[{}]@{} ts={} {} {job} {about}",
                    pos.topic,
                    pos.partition,
                    pos.offset,
                    e.ts_ms,
                    e.event.kind()
                ));
            }
        }
    }
    lines.join("\n")
}

/// Successful attempts (job, task, attempt) of `jobs` in the gateway's read model.
async fn read_model_successes(
    url: &str,
    jobs: impl Iterator<Item = &String>,
) -> BTreeSet<(String, String, u32)> {
    let mut seen = BTreeSet::new();
    for id in jobs {
        let (_, tasks) = get(url, &format!("/v1/jobs/{id}/tasks"), Some(TOKEN)).await.unwrap();
        for t in tasks["tasks"].as_array().unwrap() {
            for a in t["attempts"].as_array().into_iter().flatten() {
                if common::attempt_state(a) == splai_events::AttemptState::Succeeded {
                    let task = t["task_id"].as_str().unwrap_or_default().to_string();
                    seen.insert((id.clone(), task, a["attempt"].as_u64().unwrap_or(0) as u32));
                }
            }
        }
    }
    seen
}

/// What issue 15's chaos failure came down to: records a producer had in flight when the broker
/// died must be in the log once it is back, and a consumer reading through the restart must see
/// every one of them. With `enable.idempotence=true`, tansu 0.6 acknowledged the retried batches
/// with offsets that were not theirs and lost them (5 records per kill, 2 runs in 3), which left a
/// job stuck; `log.kafka.idempotence` is now off by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_broker_kill() {
    let (Ok(s3), Ok(bucket)) =
        (std::env::var("SPLAI_TEST_S3_ENDPOINT"), std::env::var("SPLAI_TEST_S3_BUCKET"))
    else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "S3 (SeaweedFS) not configured");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = format!("p{}x{}", std::process::id(), Instant::now().elapsed().subsec_nanos() % 100_000);
    let mut broker = Broker {
        child: None,
        port: free_port(),
        cluster: format!("durability-{run}"),
        s3,
        bucket,
        log: dir.path().join("tansu.log"),
    };
    broker.start();
    let config = dir.path().join("splai.toml");
    let brokers = format!("127.0.0.1:{}", broker.port);
    let unused = ("postgres://unused@127.0.0.1:1/unused", "http://127.0.0.1:1");
    std::fs::write(
        &config,
        common::services_config(&run, 1, &brokers, unused.0, unused.1, "unused", ("t", TOKEN)),
    )
    .unwrap();
    let settings = splai_config::Loader::new().file(Some(&config)).load().unwrap();
    let _guard = splai_telemetry::init(&settings.telemetry, "probe").ok();
    let log = open_log(&settings.log).await.unwrap();
    let topic = format!("{run}.durability");
    log.create_topics(std::slice::from_ref(&topic), 1).await.unwrap();
    let subscription = |group: &str| splai_ingest::log::Subscription {
        group: format!("{run}-{group}"),
        topics: vec![topic.clone()],
        partitions: Some(vec![0]),
        start: Default::default(),
    };

    // A consumer reading live across the restart, and four writers with batches in flight.
    let mut live = log.subscribe(subscription("live")).await.unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let reading = Arc::new(AtomicBool::new(true));
    let seen_live = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let reader = {
        let (reading, seen_live) = (reading.clone(), seen_live.clone());
        tokio::spawn(async move {
            while reading.load(Ordering::SeqCst) {
                // Errors while the broker is away are retried by the next poll.
                let batch = live.poll(1000, Duration::from_millis(50)).await.unwrap_or_default();
                seen_live.lock().unwrap().extend(batch.into_iter().map(|d| d.payload));
            }
        })
    };
    let appended = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (log, topic, writing, appended) = (log.clone(), topic.clone(), writing.clone(), appended.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while writing.load(Ordering::SeqCst) {
                let batch: Vec<Vec<u8>> =
                    (0..1 + i % 3).map(|j| format!("w{w}r{i}.{j}").into_bytes()).collect();
                let records = batch.iter().map(|p| splai_ingest::log::Record::new("k", p.clone())).collect();
                if log.append(&topic, records).await.is_ok() {
                    appended.fetch_add(batch.len(), Ordering::SeqCst);
                    acked.extend(batch);
                    i += 1;
                }
            }
            acked
        }));
    }
    // Kill the broker mid-stream, keep it down for 2 s (the outage under test, as in the chaos
    // test above: a length of time, not a state to wait for), and stop writing once the writers
    // have got well past the restart.
    wait_for_appends(&appended, 200, "before the kill").await;
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start();
    let before_restart = appended.load(Ordering::SeqCst);
    wait_for_appends(&appended, before_restart + 200, "after the restart").await;
    writing.store(false, Ordering::SeqCst);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    // Everything in the log, read by a fresh consumer.
    let mut fresh = log.subscribe(subscription("fresh")).await.unwrap();
    let mut stored = BTreeSet::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) {
        let batch = fresh.poll(1000, Duration::from_millis(200)).await.unwrap();
        if !batch.is_empty() {
            quiet_since = Instant::now();
        }
        stored.extend(batch.into_iter().map(|d| d.payload));
    }
    // The live consumer catches up (after librdkafka's reconnect backoff) with all of it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stored.iter().all(|p| seen_live.lock().unwrap().contains(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reading.store(false, Ordering::SeqCst);
    reader.await.unwrap();
    let seen_live = seen_live.lock().unwrap().clone();
    let text = |p: &Vec<u8>| String::from_utf8_lossy(p).into_owned();
    let lost: Vec<String> = acked.iter().filter(|p| !stored.contains(*p)).map(text).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged records are not in the log: {lost:?}",
        lost.len(),
        acked.len()
    );
    let missed: Vec<String> = stored.iter().filter(|p| !seen_live.contains(*p)).map(text).collect();
    assert!(missed.is_empty(), "the live consumer missed {} stored records: {missed:?}", missed.len());
    println!(
        "durability: {} acknowledged records, all in the log and seen live across a broker kill",
        acked.len()
    );
}

/// Wait (up to 60 s) until the writers have had `n` records acknowledged in all.
async fn wait_for_appends(appended: &AtomicUsize, n: usize, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while appended.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "fewer than {n} records acknowledged {when} within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
