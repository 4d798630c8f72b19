//! `splai gen` writes a synthetic recorded log; `splai replay` feeds a recorded log through the
//! scheduler's dataflow as fast as it can, with virtual time from the envelopes.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use splai_config::Settings;
use splai_dataflow::runner::INPUTS;
use splai_dataflow::sim::{Shape, SimConfig, simulate};
use splai_dataflow::{Scheduler, SchedulerOptions};
use splai_events::{Event, decode, encode};

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// Output file (JSON lines of envelopes, the format the log stores).
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1_000)]
    pub jobs: u32,
    /// DAG of each job: chain:N or fanout:N.
    #[arg(long, default_value = "chain:10")]
    pub shape: Shape,
    #[arg(long, default_value_t = 100)]
    pub workers: u32,
    #[arg(long, default_value_t = 8)]
    pub slots: u32,
    /// Simulated task duration, ms.
    #[arg(long, default_value_t = 1_000)]
    pub duration_ms: u64,
    /// Probability an attempt fails (retryably).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Job arrival rate per virtual second (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    pub jobs_per_s: f64,
    #[arg(long, default_value_t = 4)]
    pub tenants: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Longest virtual-time step between ticks, ms.
    #[arg(long, default_value_t = 50)]
    pub max_step_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    pub file: PathBuf,
    /// Explain where JOB/TASK went: its score on every live worker when it was assigned.
    #[arg(long, value_name = "JOB/TASK")]
    pub explain: Option<String>,
    /// Envelopes per dataflow step. A step is one dataflow time: it ends in the same state either
    /// way, but the runnable→assigned latency is only exact with 1 (a step at every new
    /// timestamp; slow). Larger steps cost the dataflow less per event; 200 000 was fastest on
    /// the 100k-job log (10 000: 0.75×, 50 000: 0.88×, 500 000: 0.96×).
    #[arg(long, default_value_t = 200_000)]
    pub batch: u64,
    /// Timely workers (threads) of the dataflow (default: scheduler.timely_workers).
    #[arg(short = 'w', long = "workers")]
    pub workers: Option<u32>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn gen_cmd(settings: &Settings, args: &GenArgs) -> anyhow::Result<()> {
    let cfg = SimConfig {
        jobs: args.jobs,
        shape: args.shape,
        workers: args.workers,
        slots: args.slots,
        duration_ms: args.duration_ms,
        fail_rate: args.fail_rate,
        jobs_per_s: args.jobs_per_s,
        tenants: args.tenants,
        seed: args.seed,
        max_step_ms: args.max_step_ms,
    };
    let file =
        std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    let mut failed = None;
    let started = Instant::now();
    let report = simulate(&cfg, SchedulerOptions::from(&settings.scheduler), &mut |e| {
        if failed.is_none() {
            let mut line = encode(e);
            line.push(b'\n');
            if let Err(err) = out.write_all(&line) {
                failed = Some(err);
            }
        }
    });
    if let Some(err) = failed {
        return Err(err).context("writing the log");
    }
    out.flush()?;
    let mut wall = report.tick_wall_us.clone();
    wall.sort_unstable();
    let mut lat = report.latency_ms.clone();
    lat.sort_unstable();
    println!(
        "wrote {} envelopes to {} in {:.1}s: jobs={} succeeded={} failed={} assignments={} makespan_ms={} utilization={:.3} ticks={}",
        report.envelopes,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.jobs,
        report.jobs_succeeded,
        report.jobs_failed,
        report.assignments,
        report.makespan_ms,
        report.utilization,
        report.ticks
    );
    println!(
        "decision tick wall time µs: p50={} p99={} max={} (n={}); runnable→assigned virtual ms: p50={} p99={}",
        percentile(&wall, 0.5),
        percentile(&wall, 0.99),
        wall.last().copied().unwrap_or(0),
        wall.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    Ok(())
}

/// Decode and apply times are sampled on one line in this many.
const TIME_EVERY: usize = 32;

pub fn replay_cmd(settings: &Settings, args: &ReplayArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let explain =
        args.explain.as_deref().map(|s| s.split_once('/').context("--explain takes JOB/TASK")).transpose()?;
    let workers = args.workers.unwrap_or(settings.scheduler.timely_workers);
    anyhow::ensure!((1..=64).contains(&workers), "-w takes 1 to 64 timely workers, not {workers}");
    // With steps of many events, the dataflow works on one while the next are read and applied;
    // with --batch 1 (exact latencies) every tick waits for its own step.
    let mut sched =
        Scheduler::windowed_on(SchedulerOptions::from(&settings.scheduler), workers as usize, args.batch > 1);
    let mut out = Vec::new();
    let (mut events, mut skipped, mut bad) = (0u64, 0u64, 0u64);
    let mut last_ts = 0;
    let mut stepped_at = 0u64;
    let (mut t_decode, mut t_apply, mut t_step) =
        (std::time::Duration::ZERO, std::time::Duration::ZERO, std::time::Duration::ZERO);
    let started = Instant::now();
    let mut reader = reader;
    let mut line = Vec::with_capacity(4096);
    for n in 0usize.. {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        // Decode and apply are timed on one event in TIME_EVERY (a clock read per event costs
        // more than some events do), then scaled.
        let timed = n % TIME_EVERY == 0;
        let t0 = timed.then(Instant::now);
        let decoded = decode(&line);
        if let Some(t0) = t0 {
            t_decode += t0.elapsed() * TIME_EVERY as u32;
        }
        let e = match decoded {
            Ok(e) => e,
            Err(err) => {
                bad += 1;
                eprintln!("line {}: {err} (skipped)", n + 1);
                continue;
            }
        };
        if !INPUTS.contains(&e.event.topic()) {
            skipped += 1;
            continue;
        }
        if e.ts_ms > last_ts {
            if args.batch <= 1 || events - stepped_at >= args.batch {
                let t0 = Instant::now();
                sched.tick(&mut out);
                t_step += t0.elapsed();
                out.clear();
                stepped_at = events;
            }
            last_ts = e.ts_ms;
            sched.advance(e.ts_ms);
        }
        if let (Some((job, task)), Event::Assign(a)) = (explain, &e.event)
            && a.attempt.job_id == job
            && a.attempt.task_id == task
        {
            sched.settle(&mut out);
            out.clear();
            if let Some(x) = sched.explain(job, task) {
                println!(
                    "explain {} at t={} (attempt {}, went to {}):",
                    x.task, x.at, a.attempt.attempt, a.worker_id
                );
                for v in &x.verdicts {
                    match &v.eligible {
                        Ok(score) => println!("  {:<20} score {score:.2}", v.worker),
                        Err(why) => println!("  {:<20} not eligible: {why}", v.worker),
                    }
                }
            }
        }
        let t0 = timed.then(Instant::now);
        sched.apply(&e, &mut out);
        if let Some(t0) = t0 {
            t_apply += t0.elapsed() * TIME_EVERY as u32;
        }
        events += 1;
    }
    sched.tick(&mut out);
    let elapsed = started.elapsed();
    let mut lat = sched.stats.decision_latency_ms.clone();
    lat.sort_unstable();
    let mut states = std::collections::BTreeMap::<String, u64>::new();
    for e in sched.go_live() {
        if let Event::JobStateChanged(s) = e.event {
            *states.entry(format!("{:?}", s.state).to_lowercase()).or_insert(0) += 1;
        }
    }
    println!("timely_workers={workers}");
    println!(
        "replayed {events} events in {:.3}s: {:.0} events/s; assignments={} skipped_non_scheduler={skipped} undecodable={bad}",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        sched.stats.assignments,
    );
    println!(
        "time: decode ~{:.2}s, apply ~{:.2}s (sampled), dataflow steps {:.2}s",
        t_decode.as_secs_f64(),
        t_apply.as_secs_f64(),
        t_step.as_secs_f64()
    );
    if args.batch <= 1 {
        println!(
            "runnable→assigned (virtual ms): p50={} p99={} max={}",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0)
        );
    } else {
        println!("runnable→assigned: not measured (a step of --batch events is one time; use --batch 1)");
    }
    println!("final job states: {states:?}");
    Ok(())
}
