//! DAG validation: one specific error per fault, checked in a fixed order so the same DAG always
//! gets the same error.

use std::collections::{BTreeMap, BTreeSet};

use splai_events::{Dag, TaskInput};

use super::{Limits, PlanError};

/// Check a DAG against `limits`.
pub fn validate(dag: &Dag, limits: &Limits) -> Result<(), PlanError> {
    if dag.tasks.is_empty() {
        return Err(PlanError::EmptyDag);
    }
    if dag.tasks.len() > limits.max_tasks {
        return Err(PlanError::TooManyTasks { count: dag.tasks.len(), max: limits.max_tasks });
    }
    let mut ids = BTreeSet::new();
    for task in &dag.tasks {
        check_id(&task.id)?;
        if !ids.insert(task.id.as_str()) {
            return Err(PlanError::DuplicateTaskId { task: task.id.clone() });
        }
    }
    for task in &dag.tasks {
        for parent in &task.parents {
            if !ids.contains(parent.as_str()) {
                return Err(PlanError::MissingParent { task: task.id.clone(), parent: parent.clone() });
            }
        }
        for (name, input) in &task.inputs {
            if let TaskInput::Output(r) = input
                && !task.parents.contains(&r.task)
            {
                return Err(PlanError::MissingOutput {
                    task: task.id.clone(),
                    input: name.clone(),
                    source_task: r.task.clone(),
                });
            }
        }
    }
    if let Some(path) = find_cycle(dag) {
        return Err(PlanError::Cycle { path });
    }
    Ok(())
}

pub(super) fn check_id(id: &str) -> Result<(), PlanError> {
    let reason = if id.is_empty() {
        "must not be empty"
    } else if id.len() > 64 {
        "longer than 64 bytes"
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        "only ASCII letters, digits, '_', '.' and '-' are allowed"
    } else if id == "." || id == ".." {
        "`.` and `..` are not ids"
    } else {
        return Ok(());
    };
    Err(PlanError::InvalidTaskId { task: id.chars().take(80).collect(), reason })
}

/// Documented ranges of a request's numbers (docs/api.md): a value outside is refused naming
/// its field, never clamped.
pub const MAX_RETRIES: u32 = 100;
/// A task's attempt timeout (s): one day at most.
pub const MAX_TASK_TIMEOUT_S: u32 = 86_400;
/// A whole job's deadline (s): a week at most.
pub const MAX_JOB_TIMEOUT_S: u32 = 7 * 86_400;
pub const MAX_CPU_SLOTS: u32 = 1_024;
pub const MAX_MEMORY_MB: u32 = 1 << 20;

fn in_range(field: String, value: u32, min: u32, max: u32) -> Result<(), PlanError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(PlanError::InvalidInput { field, reason: format!("{value} is outside {min}..={max}") })
    }
}

/// Every number of `request` and of `dag`'s tasks within its documented range.
pub fn check_numbers(request: &splai_events::JobRequest, dag: &Dag) -> Result<(), PlanError> {
    if let Some(n) = request.max_retries {
        in_range("max_retries".into(), n, 0, MAX_RETRIES)?;
    }
    if let Some(n) = request.timeout_s {
        in_range("timeout_s".into(), n, 1, MAX_JOB_TIMEOUT_S)?;
    }
    check_task_numbers(&dag.tasks)
}

/// Every number of `tasks` within its documented range.
pub fn check_task_numbers(tasks: &[splai_events::TaskSpec]) -> Result<(), PlanError> {
    for (i, t) in tasks.iter().enumerate() {
        let field = |name: &str| format!("dag.tasks[{i}].{name}");
        if let Some(n) = t.max_retries {
            in_range(field("max_retries"), n, 0, MAX_RETRIES)?;
        }
        if let Some(n) = t.timeout_s {
            in_range(field("timeout_s"), n, 1, MAX_TASK_TIMEOUT_S)?;
        }
        in_range(field("requirements.cpu_slots"), t.requirements.cpu_slots, 1, MAX_CPU_SLOTS)?;
        in_range(field("requirements.memory_mb"), t.requirements.memory_mb, 0, MAX_MEMORY_MB)?;
        for (name, range) in literal_ranges(t) {
            if let Some(TaskInput::Literal(v)) = t.inputs.get(name) {
                range.check(field(&format!("inputs.{name}")), v)?;
            }
        }
    }
    Ok(())
}

/// The range of a number a task's kind reads from its inputs.
#[derive(Clone, Copy)]
enum Range {
    Int(u64, u64),
    Number(f64, f64),
}

impl Range {
    fn check(self, field: String, v: &serde_json::Value) -> Result<(), PlanError> {
        let fits = match self {
            Range::Int(min, max) => v.as_u64().is_some_and(|n| (min..=max).contains(&n)),
            Range::Number(min, max) => v.as_f64().is_some_and(|x| (min..=max).contains(&x)),
        };
        if fits {
            return Ok(());
        }
        let reason = match self {
            Range::Int(min, max) => format!("{v} is not an integer in {min}..={max}"),
            Range::Number(min, max) => format!("{v} is not a number in {min}..={max}"),
        };
        Err(PlanError::InvalidInput { field, reason })
    }
}

/// Most tokens one inference may generate (as the chat templates allow).
pub const MAX_TOKENS: u64 = 4_096;
/// Longest `sleep` (ms), as the tool allows.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The numeric inputs `task` reads, by name, with their documented ranges (docs/api.md), checked
/// at admission when given as literals (a parent's output is checked when the attempt reads it).
fn literal_ranges(task: &splai_events::TaskSpec) -> Vec<(&'static str, Range)> {
    use splai_events::TaskKind;
    match task.kind {
        TaskKind::LlmInference => vec![
            ("max_tokens", Range::Int(1, MAX_TOKENS)),
            ("temperature", Range::Number(0.0, 2.0)),
            ("seed", Range::Int(0, u64::MAX)),
            ("repeat_penalty", Range::Number(1.0, 2.0)),
        ],
        TaskKind::ToolExecution => match task.inputs.get("tool") {
            Some(TaskInput::Literal(serde_json::Value::String(tool))) if tool == "sleep" => {
                vec![("ms", Range::Int(0, MAX_SLEEP_MS))]
            }
            Some(TaskInput::Literal(serde_json::Value::String(tool))) if tool == "shell" => {
                vec![("timeout_ms", Range::Int(1, u64::from(MAX_TASK_TIMEOUT_S) * 1_000))]
            }
            _ => vec![],
        },
        TaskKind::Aggregation => vec![("k", Range::Int(1, 10_000)), ("top", Range::Int(1, 10_000))],
        _ => vec![],
    }
}

/// A job id names a directory of artifacts and travels in URLs: the same alphabet as task ids,
/// up to 128 bytes.
pub fn check_job_id(id: &str) -> Result<(), PlanError> {
    let reason = if id.is_empty() || id.len() > 128 {
        "must be 1 to 128 bytes"
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        "only ASCII letters, digits, '_', '.' and '-' are allowed"
    } else if id == "." || id == ".." {
        "`.` and `..` are not ids"
    } else {
        return Ok(());
    };
    Err(PlanError::InvalidInput { field: "job_id".into(), reason: reason.into() })
}

/// A cycle as a path `a -> b -> … -> a`, or `None`. Deterministic: searches from the smallest id.
fn find_cycle(dag: &Dag) -> Option<Vec<String>> {
    // child -> parents edges, walked as "depends on".
    let deps: BTreeMap<&str, Vec<&str>> = dag
        .tasks
        .iter()
        .map(|t| {
            let mut p: Vec<&str> = t.parents.iter().map(String::as_str).collect();
            p.sort_unstable();
            (t.id.as_str(), p)
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = deps.keys().map(|k| (*k, Mark::New)).collect();
    for start in deps.keys() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS keeping the current path.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        mark.insert(start, Mark::Active);
        while let Some((node, next)) = stack.last().copied() {
            let parents = &deps[node];
            if next < parents.len() {
                stack.last_mut().expect("non-empty").1 += 1;
                let p = parents[next];
                match mark[p] {
                    Mark::New => {
                        mark.insert(p, Mark::Active);
                        stack.push((p, 0));
                    }
                    Mark::Active => {
                        // The cycle is the path from `p` to `node`, then back to `p`; report it in
                        // dependency order (parent before child).
                        let at = stack.iter().position(|(n, _)| *n == p).expect("active node is on the path");
                        let mut path: Vec<String> = stack[at..].iter().map(|(n, _)| n.to_string()).collect();
                        path.reverse();
                        // Canonical form: start at the smallest id.
                        let min = (0..path.len()).min_by(|a, b| path[*a].cmp(&path[*b])).unwrap_or(0);
                        path.rotate_left(min);
                        path.push(path[0].clone());
                        return Some(path);
                    }
                    Mark::Done => {}
                }
            } else {
                mark.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}
