//! The planner: templates, determinism, and one specific error per fault.

use proptest::prelude::*;
use serde_json::json;
use splai_events::{Dag, JobRequest, TaskInput, TaskKind};
use splai_ingest::plan::{Limits, PlanError, parse_request, plan};

fn request(value: serde_json::Value) -> JobRequest {
    parse_request(&value).unwrap()
}

fn ids(dag: &Dag) -> Vec<&str> {
    dag.tasks.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn chat_is_one_inference_task() {
    let dag = plan(
        &request(json!({"type": "chat", "input": {"prompt": "hi", "max_tokens": 8}})),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(ids(&dag), ["chat"]);
    assert_eq!(dag.tasks[0].kind, TaskKind::LlmInference);
    assert_eq!(dag.tasks[0].inputs["max_tokens"], TaskInput::Literal(json!(8)));
}

#[test]
fn batch_analysis_fans_out_by_the_input() {
    let text: String = (0..45).map(|i| format!("ticket {i}: something broke\n")).collect();
    let r = request(json!({"type": "batch_analysis", "input": {"text": text, "chunk_lines": 20}}));
    let dag = plan(&r, &Limits::default()).unwrap();
    assert_eq!(ids(&dag), ["split", "map-0", "map-1", "map-2", "reduce", "summary"]);
    assert_eq!(dag.tasks[4].parents, ["map-0", "map-1", "map-2"]);
    assert_eq!(dag.tasks[5].parents, ["reduce"]);
    let small = request(json!({"type": "batch_analysis", "input": {"text": "a\nb", "chunk_lines": 1}}));
    assert_eq!(plan(&small, &Limits::default()).unwrap().tasks.len(), 5);
    let items = request(json!({"type": "batch_analysis", "input": {"items": ["x", "y", "z", "w"]}}));
    assert_eq!(
        ids(&plan(&items, &Limits::default()).unwrap()),
        ["map-0", "map-1", "map-2", "map-3", "reduce", "summary"]
    );
}

#[test]
fn embed_batches_texts() {
    let texts: Vec<String> = (0..70).map(|i| format!("t{i}")).collect();
    let dag =
        plan(&request(json!({"type": "embed", "input": {"texts": texts}})), &Limits::default()).unwrap();
    assert_eq!(ids(&dag), ["embed-0", "embed-1", "embed-2", "merge"]);
    assert!(dag.tasks[..3].iter().all(|t| t.kind == TaskKind::Embedding));
}

fn explicit(tasks: serde_json::Value) -> Result<Dag, PlanError> {
    let value = json!({"type": "explicit", "dag": {"tasks": tasks}});
    plan(&parse_request(&value)?, &Limits::default())
}

#[test]
fn each_fault_has_its_own_error() {
    let t = |id: &str, parents: &[&str]| json!({"id": id, "kind": "aggregation", "parents": parents});
    assert_eq!(
        explicit(json!([t("a", &[]), t("a", &[])])).unwrap_err(),
        PlanError::DuplicateTaskId { task: "a".into() }
    );
    assert_eq!(
        explicit(json!([{"id": "x", "kind": "quantum_annealing"}])).unwrap_err(),
        PlanError::UnknownKind { task: "x".into(), kind: "quantum_annealing".into() }
    );
    assert_eq!(
        explicit(json!([t("a", &["c"]), t("b", &["a"]), t("c", &["b"]), t("d", &[])])).unwrap_err(),
        PlanError::Cycle { path: vec!["a".into(), "b".into(), "c".into(), "a".into()] }
    );
    assert_eq!(
        explicit(json!([t("a", &["ghost"])])).unwrap_err(),
        PlanError::MissingParent { task: "a".into(), parent: "ghost".into() }
    );
    let err = explicit(
        json!([t("a", &[]), {"id": "b", "kind": "aggregation", "inputs": {"x": {"output": {"task": "a"}}}}]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PlanError::MissingOutput { task: "b".into(), input: "x".into(), source_task: "a".into() }
    );
    assert_eq!(err.field().as_deref(), Some("dag.tasks[b].inputs.x"));
    let many: Vec<_> = (0..1001).map(|i| t(&format!("t{i}"), &[])).collect();
    assert_eq!(explicit(json!(many)).unwrap_err(), PlanError::TooManyTasks { count: 1001, max: 1000 });
    let big = "x".repeat(2 << 20);
    let err =
        plan(&request(json!({"type": "chat", "input": {"prompt": big}})), &Limits::default()).unwrap_err();
    assert!(matches!(err, PlanError::InputTooLarge { max: 1_048_576, .. }), "{err:?}");
    assert_eq!(explicit(json!([])).unwrap_err(), PlanError::EmptyDag);
    assert!(matches!(explicit(json!([t("a b", &[])])).unwrap_err(), PlanError::InvalidTaskId { .. }));
    assert_eq!(
        plan(&request(json!({"type": "explicit"})), &Limits::default()).unwrap_err(),
        PlanError::MissingDag
    );
    let err =
        plan(&request(json!({"type": "chat", "input": {"messages": []}})), &Limits::default()).unwrap_err();
    assert_eq!(err.field().as_deref(), Some("input.messages"));
    let err =
        plan(&request(json!({"type": "batch_analysis", "input": {"text": "\n\n"}})), &Limits::default())
            .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(
        parse_request(&json!({"type": "chat", "priorty": "batch"}))
            .unwrap_err()
            .to_string()
            .contains("priorty")
    );
}

#[test]
fn self_loop_is_a_cycle() {
    let err = explicit(json!([{"id": "a", "kind": "aggregation", "parents": ["a"]}])).unwrap_err();
    assert_eq!(err, PlanError::Cycle { path: vec!["a".into(), "a".into()] });
}

/// A random DAG: task i may depend on any earlier task.
fn dag_strategy() -> impl Strategy<Value = Vec<(usize, Vec<usize>)>> {
    (1usize..30).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                proptest::collection::vec(0..i.max(1), 0..3.min(i + 1))
                    .prop_map(move |p| (i, if i == 0 { vec![] } else { p }))
            })
            .collect::<Vec<_>>()
    })
}

fn to_json(shape: &[(usize, Vec<usize>)]) -> serde_json::Value {
    json!(
        shape
            .iter()
            .map(|(i, ps)| {
                let mut ps: Vec<String> = ps.iter().map(|p| format!("t{p}")).collect();
                ps.sort();
                ps.dedup();
                json!({"id": format!("t{i}"), "kind": "aggregation", "parents": ps})
            })
            .collect::<Vec<_>>()
    )
}

proptest! {
    #[test]
    fn acyclic_dags_are_admitted_and_back_edges_are_cycles(shape in dag_strategy(), pick in any::<proptest::sample::Index>()) {
        let dag = explicit(to_json(&shape)).unwrap();
        prop_assert_eq!(dag.tasks.len(), shape.len());
        // Add an edge from a task to one of its ancestors-or-self: always a cycle.
        let (child, parents) = &shape[pick.index(shape.len())];
        if let Some(p) = parents.first() {
            let mut cyclic = shape.clone();
            cyclic[*p].1.push(*child);
            let err = explicit(to_json(&cyclic)).unwrap_err();
            match err {
                PlanError::Cycle { path } => {
                    prop_assert_eq!(path.first(), path.last());
                    prop_assert!(path.len() >= 3);
                }
                other => prop_assert!(false, "expected a cycle, got {:?}", other),
            }
        }
    }

    #[test]
    fn planning_is_deterministic(lines in proptest::collection::vec("[a-z ]{0,30}", 1..200), per in 1u64..50) {
        let text = lines.join("\n");
        let r = json!({"type": "batch_analysis", "input": {"text": text, "chunk_lines": per}});
        let a = plan(&request(r.clone()), &Limits::default());
        let b = plan(&request(r), &Limits::default());
        match (a, b) {
            (Ok(a), Ok(b)) => prop_assert_eq!(serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&b).unwrap()),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "one planned, the other not"),
        }
    }
}

/// Issue 16 item 11: every number of a request has a range, and a value outside it is refused
/// naming the field (`max_retries: 1000000000` was accepted).
#[test]
fn numbers_outside_their_range_name_their_field() {
    let refused = |v: serde_json::Value| match plan(&request(v), &Limits::default()) {
        Err(PlanError::InvalidInput { field, reason }) => (field, reason),
        other => panic!("expected invalid_input, got {other:?}"),
    };
    let chat = |extra: serde_json::Value| {
        let mut v = json!({"type": "chat", "input": {"prompt": "hi"}});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let (field, reason) = refused(chat(json!({"max_retries": 1_000_000_000u32})));
    assert_eq!(field, "max_retries");
    assert!(reason.contains("0..=100"), "{reason}");
    assert_eq!(refused(chat(json!({"timeout_s": 0}))).0, "timeout_s");
    assert_eq!(refused(chat(json!({"timeout_s": 700_000}))).0, "timeout_s");
    let task = |extra: serde_json::Value| {
        let mut t = json!({"id": "a", "kind": "aggregation"});
        t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"type": "explicit", "dag": {"tasks": [t]}})
    };
    assert_eq!(refused(task(json!({"max_retries": 101}))).0, "dag.tasks[0].max_retries");
    assert_eq!(refused(task(json!({"timeout_s": 86_401}))).0, "dag.tasks[0].timeout_s");
    assert_eq!(
        refused(task(json!({"requirements": {"cpu_slots": 0}}))).0,
        "dag.tasks[0].requirements.cpu_slots"
    );
    assert_eq!(
        refused(task(json!({"requirements": {"cpu_slots": 5000}}))).0,
        "dag.tasks[0].requirements.cpu_slots"
    );
    // In range, it plans.
    let ok = chat(json!({"max_retries": 100, "timeout_s": 604_800}));
    assert!(plan(&request(ok), &Limits::default()).is_ok());
}

#[test]
fn numbers_a_task_reads_from_literal_inputs_are_checked_at_admission() {
    let one = |kind: &str, inputs: serde_json::Value| {
        let mut named = serde_json::Map::new();
        for (k, v) in inputs.as_object().unwrap() {
            named.insert(k.clone(), json!({"literal": v}));
        }
        request(json!({"type": "explicit", "dag": {"tasks": [{"id": "a", "kind": kind, "inputs": named}]}}))
    };
    let refused = |r: JobRequest| match plan(&r, &Limits::default()) {
        Err(PlanError::InvalidInput { field, reason }) => (field, reason),
        other => panic!("expected invalid_input, got {other:?}"),
    };
    let (field, reason) = refused(one("llm_inference", json!({"prompt": "hi", "max_tokens": 1_000_000})));
    assert_eq!(field, "dag.tasks[0].inputs.max_tokens");
    assert!(reason.contains("1..=4096"), "{reason}");
    assert_eq!(
        refused(one("llm_inference", json!({"prompt": "hi", "temperature": 5}))).0,
        "dag.tasks[0].inputs.temperature"
    );
    assert_eq!(
        refused(one("llm_inference", json!({"prompt": "hi", "seed": -1}))).0,
        "dag.tasks[0].inputs.seed"
    );
    assert_eq!(
        refused(one("tool_execution", json!({"tool": "sleep", "ms": 3_600_000}))).0,
        "dag.tasks[0].inputs.ms"
    );
    assert_eq!(
        refused(one("tool_execution", json!({"tool": "sleep", "ms": "10"}))).0,
        "dag.tasks[0].inputs.ms"
    );
    assert_eq!(refused(one("aggregation", json!({"mode": "top_k", "k": 0}))).0, "dag.tasks[0].inputs.k");
    // In range, or read from a parent's output (checked when the attempt reads it), it plans.
    assert!(
        plan(
            &one("llm_inference", json!({"prompt": "hi", "max_tokens": 64, "temperature": 0.7})),
            &Limits::default()
        )
        .is_ok()
    );
    assert!(plan(&one("tool_execution", json!({"tool": "sleep", "ms": 60_000})), &Limits::default()).is_ok());
    let from_parent = request(json!({"type": "explicit", "dag": {"tasks": [
        {"id": "p", "kind": "aggregation"},
        {"id": "a", "kind": "llm_inference", "parents": ["p"],
         "inputs": {"prompt": {"literal": "hi"}, "max_tokens": {"output": {"task": "p"}}}}]}}));
    assert!(plan(&from_parent, &Limits::default()).is_ok());
}

/// Every request in `examples/` (what the README tells users to submit) plans.
#[test]
fn the_example_requests_plan() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut planned = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        plan(&request(value), &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        planned += 1;
    }
    assert!(planned >= 2, "examples found: {planned}");
}

#[test]
fn records_mode_extracts_embeds_and_tabulates() {
    let text = "#1 [a] one. Seen by 2 users\n\n#3 [b] two. Seen by 4 users\n#5 [a] three";
    let dag = plan(
        &request(json!({"type": "batch_analysis", "input": {"mode": "records", "text": text}})),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(ids(&dag), ["extract-00000", "extract-00001", "extract-00002", "embed-00000", "table"]);
    let table = &dag.tasks[4];
    assert_eq!(table.kind, TaskKind::Aggregation);
    assert_eq!(table.inputs["mode"], TaskInput::Literal(json!("cluster")));
    assert_eq!(table.parents.len(), 4);
    let bad = plan(
        &request(json!({"type": "batch_analysis", "input": {"mode": "rows", "text": text}})),
        &Limits::default(),
    );
    assert!(
        matches!(bad, Err(PlanError::InvalidInput { ref field, .. }) if field == "input.mode"),
        "{bad:?}"
    );
    let cached = plan(
        &request(
            json!({"type": "batch_analysis", "cache": false, "input": {"mode": "records", "text": text}}),
        ),
        &Limits::default(),
    )
    .unwrap();
    assert!(cached.tasks.iter().all(|t| t.cache == Some(false)), "cache: false reaches every task");
}
