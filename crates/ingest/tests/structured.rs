//! Structured outputs: whatever path a decoder takes through the automaton, the text it ends with
//! (its own bytes, then the machine's completion) parses as JSON and validates against the schema
//! — checked by an independent validator (the `jsonschema` crate) over generated schemas.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use splai_ingest::structured::{Machine, Shape, response_format};

/// A random schema of the supported subset, `depth` levels deep at most.
fn schema(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        (0usize..3, proptest::option::of(3usize..12)).prop_map(|(min, max)| {
            let mut s = json!({"type": "string", "minLength": min});
            if let Some(m) = max {
                s["maxLength"] = json!(m.max(min));
            }
            s
        }),
        Just(json!({"type": "integer"})),
        Just(json!({"type": "number"})),
        Just(json!({"type": "boolean"})),
        Just(json!({"type": "null"})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"enum": ["red", "green", "blue"]})),
        Just(json!({"enum": [1, 12, 123, "x"]})),
        Just(json!({"const": "fixed"})),
        Just(json!({})),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            (proptest::collection::vec((inner.clone(), any::<bool>()), 1..4)).prop_map(|props| {
                let mut properties = serde_json::Map::new();
                let mut required = Vec::new();
                for (i, (s, req)) in props.into_iter().enumerate() {
                    let name = format!("p{i}_{}", ["id", "name", "count", "é"][i % 4]);
                    if req {
                        required.push(json!(name));
                    }
                    properties.insert(name, s);
                }
                json!({"type": "object", "properties": properties, "required": required,
                       "additionalProperties": false})
            }),
            (inner.clone(), 0usize..3, proptest::option::of(0usize..4)).prop_map(|(items, min, extra)| {
                let mut s = json!({"type": "array", "items": items, "minItems": min});
                if let Some(e) = extra {
                    s["maxItems"] = json!(min + e);
                }
                s
            }),
            (
                proptest::collection::vec(inner.clone(), 1..3),
                inner,
                0usize..4,
                proptest::option::of(0usize..3)
            )
                .prop_map(|(prefix, items, min, extra)| {
                    let mut s =
                        json!({"type": "array", "prefixItems": prefix, "items": items, "minItems": min});
                    if let Some(e) = extra {
                        s["maxItems"] = json!(min + e);
                    }
                    s
                }),
        ]
    })
    .boxed()
}

/// Bytes a decoder might try: structure, literals, digits, escapes, whitespace, multi-byte UTF-8.
const ALPHABET: &[u8] = b"{}[],:\"\\ntrufalsenul0123456789-.eE+ xyz/u";
const UTF8: [&[u8]; 3] = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80"];

/// Walk the machine with `choices` (each picks among the candidates it accepts), then complete.
fn walk(shape: Shape, choices: &[u16]) -> Vec<u8> {
    let mut m = Machine::new(Arc::new(shape));
    let mut text = Vec::new();
    for c in choices {
        let mut candidates: Vec<Vec<u8>> = ALPHABET.iter().map(|b| vec![*b]).collect();
        candidates.extend(UTF8.iter().map(|u| u.to_vec()));
        // Whole keys and literals too, as a tokenizer offers them.
        candidates.extend(
            [
                "\"p0_id\"",
                "\"p1_name\"",
                "\"p2_count\"",
                "\"p3_é\"",
                "true",
                "false",
                "null",
                "\"red\"",
                "12",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec()),
        );
        let ok: Vec<&Vec<u8>> = candidates.iter().filter(|c| m.accepts(c)).collect();
        if ok.is_empty() || (m.is_complete() && c % 7 == 0) {
            break;
        }
        let pick = ok[*c as usize % ok.len()];
        assert!(m.feed_all(pick));
        text.extend_from_slice(pick);
    }
    let tail = m.completion();
    assert!(m.feed_all(&tail), "the completion is accepted");
    assert!(m.is_complete(), "complete after its completion: {:?}", String::from_utf8_lossy(&text));
    text.extend(tail);
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_walk_ends_in_json_that_validates(s in schema(3), choices in proptest::collection::vec(any::<u16>(), 0..120)) {
        let shape = Shape::compile(&s, "schema", 0).unwrap();
        let text = walk(shape, &choices);
        let value: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} for {s}", String::from_utf8_lossy(&text)));
        let validator = jsonschema::validator_for(&s).unwrap();
        prop_assert!(validator.is_valid(&value), "{value} does not validate against {s}");
    }

    #[test]
    fn the_minimal_value_is_accepted_and_valid(s in schema(3)) {
        let shape = Shape::compile(&s, "schema", 0).unwrap();
        let minimal = shape.minimal();
        let mut m = Machine::new(Arc::new(shape));
        prop_assert!(m.feed_all(minimal.as_bytes()) && m.is_complete(), "{minimal} for {s}");
        prop_assert!(jsonschema::validator_for(&s).unwrap().is_valid(&serde_json::from_str(&minimal).unwrap()));
    }
}

#[test]
fn json_object_mode_takes_any_object_and_nothing_else() {
    let shape = response_format(&json!({"type": "json_object"})).unwrap().unwrap();
    let m = Machine::new(Arc::new(shape));
    assert!(m.accepts(br#"{"a": [1, 2.5e3, "x\n\u00e9"], "b": {"c": null}}"#));
    assert!(!m.accepts(b"[1]"));
    assert!(!m.accepts(br#"{"a" 1}"#));
}

#[test]
fn a_schema_object_takes_its_properties_once_and_requires_what_it_requires() {
    let s = json!({"type": "object", "properties": {"id": {"type": "integer"},
        "severity": {"enum": ["low", "high"]}, "note": {"type": "string", "maxLength": 3}},
        "required": ["id", "severity"]});
    let shape = response_format(
        &json!({"type": "json_schema", "json_schema": {"name": "t", "schema": s, "strict": true}}),
    )
    .unwrap()
    .unwrap();
    let m = Machine::new(Arc::new(shape));
    assert!(m.accepts(br#"{"id": 7, "severity": "high"}"#));
    assert!(m.accepts(br#"{"id":-3,"severity":"low","note":"abc"}"#));
    assert!(!m.accepts(
        br#"{"id": 7}"#.split_last().unwrap().1.iter().chain(b"}").copied().collect::<Vec<_>>().as_slice()
    ));
    assert!(m.accepts(br#"{"severity": "low", "id": 1}"#), "properties come in any order");
    assert!(!m.accepts(br#"{"id": 1, "id""#), "each once");
    assert!(!m.accepts(br#"{"id": 7.5"#), "an integer has no fraction");
    assert!(!m.accepts(br#"{"id": 1, "severity": "medium""#), "only the enum's values");
    assert!(!m.accepts(br#"{"id": 1, "severity": "low", "note": "abcd""#), "maxLength");
    let mut half = m.clone();
    assert!(half.feed_all(br#"{"id": 12"#));
    assert_eq!(String::from_utf8(half.completion()).unwrap(), r#","severity":"low"}"#);
}

#[test]
fn prefix_items_give_the_first_items_their_own_shapes() {
    let s = json!({"type": "array", "minItems": 1, "maxItems": 3,
        "prefixItems": [{"const": "first"}, {"type": "integer"}], "items": {"type": "boolean"}});
    let shape = response_format(
        &json!({"type": "json_schema", "json_schema": {"name": "t", "schema": s, "strict": true}}),
    )
    .unwrap()
    .unwrap();
    let m = Machine::new(Arc::new(shape));
    assert!(m.accepts(br#"["first", 2, true]"#));
    assert!(m.accepts(br#"["first"]"#));
    assert!(!m.accepts(br#"[2"#), "the first item is the const");
    assert!(!m.accepts(br#"["first", "#.iter().chain(b"true").copied().collect::<Vec<_>>().as_slice()));
    assert!(!m.accepts(br#"["first", 2, 3"#), "after the prefix, `items`");
    let mut half = m.clone();
    assert!(half.feed_all(br#"["first","#));
    assert_eq!(String::from_utf8(half.completion()).unwrap(), "0]");
}

#[test]
fn unsupported_schemas_are_refused_by_name() {
    let e = response_format(&json!({"type": "json_schema", "json_schema": {"schema": {"anyOf": []}}}))
        .unwrap_err();
    assert!(e.to_string().contains("anyOf") && e.to_string().contains("not supported"), "{e}");
    let e = response_format(&json!({"type": "xml"})).unwrap_err();
    assert!(e.to_string().contains("response_format.type"), "{e}");
    let e = response_format(&json!({"type": "json_schema", "json_schema": {"schema": {"type": "object",
        "properties": {"a": {"type": "string"}}, "required": ["b"]}}}))
    .unwrap_err();
    assert!(e.to_string().contains("`b` is not a property"), "{e}");
}
