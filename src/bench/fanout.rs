//! `splai bench fanout`: the DAG shape users submit — `split` → `--width` maps → `reduce` (tools
//! and an aggregation) — through the REST API of a full in-process stack on the configured log
//! (embedded by default; Kafka with `--set log.backend=kafka …`), with the default executors.
//! Two figures: one job alone, submit → its stream's `end` (median of `--runs`), and `--jobs` jobs
//! submitted at once by `--clients` concurrent clients (jobs/s, submit of the first → end of the
//! last). Each job's text differs, so no result comes from the cache. Ray runs the same work in
//! `scripts/bench-ray` for the comparison.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_client::{Client, JobState};
use splai_config::Settings;
use splai_ingest::log::EventWriter;
use splai_stack::{Stack, StackOptions};

use super::{decision_latency, line_kv, percentile};
use crate::up::wait_ready;

#[derive(Debug, clap::Args)]
pub struct FanoutBenchArgs {
    /// Maps between the split and the reduce.
    #[arg(long, default_value_t = 20)]
    pub width: u32,
    /// Single jobs to time one after the other (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub runs: u32,
    /// Jobs submitted at once for the throughput figure.
    #[arg(long, default_value_t = 100)]
    pub jobs: u32,
    /// Concurrent clients submitting them.
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Executors in the process (default: one per core, as `splai up`).
    #[arg(long)]
    pub executors: Option<u32>,
    /// Also run the same work on Ray (`scripts/bench-ray`, installed into `.venv-ray` on first
    /// use) after SPLAI, and print the ratios.
    #[arg(long)]
    pub ray: bool,
}

/// One fan-out job whose text is unique to `n`: split into `width` lines, a regex per line, and
/// a merge of every match.
pub fn fanout_job(n: u64, width: u32) -> Value {
    let text: Vec<String> = (0..width).map(|i| format!("ticket {n}-{i}: login fails on node {i}")).collect();
    let mut tasks = vec![json!({"id": "split", "kind": "tool_execution", "inputs": {
        "tool": {"literal": "split_lines"}, "text": {"literal": text.join("\n")},
        "lines_per_chunk": {"literal": 1}}})];
    let mut reduce_inputs = serde_json::Map::new();
    reduce_inputs.insert("mode".into(), json!({"literal": "json_merge"}));
    for i in 0..width {
        let id = format!("map-{i:03}");
        tasks.push(json!({"id": id, "kind": "tool_execution", "parents": ["split"], "inputs": {
            "tool": {"literal": "regex"}, "pattern": {"literal": "ticket ([0-9-]+): login"},
            "group": {"literal": 1}, "text": {"output": {"task": "split", "pointer": format!("/chunks/{i}")}}}}));
        reduce_inputs.insert(format!("part-{i:03}"), json!({"output": {"task": id}}));
    }
    let parents: Vec<String> = (0..width).map(|i| format!("map-{i:03}")).collect();
    tasks.push(json!({"id": "reduce", "kind": "aggregation", "parents": parents, "inputs": reduce_inputs}));
    json!({"type": "explicit", "dag": {"tasks": tasks}})
}

/// Submit one job and follow its stream to the end; the job must succeed.
async fn run_one(client: &Client, body: &Value) -> anyhow::Result<String> {
    let (_, accepted) = client.post("/v1/jobs", body, None).await?;
    let job_id = accepted["job_id"].as_str().context("no job id")?.to_string();
    let mut state = None;
    client
        .follow(&job_id, None, |e| {
            // A job that ended before the stream opened shows its state in the snapshot only.
            let now = match e.event.as_str() {
                "job.snapshot" => &e.data["job"]["state"],
                "job.status" => &e.data["state"],
                _ => &Value::Null,
            };
            if let Ok(s) = serde_json::from_value::<JobState>(now.clone()) {
                state = Some(s);
            }
            true
        })
        .await?;
    match state {
        Some(JobState::Succeeded) => Ok(job_id),
        other => bail!("fan-out job {job_id} ended {other:?}"),
    }
}

/// Where a job's time went, from its attempts' start and end times (ms after the submit): the
/// split, the maps (first start, last start, last end) and the reduce.
async fn timeline(client: &Client, job_id: &str) -> anyhow::Result<String> {
    let job = client.get(&format!("/v1/jobs/{job_id}")).await?;
    let tasks = client.get(&format!("/v1/jobs/{job_id}/tasks?limit=500")).await?;
    let submitted = job["submitted_at_ms"].as_f64().context("no submit time")?;
    let (mut maps_start, mut maps_end) = (Vec::new(), Vec::new());
    let mut line = String::new();
    for t in tasks["tasks"].as_array().into_iter().flatten() {
        let Some(a) = t["attempts"].as_array().and_then(|a| a.last()) else { continue };
        let (start, end) = (
            a["started_at_ms"].as_f64().unwrap_or(f64::NAN),
            a["finished_at_ms"].as_f64().unwrap_or(f64::NAN),
        );
        match t["task_id"].as_str().unwrap_or_default() {
            id @ ("split" | "reduce") => {
                line += &format!("{id} {:.0}→{:.0} ms; ", start - submitted, end - submitted)
            }
            _ => {
                maps_start.push(start - submitted);
                maps_end.push(end - submitted);
            }
        }
    }
    let min = maps_start.iter().copied().fold(f64::MAX, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    line += &format!("maps start {min:.0}…{:.0} ms, last ends {:.0} ms", max(&maps_start), max(&maps_end));
    if let Some(done) = job["finished_at_ms"].as_f64() {
        line += &format!("; job succeeded (scheduler) {:.0} ms", done - submitted);
    }
    Ok(line)
}

pub async fn run(settings: &Settings, args: &FanoutBenchArgs) -> anyhow::Result<()> {
    if args.width == 0 || args.runs == 0 || args.jobs == 0 || args.clients == 0 {
        bail!("--width, --runs, --jobs and --clients must be at least 1");
    }
    let (_dir, settings) = super::scratch_settings(settings, "fanout")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let executors = args.executors.unwrap_or(cores).max(1);
    let stack = Stack::start(&settings, &StackOptions { executors, slots_per_executor: None }).await?;
    let client = crate::client::local(&stack.url)?;
    wait_ready(&client).await?;
    println!(
        "log={:?} width={} executors={executors} tick_ms={} poll_ms={}",
        settings.log.backend, args.width, settings.scheduler.tick_ms, settings.log.embedded.poll_interval_ms
    );
    let mut serial = 0u64;
    // Warm-up: the first job pays for lazy set-up (connections, prepared statements).
    run_one(&client, &fanout_job(serial, args.width)).await?;

    let (mut alone, mut last) = (Vec::new(), String::new());
    let mut single_ids = HashSet::new();
    for _ in 0..args.runs {
        serial += 1;
        let started = Instant::now();
        last = run_one(&client, &fanout_job(serial, args.width)).await?;
        single_ids.insert(last.clone());
        alone.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "last single job's timeline: {}; its stream ended {:.0} ms",
        timeline(&client, &last).await?,
        alone.last().copied().unwrap_or(f64::NAN)
    );
    alone.sort_by(f64::total_cmp);
    let alone_median = percentile(&alone, 0.5);
    println!(
        "one job alone: median_ms={:.1} p90_ms={:.1} min_ms={:.1} (submit → end of its stream, {} runs)",
        alone_median,
        percentile(&alone, 0.9),
        alone[0],
        args.runs
    );

    let started = Instant::now();
    let per_client = args.jobs.div_ceil(args.clients);
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let first = serial + 1 + u64::from(c * per_client);
        let count = per_client.min(args.jobs.saturating_sub(c * per_client));
        let width = args.width;
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in first..first + u64::from(count) {
                let (_, accepted) = client.post("/v1/jobs", &fanout_job(n, width), None).await?;
                ids.push(accepted["job_id"].as_str().context("no job id")?.to_string());
            }
            for id in &ids {
                client.follow(id, None, |_| true).await?;
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::new();
    for c in clients {
        ids.extend(c.await??);
    }
    let wall = started.elapsed().as_secs_f64();
    let jobs = client.wait_terminal(&ids, Duration::from_secs(60)).await?;
    let failed = jobs.iter().filter(|j| j.state != JobState::Succeeded).count();
    if failed > 0 {
        bail!("{failed} of {} fan-out jobs did not succeed", jobs.len());
    }
    let jobs_per_s = ids.len() as f64 / wall;
    println!(
        "{} jobs at once from {} clients: jobs_per_s={:.1} wall_s={wall:.2} tasks_per_s={:.0}",
        ids.len(),
        args.clients,
        jobs_per_s,
        (ids.len() as f64 * f64::from(args.width + 2)) / wall
    );
    let writer = EventWriter::new(stack.log.clone(), settings.log.topic_prefix.clone());
    let alone = decision_latency::measure(&writer, &single_ids).await?;
    println!("decision latency, jobs alone: {}", alone.line());
    let loaded = decision_latency::measure(&writer, &ids.iter().cloned().collect()).await?;
    println!("decision latency, {} jobs at once: {}", ids.len(), loaded.line());
    stack.shutdown().await?;
    if args.ray {
        ray(args, alone_median, jobs_per_s)?;
    }
    Ok(())
}

/// Ray on the same work (same DAG, texts, runs, jobs and clients); SPLAI's ratios to it.
fn ray(args: &FanoutBenchArgs, alone_ms: f64, jobs_per_s: f64) -> anyhow::Result<()> {
    let n = |v: u32| v.to_string();
    let out = std::process::Command::new("scripts/bench-ray")
        .args(["--width", &n(args.width), "--runs", &n(args.runs), "--jobs", &n(args.jobs)])
        .args(["--clients", &n(args.clients)])
        .output()
        .context("running scripts/bench-ray (from the repository's root)")?;
    if !out.status.success() {
        bail!("scripts/bench-ray failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (Some(ray_ms), Some(ray_jobs)) = (
        line_kv(&text, "one job alone", "median_ms"),
        line_kv(&text, &format!("{} jobs", args.jobs), "jobs_per_s"),
    ) else {
        bail!("unexpected scripts/bench-ray output: {text}");
    };
    println!("ray: one job alone median_ms={ray_ms:.1}; {} jobs at once jobs_per_s={ray_jobs:.1}", args.jobs);
    println!(
        "vs ray: one job alone speedup={:.2}x; jobs at once ratio={:.2}x",
        ray_ms / alone_ms,
        jobs_per_s / ray_jobs
    );
    Ok(())
}
