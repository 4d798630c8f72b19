//! Each job type's `input` schema (what the OpenAPI document tells client generators) is no wider
//! than the planner's checks: every input the schema accepts, the planner plans.

use proptest::prelude::*;
use serde_json::{Value, json};
use splai_events::JobType;
use splai_ingest::plan::{Limits, input_schema, parse_request, plan};

const TYPES: [JobType; 4] = [JobType::Chat, JobType::BatchAnalysis, JobType::Embed, JobType::Auto];

fn validator(job_type: JobType) -> jsonschema::Validator {
    jsonschema::validator_for(&input_schema(job_type)).unwrap()
}

fn planned(job_type: JobType, input: &Value) -> Result<(), String> {
    let request = json!({"type": splai_events::wire_name(&job_type), "input": input});
    let request = parse_request(&request).map_err(|e| e.to_string())?;
    plan(&request, &Limits::default()).map(|_| ()).map_err(|e| e.to_string())
}

/// Values of the shapes these inputs hold, boundaries included.
fn value() -> impl Strategy<Value = Value> {
    let string = prop_oneof![Just(""), Just(" "), Just("a"), Just("one\ntwo\n\nthree"), Just("\n \n")];
    let strings = prop::collection::vec(string.clone().prop_map(Value::from), 0..3).prop_map(Value::Array);
    let message =
        (prop_oneof![Just("system"), Just("user"), Just("assistant"), Just("tool")], string.clone())
            .prop_map(|(role, content)| json!({"role": role, "content": content}));
    let format = prop_oneof![
        Just(json!({"type": "text"})),
        Just(json!({"type": "json_object"})),
        Just(json!({"type": "json_schema", "json_schema": {"name": "r", "strict": true,
            "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}})),
        Just(json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}})),
        Just(json!({"type": "xml"})),
    ];
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(4),
            Just(6),
            Just(7),
            Just(4096),
            Just(4097),
            Just(10_001)
        ]
        .prop_map(Value::from),
        prop_oneof![Just(-0.5f64), Just(0.0), Just(0.5), Just(1.0), Just(2.0), Just(2.5)]
            .prop_map(Value::from),
        string.prop_map(Value::from),
        strings,
        prop::collection::vec(message, 0..3).prop_map(Value::Array),
        format,
    ]
}

fn input() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("messages"),
        Just("prompt"),
        Just("max_tokens"),
        Just("temperature"),
        Just("seed"),
        Just("stop"),
        Just("response_format"),
        Just("mode"),
        Just("question"),
        Just("chunk_lines"),
        Just("items"),
        Just("text"),
        Just("texts"),
        Just("schema"),
        Just("threshold"),
        Just("sum_fields"),
        Just("goal"),
        Just("max_steps"),
    ];
    let mode = prop_oneof![Just(None), Just(Some("records")), Just(Some("chunks"))];
    (prop::collection::btree_map(keys, value(), 0..5), mode).prop_map(|(fields, mode)| {
        let mut object: serde_json::Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Some(m) = mode {
            object.insert("mode".into(), json!(m));
        }
        Value::Object(object)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn an_input_its_type_schema_accepts_is_planned(input in input(), which in 0..TYPES.len()) {
        let job_type = TYPES[which];
        if validator(job_type).is_valid(&input) {
            prop_assert_eq!(planned(job_type, &input), Ok(()), "{} accepted by the schema", input);
        }
    }
}

#[test]
fn each_schema_accepts_the_documented_inputs_and_refuses_what_the_planner_refuses() {
    let cases = [
        (JobType::Chat, json!({"prompt": "hi", "max_tokens": 8}), true),
        (JobType::Chat, json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}), true),
        (JobType::Chat, json!({"messages": [], "prompt": "hi"}), false),
        (JobType::Chat, json!({"prompt": "hi", "max_tokens": 0}), false),
        (JobType::BatchAnalysis, json!({"text": "a\nb", "question": "why?", "chunk_lines": 1}), true),
        (JobType::BatchAnalysis, json!({"mode": "records", "items": ["x", "y"], "threshold": 0.8}), true),
        (JobType::BatchAnalysis, json!({"text": "a", "items": ["b"]}), false),
        (JobType::BatchAnalysis, json!({"mode": "tables", "text": "a"}), false),
        (JobType::Embed, json!({"texts": ["a", "b"]}), true),
        (JobType::Embed, json!({"text": "\n"}), false),
        (JobType::Auto, json!({"goal": "summarise", "max_steps": 3}), true),
        (JobType::Auto, json!({"goal": " "}), false),
    ];
    for (job_type, input, ok) in cases {
        assert_eq!(validator(job_type).is_valid(&input), ok, "{job_type:?} schema on {input}");
        assert_eq!(planned(job_type, &input).is_ok(), ok, "{job_type:?} planner on {input}");
    }
}
