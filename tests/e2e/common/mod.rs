//! Shared by the end-to-end tests: a real `splai up` process on its own data directory and port,
//! and small HTTP helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use splai_events::{JobState, TaskState};

/// A running `splai up` on a data directory of its own, killed when dropped.
pub struct Up {
    pub process: splai_stack::UpProcess,
    pub url: String,
    pub dir: Option<tempfile::TempDir>,
    pub config: std::path::PathBuf,
}

/// The `splai` binary with none of the test's own `SPLAI_` variables (they are settings to it).
pub fn splai_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_splai"));
    splai_config::without_settings_env(&mut cmd);
    cmd
}

/// A `splai` child process, killed (after a SIGCONT, in case a test froze it) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.id().to_string()]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Send `sig` (e.g. `-STOP`).
    pub fn signal(&self, sig: &str) {
        assert!(Command::new("kill").args([sig, &self.0.id().to_string()]).status().unwrap().success());
    }

    /// SIGTERM and wait for the exit (a process flushes its span exporter on the way out).
    pub fn stop(mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "a process did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `splai --config CONFIG ARGS…`; stdout piped when asked, else dropped.
pub fn splai(config: &std::path::Path, args: &[&str], stdout: bool) -> Proc {
    let mut cmd = splai_command();
    cmd.arg("--config").arg(config).args(args);
    cmd.stdout(if stdout { Stdio::piped() } else { Stdio::null() }).stderr(Stdio::inherit());
    Proc(cmd.spawn().unwrap())
}

/// `splai gateway` with `args` before the subcommand; returns it and the URL it printed.
pub fn start_gateway(config: &std::path::Path, args: &[&str]) -> (Proc, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.push("gateway");
    let mut g = splai(config, &all, true);
    let mut lines = BufReader::new(g.0.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("gateway listening on ").map(str::to_string))
        .expect("the gateway printed its address");
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (g, url)
}

/// Settings every test stack uses: its own data directory, a free port, fast ticks and beats.
pub fn base_config(dir: &std::path::Path) -> String {
    format!(
        r#"
[log.embedded]
path = "{d}/log.sqlite"
[store]
url = "sqlite://{d}/splai.sqlite"
[artifacts]
url = "file://{d}/artifacts"
[gateway]
listen = "127.0.0.1:0"
[scheduler]
tick_ms = 20
heartbeat_ttl_ms = 1500
retry_base_ms = 100
retry_cap_ms = 400
[executor]
heartbeat_interval_ms = 300
model_dir = "{models}"
"#,
        d = dir.display(),
        models = splai_executor::test_models::models_dir().display()
    )
}

impl Up {
    /// Start `splai up` with the base config plus `extra` TOML (later tables win key by key:
    /// give whole `[section]`s only for sections the base does not have, else use `sets`).
    pub async fn start(extra: &str, sets: &[&str], args: &[&str]) -> Up {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra, sets, args).await
    }

    /// Start with auth on (and the signing key auth needs); `token` is used to check readiness.
    pub async fn start_auth(extra: &str, sets: &[&str], args: &[&str], token: &str) -> Up {
        let sets: Vec<&str> =
            ["gateway.auth=true", "gateway.signing_key=up-e2e-signing-key-0123456789abcdef"]
                .into_iter()
                .chain(sets.iter().copied())
                .collect();
        let mut up = Self::spawn(tempfile::tempdir().unwrap(), extra, &sets, args);
        up.process.wait_ready(Some(token), 1, Duration::from_secs(60)).await.unwrap();
        up
    }

    pub async fn start_in(dir: tempfile::TempDir, extra: &str, sets: &[&str], args: &[&str]) -> Up {
        let mut up = Self::spawn(dir, extra, sets, args);
        up.process.wait_ready(None, 1, Duration::from_secs(60)).await.unwrap();
        up
    }

    fn spawn(dir: tempfile::TempDir, extra: &str, sets: &[&str], args: &[&str]) -> Up {
        let config = dir.path().join("splai.toml");
        std::fs::write(&config, format!("{}\n{extra}", base_config(dir.path()))).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_splai"));
        let process =
            splai_stack::UpProcess::spawn(exe, Some(&config), &sets, &args, Stdio::inherit()).unwrap();
        Up { url: process.url.clone(), process, dir: Some(dir), config }
    }

    /// SIGKILL, keeping the data directory for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        let dir = self.dir.take().unwrap();
        self.process.kill();
        dir
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(self) -> std::process::ExitStatus {
        self.process.stop().unwrap()
    }
}

/// Poll `probe` every 100 ms until it returns `Ok`, and return that value. After `within`, fail
/// naming what was awaited and what the last probe saw (its `Err`).
pub async fn wait_until<T, S: std::fmt::Display>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "waited {within:?} for {what}; last saw: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the gateway at `url` is ready and some executor is live.
pub async fn wait_ready(url: &str, token: Option<&str>) {
    client(url, token).wait_ready(1, Duration::from_secs(60)).await.unwrap();
}

/// The typed client of the gateway at `url`, with `token` as bearer.
pub fn client(url: &str, token: Option<&str>) -> splai_client::Client {
    splai_client::Client::new(url, token.map(str::to_string)).unwrap()
}

/// GET `path`: status and JSON body (None when the gateway is unreachable).
pub async fn get(url: &str, path: &str, token: Option<&str>) -> Option<(u16, Value)> {
    client(url, token).call(reqwest::Method::GET, path, None, None).await.ok()
}

/// Every task state change of a finished job with its attempt, worker and reason, one per line,
/// from its event stream (which ends after the terminal state): the evidence a failure needs.
pub async fn task_history(url: &str, job_id: &str, token: Option<&str>) -> String {
    let client = client(url, token);
    let read = client.read_stream(job_id, Some("0".into()));
    let events = match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(events)) => events,
        Ok(Err(e)) => return format!("(no event stream: {e})"),
        Err(_) => return "(no event stream within 10 s)".into(),
    };
    events
        .iter()
        .map(|e| &e.data)
        .filter(|v| v.get("task_id").is_some() && v.get("state").is_some())
        .map(|v| {
            format!(
                "{} attempt {} {} worker={} reason={}",
                v["task_id"].as_str().unwrap_or("?"),
                v["attempt"],
                v["state"].as_str().unwrap_or("?"),
                v["worker_id"].as_str().unwrap_or("-"),
                v["reason"].as_str().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// POST JSON: status and JSON body.
pub async fn post(url: &str, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    client(url, token).call(reqwest::Method::POST, path, Some(body), None).await.unwrap()
}

/// Poll a job until it reaches a terminal state; its document.
pub async fn wait_job(url: &str, job_id: &str, token: Option<&str>, within: Duration) -> Value {
    let jobs = client(url, token).wait_terminal(&[job_id.to_string()], within).await;
    jobs.unwrap_or_else(|e| panic!("job {job_id}: {e}")).remove(0).document
}

/// The state of a job document (`/v1/jobs/{id}`, a `job.status` event, a snapshot's `job`) as
/// the contract's enum, so tests compare states, not strings. Panics, showing the document,
/// when it has no state or one the contract does not name.
pub fn job_state(doc: &Value) -> JobState {
    let name = doc["state"].as_str().unwrap_or_else(|| panic!("no job state in {doc}"));
    splai_events::from_wire(name).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

/// The state of an attempt row (`attempts[*]` of a task) as the contract's enum; panics like
/// [`job_state`].
pub fn attempt_state(doc: &Value) -> splai_events::AttemptState {
    let name = doc["state"].as_str().unwrap_or_else(|| panic!("no attempt state in {doc}"));
    splai_events::from_wire(name).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

/// How many of the job's tasks are in `state` now (0 while the gateway does not know the job).
pub async fn tasks_in(url: &str, job_id: &str, token: Option<&str>, state: TaskState) -> usize {
    let Some((_, tasks)) = get(url, &format!("/v1/jobs/{job_id}/tasks?limit=500"), token).await else {
        return 0;
    };
    tasks["tasks"].as_array().into_iter().flatten().filter(|t| task_state(t) == state).count()
}

/// How many of a task document's attempts (a `/v1/jobs/{id}/tasks` row) succeeded.
pub fn succeeded_attempts(task: &Value) -> usize {
    let attempts = task["attempts"].as_array().into_iter().flatten();
    attempts.filter(|a| attempt_state(a) == splai_events::AttemptState::Succeeded).count()
}

/// The job state a `job.status` stream event carries; `None` for its `admitted` event (the job was
/// planned; its state is `queued` from then on).
pub fn status_event_state(data: &Value) -> Option<JobState> {
    let name = data["state"].as_str()?;
    if name == "admitted" {
        return None;
    }
    Some(splai_events::from_wire(name).unwrap_or_else(|e| panic!("{e}: {data}")))
}

/// The state of a task document (a `/v1/jobs/{id}/tasks` row, a `task.update` event, a lineage
/// node) as the contract's enum; panics like [`job_state`].
pub fn task_state(doc: &Value) -> TaskState {
    let name = doc["state"].as_str().unwrap_or_else(|| panic!("no task state in {doc}"));
    splai_events::from_wire(name).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

/// A gateway, a scheduler and executors `{run}-w1`, `{run}-w2`, … as processes on one config.
pub struct Processes {
    pub url: String,
    pub gateway: Proc,
    pub scheduler: Proc,
    pub executors: Vec<Proc>,
}

/// Start them and wait until the gateway is ready (checked with `token`).
pub async fn start_processes(
    config: &std::path::Path,
    run: &str,
    executors: usize,
    token: Option<&str>,
) -> Processes {
    let (gateway, url) = start_gateway(config, &[]);
    let scheduler = splai(config, &["scheduler"], false);
    let executors = (1..=executors)
        .map(|i| splai(config, &["executor", "--id", &format!("{run}-w{i}")], false))
        .collect();
    wait_ready(&url, token).await;
    Processes { url, gateway, scheduler, executors }
}

/// Read a job's SSE stream (optionally resuming) until `end`, as (id, event, data).
pub async fn read_stream(
    url: &str,
    job_id: &str,
    last_event_id: Option<&str>,
) -> Vec<(Option<String>, String, Value)> {
    read_stream_with(url, job_id, last_event_id, None).await
}

/// [`read_stream`] with a bearer token.
pub async fn read_stream_with(
    url: &str,
    job_id: &str,
    last_event_id: Option<&str>,
    token: Option<&str>,
) -> Vec<(Option<String>, String, Value)> {
    let client = client(url, token);
    let read = client.read_stream(job_id, last_event_id.map(str::to_string));
    let events = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the stream ended within 120 s")
        .expect("the stream opened");
    events.into_iter().map(|e| (e.id, e.event, e.data)).collect()
}

/// A fresh PostgreSQL database `name` next to the one `pg` names; its URL.
pub fn create_database(pg: &str, name: &str) -> String {
    let status = Command::new("psql").args([pg, "-qc", &format!("CREATE DATABASE {name}")]).status().unwrap();
    assert!(status.success(), "creating database {name}");
    format!("{}/{name}", pg.rsplit_once('/').unwrap().0)
}

/// The `[log]`, `[store]`, `[artifacts]` and `[gateway]` tables of a stack on the real services
/// (Kafka, PostgreSQL, S3) with auth on and `token` for tenant acme (submitter, reader,
/// operator) under the name `token.0`; tests append their own `[scheduler]` and `[executor]`
/// tables.
pub fn services_config(
    run: &str,
    partitions: u32,
    brokers: &str,
    db_url: &str,
    s3: &str,
    bucket: &str,
    token: (&str, &str),
) -> String {
    format!(
        r#"
[log]
backend = "kafka"
topic_prefix = "{run}."
partitions = {partitions}
[log.kafka]
brokers = "{brokers}"
[store]
url = "{db_url}"
[artifacts]
url = "s3://{bucket}"
s3_endpoint = "{s3}"
[gateway]
listen = "127.0.0.1:0"
auth = true
signing_key = "test-stack-signing-key-0123456789abcdef"
[gateway.tokens.{name}]
sha256 = "{hash}"
tenant = "acme"
roles = ["submitter", "reader", "operator"]
"#,
        name = token.0,
        hash = token_hash(token.1),
    )
}

/// The sha256 `splai token hash` prints for `token`.
/// A `[gateway.tokens.NAME]` table giving `token` (hashed) to `tenant` with `roles`.
pub fn token_table(name: &str, token: &str, tenant: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "\n[gateway.tokens.{name}]\nsha256 = \"{}\"\ntenant = \"{tenant}\"\nroles = [{}]\n",
        token_hash(token),
        roles.join(", ")
    )
}

pub fn token_hash(token: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_splai")).args(["token", "hash", token]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn models_present() -> bool {
    splai_executor::test_models::smollm2().is_some()
}
