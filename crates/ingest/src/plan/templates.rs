//! The job templates.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use splai_events::{Dag, JobRequest, JobType, OutputRef, Requirements, TaskInput, TaskKind, TaskSpec};

use super::{Limits, PlanError, chunk_lines, chunk_texts, validate};

const MAP_PROMPT: &str = "Say briefly what the lines above are about.";
const SUMMARY_PROMPT: &str = "The notes above were written about parts of one document. Combine them into one short summary of the main points, without repeating any point.";

/// Plan `request` with the templates (`auto` with the hybrid planner's) into a validated DAG.
pub(super) fn plan_template(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    if let Some(id) = &request.job_id {
        super::validate::check_job_id(id)?;
    }
    let bytes = json_len(&request.input).saturating_add(request.dag.as_ref().map_or(0, json_len));
    if bytes > limits.max_input_bytes {
        return Err(PlanError::InputTooLarge { bytes, max: limits.max_input_bytes });
    }
    if request.dag.is_some() && request.job_type != JobType::Explicit {
        return Err(PlanError::UnexpectedDag);
    }
    let dag = match request.job_type {
        JobType::Chat => chat(request)?,
        JobType::BatchAnalysis => batch_analysis(request, limits)?,
        JobType::Embed => embed(request, limits)?,
        JobType::Explicit => request.dag.clone().ok_or(PlanError::MissingDag)?,
        JobType::Auto => super::hybrid::plan_auto(request, limits)?,
    };
    let mut dag = dag;
    if request.cache == Some(false) {
        dag.tasks.iter_mut().for_each(|t| t.cache = Some(false));
    }
    validate(&dag, limits)?;
    super::validate::check_numbers(request, &dag)?;
    // A fallback sub-DAG is appended without a model in the loop: it must be valid now.
    for t in &dag.tasks {
        if let Some(fallback) = t.expand.as_ref().and_then(|e| e.fallback.as_ref()) {
            super::expand(&dag, &t.id, fallback, limits).map_err(|e| PlanError::InvalidInput {
                field: format!("dag.tasks[{}].expand.fallback", t.id),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(dag)
}

/// The length of `value` as JSON, counted without building the text.
fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Plain data with string keys always serialises; were it not to, it is too large to plan.
    serde_json::to_writer(&mut count, value).map_or(usize::MAX, |()| count.0)
}

pub(super) fn lit(v: impl Into<Value>) -> TaskInput {
    TaskInput::Literal(v.into())
}

pub(super) fn out(task: &str, pointer: Option<String>) -> TaskInput {
    TaskInput::Output(OutputRef { task: task.to_string(), pointer })
}

pub(super) fn task(
    id: &str,
    kind: TaskKind,
    inputs: Vec<(&str, TaskInput)>,
    parents: Vec<String>,
    req: Requirements,
) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        kind,
        inputs: inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
        parents,
        requirements: req,
        timeout_s: None,
        max_retries: None,
        cache: None,
        expand: None,
    }
}

fn model_req(request: &JobRequest) -> Requirements {
    Requirements { model: request.model.clone(), ..Requirements::default() }
}

fn field<'a>(input: &'a Value, name: &str) -> Option<&'a Value> {
    input.get(name).filter(|v| !v.is_null())
}

pub(super) fn invalid(field: &str, reason: impl Into<String>) -> PlanError {
    PlanError::InvalidInput { field: format!("input.{field}"), reason: reason.into() }
}

fn opt_u64(input: &Value, name: &str, max: u64) -> Result<Option<u64>, PlanError> {
    match field(input, name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= max => Ok(Some(n)),
            _ => Err(invalid(name, format!("expected an integer in 1..={max}"))),
        },
    }
}

fn opt_string<'a>(input: &'a Value, name: &str) -> Result<Option<&'a str>, PlanError> {
    match field(input, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name, "expected a string")),
    }
}

/// Generation parameters passed through to inference tasks.
fn generation(input: &Value) -> Result<Vec<(&'static str, TaskInput)>, PlanError> {
    let mut params = Vec::new();
    if let Some(n) = opt_u64(input, "max_tokens", super::MAX_TOKENS)? {
        params.push(("max_tokens", lit(n)));
    }
    if let Some(t) = field(input, "temperature") {
        match t.as_f64() {
            Some(x) if (0.0..=2.0).contains(&x) => params.push(("temperature", lit(t.clone()))),
            _ => return Err(invalid("temperature", "expected a number in 0..=2")),
        }
    }
    if let Some(s) = field(input, "seed") {
        if s.as_u64().is_none() {
            return Err(invalid("seed", "expected a non-negative integer"));
        }
        params.push(("seed", lit(s.clone())));
    }
    if let Some(stop) = field(input, "stop") {
        let ok = stop.is_string()
            || stop.as_array().is_some_and(|a| a.len() <= 4 && a.iter().all(Value::is_string));
        if !ok {
            return Err(invalid("stop", "expected a string or up to 4 strings"));
        }
        params.push(("stop", lit(stop.clone())));
    }
    if let Some(format) = field(input, "response_format") {
        // Refused here, at submission, rather than by the attempt that would run it.
        crate::structured::response_format(format).map_err(|e| invalid(&e.path, &e.reason))?;
        params.push(("response_format", lit(format.clone())));
    }
    Ok(params)
}

fn chat(request: &JobRequest) -> Result<Dag, PlanError> {
    let input = &request.input;
    let messages = match (field(input, "messages"), opt_string(input, "prompt")?) {
        (Some(Value::Array(m)), None) if !m.is_empty() => {
            for (i, msg) in m.iter().enumerate() {
                let role_ok = msg
                    .get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|r| ["system", "user", "assistant"].contains(&r));
                if !role_ok || !msg.get("content").is_some_and(Value::is_string) {
                    return Err(invalid(
                        &format!("messages[{i}]"),
                        "expected {\"role\": system|user|assistant, \"content\": string}",
                    ));
                }
            }
            Value::Array(m.clone())
        }
        (None, Some(p)) => json!([{ "role": "user", "content": p }]),
        (Some(_), Some(_)) => {
            return Err(invalid("messages", "give either `messages` or `prompt`, not both"));
        }
        _ => {
            return Err(invalid("messages", "expected a non-empty array of messages (or a `prompt` string)"));
        }
    };
    let mut inputs = vec![("messages", lit(messages))];
    inputs.extend(generation(input)?);
    Ok(Dag { tasks: vec![task("chat", TaskKind::LlmInference, inputs, vec![], model_req(request))] })
}

fn batch_analysis(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    let input = &request.input;
    match opt_string(input, "mode")? {
        Some("records") => return super::records::plan(request, limits),
        None | Some("chunks") => {}
        Some(other) => return Err(invalid("mode", format!("`{other}` is not a mode (records, chunks)"))),
    }
    let question = opt_string(input, "question")?.unwrap_or(MAP_PROMPT).to_string();
    let per_chunk = opt_u64(input, "chunk_lines", 10_000)?.map_or(limits.default_chunk_lines, |n| n as usize);
    let generation = generation(input)?;
    let mut tasks = Vec::new();
    let map_input: Vec<TaskInput> = match (opt_string(input, "text")?, field(input, "items")) {
        (Some(text), None) => split_fan_out(text, per_chunk, false, 3, limits, &mut tasks)?,
        (None, Some(Value::Array(items))) if !items.is_empty() => {
            if let Some(i) = items.iter().position(|v| !v.is_string()) {
                return Err(invalid(&format!("items[{i}]"), "expected a string"));
            }
            check_fan_out(items.len(), 2, limits)?;
            items.iter().map(|v| lit(v.clone())).collect()
        }
        (Some(_), Some(_)) => return Err(invalid("text", "give either `text` or `items`, not both")),
        _ => {
            return Err(invalid(
                "text",
                "expected `text` (a string) or `items` (a non-empty array of strings)",
            ));
        }
    };
    let split_parent: Vec<String> = if tasks.is_empty() { vec![] } else { vec!["split".into()] };
    let mut parts = Vec::new();
    for (i, chunk) in map_input.into_iter().enumerate() {
        let id = format!("map-{i}");
        let mut inputs = vec![("prompt", lit(question.clone())), ("text", chunk)];
        inputs.extend(generation.iter().cloned());
        tasks.push(task(&id, TaskKind::LlmInference, inputs, split_parent.clone(), model_req(request)));
        parts.push(id);
    }
    let mut reduce_inputs: Vec<(String, TaskInput)> = vec![("mode".into(), lit("concat"))];
    reduce_inputs.extend(parts.iter().enumerate().map(|(i, p)| (format!("part-{i:05}"), out(p, None))));
    tasks.push(TaskSpec {
        id: "reduce".into(),
        kind: TaskKind::Aggregation,
        inputs: reduce_inputs.into_iter().collect(),
        parents: parts,
        requirements: Requirements::default(),
        timeout_s: None,
        max_retries: None,
        cache: None,
        expand: None,
    });
    let mut summary = vec![("prompt", lit(SUMMARY_PROMPT)), ("text", out("reduce", Some("/text".into())))];
    summary.extend(generation);
    tasks.push(task("summary", TaskKind::LlmInference, summary, vec!["reduce".into()], model_req(request)));
    Ok(Dag { tasks })
}

fn embed(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    let input = &request.input;
    let batch = limits.embed_batch;
    let embed_req = Requirements { model: request.model.clone(), ..Requirements::default() };
    let mut tasks = Vec::new();
    let batches: Vec<TaskInput> = match (opt_string(input, "text")?, field(input, "texts")) {
        (Some(text), None) => split_fan_out(text, batch, true, 2, limits, &mut tasks)?,
        (None, Some(Value::Array(texts))) if !texts.is_empty() => {
            let texts: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(&format!("texts[{i}]"), "expected a string"))
                })
                .collect::<Result<_, _>>()?;
            let groups = chunk_texts(&texts, batch);
            check_fan_out(groups.len(), 1, limits)?;
            groups.into_iter().map(|g| lit(json!(g))).collect()
        }
        (Some(_), Some(_)) => return Err(invalid("text", "give either `text` or `texts`, not both")),
        _ => return Err(invalid("texts", "expected `texts` (a non-empty array of strings) or `text`")),
    };
    let split_parent: Vec<String> = if tasks.is_empty() { vec![] } else { vec!["split".into()] };
    let mut parts = Vec::new();
    for (i, texts) in batches.into_iter().enumerate() {
        let id = format!("embed-{i}");
        tasks.push(task(
            &id,
            TaskKind::Embedding,
            vec![("texts", texts)],
            split_parent.clone(),
            embed_req.clone(),
        ));
        parts.push(id);
    }
    let mut merge_inputs: Vec<(String, TaskInput)> = vec![("mode".into(), lit("concat_vectors"))];
    merge_inputs.extend(parts.iter().enumerate().map(|(i, p)| (format!("part-{i:05}"), out(p, None))));
    tasks.push(TaskSpec {
        id: "merge".into(),
        kind: TaskKind::Aggregation,
        inputs: merge_inputs.into_iter().collect(),
        parents: parts,
        requirements: Requirements::default(),
        timeout_s: None,
        max_retries: None,
        cache: None,
        expand: None,
    });
    Ok(Dag { tasks })
}

/// A `split` task cutting `text` into chunks of `per_chunk` lines (as lists of lines when
/// `as_lists`), and one input reference per chunk, for `fixed` other tasks besides the fan-out.
fn split_fan_out(
    text: &str,
    per_chunk: usize,
    as_lists: bool,
    fixed: usize,
    limits: &Limits,
    tasks: &mut Vec<TaskSpec>,
) -> Result<Vec<TaskInput>, PlanError> {
    let n = chunk_lines(text, per_chunk).len();
    if n == 0 {
        return Err(invalid("text", "has no non-empty lines"));
    }
    check_fan_out(n, fixed, limits)?;
    let mut inputs =
        vec![("tool", lit("split_lines")), ("text", lit(text)), ("lines_per_chunk", lit(per_chunk as u64))];
    if as_lists {
        inputs.push(("as_lists", lit(true)));
    }
    tasks.push(task(
        "split",
        TaskKind::ToolExecution,
        inputs,
        vec![],
        Requirements { tools: vec!["split_lines".into()], ..Requirements::default() },
    ));
    Ok((0..n).map(|i| out("split", Some(format!("/chunks/{i}")))).collect())
}

/// `n` fanned-out tasks plus `fixed` others must fit the task limit.
fn check_fan_out(n: usize, fixed: usize, limits: &Limits) -> Result<(), PlanError> {
    if n + fixed > limits.max_tasks {
        return Err(PlanError::TooManyTasks { count: n + fixed, max: limits.max_tasks });
    }
    Ok(())
}
