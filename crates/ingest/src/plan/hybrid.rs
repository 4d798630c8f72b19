//! The hybrid planner: a request of type `auto` (a `goal` in words, optional material `text`)
//! becomes a planning task that asks the model for the job's DAG — constrained by a JSON schema
//! built from the catalogue of steps it may use, decoded greedily (same request and model ⇒
//! same DAG) — and appends it at run time as a sub-DAG (`expand`). The scheduler validates the
//! proposal with the rules every DAG obeys; one it refuses gives way to the template planner's
//! plan for the same material (`expand.fallback`), with the reason recorded on `job_expanded`.

use serde_json::{Value, json};
use splai_events::{Dag, Expand, JobRequest, JobType, Requirements, SubDag, TaskKind};

use super::templates::{invalid, lit, plan_template, task};
use super::{Limits, PlanError};

/// Steps a proposal may have at most (the schema's `maxItems`); a request may ask for fewer.
pub const MAX_STEPS: u64 = 6;
const DEFAULT_STEPS: u64 = 3;
/// How much of the material the planning prompt shows the model.
const PREVIEW_CHARS: usize = 400;
const PLAN_TOKENS: u64 = 600;

/// What a planned step may be. Every step reads one text (the material, or an earlier step's
/// output) and follows an instruction: the shape a small model can fill in reliably, and one
/// schema without alternatives (the structured-output automaton has no `anyOf`).
#[derive(Debug)]
pub struct Catalogue {
    pub kinds: &'static [TaskKind],
}

pub const CATALOGUE: Catalogue = Catalogue { kinds: &[TaskKind::LlmInference] };

/// Plan an `auto` request: `input` (the material as a task), `plan` (the model's proposal,
/// expanded at run time, with the template plan as its fallback).
pub fn plan_auto(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    let input = &request.input;
    let goal = match input.get("goal") {
        Some(Value::String(g)) if !g.trim().is_empty() => g.trim().to_string(),
        _ => return Err(invalid("goal", "expected a non-empty string: what the job should achieve")),
    };
    let text = match input.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(invalid("text", "expected a string")),
    };
    let steps = match input.get("max_steps") {
        None | Some(Value::Null) => DEFAULT_STEPS,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_STEPS).contains(n))
            .ok_or_else(|| invalid("max_steps", format!("expected an integer in 1..={MAX_STEPS}")))?,
    };
    let fallback = fallback(request, &goal, text.as_deref(), limits)?;
    let material = text.clone().unwrap_or_else(|| goal.clone());
    let input_task = task(
        "input",
        TaskKind::ToolExecution,
        vec![
            ("tool", lit("template")),
            ("template", lit("{{material}}")),
            ("material", lit(material.clone())),
        ],
        vec![],
        Requirements::default(),
    );
    let planner = match input.get("proposal") {
        // A pinned proposal (reviewed earlier, or a test's) goes through the same validation.
        Some(p) if !p.is_null() => task(
            "plan",
            TaskKind::Aggregation,
            vec![("mode", lit("concat")), ("part-0", lit(p.clone()))],
            vec!["input".into()],
            Requirements::default(),
        ),
        _ => task(
            "plan",
            TaskKind::LlmInference,
            vec![
                ("prompt", lit(prompt(&goal, &material, steps))),
                ("max_tokens", lit(PLAN_TOKENS)),
                ("response_format", lit(response_format(steps))),
            ],
            vec!["input".into()],
            Requirements { model: request.model.clone(), ..Requirements::default() },
        ),
    };
    let planner = splai_events::TaskSpec { expand: Some(Expand { fallback: Some(fallback) }), ..planner };
    Ok(Dag { tasks: vec![input_task, planner] })
}

/// The template plan for the same material: `batch_analysis` of `text` with the goal as its
/// question, or `chat` on the goal alone (the request's `fallback` may name either).
fn fallback(
    request: &JobRequest,
    goal: &str,
    text: Option<&str>,
    limits: &Limits,
) -> Result<SubDag, PlanError> {
    let kind = match (request.input.get("fallback").and_then(Value::as_str), text) {
        (Some("chat"), _) | (None, None) => JobType::Chat,
        (Some("batch_analysis"), Some(_)) | (None, Some(_)) => JobType::BatchAnalysis,
        (Some(other), _) => {
            return Err(invalid(
                "fallback",
                format!("`{other}` is not a fallback (chat, or batch_analysis with `text`)"),
            ));
        }
    };
    let input = match (kind, text) {
        (JobType::BatchAnalysis, Some(t)) => json!({"text": t, "question": goal}),
        (_, Some(t)) => json!({"prompt": format!("{t}\n\n{goal}")}),
        (_, None) => json!({"prompt": goal}),
    };
    let templated = JobRequest { job_type: kind, input, dag: None, job_id: None, ..request.clone() };
    let dag = plan_template(&templated, limits)?;
    let output = dag.only_sink().map(|t| t.id.clone());
    Ok(SubDag { tasks: dag.tasks, output })
}

fn step_ids(steps: u64) -> Vec<String> {
    (1..=steps).map(|i| format!("step{i}")).collect()
}

/// The DAG's schema narrowed to the catalogue: step `i` is `step{i}` and reads its text from the
/// material or an earlier step (`prefixItems`); its parents are what it reads (a proposal's task
/// without `parents` depends on the outputs its inputs name, `parse_subdag`). So what the model
/// writes always parses and has no missing parent and no cycle; whether `output` names a step it
/// wrote is the validator's to say.
pub fn response_format(steps: u64) -> Value {
    let ids = step_ids(steps);
    let steps_at: Vec<Value> = (0..ids.len()).map(|i| step_schema(&ids[i], &ids[..i])).collect();
    json!({"type": "json_schema", "json_schema": {"name": "dag", "strict": true, "schema": {
        "type": "object",
        "required": ["tasks", "output"],
        "properties": {
            "tasks": {"type": "array", "minItems": 1, "maxItems": steps, "prefixItems": steps_at},
            "output": {"enum": ids},
        },
    }}})
}

/// The schema of the step `id`, which may read the material or any of `earlier`.
fn step_schema(id: &str, earlier: &[String]) -> Value {
    let sources: Vec<&str> = std::iter::once("input").chain(earlier.iter().map(String::as_str)).collect();
    let kinds: Vec<String> = CATALOGUE.kinds.iter().map(splai_events::wire_name).collect();
    json!({
        "type": "object",
        "required": ["id", "kind", "inputs"],
        "properties": {
            "id": {"const": id},
            "kind": {"enum": kinds},
            "inputs": {
                "type": "object",
                "required": ["text", "prompt"],
                "properties": {
                    "text": {"type": "object", "required": ["output"], "properties": {
                        "output": {"type": "object", "required": ["task", "pointer"], "properties": {
                            "task": {"enum": sources}, "pointer": {"const": "/text"}}}}},
                    "prompt": {"type": "object", "required": ["literal"], "properties": {
                        "literal": {"type": "string", "minLength": 3, "maxLength": 200}}},
                },
            },
        },
    })
}

/// A worked example, written out by hand: keys in the order a step is best written in (its text
/// source first), which a small model copies far more reliably than the sorted keys a
/// serialiser writes.
const EXAMPLE: &str = r#"{"tasks": [
 {"id": "step1", "inputs": {"text": {"output": {"task": "input", "pointer": "/text"}}, "prompt": {"literal": "List every problem the text mentions."}}, "kind": "llm_inference"},
 {"id": "step2", "inputs": {"text": {"output": {"task": "step1", "pointer": "/text"}}, "prompt": {"literal": "Which problem comes up most often?"}}, "kind": "llm_inference"}
], "output": "step2"}"#;

fn prompt(goal: &str, material: &str, steps: u64) -> String {
    let preview: String = material.chars().take(PREVIEW_CHARS).collect();
    format!(
        "Plan a job as JSON: at most {steps} steps. Each step follows its prompt on one text: the \
         user's material (task \"input\") or the output of an earlier step. \"output\" is the \
         step whose answer the user gets.\n\
         Example plan:\n{EXAMPLE}\n\n\
         Goal: {goal}\n\
         The material starts: {preview}\n\n\
         The plan for this goal:\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use splai_events::TaskInput;

    fn auto(input: Value) -> JobRequest {
        serde_json::from_value(json!({"type": "auto", "input": input})).unwrap()
    }

    #[test]
    fn an_auto_job_is_the_material_and_a_planning_task_with_its_fallback() {
        let request = auto(json!({"goal": "Which problems recur?", "text": "a broke\nb broke\na broke"}));
        let dag = plan(&request, &Limits::default()).unwrap();
        let ids: Vec<&str> = dag.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["input", "plan"]);
        let plan_task = &dag.tasks[1];
        assert_eq!(plan_task.kind, TaskKind::LlmInference);
        let fallback = plan_task.expand.as_ref().unwrap().fallback.as_ref().unwrap();
        assert_eq!(fallback.output.as_deref(), Some("summary"), "the batch_analysis template");
        assert!(compiles(&plan_task.inputs["response_format"]), "the schema compiles to an automaton");
        // Same request ⇒ same DAG, byte for byte.
        assert_eq!(
            serde_json::to_string(&dag).unwrap(),
            serde_json::to_string(&plan(&request, &Limits::default()).unwrap()).unwrap()
        );
        let chat = plan(&auto(json!({"goal": "Name three colours."})), &Limits::default()).unwrap();
        let fallback = chat.tasks[1].expand.as_ref().unwrap().fallback.as_ref().unwrap();
        assert_eq!(fallback.output.as_deref(), Some("chat"));
    }

    fn compiles(format: &TaskInput) -> bool {
        let TaskInput::Literal(v) = format else { return false };
        matches!(crate::structured::response_format(v), Ok(Some(_)))
    }

    #[test]
    fn bad_auto_requests_name_the_field() {
        let err = |input: Value| plan(&auto(input), &Limits::default()).unwrap_err();
        assert_eq!(err(json!({})).field().as_deref(), Some("input.goal"));
        assert_eq!(err(json!({"goal": "x", "max_steps": 9})).field().as_deref(), Some("input.max_steps"));
        assert_eq!(err(json!({"goal": "x", "fallback": "embed"})).field().as_deref(), Some("input.fallback"));
        assert_eq!(err(json!({"goal": "x", "text": 3})).field().as_deref(), Some("input.text"));
    }

    #[test]
    fn a_pinned_proposal_replaces_the_model_and_is_validated_the_same_way() {
        let proposal = json!({"tasks": [{"id": "s", "kind": "aggregation"}]});
        let dag = plan(&auto(json!({"goal": "x", "proposal": proposal})), &Limits::default()).unwrap();
        assert_eq!(dag.tasks[1].kind, TaskKind::Aggregation);
        assert_eq!(dag.tasks[1].inputs["part-0"], TaskInput::Literal(proposal));
        assert!(dag.tasks[1].expand.is_some());
    }

    #[test]
    fn the_example_in_the_prompt_is_a_valid_proposal() {
        let request = auto(json!({"goal": "g", "text": "t"}));
        let dag = plan(&request, &Limits::default()).unwrap();
        let TaskInput::Literal(Value::String(p)) = &dag.tasks[1].inputs["prompt"] else { panic!() };
        assert!(p.contains(EXAMPLE));
        let sub = crate::plan::parse_subdag(&json!(EXAMPLE)).unwrap();
        crate::plan::expand(&dag, "plan", &sub, &Limits::default()).unwrap();
        let shape = crate::structured::response_format(&response_format(DEFAULT_STEPS)).unwrap().unwrap();
        assert!(crate::structured::Machine::new(std::sync::Arc::new(shape)).accepts(EXAMPLE.as_bytes()));
    }

    #[test]
    fn a_step_may_read_only_the_material_or_an_earlier_step() {
        let shape = crate::structured::response_format(&response_format(3)).unwrap().unwrap();
        let m = crate::structured::Machine::new(std::sync::Arc::new(shape));
        let step = |id: &str, reads: &str| {
            format!(
                r#"{{"id": "{id}", "inputs": {{"text": {{"output": {{"task": "{reads}", "pointer": "/text"}}}}, "prompt": {{"literal": "abc"}}}}, "kind": "llm_inference"}}"#
            )
        };
        let plan = |steps: &[String]| format!(r#"{{"tasks": [{}], "output": "step1"}}"#, steps.join(","));
        assert!(m.accepts(plan(&[step("step1", "input"), step("step2", "step1")]).as_bytes()));
        assert!(!m.accepts(plan(&[step("step1", "step2")]).as_bytes()), "a later step");
        assert!(!m.accepts(plan(&[step("step2", "input")]).as_bytes()), "steps come in order");
    }
}
