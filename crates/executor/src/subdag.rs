//! Sub-DAGs at run time, the executor's side: the `map` tool writes one task per item of a list
//! known only now (plus an optional reduce over their outputs), and [`proposal`] hands an
//! expanding task's output to the scheduler, which validates and appends it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::AttemptError;

/// The sub-DAG an expanding task's output proposes, as the scheduler reads it: the output
/// itself, or a model's text (which the scheduler parses as JSON).
pub fn proposal(output: &Value) -> Value {
    match output.get("text") {
        Some(text @ Value::String(_)) if output.get("tasks").is_none() => text.clone(),
        _ => output.clone(),
    }
}

/// The `map` tool: `items` (a list), `task` (a task without `id`/`parents`: it gets the item as
/// the literal input named `as`, default `item`), and `reduce` (optional: a task whose inputs
/// `part-NNN` read every item task's output, in item order; it stands for the map's output).
/// Returns `{"tasks", "output"}`; run it as a task with `"expand": {}`.
pub fn map(inputs: &BTreeMap<String, Value>) -> Result<Value, AttemptError> {
    let bad = |reason: String| AttemptError::fatal(format!("tool `map`: {reason}"));
    let items = inputs
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("input `items` must be a list".into()))?;
    let per_item = task_template(inputs, "task")?.ok_or_else(|| bad("input `task` is missing".into()))?;
    let name = match inputs.get("as") {
        None => "item",
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(_) => return Err(bad("input `as` must be a non-empty string".into())),
    };
    if per_item.get("inputs").and_then(|i| i.get(name)).is_some() {
        return Err(bad(format!("input `task` already has an input named `{name}`")));
    }
    let width = items.len().saturating_sub(1).to_string().len().max(3);
    let id = |i: usize| format!("item-{i:0width$}");
    let mut tasks: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut task = per_item.clone();
            task.insert("id".into(), json!(id(i)));
            let inputs = task.entry("inputs").or_insert_with(|| json!({}));
            if let Some(inputs) = inputs.as_object_mut() {
                inputs.insert(name.to_string(), json!({ "literal": item }));
            }
            Value::Object(task)
        })
        .collect();
    let output = match task_template(inputs, "reduce")? {
        None => None,
        Some(mut reduce) => {
            reduce.insert("id".into(), json!("reduce"));
            reduce.insert("parents".into(), json!((0..items.len()).map(id).collect::<Vec<_>>()));
            let parts = reduce.entry("inputs").or_insert_with(|| json!({}));
            if let Some(parts) = parts.as_object_mut() {
                for i in 0..items.len() {
                    parts.insert(format!("part-{i:0width$}"), json!({ "output": { "task": id(i) } }));
                }
            }
            tasks.push(Value::Object(reduce));
            Some("reduce")
        }
    };
    Ok(json!({ "tasks": tasks, "output": output }))
}

/// A task template input: an object without `id` or `parents` (the map gives them).
fn task_template(
    inputs: &BTreeMap<String, Value>,
    name: &str,
) -> Result<Option<Map<String, Value>>, AttemptError> {
    match inputs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) if !o.contains_key("id") && !o.contains_key("parents") => Ok(Some(o.clone())),
        Some(_) => Err(AttemptError::fatal(format!(
            "tool `map`: input `{name}` must be a task object without `id` and `parents`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn one_task_per_item_and_a_reduce_over_them_in_order() {
        let out = map(&inputs(json!({
            "items": ["a", "b"],
            "task": {"kind": "tool_execution", "inputs": {"tool": {"literal": "template"}}},
            "reduce": {"kind": "aggregation", "inputs": {"mode": {"literal": "concat"}}},
        })))
        .unwrap();
        let sub: splai_events::SubDag =
            serde_json::from_value(json!({"tasks": out["tasks"], "output": out["output"]})).unwrap();
        assert_eq!(sub.output.as_deref(), Some("reduce"));
        let ids: Vec<&str> = sub.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["item-000", "item-001", "reduce"]);
        assert_eq!(sub.tasks[1].inputs["item"], splai_events::TaskInput::Literal(json!("b")));
        assert_eq!(sub.tasks[2].parents, ["item-000", "item-001"]);
        assert!(sub.tasks[2].inputs.contains_key("part-001"));
    }

    #[test]
    fn bad_inputs_say_which() {
        let err = |v: Value| map(&inputs(v)).unwrap_err().message;
        assert!(err(json!({"items": "a", "task": {}})).contains("`items` must be a list"));
        assert!(err(json!({"items": []})).contains("`task` is missing"));
        assert!(err(json!({"items": [], "task": {"id": "x"}})).contains("without `id`"));
        let clash = json!({"items": [1], "task": {"inputs": {"item": {"literal": 0}}}});
        assert!(err(clash).contains("already has an input named `item`"));
    }

    #[test]
    fn a_model_s_text_is_the_proposal() {
        assert_eq!(proposal(&json!({"text": "{\"tasks\": []}", "model": "m"})), json!("{\"tasks\": []}"));
        let map_out = json!({"tasks": [], "output": null});
        assert_eq!(proposal(&map_out), map_out);
    }
}
