//! Sub-DAGs at run time: a task's output appends tasks to its running job. The scheduler calls
//! [`expand`] when it reads the task's success; pure and deterministic, so a replay of the log
//! appends the same tasks with the same ids.

use std::collections::BTreeSet;

use serde_json::Value;
use splai_events::{Dag, SubDag, TaskInput, TaskSpec};

use super::validate::{check_id, check_task_numbers, validate};
use super::{Limits, PlanError};

/// Read an expanding task's output as a sub-DAG: `{"tasks": [...], "output": ...}`, or a JSON
/// string holding one (a model's text).
pub fn parse_subdag(output: &Value) -> Result<SubDag, PlanError> {
    let invalid = |reason: String| PlanError::InvalidInput { field: "subdag".into(), reason };
    let mut parsed = match output {
        Value::String(text) => serde_json::from_str::<Value>(strip_fence(text))
            .map_err(|e| invalid(format!("the output is not JSON: {e}")))?,
        other => other.clone(),
    };
    implied_parents(&mut parsed);
    serde_json::from_value(parsed).map_err(|e| invalid(format!("the output is not a sub-DAG: {e}")))
}

/// A proposed task that leaves out `parents` depends on the tasks whose outputs its inputs read
/// (a model writes each dependency once, where the data flows, instead of twice and
/// inconsistently). A task that lists `parents` keeps exactly them.
fn implied_parents(proposal: &mut Value) {
    let Some(tasks) = proposal.get_mut("tasks").and_then(Value::as_array_mut) else { return };
    for task in tasks.iter_mut().filter_map(Value::as_object_mut) {
        if task.contains_key("parents") {
            continue;
        }
        let mut read: Vec<Value> = Vec::new();
        for input in task.get("inputs").and_then(Value::as_object).into_iter().flat_map(|i| i.values()) {
            if let Some(source) = input.get("output").and_then(|o| o.get("task")).filter(|t| t.is_string())
                && !read.contains(source)
            {
                read.push(source.clone());
            }
        }
        task.insert("parents".into(), Value::Array(read));
    }
}

/// A model may wrap JSON in a Markdown fence.
fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map_or(t, str::trim)
}

/// `dag` with `sub` (the output of its task `by`) appended, the whole validated as any DAG is.
/// New tasks are named `{by}.{id}`; those with no parent in `sub` depend on `by`; `by`'s
/// children depend on `sub`'s sinks and read `sub.output` where they read `by`. Returns the new
/// DAG (old tasks first, in their order) and the added ids.
pub fn expand(dag: &Dag, by: &str, sub: &SubDag, limits: &Limits) -> Result<(Dag, Vec<String>), PlanError> {
    if sub.tasks.is_empty() {
        return Err(PlanError::EmptyDag);
    }
    let total = dag.tasks.len() + sub.tasks.len();
    if total > limits.max_tasks {
        return Err(PlanError::TooManyTasks { count: total, max: limits.max_tasks });
    }
    let local: BTreeSet<&str> = sub.tasks.iter().map(|t| t.id.as_str()).collect();
    let full = |id: &str| format!("{by}.{id}");
    let reachable = ancestors(dag, by);
    let rename = |task: &str, id: &str| -> Result<String, PlanError> {
        if local.contains(id) {
            Ok(full(id))
        } else if reachable.contains(id) {
            Ok(id.to_string())
        } else {
            Err(PlanError::MissingParent { task: full(task), parent: id.to_string() })
        }
    };
    let mut added = Vec::with_capacity(sub.tasks.len());
    for t in &sub.tasks {
        check_id(&t.id)?;
        let mut task = TaskSpec { id: full(&t.id), ..t.clone() };
        check_id(&task.id)?;
        task.parents = t.parents.iter().map(|p| rename(&t.id, p)).collect::<Result<_, _>>()?;
        if !t.parents.iter().any(|p| local.contains(p.as_str())) && !task.parents.iter().any(|p| p == by) {
            task.parents.insert(0, by.to_string());
        }
        for input in task.inputs.values_mut() {
            if let TaskInput::Output(r) = input {
                r.task = rename(&t.id, &r.task)?;
            }
        }
        added.push(task);
    }
    check_task_numbers(&added)?;
    let output = match &sub.output {
        Some(o) if local.contains(o.as_str()) => Some(full(o)),
        Some(o) => {
            return Err(PlanError::InvalidInput {
                field: "subdag.output".into(),
                reason: format!("`{o}` is not a task of the sub-DAG"),
            });
        }
        None => None,
    };
    let sinks: Vec<String> = Dag::sinks_of(&added).map(|t| t.id.clone()).collect();
    let mut tasks = dag.tasks.clone();
    for child in tasks.iter_mut().filter(|t| t.parents.iter().any(|p| p == by)) {
        child.parents.extend(sinks.iter().cloned());
        if let Some(output) = &output {
            child.parents.retain(|p| p != by);
            for input in child.inputs.values_mut() {
                if let TaskInput::Output(r) = input
                    && r.task == by
                {
                    r.task = output.clone();
                }
            }
            if !child.parents.contains(output) {
                child.parents.push(output.clone());
            }
        }
    }
    let ids = added.iter().map(|t| t.id.clone()).collect();
    tasks.extend(added);
    let expanded = Dag { tasks };
    validate(&expanded, limits)?;
    Ok((expanded, ids))
}

/// `by` and every task it depends on, directly or not.
fn ancestors<'a>(dag: &'a Dag, by: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([by]);
    let mut stack = vec![by];
    while let Some(id) = stack.pop() {
        if let Some(t) = dag.tasks.iter().find(|t| t.id == id) {
            for p in &t.parents {
                if seen.insert(p.as_str()) {
                    stack.push(p.as_str());
                }
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dag(v: Value) -> Dag {
        serde_json::from_value(json!({ "tasks": v })).unwrap()
    }

    fn sub(v: Value) -> SubDag {
        parse_subdag(&v).unwrap()
    }

    fn ids(d: &Dag) -> Vec<(&str, Vec<&str>)> {
        d.tasks.iter().map(|t| (t.id.as_str(), t.parents.iter().map(String::as_str).collect())).collect()
    }

    #[test]
    fn appends_namespaced_tasks_and_rewires_children_to_the_output() {
        let job = dag(json!([
            {"id": "list", "kind": "tool_execution"},
            {"id": "map", "kind": "tool_execution", "parents": ["list"], "expand": {}},
            {"id": "report", "kind": "aggregation", "parents": ["map"],
             "inputs": {"part-0": {"output": {"task": "map", "pointer": "/text"}}}},
        ]));
        let proposal = sub(json!({"output": "reduce", "tasks": [
            {"id": "a", "kind": "tool_execution", "parents": ["list"],
             "inputs": {"x": {"output": {"task": "list"}}}},
            {"id": "b", "kind": "tool_execution"},
            {"id": "reduce", "kind": "aggregation", "parents": ["a", "b"],
             "inputs": {"part-a": {"output": {"task": "a"}}}},
        ]}));
        let (out, added) = expand(&job, "map", &proposal, &Limits::default()).unwrap();
        assert_eq!(added, ["map.a", "map.b", "map.reduce"]);
        assert_eq!(
            ids(&out),
            vec![
                ("list", vec![]),
                ("map", vec!["list"]),
                ("report", vec!["map.reduce"]),
                ("map.a", vec!["map", "list"]),
                ("map.b", vec!["map"]),
                ("map.reduce", vec!["map.a", "map.b"]),
            ]
        );
        let report = &out.tasks[2].inputs["part-0"];
        assert_eq!(
            report,
            &TaskInput::Output(splai_events::OutputRef {
                task: "map.reduce".into(),
                pointer: Some("/text".into()),
            })
        );
        assert_eq!(
            out.tasks[5].inputs["part-a"],
            TaskInput::Output(splai_events::OutputRef { task: "map.a".into(), pointer: None })
        );
        // Without an output, children wait for every sink and still read the expanding task.
        let (out, _) = expand(&job, "map", &SubDag { output: None, ..proposal }, &Limits::default()).unwrap();
        assert_eq!(ids(&out)[2], ("report", vec!["map", "map.reduce"]));
    }

    #[test]
    fn refuses_what_a_dag_would_be_refused_for() {
        let job = dag(json!([
            {"id": "side", "kind": "tool_execution"},
            {"id": "map", "kind": "tool_execution", "expand": {}},
        ]));
        let err = |v: Value| expand(&job, "map", &sub(v), &Limits::default()).unwrap_err();
        assert_eq!(err(json!({"tasks": []})).code(), "empty_dag");
        let e = err(json!({"tasks": [{"id": "a", "kind": "aggregation", "parents": ["side"]}]}));
        assert_eq!(e.to_string(), "task `map.a` names parent `side`, which is not in the DAG");
        let dup = json!({"tasks": [{"id": "a", "kind": "aggregation"}, {"id": "a", "kind": "aggregation"}]});
        assert_eq!(err(dup).code(), "duplicate_task_id");
        let cycle = json!({"tasks": [
            {"id": "a", "kind": "aggregation", "parents": ["b"]},
            {"id": "b", "kind": "aggregation", "parents": ["a"]}]});
        assert_eq!(err(cycle).code(), "dag_cycle");
        assert_eq!(err(json!({"tasks": [{"id": "a/b", "kind": "aggregation"}]})).code(), "invalid_task_id");
        let e = err(json!({"output": "z", "tasks": [{"id": "a", "kind": "aggregation"}]}));
        assert_eq!(e.field().as_deref(), Some("subdag.output"));
        let e = err(json!({"tasks": [{"id": "a", "kind": "aggregation", "timeout_s": 0}]}));
        assert_eq!(e.code(), "invalid_input");
        let many: Vec<Value> =
            (0..3).map(|i| json!({"id": format!("t{i}"), "kind": "aggregation"})).collect();
        let limits = Limits { max_tasks: 4, ..Limits::default() };
        let e = expand(&job, "map", &sub(json!({ "tasks": many })), &limits).unwrap_err();
        assert_eq!(e.to_string(), "the DAG has 5 tasks; the limit is 4");
    }

    #[test]
    fn reads_a_model_s_text_and_says_why_not() {
        let fenced = json!("```json\n{\"tasks\": [{\"id\": \"a\", \"kind\": \"aggregation\"}]}\n```");
        assert_eq!(parse_subdag(&fenced).unwrap().tasks[0].id, "a");
        // Parents left out are the tasks the inputs read; listed ones are kept as they are.
        let implied = parse_subdag(&json!({"tasks": [
            {"id": "a", "kind": "aggregation", "inputs": {"x": {"output": {"task": "input"}}, "y": {"output": {"task": "input"}}}},
            {"id": "b", "kind": "aggregation", "inputs": {"x": {"output": {"task": "a", "pointer": "/text"}}}},
            {"id": "c", "kind": "aggregation", "parents": ["a", "b"]}]}))
        .unwrap();
        let parents: Vec<&Vec<String>> = implied.tasks.iter().map(|t| &t.parents).collect();
        assert_eq!(
            parents,
            [&vec!["input".to_string()], &vec!["a".to_string()], &vec!["a".to_string(), "b".to_string()]]
        );
        let e = parse_subdag(&json!("I would split the text first")).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = parse_subdag(&json!({"tasks": [{"id": "a", "kind": "dance"}]})).unwrap_err();
        assert!(e.to_string().contains("not a sub-DAG"), "{e}");
    }
}
