//! `splai bench chat`: concurrency on real inference. N distinct chat requests (a shared system
//! prompt and a ~45-token ticket each: ~65 prompt tokens), `max_tokens` 64, greedy, all sent at
//! once to `/v1/chat/completions` (or as `chat` jobs to `/v1/jobs`) of an in-process stack with
//! the default layout of `splai up` (one executor per core sharing one engine per model). Reports
//! requests/s, generated tokens/s, latency p50/p95 and the process's CPU utilization, per N.
//! `--reference` then runs llama.cpp on the same model and prompts (scripts/bench_llamacpp_chat.py:
//! sequential, batched, batched with the shared prefix computed once) and prints the ratios;
//! `--write-prompts FILE` writes the prompts alone.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use splai_config::Settings;

use crate::client::Client;
use crate::up::wait_ready;
use splai_stack::{Stack, StackOptions};

#[derive(Debug, clap::Args)]
pub struct ChatBenchArgs {
    /// Requests sent at once, one round per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    pub concurrency: Vec<usize>,
    /// Tokens each request may generate.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// `openai` (POST /v1/chat/completions), `jobs` (chat jobs on /v1/jobs, polled) or `engine`
    /// (the model's engine called in this process, without the control plane: its own share).
    #[arg(long, default_value = "openai")]
    pub via: String,
    /// Write the prompts as JSON ({system, users}) to this file and exit.
    #[arg(long)]
    pub write_prompts: Option<std::path::PathBuf>,
    /// Also run llama.cpp on the same model and prompts (scripts/bench_llamacpp_chat.py in the
    /// venv scripts/bench-llamacpp installs: sequential, batched, batched with shared prefix) and
    /// print SPLAI's ratios to each.
    #[arg(long)]
    pub reference: bool,
}

/// One round's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    n: usize,
    req_per_s: f64,
    tok_per_s: f64,
    p95: f64,
}

/// The system prompt every request shares (the prefix llama.cpp's reference may reuse too).
pub const SYSTEM: &str = "You are a support engineer. Read the customer's ticket and answer with the \
    most likely cause and one next step, in two sentences.";

const PEOPLE: [&str; 8] =
    ["A customer", "An admin", "A new user", "A reseller", "A nurse", "A teacher", "A driver", "A chef"];
const PROBLEMS: [&str; 8] = [
    "cannot log in after resetting the password",
    "sees a blank invoice PDF",
    "finds search very slow every afternoon",
    "is logged out of the mobile app every few minutes",
    "gets a timeout when exporting a large account",
    "receives every notification email twice",
    "cannot upload a photo larger than two megabytes",
    "sees prices in the wrong currency at checkout",
];

/// Request `i`'s ticket: distinct for every i below 64.
pub fn ticket(i: usize) -> String {
    format!(
        "Ticket {}: {} {} since the update on day {} of the month. They tried another browser and \
         cleared the cache, but nothing changed, and their team is now blocked.",
        1000 + i,
        PEOPLE[i % 8],
        PROBLEMS[(i / 8 + i) % 8],
        1 + i % 28
    )
}

fn median_and_p95(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.95))
}

/// CPU seconds this process has used (user + system; /proc reports USER_HZ = 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// One request; (latency s, completion tokens).
async fn one(client: &Client, via: &str, i: usize, max_tokens: u32) -> anyhow::Result<(f64, u64)> {
    let messages = json!([{"role": "system", "content": SYSTEM}, {"role": "user", "content": ticket(i)}]);
    let start = Instant::now();
    if via == "openai" {
        let body = json!({"messages": messages, "max_tokens": max_tokens});
        let (status, reply) = client.post("/v1/chat/completions", &body, None).await?;
        if !(200..300).contains(&status) {
            bail!("request {i}: {status} {reply}");
        }
        let tokens = reply["usage"]["completion_tokens"].as_u64().context("no usage")?;
        return Ok((start.elapsed().as_secs_f64(), tokens));
    }
    let body = json!({"type": "chat", "input": {"messages": messages, "max_tokens": max_tokens}});
    let (status, accepted) = client.post("/v1/jobs", &body, None).await?;
    if !(200..300).contains(&status) {
        bail!("job {i}: {status} {accepted}");
    }
    let job = accepted["job_id"].as_str().context("no job id")?.to_string();
    let doc = client.wait_succeeded(&job, Duration::from_secs(3600)).await?.document;
    let tokens = doc["result"]["usage"]["completion_tokens"].as_u64().context("no usage in the result")?;
    Ok((start.elapsed().as_secs_f64(), tokens))
}

pub async fn run(settings: &Settings, args: &ChatBenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.write_prompts {
        let users: Vec<String> = (0..64).map(ticket).collect();
        std::fs::write(path, serde_json::to_vec_pretty(&json!({"system": SYSTEM, "users": users}))?)?;
        return Ok(());
    }
    if !["openai", "jobs", "engine"].contains(&args.via.as_str()) {
        bail!("--via must be openai, jobs or engine");
    }
    if args.via == "engine" {
        return engine_only(settings, args);
    }
    let (_dir, mut settings) = super::scratch_settings(settings, "chat")?;
    // Every round is inference: later rounds repeat earlier rounds' prompts (as the reference
    // does), and result-cache hits would answer them without running the model.
    settings.executor.result_cache = false;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let stack = Stack::start(&settings, &StackOptions { executors: cores, slots_per_executor: None }).await?;
    let client = crate::client::local(&stack.url)?;
    wait_ready(&client).await?;
    // Warm up: load the model once outside the measurement.
    one(&client, &args.via, 63, 4).await?;
    println!(
        "chat via={} cores={cores} max_batch={} max_tokens={}",
        args.via, settings.executor.max_batch, args.max_tokens
    );
    let mut rounds = Vec::new();
    for &n in &args.concurrency {
        let (cpu0, start) = (cpu_seconds(), Instant::now());
        let runs: Vec<_> = (0..n)
            .map(|i| {
                let (client, via) = (client.clone(), args.via.clone());
                let max_tokens = args.max_tokens;
                tokio::spawn(async move { one(&client, &via, i, max_tokens).await })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut tokens = 0;
        for r in runs {
            let (latency, t) = r.await??;
            latencies.push(latency);
            tokens += t;
        }
        rounds.push(report(n, start.elapsed().as_secs_f64(), cpu0, cores, tokens, latencies));
    }
    stack.shutdown().await?;
    if args.reference {
        reference(&settings, args, &rounds)?;
    }
    Ok(())
}

/// The same requests straight into the model's engine, from one thread each.
fn engine_only(settings: &Settings, args: &ChatBenchArgs) -> anyhow::Result<()> {
    use splai_executor::llm::{GenParams, LlmModel};
    let models = splai_stack::executor::models(settings);
    let model = models.llm(None).map_err(|e| anyhow::anyhow!(e.message))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let prompt =
        |i: usize| LlmModel::chat_prompt(&[("system".into(), SYSTEM.into()), ("user".into(), ticket(i))]);
    let params = GenParams { max_tokens: args.max_tokens as usize, ..GenParams::default() };
    let never = std::sync::Arc::default();
    model
        .generate(&prompt(63), &GenParams { max_tokens: 4, ..params.clone() }, &never, &mut |_, _| {})
        .map_err(|e| anyhow::anyhow!(e.message))?;
    println!(
        "chat via=engine cores={cores} max_batch={} max_tokens={}",
        settings.executor.max_batch, args.max_tokens
    );
    let mut rounds = Vec::new();
    for &n in &args.concurrency {
        let (cpu0, start) = (cpu_seconds(), Instant::now());
        let results: Vec<anyhow::Result<(f64, u64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (model, params, never, prompt) = (&model, &params, &never, &prompt);
                    s.spawn(move || {
                        let begun = Instant::now();
                        let g = model
                            .generate(&prompt(i), params, never, &mut |_, _| {})
                            .map_err(|e| anyhow::anyhow!(e.message))?;
                        Ok((begun.elapsed().as_secs_f64(), u64::from(g.completion_tokens)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a request thread panicked"))))
                .collect()
        });
        let mut latencies = Vec::new();
        let mut tokens = 0;
        for r in results {
            let (latency, t) = r?;
            latencies.push(latency);
            tokens += t;
        }
        rounds.push(report(n, start.elapsed().as_secs_f64(), cpu0, cores, tokens, latencies));
    }
    if args.reference {
        reference(settings, args, &rounds)?;
    }
    Ok(())
}

fn report(n: usize, wall: f64, cpu0: f64, cores: u32, tokens: u64, latencies: Vec<f64>) -> Round {
    let cpu = (cpu_seconds() - cpu0) / (wall * f64::from(cores)) * 100.0;
    let (p50, p95) = median_and_p95(latencies);
    let round = Round { n, req_per_s: n as f64 / wall, tok_per_s: tokens as f64 / wall, p95 };
    println!(
        "splai n={n} req_per_s={:.2} tok_per_s={:.1} completion_tokens={tokens} p50_s={p50:.2} p95_s={p95:.2} cpu_pct={cpu:.0}",
        round.req_per_s, round.tok_per_s,
    );
    round
}

/// A `key=value` field of a reference line.
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// llama.cpp on the same model and prompts; SPLAI's ratios to each of its modes.
fn reference(settings: &Settings, args: &ChatBenchArgs, ours: &[Round]) -> anyhow::Result<()> {
    let gguf = std::path::Path::new(&settings.executor.model_dir)
        .join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.is_file() {
        bail!("{} missing (run scripts/models)", gguf.display());
    }
    let install = std::process::Command::new("scripts/bench-llamacpp").arg("--install-only").status()?;
    if !install.success() {
        bail!("scripts/bench-llamacpp --install-only failed");
    }
    let dir = tempfile::tempdir()?;
    let prompts = dir.path().join("prompts.json");
    let users: Vec<String> = (0..64).map(ticket).collect();
    std::fs::write(&prompts, serde_json::to_vec(&json!({"system": SYSTEM, "users": users}))?)?;
    let sizes: Vec<String> = args.concurrency.iter().map(usize::to_string).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = std::process::Command::new(".venv-bench/bin/python")
        .arg("scripts/bench_llamacpp_chat.py")
        .arg("--model")
        .arg(&gguf)
        .arg("--prompts")
        .arg(&prompts)
        .args(["--concurrency", &sizes.join(","), "--max-tokens", &args.max_tokens.to_string()])
        .args(["--threads", &cores.to_string()])
        .output()?;
    if !out.status.success() {
        bail!("the llama.cpp reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("llamacpp ")).collect();
    for l in &lines {
        println!("{l}");
    }
    let num = |l: &str, k: &str| field(l, k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    for r in ours {
        let of = |mode: &str| {
            lines
                .iter()
                .find(|l| field(l, "mode").as_deref() == Some(mode) && field(l, "n") == Some(r.n.to_string()))
        };
        let mut parts = Vec::new();
        for mode in ["sequential", "batched", "batched-prefix"] {
            if let Some(l) = of(mode) {
                parts.push(format!("req/s {:.2}x {mode}", r.req_per_s / num(l, "req_per_s")));
            }
        }
        if let Some(l) = of("sequential") {
            parts.push(format!("p95 {:.2}x sequential", r.p95 / num(l, "p95_s")));
        }
        println!("ratio n={}: {}", r.n, parts.join(", "));
    }
    Ok(())
}
