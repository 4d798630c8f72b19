//! `splai bench failover`: how long scheduling stops when the leading scheduler dies (issue 21
//! item 4). Each run, on a fresh embedded log: a `splai scheduler` process starts and leads (a
//! lease of `--lease-ms` kept on the log); then `splai up` starts with one executor, its own
//! scheduler the standby. A job whose first task naps is submitted; while it naps, the leader is
//! SIGKILLed and a quick job is submitted at once. From the log and the API:
//! - kill → the standby fences the old epoch (it has claimed the lease; from here on, nothing
//!   the old leader might still append is acted on);
//! - the old lease's expiry → that fence (how fast a standby notices; the lease itself is the
//!   rest of kill → fence);
//! - kill → the quick job done (what a user submitting at the crash waits).
//!
//! Both jobs must succeed with every task run once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use splai_client::Client;
use splai_events::{AttemptState, Event, TaskState, Topic, from_wire, now_ms};
use splai_ingest::log::{EventReader, EventWriter, open_log};

use super::percentile;

#[derive(Debug, clap::Args)]
pub struct FailoverBenchArgs {
    /// Failovers to measure (each on a fresh log; the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// The schedulers' lease (`scheduler.lease_ms`).
    #[arg(long, default_value_t = 1000)]
    pub lease_ms: u64,
}

/// One failover, in ms.
#[derive(Debug, Clone, Copy)]
struct Failover {
    kill_to_fence: f64,
    expiry_to_fence: f64,
    kill_to_job_done: f64,
}

pub async fn run(args: &FailoverBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!((300..=60_000).contains(&args.lease_ms), "--lease-ms takes 300 to 60000 (as scheduler.lease_ms)");
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let r = one(args.lease_ms).await.with_context(|| format!("failover run {i}"))?;
        println!(
            "run={i} kill_to_fence_ms={:.0} expiry_to_fence_ms={:.0} kill_to_job_done_ms={:.0}",
            r.kill_to_fence, r.expiry_to_fence, r.kill_to_job_done
        );
        runs.push(r);
    }
    let sorted = |f: fn(&Failover) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (fence, expiry, done) =
        (sorted(|r| r.kill_to_fence), sorted(|r| r.expiry_to_fence), sorted(|r| r.kill_to_job_done));
    println!(
        "failover lease_ms={} runs={} kill_to_fence_ms={:.0} expiry_to_fence_ms={:.0} expiry_to_fence_max_ms={:.0} kill_to_job_done_ms={:.0} (medians)",
        args.lease_ms,
        args.runs,
        percentile(&fence, 0.5),
        percentile(&expiry, 0.5),
        expiry.last().copied().unwrap_or(f64::NAN),
        percentile(&done, 0.5),
    );
    Ok(())
}

/// A child process killed (SIGKILL) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn napping_job(nap_ms: u64) -> Value {
    json!({"type": "explicit", "dag": {"tasks": [
        {"id": "nap", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": nap_ms}}},
        {"id": "sum", "kind": "aggregation", "parents": ["nap"]}]}})
}

fn quick_job() -> Value {
    json!({"type": "explicit", "dag": {"tasks": [
        {"id": "a", "kind": "aggregation"}, {"id": "b", "kind": "aggregation", "parents": ["a"]}]}})
}

async fn one(lease_ms: u64) -> anyhow::Result<Failover> {
    let dir = super::up_proc::scratch("failover")?;
    let d = dir.path().display();
    // The same files `start_up` gives its `splai up`, so the two processes share one log.
    let sets = vec![
        format!("log.embedded.path={d}/log.sqlite"),
        format!("store.url=sqlite://{d}/splai.sqlite"),
        format!("artifacts.url=file://{d}/artifacts"),
        format!("scheduler.lease_ms={lease_ms}"),
    ];
    let settings = splai_config::Loader::new().overrides(&sets)?.load()?;
    let writer = EventWriter::new(open_log(&settings.log).await?, settings.log.topic_prefix.clone());

    let mut cmd = Command::new(std::env::current_exe()?);
    splai_config::without_settings_env(&mut cmd);
    for s in &sets {
        cmd.args(["--set", s]);
    }
    cmd.arg("scheduler").stdout(Stdio::null()).stderr(Stdio::null());
    let mut leader = Killed(cmd.spawn().context("starting the leading `splai scheduler`")?);
    // Until the scheduler has created the topics, reading `control` fails: not led yet.
    wait_for("the first scheduler to lead", Duration::from_secs(60), async || {
        Ok(leases(&writer).await.is_ok_and(|l| l.iter().any(|(epoch, _, _)| *epoch == 1)))
    })
    .await?;
    let up = super::up_proc::start_up(dir.path(), 1, &sets[3..]).await?;
    let client = up.client(None)?;

    let napping = client.submit(&napping_job(lease_ms * 2 + 3000), None).await?.job_id;
    wait_for("the nap to run", Duration::from_secs(60), async || {
        let tasks = client.get(&format!("/v1/jobs/{napping}/tasks")).await?;
        let mut tasks = tasks["tasks"].as_array().into_iter().flatten();
        Ok(tasks.any(|t| state_of::<TaskState>(t) == Some(TaskState::Running)))
    })
    .await?;

    let (killed_at, killed) = (now_ms(), Instant::now());
    leader.0.kill().context("SIGKILL the leader")?;
    leader.0.wait()?;
    let quick = client.submit(&quick_job(), None).await?.job_id;
    client.wait_succeeded(&quick, Duration::from_secs(60)).await.context("the job submitted at the kill")?;
    let kill_to_job_done = killed.elapsed().as_secs_f64() * 1000.0;

    let fenced_at = fence_time(&writer, 2).await?.context("no fence of epoch 2 on the log")?;
    let expired_at = leases(&writer)
        .await?
        .iter()
        .filter(|(epoch, _, _)| *epoch == 1)
        .map(|(_, _, until)| *until)
        .max()
        .context("no lease of epoch 1")?;
    client.wait_succeeded(&napping, Duration::from_secs(60)).await.context("the napping job")?;
    for job in [&napping, &quick] {
        each_task_succeeded_once(&client, job).await?;
    }
    up.stop()?;
    Ok(Failover {
        kill_to_fence: fenced_at.saturating_sub(killed_at) as f64,
        expiry_to_fence: fenced_at as f64 - expired_at as f64,
        kill_to_job_done,
    })
}

/// The `state` of a task or attempt document, read as the contract's enum.
fn state_of<T: serde::de::DeserializeOwned>(doc: &Value) -> Option<T> {
    doc["state"].as_str().and_then(|s| from_wire(s).ok())
}

/// Every lease record on the log: (epoch, holder, until ms).
async fn leases(writer: &EventWriter) -> anyhow::Result<Vec<(u64, String, u64)>> {
    let control = EventReader::read_to_end(writer, Topic::Control, None, Duration::from_secs(10))
        .await?
        .context("reading `control` took over 10 s")?;
    Ok(control
        .into_iter()
        .filter_map(|e| match e.event {
            Event::SchedulerLease(l) => Some((l.epoch, l.holder, l.until_ms)),
            _ => None,
        })
        .collect())
}

/// When the first fence of `epoch` was written to `assignments` (ms), if it was.
async fn fence_time(writer: &EventWriter, epoch: u64) -> anyhow::Result<Option<u64>> {
    let assignments = EventReader::read_to_end(writer, Topic::Assignments, None, Duration::from_secs(10))
        .await?
        .context("reading `assignments` took over 10 s")?;
    Ok(assignments
        .iter()
        .filter(|e| matches!(&e.event, Event::EpochFence(f) if f.epoch == epoch))
        .map(|e| e.ts_ms)
        .min())
}

async fn each_task_succeeded_once(client: &Client, job: &str) -> anyhow::Result<()> {
    let tasks = client.get(&format!("/v1/jobs/{job}/tasks")).await?;
    for t in tasks["tasks"].as_array().into_iter().flatten() {
        let attempts = t["attempts"].as_array().into_iter().flatten();
        let succeeded =
            attempts.filter(|a| state_of::<AttemptState>(a) == Some(AttemptState::Succeeded)).count();
        if succeeded != 1 {
            bail!("task {} of {job} succeeded {succeeded} times: {t}", t["task_id"]);
        }
    }
    Ok(())
}

/// Poll `check` every 20 ms until it says yes; an error after `within`.
async fn wait_for(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("waited {within:?} for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
