//! `splai submit | jobs | job | cancel | logs | workers | artifacts`: the gateway from the shell.
//! Exit codes: 0 done (a waited job succeeded), 1 a waited job ended failed, cancelled or
//! rejected, 2 any error (bad flags, configuration, an API error, an unreachable gateway).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use splai_events::TaskState;

use super::{Client, JobState, SseEvent};

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// A job request as a JSON or YAML file (`-` reads stdin).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Job type when building the request from flags: chat, batch_analysis, embed, explicit, auto.
    #[arg(long = "type", value_name = "TYPE")]
    pub job_type: Option<String>,
    /// The `input` document, as JSON.
    #[arg(long)]
    pub input: Option<String>,
    /// Put this file's text in `input.text` (batch_analysis, embed, auto).
    #[arg(long)]
    pub text_file: Option<PathBuf>,
    /// A chat prompt (`input.messages` with one user message).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Model for inference tasks.
    #[arg(long)]
    pub model: Option<String>,
    /// Priority: interactive, standard, batch.
    #[arg(long)]
    pub priority: Option<String>,
    /// Same key and same request ⇒ the same job.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Follow the job: a progress bar of tasks done, tokens as they are generated, then the result.
    #[arg(long)]
    pub wait: bool,
}

/// The request document from the flags.
pub fn request_of(args: &SubmitArgs) -> anyhow::Result<Value> {
    let mut request: Value = match &args.file {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
            };
            let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if yaml {
                serde_yaml_ng::from_str(&text)
                    .with_context(|| format!("{} is not valid YAML", path.display()))?
            } else {
                serde_json::from_str(&text)
                    .or_else(|_| serde_yaml_ng::from_str(&text))
                    .with_context(|| format!("{} is neither JSON nor YAML", path.display()))?
            }
        }
        None => json!({}),
    };
    let Some(doc) = request.as_object_mut() else { bail!("the request must be a JSON/YAML object") };
    if let Some(t) = &args.job_type {
        doc.insert("type".into(), json!(t));
    }
    let input = doc.entry("input").or_insert_with(|| json!({}));
    if let Some(i) = &args.input {
        *input = serde_json::from_str(i).context("--input is not valid JSON")?;
    }
    if let Some(path) = &args.text_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        input["text"] = json!(text);
    }
    if let Some(p) = &args.prompt {
        input["messages"] = json!([{"role": "user", "content": p}]);
    }
    for (key, value) in [("model", &args.model), ("priority", &args.priority)] {
        if let Some(v) = value {
            doc.insert(key.into(), json!(v));
        }
    }
    if !doc.contains_key("type") {
        bail!("say what to run: --file REQUEST.json, or --type with --input / --text-file / --prompt");
    }
    Ok(request)
}

pub async fn submit(client: &Client, args: &SubmitArgs) -> anyhow::Result<u8> {
    let request = request_of(args)?;
    let (status, body) = client.post("/v1/jobs", &request, args.idempotency_key.as_deref()).await?;
    let job_id = body["job_id"].as_str().unwrap_or_default().to_string();
    let note = if status == 200 { " (already submitted with this idempotency key)" } else { "" };
    eprintln!("job {job_id} accepted{note}; trace {}", body["trace_id"].as_str().unwrap_or("-"));
    if !args.wait {
        println!("{job_id}");
        return Ok(0);
    }
    wait(client, &job_id, true).await
}

/// Follow a job to its end; print its result. Returns the exit code.
pub async fn wait(client: &Client, job_id: &str, show_tokens: bool) -> anyhow::Result<u8> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut done = std::collections::BTreeSet::new();
    let mut tokens = String::new();
    client
        .follow(job_id, None, |e: &SseEvent| {
            match e.event.as_str() {
                "job.snapshot" => {
                    bar.set_length(e.data["job"]["tasks_total"].as_u64().unwrap_or(0));
                    for t in e.data["tasks"].as_array().into_iter().flatten() {
                        if task_state(t) == Some(TaskState::Succeeded) {
                            done.insert(t["task_id"].as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                "job.status" => {
                    if let Some(n) = e.data["tasks_total"].as_u64() {
                        bar.set_length(n);
                    }
                    bar.set_message(format!("job {}", e.data["state"].as_str().unwrap_or("?")));
                }
                "task.update"
                    if task_state(&e.data) == Some(TaskState::Runnable) && e.data["reason"].is_string() =>
                {
                    let task = e.data["task_id"].as_str().unwrap_or("");
                    bar.set_message(format!("{task} waits: {}", e.data["reason"].as_str().unwrap_or("")));
                }
                "task.update" if task_state(&e.data) == Some(TaskState::Succeeded) => {
                    done.insert(e.data["task_id"].as_str().unwrap_or_default().to_string());
                }
                "task.tokens" if show_tokens => {
                    tokens.push_str(e.data["delta"].as_str().unwrap_or(""));
                    let tail: String =
                        tokens.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
                    bar.set_message(format!(
                        "{}: …{}",
                        e.data["task_id"].as_str().unwrap_or(""),
                        tail.replace('\n', " ")
                    ));
                }
                _ => {}
            }
            bar.set_position(done.len() as u64);
            true
        })
        .await?;
    bar.finish_and_clear();
    let Some(job) = client.job(job_id).await? else { bail!("the gateway no longer knows job {job_id}") };
    eprintln!("job {job_id} {}: {}/{} tasks succeeded", job.state, job.tasks_succeeded, job.tasks_total);
    if job.state != JobState::Succeeded {
        eprintln!("reason: {}", job.reason.as_deref().unwrap_or("(none given)"));
        return Ok(1);
    }
    print_result(job.result.as_ref().unwrap_or(&Value::Null));
    Ok(0)
}

/// The state a task document (a `/v1/jobs/{id}/tasks` row, a `task.update` event) carries, as the
/// contract's enum; `None` when it carries none this client knows (the display then shows the raw
/// name and takes it for neither done nor waiting).
fn task_state(doc: &Value) -> Option<TaskState> {
    doc["state"].as_str().and_then(|name| splai_events::from_wire(name).ok())
}

/// The result: the generated text when there is one, else the JSON.
fn print_result(result: &Value) {
    match result.get("text").and_then(Value::as_str) {
        Some(text) => println!("{text}"),
        None => println!("{}", serde_json::to_string_pretty(result).unwrap_or_default()),
    }
}

pub async fn jobs(client: &Client, state: Option<&str>, limit: u32) -> anyhow::Result<u8> {
    let mut path = format!("/v1/jobs?limit={limit}");
    if let Some(s) = state {
        path.push_str(&format!("&state={s}"));
    }
    let body = client.get(&path).await?;
    println!("{:<44} {:<15} {:<10} {:>9}  SUBMITTED", "JOB", "TYPE", "STATE", "TASKS");
    for j in body["jobs"].as_array().into_iter().flatten() {
        println!(
            "{:<44} {:<15} {:<10} {:>4}/{:<4}  {}",
            j["job_id"].as_str().unwrap_or(""),
            j["type"].as_str().unwrap_or(""),
            j["state"].as_str().unwrap_or(""),
            j["tasks_succeeded"],
            j["tasks_total"],
            j["submitted_at_ms"]
        );
    }
    Ok(0)
}

pub async fn job(client: &Client, id: &str) -> anyhow::Result<u8> {
    let job = client.get(&format!("/v1/jobs/{id}")).await?;
    let tasks = client.get(&format!("/v1/jobs/{id}/tasks?limit=500")).await?;
    println!(
        "job {id}  type {}  state {}  trace {}",
        job["type"].as_str().unwrap_or(""),
        job["state"].as_str().unwrap_or(""),
        job["trace_id"].as_str().unwrap_or("-")
    );
    if let Some(r) = job["reason"].as_str() {
        println!("reason: {r}");
    }
    for w in job["waiting"].as_array().into_iter().flatten() {
        println!(
            "waiting: task {}: {}",
            w["task_id"].as_str().unwrap_or(""),
            w["reason"].as_str().unwrap_or("")
        );
    }
    let list: Vec<Value> = tasks["tasks"].as_array().cloned().unwrap_or_default();
    print!("{}", tree(&list));
    if !job["result"].is_null() {
        println!("result:");
        print_result(&job["result"]);
    }
    Ok(0)
}

/// The DAG as an indented tree: roots first, each task under its first parent.
pub fn tree(tasks: &[Value]) -> String {
    let id = |t: &Value| t["task_id"].as_str().unwrap_or("").to_string();
    let first_parent = |t: &Value| {
        t["parents"].as_array().and_then(|p| p.first()).and_then(Value::as_str).map(str::to_string)
    };
    fn walk(
        out: &mut String,
        tasks: &[Value],
        node: &Value,
        depth: usize,
        seen: &mut std::collections::HashSet<String>,
    ) {
        let id = node["task_id"].as_str().unwrap_or("");
        if !seen.insert(id.to_string()) {
            return;
        }
        let parents = node["parents"].as_array().map_or(0, Vec::len);
        let also = if parents > 1 { format!("  (+{} more parents)", parents - 1) } else { String::new() };
        let why = match (task_state(node), node["reason"].as_str()) {
            (
                Some(
                    TaskState::Runnable | TaskState::Failed | TaskState::DeadLettered | TaskState::Cancelled,
                ),
                Some(r),
            ) => format!("  — {r}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}{} [{}] {} attempt {}{}{}\n",
            "  ".repeat(depth),
            id,
            node["kind"].as_str().unwrap_or(""),
            node["state"].as_str().unwrap_or(""),
            node["attempt"],
            also,
            why
        ));
        for child in tasks
            .iter()
            .filter(|t| t["parents"].as_array().and_then(|p| p.first()).and_then(Value::as_str) == Some(id))
        {
            walk(out, tasks, child, depth + 1, seen);
        }
    }
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for root in tasks.iter().filter(|t| first_parent(t).is_none()) {
        walk(&mut out, tasks, root, 0, &mut seen);
    }
    for rest in tasks {
        if !seen.contains(&id(rest)) {
            walk(&mut out, tasks, rest, 0, &mut seen);
        }
    }
    out
}

pub async fn cancel(client: &Client, id: &str) -> anyhow::Result<u8> {
    let (status, body) = client.delete(&format!("/v1/jobs/{id}")).await?;
    if status == 200 {
        println!("job {id} already {}", body["state"].as_str().unwrap_or("finished"));
    } else {
        println!("job {id}: cancellation requested");
    }
    Ok(0)
}

pub async fn logs(client: &Client, id: &str, last_event_id: Option<String>) -> anyhow::Result<u8> {
    let mut out = std::io::stdout();
    client
        .follow(id, last_event_id, |e| {
            if e.event != "end" {
                let _ = writeln!(out, "{} {} {}", e.id.as_deref().unwrap_or("-"), e.event, e.data);
            }
            true
        })
        .await?;
    Ok(0)
}

pub async fn workers(client: &Client) -> anyhow::Result<u8> {
    let body = client.get("/v1/workers").await?;
    println!("{:<28} {:<5} {:>5} {:>7} {:>7}  MODELS", "WORKER", "LIVE", "SLOTS", "RUNNING", "CPU%");
    for w in body["workers"].as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<5} {:>5} {:>7} {:>7.1}  {}",
            w["worker_id"].as_str().unwrap_or(""),
            if w["live"] == true { "yes" } else { "no" },
            w["slots"],
            w["running"],
            w["cpu_pct"].as_f64().unwrap_or(0.0),
            w["models"]
        );
    }
    Ok(0)
}

pub async fn artifacts(client: &Client, id: &str, task: Option<&str>) -> anyhow::Result<u8> {
    let body = client.get(&format!("/v1/jobs/{id}/artifacts")).await?;
    let list = body["artifacts"].as_array().cloned().unwrap_or_default();
    if let Some(task) = task {
        let Some(a) = list.iter().filter(|a| a["task_id"] == task).max_by_key(|a| a["attempt"].as_i64())
        else {
            bail!("task `{task}` of job {id} has no artifact");
        };
        let content = client.get(&format!("/v1/jobs/{id}/artifacts/{task}/{}", a["attempt"])).await?;
        println!("{}", serde_json::to_string_pretty(&content)?);
        return Ok(0);
    }
    for a in &list {
        println!(
            "{}  {} bytes  sha256 {}  inputs {}",
            a["path"].as_str().unwrap_or(""),
            a["size_bytes"],
            a["sha256"].as_str().unwrap_or(""),
            a["inputs"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(0)
}
