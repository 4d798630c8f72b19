//! `splai bench report`: every benchmark of the project in one run, written as a Markdown
//! section (machine, commit, commands, headline ratios against the targets, raw outputs) between
//! markers in `--out` (default `docs/benchmarks.md`; the rest of the file is left alone).
//! Each sub-benchmark is this binary run as a child process with the command shown, so every
//! figure can be reproduced by copying its command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use splai_events::JobState;

use super::resume::{ResumeBenchArgs, ResumeReport};
use super::scale::{ScaleBenchArgs, ScaleRow};
use super::{kv, line_kv};

const BEGIN: &str = "<!-- splai bench report: begin -->";
const END: &str = "<!-- splai bench report: end -->";

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Small sizes (seconds, not minutes), e.g. to check the harness; not for the figures.
    #[arg(long)]
    pub quick: bool,
    /// Skip the real-inference scale-out (it needs `./models` and a release build to mean much).
    #[arg(long)]
    pub skip_inference: bool,
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Jobs (10-task chains) in the replay log.
    #[arg(long, default_value_t = 100_000)]
    pub replay_jobs: u32,
    /// Histories (jobs) for the scheduler's start-to-live figures; the first is the base the
    /// others are compared with. 1000000 takes ~20 minutes and ~12 GB.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000])]
    pub recovery_history: Vec<u32>,
}

/// One measured line of the headline table.
struct Headline {
    what: String,
    result: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    headlines: Vec<Headline>,
    details: String,
}

impl Report {
    fn headline(&mut self, what: &str, result: String, target: &str, met: Option<bool>) {
        self.headlines.push(Headline { what: what.into(), result, target: target.into(), met });
    }

    fn raw(&mut self, title: &str, commands: &[String], output: &str) {
        let _ = write!(self.details, "\n#### {title}\n\n```sh\n");
        for c in commands {
            let _ = writeln!(self.details, "{c}");
        }
        let _ = write!(
            self.details,
            "```\n\n<details><summary>output</summary>\n\n```\n{}\n```\n</details>\n",
            output.trim()
        );
    }
}

/// Run this binary with `args`; its stdout (an error names the command and its stderr's tail).
fn run_self(args: &[String]) -> anyhow::Result<String> {
    run_self_env(args, &[])
}

fn run_self_env(args: &[String], env: &[(&str, &str)]) -> anyhow::Result<String> {
    let out = Command::new(std::env::current_exe()?).args(args).envs(env.iter().copied()).output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        bail!("`splai {}` failed: {}", args.join(" "), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn shown(args: &[String]) -> String {
    format!("splai {}", args.join(" "))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']));
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let git = |a: &[&str]| {
        Command::new("git")
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    format!(
        "{} · {cores} cores · {mem_gib:.0} GiB · Linux {} · commit {commit}{} · {} build",
        model.unwrap_or("unknown CPU"),
        kernel.trim(),
        if dirty { " (with local changes)" } else { "" },
        if cfg!(debug_assertions) { "debug" } else { "release" }
    )
}

fn control_plane(r: &mut Report, quick: bool) -> anyhow::Result<()> {
    let (jobs, tasks) = if quick { ("2", "10") } else { ("200", "100") };
    let mut out = String::new();
    let mut cmds = Vec::new();
    let mut best = 0.0f64;
    // A no-op task holds a slot without using the CPU, so with few slots the rate is bounded by
    // slots ÷ round trip (Little's law), not by the control plane; 1 024 slots per executor
    // keep enough tasks in flight that the control plane is the limit.
    for slots in ["16", "1024"] {
        let a =
            args(&["bench", "noop", "--jobs", jobs, "--tasks", tasks, "--executors", "2", "--slots", slots]);
        let text = run_self(&a)?;
        best = best.max(kv(&text, "tasks_per_s").unwrap_or(0.0));
        cmds.push(shown(&a));
        out.push_str(&text);
    }
    r.headline(
        "control-plane throughput, no-op tasks end to end (embedded, 2 executors)",
        format!("{best:.0} tasks/s"),
        "≥ 10 000 tasks/s",
        Some(best >= 10_000.0),
    );
    // The same with the log, read model and artifacts on tmpfs: what the runtime does when the
    // disk's inode allocation (a directory and a file per artifact) is not the limit.
    if Path::new("/dev/shm").is_dir() {
        let a =
            args(&["bench", "noop", "--jobs", jobs, "--tasks", tasks, "--executors", "2", "--slots", "1024"]);
        let text = run_self_env(&a, &[("TMPDIR", "/dev/shm")])?;
        let rate = kv(&text, "tasks_per_s").unwrap_or(0.0);
        r.headline(
            "… the same with its data on tmpfs (/dev/shm)",
            format!("{rate:.0} tasks/s"),
            "≥ 10 000 tasks/s",
            Some(rate >= 10_000.0),
        );
        cmds.push(format!("TMPDIR=/dev/shm {}", shown(&a)));
        out.push_str(&text);
    }
    r.raw("Control-plane throughput (no-op tasks)", &cmds, &out);
    Ok(())
}

fn hops(r: &mut Report, quick: bool) -> anyhow::Result<()> {
    let a = if quick {
        args(&["bench", "hops", "--runs", "1", "--steps", "5"])
    } else {
        args(&["bench", "hops", "--runs", "5"])
    };
    let text = run_self(&a)?;
    let hop = kv(&text, "median per_hop_overhead_ms").unwrap_or(f64::NAN);
    r.headline("per-hop overhead (embedded, median)", format!("{hop:.2} ms"), "< 5 ms", Some(hop < 5.0));
    r.raw("Per-hop overhead", &[shown(&a)], &text);
    Ok(())
}

fn fanout(r: &mut Report, quick: bool) -> anyhow::Result<()> {
    let a = if quick {
        args(&["bench", "fanout", "--runs", "3", "--jobs", "10"])
    } else {
        args(&["bench", "fanout", "--ray"])
    };
    let text = run_self(&a)?;
    let alone = line_kv(&text, "one job alone", "median_ms").unwrap_or(f64::NAN);
    let speedup = kv(&text, "speedup");
    let ratio = kv(&text, "ratio");
    r.headline(
        "fan-out job alone (split → 20 maps → reduce, REST submit → end of stream)",
        format!("{alone:.1} ms{}", speedup.map(|s| format!(" ({s:.2}× Ray)")).unwrap_or_default()),
        "≤ 10 ms, ≥ 2× Ray",
        Some(alone <= 10.0 && speedup.is_some_and(|s| s >= 2.0)),
    );
    // SPLAI's line (`N jobs at once from …`), not Ray's after it.
    let jobs = text
        .lines()
        .find(|l| l.contains("jobs at once from"))
        .and_then(|l| kv(l, "jobs_per_s"))
        .unwrap_or(f64::NAN);
    r.headline(
        "fan-out jobs submitted at once (8 clients)",
        format!("{jobs:.1} jobs/s{}", ratio.map(|x| format!(" ({x:.2}× Ray)")).unwrap_or_default()),
        "≥ 5× Ray",
        ratio.map(|x| x >= 5.0),
    );
    r.raw("Fan-out DAG over REST (vs Ray)", &[shown(&a)], &text);
    Ok(())
}

fn replay(r: &mut Report, quick: bool, jobs: u32, dir: &Path) -> anyhow::Result<()> {
    let jobs = if quick { 200 } else { jobs };
    let file = dir.join("replay.jsonl").display().to_string();
    let gen_args = args(&[
        "gen",
        "--jobs",
        &jobs.to_string(),
        "--workers",
        "1000",
        "--slots",
        "8",
        "--jobs-per-s",
        "800",
        "--out",
        &file,
    ]);
    let gen_out = run_self(&gen_args)?;
    let replay_args = args(&["replay", &file]);
    let text = run_self(&replay_args)?;
    let rate = text
        .split_whitespace()
        .zip(text.split_whitespace().skip(1))
        .find(|(_, unit)| unit.starts_with("events/s"))
        .and_then(|(n, _)| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    r.headline(
        &format!("scheduler replay, {jobs} jobs × 10 tasks, 1 000 workers, one timely worker"),
        format!("{rate:.0} events/s"),
        "≥ 500 000 events/s",
        Some(rate >= 500_000.0),
    );
    r.raw("Scheduler replay", &[shown(&gen_args), shown(&replay_args)], &format!("{gen_out}{text}"));
    std::fs::remove_file(&file).ok();

    let lat_jobs = if quick { "30" } else { "3000" };
    let lat_file = dir.join("latency.jsonl").display().to_string();
    let lat_args = args(&[
        "gen",
        "--jobs",
        lat_jobs,
        "--jobs-per-s",
        "30",
        "--workers",
        "1000",
        "--slots",
        "8",
        "--max-step-ms",
        "1",
        "--out",
        &lat_file,
    ]);
    let text = run_self(&lat_args)?;
    // The first p99 is the decision tick's wall time (µs); the second the virtual-time delay.
    let tick_p99 = text.split("p99=").nth(1).and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
    let p99_ms = tick_p99.map_or(f64::NAN, |us| us / 1000.0);
    r.headline(
        "decision latency at ~1 000 events/s (tick wall time p99)",
        format!("{p99_ms:.2} ms"),
        "p99 < 5 ms",
        Some(p99_ms < 5.0),
    );
    r.raw("Decision latency at a steady ~1 000 events/s", &[shown(&lat_args)], &text);
    std::fs::remove_file(&lat_file).ok();
    Ok(())
}

fn control_plane_scale(r: &mut Report, quick: bool, dir: &Path) -> anyhow::Result<()> {
    let jobs = if quick { "10" } else { "200" };
    let file = dir.join("scale.jsonl").display().to_string();
    let mut rows = String::from(
        "| simulated executors | makespan (virtual) | speed-up vs 1 | utilization |\n|---|---|---|---|\n",
    );
    let (mut out, mut cmds, mut base, mut at10) = (String::new(), Vec::new(), None, None);
    for w in ["1", "10", "50", "100"] {
        let a = args(&[
            "gen",
            "--jobs",
            jobs,
            "--shape",
            "fanout:10",
            "--workers",
            w,
            "--slots",
            "1",
            "--duration-ms",
            "1000",
            "--out",
            &file,
        ]);
        let text = run_self(&a)?;
        let makespan = kv(&text, "makespan_ms").unwrap_or(f64::NAN);
        let util = kv(&text, "utilization").unwrap_or(f64::NAN);
        let b = *base.get_or_insert(makespan);
        let speedup = b / makespan;
        if w == "10" {
            at10 = Some(speedup);
        }
        let _ =
            writeln!(rows, "| {w} | {:.1} s | {speedup:.2}× | {:.1} % |", makespan / 1000.0, util * 100.0);
        cmds.push(shown(&a));
        out.push_str(&text);
    }
    std::fs::remove_file(&file).ok();
    let s10 = at10.unwrap_or(0.0);
    r.headline(
        "control-plane scale-out, 10 simulated executors vs 1",
        format!("{s10:.2}×"),
        "≥ 9×",
        Some(s10 >= 9.0),
    );
    let _ = write!(r.details, "\n#### Control-plane scale-out (simulated executors)\n\n{rows}");
    r.raw("Control-plane scale-out: commands", &cmds, &out);
    Ok(())
}

async fn inference_scale(r: &mut Report) -> anyhow::Result<()> {
    let mut table = String::from(
        "| layout | executors | wall | jobs/min | speed-up | CPU utilization |\n|---|---|---|---|---|---|\n",
    );
    let mut best_util = 0.0f64;
    let mut one_core_speedup = None;
    for (threads, label) in [(1, "one core per attempt"), (0, "cores shared out (default)")] {
        let a = ScaleBenchArgs {
            executors: vec![1, 2],
            jobs: 4,
            threads,
            job: "examples/support-tickets.json".into(),
            max_tokens: 48,
        };
        let rows: Vec<ScaleRow> = super::scale::measure(&a).await?;
        for row in &rows {
            let _ = writeln!(
                table,
                "| {label} | {} | {:.1} s | {:.2} | {:.2}× | {:.1} % |",
                row.executors,
                row.wall_s,
                row.jobs_per_min,
                row.speedup,
                row.cpu_utilization * 100.0
            );
            best_util = best_util.max(row.cpu_utilization);
        }
        if threads == 1 {
            one_core_speedup = rows.get(1).map(|r| r.speedup);
        }
    }
    r.headline(
        "scale-out on real inference, 2 one-core executors vs 1 (2 cores)",
        format!("{:.2}×", one_core_speedup.unwrap_or(0.0)),
        "linear in cores",
        None,
    );
    r.headline(
        "CPU utilization during real inference (best layout)",
        format!("{:.1} %", best_util * 100.0),
        "≥ 90 %",
        Some(best_util >= 0.9),
    );
    let _ = write!(
        r.details,
        "\n#### Scale-out on real inference\n\n4 × `examples/support-tickets.json` (48 tokens per map) per run, models warmed first, \
         CPU from /proc/stat over the window. Command: `splai bench scale --executors 1,2 --threads 1` and \
         `splai bench scale --executors 1,2`.\n\n{table}"
    );
    Ok(())
}

/// `splai bench recovery` at each history size: start to live from a snapshot, against the
/// first (smallest) size, and the full replay's figure beside it.
fn recovery(r: &mut Report, args: &ReportArgs) -> anyhow::Result<()> {
    let sizes = if args.quick { vec![200, 600] } else { args.recovery_history.clone() };
    let mut base = None;
    let (mut commands, mut outputs) = (Vec::new(), String::new());
    for n in sizes {
        let a = self::args(&["bench", "recovery", "--history", &n.to_string()]);
        let text = run_self(&a)?;
        let from_snapshot = kv(&text, "from_snapshot_s").unwrap_or(f64::NAN);
        let replay = kv(&text, "full_replay_s").unwrap_or(f64::NAN);
        let ids_read = kv(&text, "job_ids_read_s").unwrap_or(f64::NAN);
        let base_s = *base.get_or_insert(from_snapshot);
        let ratio = from_snapshot / base_s;
        r.headline(
            &format!("scheduler start → live after {n} jobs of history, from its snapshot"),
            format!(
                "{:.0} ms ({ratio:.1}× the first size; every job id read at {:.0} ms; full replay {replay:.2} s)",
                from_snapshot * 1000.0,
                ids_read * 1000.0
            ),
            "≤ 2× the 10 000-job figure",
            Some(ratio <= 2.0),
        );
        commands.push(shown(&a));
        outputs.push_str(&text);
    }
    r.raw("Start to live after history (snapshot vs full replay)", &commands, &outputs);
    Ok(())
}

/// `splai bench failover`: SIGKILL of the leading scheduler with a standby warm.
fn failover(r: &mut Report, quick: bool) -> anyhow::Result<()> {
    let a = self::args(&["bench", "failover", "--runs", if quick { "1" } else { "3" }, "--lease-ms", "1000"]);
    let text = run_self(&a)?;
    let fence = kv(&text, "kill_to_fence_ms").unwrap_or(f64::NAN);
    let after_expiry = kv(&text, "expiry_to_fence_max_ms").unwrap_or(f64::NAN);
    let done = kv(&text, "kill_to_job_done_ms").unwrap_or(f64::NAN);
    r.headline(
        "failover: SIGKILL of the leading scheduler, standby warm (lease 1 s)",
        format!(
            "standby leads {fence:.0} ms after the kill, ≤ {after_expiry:.0} ms after the lease's end; a job submitted at the kill done in {done:.0} ms"
        ),
        "leads within 3 s of the lease's end, no task run twice",
        Some(after_expiry <= 3000.0),
    );
    r.raw("Failover", &[shown(&a)], &text);
    Ok(())
}

async fn resumability(r: &mut Report, quick: bool) -> anyhow::Result<()> {
    let a = if quick {
        ResumeBenchArgs { levels: 4, task_ms: 100, kill_at: 0.4, executors: 2 }
    } else {
        ResumeBenchArgs { levels: 12, task_ms: 400, kill_at: 0.4, executors: 2 }
    };
    let x: ResumeReport = super::resume::measure(&a).await?;
    let ok = x.rerun_succeeded_tasks == 0 && x.lineage_intact && x.state == JobState::Succeeded;
    r.headline(
        "resumability: SIGKILL of scheduler + executors mid-job",
        format!(
            "{}; {} succeeded tasks re-run; lineage {}; {:.1} s lost",
            x.state,
            x.rerun_succeeded_tasks,
            if x.lineage_intact { "intact" } else { "BROKEN" },
            x.time_lost_s
        ),
        "no succeeded task re-run, lineage intact",
        Some(ok),
    );
    let _ = write!(
        r.details,
        "\n#### Resumability\n\n`splai bench resume --levels {} --task-ms {}`: {} tasks; killed with {} done. Baseline \
         {:.1} s, interrupted run {:.1} s (includes the restart), restart ready after {:.1} s, next task done {:.1} s \
         after the kill.\n\n```json\n{}\n```\n",
        a.levels,
        a.task_ms,
        x.tasks,
        x.done_at_kill,
        x.baseline_s,
        x.interrupted_s,
        x.restart_ready_s,
        x.restart_to_next_success_s,
        serde_json::to_string_pretty(&x)?
    );
    Ok(())
}

fn render(r: &Report, started: Instant, quick: bool) -> String {
    let mut s = format!("{BEGIN}\n## `splai bench report`\n\n");
    let _ = writeln!(s, "{}  ", machine());
    let _ = writeln!(
        s,
        "Generated {} in {:.0} s{}. Reproduce: `cargo build --release && target/release/splai bench report` \
         (the commands of each part are below).\n",
        chrono_like_now(),
        started.elapsed().as_secs_f64(),
        if quick { " with `--quick` (small sizes: not the project's figures)" } else { "" }
    );
    s.push_str("| measure | result | target | met |\n|---|---|---|---|\n");
    for h in &r.headlines {
        let met = match h.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let _ = writeln!(s, "| {} | {} | {} | {met} |", h.what, h.result, h.target);
    }
    s.push_str("\n### Details\n");
    s.push_str(&r.details);
    let _ = writeln!(s, "\n{END}");
    s
}

/// UTC now as `YYYY-MM-DD HH:MM` (civil from days, no date crate needed).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Put `section` between the markers of `path` (or at its end; or as the whole new file).
fn write_section(path: &Path, section: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &old[..b], section.trim_end(), &old[e + END.len()..])
        }
        _ if old.is_empty() => format!("# Benchmarks\n\n{section}"),
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

pub async fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let scratch = tempfile::Builder::new().prefix("splai-report-").tempdir()?;
    let mut r = Report::default();
    eprintln!("report: control-plane throughput");
    control_plane(&mut r, args.quick)?;
    eprintln!("report: per-hop overhead");
    hops(&mut r, args.quick)?;
    eprintln!("report: fan-out DAG");
    fanout(&mut r, args.quick)?;
    eprintln!("report: scheduler replay and decision latency");
    replay(&mut r, args.quick, args.replay_jobs, scratch.path())?;
    eprintln!("report: control-plane scale-out");
    control_plane_scale(&mut r, args.quick, scratch.path())?;
    if args.skip_inference || args.quick {
        let _ = write!(
            r.details,
            "\n#### Scale-out on real inference\n\nSkipped in this run (`--quick` or `--skip-inference`).\n"
        );
    } else {
        eprintln!("report: scale-out on real inference");
        inference_scale(&mut r).await?;
    }
    eprintln!("report: resumability");
    resumability(&mut r, args.quick).await?;
    eprintln!("report: scheduler failover");
    failover(&mut r, args.quick)?;
    eprintln!("report: start to live after history");
    recovery(&mut r, args)?;
    let section = render(&r, started, args.quick);
    write_section(&args.out, &section)?;
    println!("wrote the report to {} ({} headline figures)", args.out.display(), r.headlines.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_read_from_bench_output() {
        let line = "log=Embedded jobs=4 tasks=80 seconds=0.5 tasks_per_s=160";
        assert_eq!(kv(line, "tasks_per_s"), Some(160.0));
        assert_eq!(kv("median per_hop_overhead_ms=2.58 x", "median per_hop_overhead_ms"), Some(2.58));
        assert_eq!(kv("nothing", "tasks_per_s"), None);
    }

    #[test]
    fn the_section_replaces_only_what_is_between_the_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        std::fs::write(&path, format!("# B\n\nhand-written\n\n{BEGIN}\nold\n{END}\n\ntail\n")).unwrap();
        write_section(&path, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("# B\n\nhand-written\n\n{BEGIN}\nnew\n{END}\n\ntail\n"));
    }

    #[test]
    fn civil_date_is_plausible() {
        let now = chrono_like_now();
        assert!(now.starts_with("20") && now.ends_with("UTC"), "{now}");
    }
}
