//! The checked-in samples in `samples/` are the documented wire format for anyone producing to
//! SPLAI's topics. They must decode, and re-encode to the same JSON value.

use std::path::Path;

use splai_events::{Event, decode, encode};

#[test]
fn golden_samples_decode_and_reencode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let envelope = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let reencoded: serde_json::Value = serde_json::from_slice(&encode(&envelope)).unwrap();
        assert_eq!(strip_defaults(original), strip_defaults(reencoded), "{}", path.display());
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(stem.starts_with(envelope.event.kind()), "{stem} holds a {}", envelope.event.kind());
        kinds.push(envelope.event.kind());
    }
    kinds.sort();
    kinds.dedup();
    let mut all: Vec<_> = Event::KINDS.to_vec();
    all.sort();
    assert_eq!(kinds, all, "every kind has a golden sample");
}

/// Samples may spell out default values that the encoder omits (and vice versa): compare with
/// defaults removed from both sides.
fn strip_defaults(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Null) && v != &Value::Array(vec![]))
                .map(|(k, v)| (k, strip_defaults(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_defaults).collect()),
        other => other,
    }
}
