//! Bad input at scale for admission: arbitrary request documents and random DAGs go through
//! `parse_request` + `plan` without a panic, and every refusal names a code and a field (run with
//! PROPTEST_CASES=100000 for a long soak).

use proptest::prelude::*;
use serde_json::{Value, json};
use splai_ingest::plan::{Limits, parse_request, plan};

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("..".to_string()),
        Just("".to_string()),
        Just("ü".to_string()),
        "[a-z]{1,3}"
    ]
}

fn task() -> impl Strategy<Value = Value> {
    (
        id(),
        prop_oneof![
            Just("llm_inference"),
            Just("embedding"),
            Just("tool_execution"),
            Just("aggregation"),
            Just("gpu")
        ],
        prop::collection::vec(id(), 0..3),
        prop::option::of((id(), id())),
    )
        .prop_map(|(id, kind, parents, output)| {
            let mut inputs = serde_json::Map::new();
            inputs.insert("tool".into(), json!({"literal": "regex"}));
            if let Some((name, from)) = output {
                inputs.insert(name, json!({"output": {"task": from}}));
            }
            json!({"id": id, "kind": kind, "parents": parents, "inputs": inputs})
        })
}

fn request() -> impl Strategy<Value = Value> {
    let explicit = prop::collection::vec(task(), 0..8)
        .prop_map(|tasks| json!({"type": "explicit", "dag": {"tasks": tasks}}));
    let templated = (
        prop_oneof![Just("chat"), Just("batch_analysis"), Just("embed"), Just("nope")],
        prop_oneof![
            Just(json!(null)),
            ".{0,40}".prop_map(|t| json!({"text": t})),
            prop::collection::vec(".{0,10}", 0..4).prop_map(|t| json!({"texts": t, "items": t})),
            (".{0,20}", any::<i64>())
                .prop_map(|(p, n)| json!({"prompt": p, "max_tokens": n, "temperature": n, "chunk_lines": n})),
            Just(json!({"messages": [{"role": "robot", "content": 1}]})),
        ],
        prop::option::of(id()),
    )
        .prop_map(|(t, input, job)| json!({"type": t, "input": input, "job_id": job}));
    prop_oneof![explicit, templated, Just(json!([])), Just(json!("x")), Just(json!({"type": 7}))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn admission_never_panics_and_always_explains(doc in request()) {
        let limits = Limits { max_tasks: 6, ..Limits::default() };
        match parse_request(&doc).and_then(|r| plan(&r, &limits).map(|d| (r, d))) {
            Ok((_, dag)) => prop_assert!(!dag.tasks.is_empty() && dag.tasks.len() <= 6),
            Err(e) => {
                let field = e.field().unwrap_or_default();
                prop_assert!(!field.is_empty(), "{} names no field", e);
                // A fault of one task names a task of the request, in its field and its message.
                if let Some((task, _)) = field.strip_prefix("dag.tasks[").and_then(|f| f.split_once(']')) {
                    let ids: Vec<&str> = doc["dag"]["tasks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["id"].as_str())
                        .collect();
                    prop_assert!(ids.contains(&task), "{} names task `{}`, not one of {:?}", e, task, ids);
                    prop_assert!(e.to_string().contains(&format!("`{task}`")), "{} (field {})", e, field);
                }
            }
        }
    }

    #[test]
    fn planning_is_deterministic(doc in request()) {
        if let Ok(r) = parse_request(&doc) {
            let a = plan(&r, &Limits::default()).map(|d| serde_json::to_string(&d).unwrap());
            let b = plan(&r, &Limits::default()).map(|d| serde_json::to_string(&d).unwrap());
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn job_ids_that_would_escape_a_path_are_refused() {
    for bad in ["..", ".", "a/b", "jöb", &"x".repeat(129)] {
        let doc = json!({"type": "explicit", "job_id": bad, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
        let err = plan(&parse_request(&doc).unwrap(), &Limits::default()).unwrap_err();
        assert_eq!(err.field().as_deref(), Some("job_id"), "{bad}: {err}");
    }
    let doc = json!({"type": "explicit", "dag": {"tasks": [{"id": "..", "kind": "aggregation"}]}});
    assert_eq!(
        plan(&parse_request(&doc).unwrap(), &Limits::default()).unwrap_err().code(),
        "invalid_task_id"
    );
}
