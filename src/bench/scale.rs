//! `splai bench scale`: scale-out on real inference. The same batch of `batch_analysis` jobs
//! (`examples/support-tickets.json`, 48 tokens per map) runs on a fresh `splai up` with k
//! executors for each k in `--executors`; reported: wall time, jobs/min, speed-up over the first
//! k, and the whole machine's CPU utilization from /proc/stat over the run's window.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::up_proc::{cpu_times, scratch, start_up};
use crate::client::JobState;

#[derive(Debug, clap::Args)]
pub struct ScaleBenchArgs {
    /// Executor counts to compare, e.g. `1,2` (the first is the baseline).
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub executors: Vec<u32>,
    #[arg(long, default_value_t = 4)]
    pub jobs: u32,
    /// Inference threads per attempt (0: the cores shared out among the executors).
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// The job to run (a submission body).
    #[arg(long, default_value = "examples/support-tickets.json")]
    pub job: std::path::PathBuf,
    #[arg(long, default_value_t = 48)]
    pub max_tokens: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleRow {
    pub executors: u32,
    pub jobs: u32,
    pub succeeded: usize,
    pub wall_s: f64,
    pub jobs_per_min: f64,
    pub speedup: f64,
    pub cpu_utilization: f64,
}

pub async fn measure(args: &ScaleBenchArgs) -> anyhow::Result<Vec<ScaleRow>> {
    if args.executors.is_empty() || args.jobs == 0 {
        bail!("--executors and --jobs must not be empty or 0");
    }
    let text =
        std::fs::read_to_string(&args.job).with_context(|| format!("reading {}", args.job.display()))?;
    let mut request: Value = serde_json::from_str(&text)?;
    request["input"]["max_tokens"] = args.max_tokens.into();
    let mut rows: Vec<ScaleRow> = Vec::new();
    for &k in &args.executors {
        let data = scratch("scale")?;
        let sets = vec![format!("executor.inference_threads={}", args.threads)];
        let up = start_up(data.path(), k, &sets).await?;
        let client = up.client(None)?;
        // Warm the models once, so every run measures steady state.
        let warm = serde_json::json!({"type": "chat", "input": {"prompt": "hi", "max_tokens": 2}});
        let (_, w) = client.post("/v1/jobs", &warm, None).await?;
        client
            .wait_terminal(&[w["job_id"].as_str().unwrap_or_default().to_string()], Duration::from_secs(300))
            .await?;
        let (total0, idle0) = cpu_times();
        let started = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..args.jobs {
            let (_, accepted) = client.post("/v1/jobs", &request, None).await?;
            ids.push(accepted["job_id"].as_str().context("no job id")?.to_string());
        }
        let jobs = client.wait_terminal(&ids, Duration::from_secs(3600)).await?;
        let wall = started.elapsed().as_secs_f64();
        let (total1, idle1) = cpu_times();
        let busy = 1.0 - (idle1 - idle0) as f64 / (total1 - total0).max(1) as f64;
        up.stop()?;
        let base = rows.first().map_or(wall, |r| r.wall_s);
        let row = ScaleRow {
            executors: k,
            jobs: args.jobs,
            succeeded: jobs.iter().filter(|j| j.state == JobState::Succeeded).count(),
            wall_s: wall,
            jobs_per_min: 60.0 * f64::from(args.jobs) / wall,
            speedup: base / wall,
            cpu_utilization: busy,
        };
        println!("{}", serde_json::to_string(&row)?);
        rows.push(row);
    }
    Ok(rows)
}
