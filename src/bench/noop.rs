//! `splai bench noop`: control-plane throughput — `--jobs` jobs of `--tasks` independent no-op
//! tasks (`aggregation` with no inputs) submitted at once over HTTP to a full in-process stack
//! (gateway, scheduler, `--executors` one-slot executors) on the configured log; tasks/s = tasks ÷
//! (last attempt finished − first job submitted), server clock. Data goes to a temporary directory.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_config::Settings;

use crate::up::wait_ready;
use splai_stack::{Stack, StackOptions};

#[derive(Debug, clap::Args)]
pub struct NoopBenchArgs {
    #[arg(long, default_value_t = 40)]
    pub jobs: u32,
    /// Independent no-op tasks per job.
    #[arg(long, default_value_t = 50)]
    pub tasks: u32,
    /// Executors in the stack.
    #[arg(long, default_value_t = 2)]
    pub executors: u32,
    /// Slots per executor.
    #[arg(long, default_value_t = 1)]
    pub slots: u32,
}

fn job(tasks: u32) -> Value {
    let tasks: Vec<Value> =
        (0..tasks).map(|i| json!({"id": format!("n{i:04}"), "kind": "aggregation"})).collect();
    // Caching off: identical no-op tasks would otherwise be reuses, not the control-plane work
    // this measures.
    json!({"type": "explicit", "dag": {"tasks": tasks}, "cache": false})
}

pub async fn run(settings: &Settings, args: &NoopBenchArgs) -> anyhow::Result<()> {
    if args.jobs == 0 || args.tasks == 0 || args.executors == 0 {
        bail!("--jobs, --tasks and --executors must be at least 1");
    }
    let (_dir, settings) = super::scratch_settings(settings, "noop")?;
    let stack = Stack::start(
        &settings,
        &StackOptions { executors: args.executors, slots_per_executor: Some(args.slots) },
    )
    .await?;
    let client = crate::client::local(&stack.url)?;
    wait_ready(&client).await?;
    let body = job(args.tasks);
    let submits = (0..args.jobs).map(|_| client.post("/v1/jobs", &body, None));
    let mut ids = Vec::new();
    for accepted in futures::future::join_all(submits).await {
        let (_, accepted) = accepted?;
        ids.push(accepted["job_id"].as_str().context("no job id")?.to_string());
    }
    let (mut first_submit, mut last_done) = (f64::MAX, 0.0f64);
    for id in &ids {
        let job = client.wait_succeeded(id, Duration::from_secs(3600)).await?.document;
        first_submit = first_submit.min(job["submitted_at_ms"].as_f64().unwrap_or(f64::MAX));
        last_done = last_done.max(job["finished_at_ms"].as_f64().unwrap_or(0.0));
    }
    let tasks = f64::from(args.jobs * args.tasks);
    let secs = (last_done - first_submit) / 1000.0;
    println!(
        "log={:?} jobs={} tasks_per_job={} executors={} slots={} tasks={tasks} seconds={secs:.3} tasks_per_s={:.0}",
        settings.log.backend,
        args.jobs,
        args.tasks,
        args.executors,
        args.slots,
        tasks / secs.max(1e-9)
    );
    stack.shutdown().await
}
