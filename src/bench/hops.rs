//! `splai bench hops`: the runtime's own overhead per DAG hop. A chain of `--steps` tasks that each
//! sleep `--task-ms` runs through a full in-process stack (gateway, scheduler, one executor) on the
//! configured log — embedded by default, Kafka with `--set log.backend=kafka …`; per-hop overhead
//! = (job time − steps × task time) / steps, where job time is submit → last task done. Also
//! reports submit → first attempt started. Data goes to a temporary directory.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_config::Settings;

use crate::up::wait_ready;
use splai_stack::{Stack, StackOptions};

#[derive(Debug, clap::Args)]
pub struct HopsBenchArgs {
    /// Tasks in the chain.
    #[arg(long, default_value_t = 40)]
    pub steps: u32,
    /// How long each task sleeps (ms).
    #[arg(long, default_value_t = 10)]
    pub task_ms: u64,
    /// Chains to run, one after the other (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
}

fn chain(steps: u32, task_ms: u64) -> Value {
    let tasks: Vec<Value> = (0..steps)
        .map(|i| {
            let parents: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{:03}", i - 1)] };
            json!({"id": format!("s{i:03}"), "kind": "tool_execution", "parents": parents,
                   "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": task_ms}}})
        })
        .collect();
    json!({"type": "explicit", "dag": {"tasks": tasks}})
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub async fn run(settings: &Settings, args: &HopsBenchArgs) -> anyhow::Result<()> {
    if args.steps == 0 || args.runs == 0 {
        bail!("--steps and --runs must be at least 1");
    }
    let (_dir, settings) = super::scratch_settings(settings, "hops")?;
    let stack = Stack::start(&settings, &StackOptions { executors: 1, slots_per_executor: None }).await?;
    let client = crate::client::local(&stack.url)?;
    wait_ready(&client).await?;
    println!(
        "log={:?} steps={} task_ms={} runs={} tick_ms={} poll_ms={}",
        settings.log.backend,
        args.steps,
        args.task_ms,
        args.runs,
        settings.scheduler.tick_ms,
        settings.log.embedded.poll_interval_ms
    );
    let (mut per_hop, mut first) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let started = Instant::now();
        let (_, accepted) = client.post("/v1/jobs", &chain(args.steps, args.task_ms), None).await?;
        let job_id = accepted["job_id"].as_str().context("no job id")?.to_string();
        let job = client.wait_succeeded(&job_id, Duration::from_secs(3600)).await?.document;
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        let tasks = client.get(&format!("/v1/jobs/{job_id}/tasks?limit=500")).await?;
        let attempts: Vec<&Value> = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["attempts"].as_array().into_iter().flatten())
            .collect();
        let submitted = job["submitted_at_ms"].as_f64().unwrap_or(0.0);
        let last_done = attempts.iter().filter_map(|a| a["finished_at_ms"].as_f64()).fold(0.0, f64::max);
        let first_start =
            attempts.iter().filter_map(|a| a["started_at_ms"].as_f64()).fold(f64::MAX, f64::min);
        let total = last_done - submitted;
        let hop = (total - f64::from(args.steps) * args.task_ms as f64) / f64::from(args.steps);
        println!(
            "run={run} job_ms={total:.0} wall_ms={wall:.0} per_hop_overhead_ms={hop:.2} submit_to_first_start_ms={:.1}",
            first_start - submitted
        );
        per_hop.push(hop);
        first.push(first_start - submitted);
    }
    println!(
        "median per_hop_overhead_ms={:.2} submit_to_first_start_ms={:.1} (min per-hop {:.2})",
        median(per_hop.clone()),
        median(first),
        per_hop.iter().copied().fold(f64::MAX, f64::min)
    );
    stack.shutdown().await
}
