//! `splai bench resume`: resumability. A long job (`--levels` levels of a sleep task plus an
//! aggregation reading it and the previous level) runs once undisturbed (the baseline), then again
//! with `splai up` — gateway, scheduler and executors — SIGKILLed when about `--kill-at` of its
//! tasks are done and restarted on the same data. Reported: how long the restart took to be ready
//! and to finish its next task, the time lost against the baseline, the succeeded tasks that ran
//! again (must be 0) and whether every aggregation read exactly its parents' artifacts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_events::{AttemptState, JobState, TaskState};

use super::up_proc::{scratch, start_up};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct ResumeBenchArgs {
    #[arg(long, default_value_t = 12)]
    pub levels: u32,
    /// How long each sleep task takes (ms).
    #[arg(long, default_value_t = 400)]
    pub task_ms: u64,
    /// Fraction of the tasks done when the kill comes.
    #[arg(long, default_value_t = 0.4)]
    pub kill_at: f64,
    #[arg(long, default_value_t = 2)]
    pub executors: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResumeReport {
    pub tasks: u32,
    pub baseline_s: f64,
    pub interrupted_s: f64,
    pub done_at_kill: usize,
    pub restart_ready_s: f64,
    pub restart_to_next_success_s: f64,
    pub time_lost_s: f64,
    pub rerun_succeeded_tasks: usize,
    pub lineage_intact: bool,
    pub state: JobState,
}

fn long_job(levels: u32, task_ms: u64) -> Value {
    let mut tasks = Vec::new();
    for i in 0..levels {
        let mut parts =
            json!({"mode": {"literal": "concat"}, "part-0": {"output": {"task": format!("w{i}")}}});
        let mut parents = vec![format!("w{i}")];
        let mut work_parents = Vec::new();
        if i > 0 {
            parts["part-1"] = json!({"output": {"task": format!("m{}", i - 1)}});
            parents.push(format!("m{}", i - 1));
            work_parents.push(format!("m{}", i - 1));
        }
        tasks.push(json!({"id": format!("w{i}"), "kind": "tool_execution", "parents": work_parents,
                          "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": task_ms}}}));
        tasks
            .push(json!({"id": format!("m{i}"), "kind": "aggregation", "parents": parents, "inputs": parts}));
    }
    json!({"type": "explicit", "dag": {"tasks": tasks}})
}

/// One task of the job as the gateway shows it.
struct TaskRow {
    state: TaskState,
    /// How many of its attempts succeeded.
    succeeded_attempts: usize,
    artifact: Value,
}

/// The contract enum a document's `state` names; a missing or unknown name is an error.
fn state_of<T: serde::de::DeserializeOwned>(doc: &Value) -> anyhow::Result<T> {
    let name = doc["state"].as_str().with_context(|| format!("no state in {doc}"))?;
    splai_events::from_wire(name).with_context(|| format!("the state of {doc}"))
}

/// The job's tasks by id.
async fn tasks_of(client: &Client, job: &str) -> anyhow::Result<BTreeMap<String, TaskRow>> {
    let tasks = client.get(&format!("/v1/jobs/{job}/tasks?limit=500")).await?;
    let mut rows = BTreeMap::new();
    for t in tasks["tasks"].as_array().into_iter().flatten() {
        let mut succeeded_attempts = 0;
        for a in t["attempts"].as_array().into_iter().flatten() {
            if state_of::<AttemptState>(a)? == AttemptState::Succeeded {
                succeeded_attempts += 1;
            }
        }
        let row = TaskRow { state: state_of(t)?, succeeded_attempts, artifact: t["artifact"].clone() };
        rows.insert(t["task_id"].as_str().unwrap_or("").to_string(), row);
    }
    Ok(rows)
}

/// How many of the tasks have succeeded.
fn succeeded(tasks: &BTreeMap<String, TaskRow>) -> usize {
    tasks.values().filter(|t| t.state == TaskState::Succeeded).count()
}

async fn submit(client: &Client, body: &Value) -> anyhow::Result<String> {
    let (_, accepted) = client.post("/v1/jobs", body, None).await?;
    Ok(accepted["job_id"].as_str().context("no job id")?.to_string())
}

pub async fn measure(args: &ResumeBenchArgs) -> anyhow::Result<ResumeReport> {
    if args.levels == 0 || !(0.0..1.0).contains(&args.kill_at) {
        bail!("--levels must be ≥ 1 and --kill-at in [0, 1)");
    }
    let body = long_job(args.levels, args.task_ms);
    let total = args.levels * 2;

    let base_dir = scratch("resume-base")?;
    let up = start_up(base_dir.path(), args.executors, &[]).await?;
    let client = up.client(None)?;
    let started = Instant::now();
    let id = submit(&client, &body).await?;
    client.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(600)).await?;
    let baseline_s = started.elapsed().as_secs_f64();
    up.stop()?;

    let dir = scratch("resume")?;
    let up = start_up(dir.path(), args.executors, &[]).await?;
    let client = up.client(None)?;
    let started = Instant::now();
    let id = submit(&client, &body).await?;
    let want = ((f64::from(total) * args.kill_at).ceil() as usize).max(1);
    let before = loop {
        let t = tasks_of(&client, &id).await?;
        if succeeded(&t) >= want {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    up.kill();
    let killed_at = Instant::now();
    let up = start_up(dir.path(), args.executors, &[]).await?;
    let client = up.client(None)?;
    let restart_ready_s = killed_at.elapsed().as_secs_f64();
    let done_at_kill = succeeded(&before);
    let next_success = loop {
        let t = tasks_of(&client, &id).await?;
        if succeeded(&t) > done_at_kill {
            break killed_at.elapsed().as_secs_f64();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let job = client.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(600)).await?.remove(0);
    let interrupted_s = started.elapsed().as_secs_f64();
    let after = tasks_of(&client, &id).await?;
    // A task that had succeeded before the kill and succeeded again, or whose artifact changed.
    let rerun = before
        .iter()
        .filter(|(_, b)| b.state == TaskState::Succeeded)
        .filter(|(task, b)| {
            after.get(*task).is_none_or(|a| a.succeeded_attempts > 1 || a.artifact != b.artifact)
        })
        .count();
    let lineage = client.get(&format!("/v1/jobs/{id}/lineage")).await?;
    let node =
        |t: &str| lineage["tasks"].as_array().and_then(|a| a.iter().find(|n| n["task_id"] == t)).cloned();
    let lineage_intact = (0..args.levels).all(|i| {
        let mut want: Vec<String> = std::iter::once(format!("w{i}"))
            .chain((i > 0).then(|| format!("m{}", i - 1)))
            .filter_map(|p| node(&p).map(|n| n["artifact"].to_string()))
            .collect();
        let mut got: Vec<String> = node(&format!("m{i}"))
            .and_then(|n| n["inputs"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(Value::to_string)
            .collect();
        want.sort();
        got.sort();
        !got.is_empty() && want == got
    });
    up.stop()?;
    let report = ResumeReport {
        tasks: total,
        baseline_s,
        interrupted_s,
        done_at_kill,
        restart_ready_s,
        restart_to_next_success_s: next_success,
        time_lost_s: interrupted_s - baseline_s,
        rerun_succeeded_tasks: rerun,
        lineage_intact,
        state: job.state,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(report)
}
