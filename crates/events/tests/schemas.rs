//! The checked-in JSON Schemas (`contract/v1/`, what producers in other languages generate their
//! types from) accept every golden sample, refuse what the decoder refuses, and each body schema
//! accepts its sample's body. `splai contract check` keeps them equal to what the types generate.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use splai_events::ENVELOPE_VERSION;

fn contract() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../contract/v{ENVELOPE_VERSION}"))
}

fn validator(file: &Path) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn samples() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn every_golden_sample_validates_against_the_envelope_schema() {
    let envelope = validator(&contract().join("envelope.schema.json"));
    let samples = samples();
    assert!(samples.len() >= splai_events::Event::KINDS.len());
    for (path, sample) in samples {
        assert_eq!(errors(&envelope, &sample), Vec::<String>::new(), "{}", path.display());
    }
}

#[test]
fn every_golden_body_validates_against_its_kind_schema() {
    for (path, sample) in samples() {
        let kind = sample["kind"].as_str().unwrap();
        let body = validator(&contract().join(format!("events/{kind}.schema.json")));
        assert_eq!(errors(&body, &sample["body"]), Vec::<String>::new(), "{}", path.display());
    }
}

#[test]
fn the_envelope_schema_refuses_what_the_decoder_refuses() {
    let envelope = validator(&contract().join("envelope.schema.json"));
    let (_, sample) = samples().into_iter().find(|(p, _)| p.ends_with("cancel_job.json")).unwrap();
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut s = sample.clone();
        f(&mut s);
        assert!(splai_events::decode(s.to_string().as_bytes()).is_err(), "the decoder accepts {s}");
        s
    };
    let cases = [
        broken(&|s| s["v"] = json!(ENVELOPE_VERSION + 1)),
        broken(&|s| s["kind"] = json!("no_such_kind")),
        broken(&|s| s["tenant"] = json!("")),
        broken(&|s| {
            s.as_object_mut().unwrap().remove("ts_ms");
        }),
        broken(&|s| {
            s["body"].as_object_mut().unwrap().remove("job_id");
        }),
    ];
    for case in cases {
        assert!(!errors(&envelope, &case).is_empty(), "the schema accepts {case}");
    }
}
