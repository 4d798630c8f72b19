//! Bad input at scale: decoding never panics and always says why. Arbitrary bytes, arbitrary JSON
//! documents, and valid envelopes with one byte flipped or cut short each give `Ok` (an envelope
//! that encodes and decodes back to itself) or the `DecodeError` of the layer at fault, as an
//! independent look at the input finds it (run with PROPTEST_CASES=100000 for a long soak).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use splai_events::DecodeError;

/// What `decode` gave for `bytes` agrees with a look at the input layer by layer: not UTF-8,
/// not JSON, not an object, or else a fault inside the envelope; and an envelope it accepts
/// round-trips.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let got = splai_events::decode(bytes);
    let text = match std::str::from_utf8(bytes) {
        Err(e) => {
            prop_assert_eq!(got, Err(DecodeError::NotUtf8 { valid_up_to: e.valid_up_to() }));
            return Ok(());
        }
        Ok(text) => text,
    };
    match serde_json::from_str::<Value>(text) {
        Err(_) => prop_assert!(matches!(got, Err(DecodeError::Malformed { .. })), "{:?}", got),
        Ok(v) if !v.is_object() => prop_assert_eq!(got, Err(DecodeError::NotAnObject)),
        Ok(_) => match got {
            Ok(envelope) => {
                prop_assert_eq!(splai_events::decode(&splai_events::encode(&envelope)), Ok(envelope))
            }
            Err(e) => prop_assert!(
                !matches!(
                    e,
                    DecodeError::NotUtf8 { .. } | DecodeError::Malformed { .. } | DecodeError::NotAnObject
                ),
                "a JSON object refused as {:?}",
                e
            ),
        },
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("job_request"), Just("heartbeat"), Just("assign"), Just("v"), Just("body")]
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("v".to_string()),
                    Just("id".to_string()),
                    Just("ts_ms".to_string()),
                    Just("tenant".to_string()),
                    Just("kind".to_string()),
                    Just("body".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..7
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const SAMPLE: &str = include_str!("../samples/job_request.explicit.json");

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_json_never_panics(doc in json_value()) {
        check(&serde_json::to_vec(&doc).unwrap())?;
    }

    #[test]
    fn damaged_envelopes_never_panic(at in 0usize..SAMPLE.len(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = SAMPLE.as_bytes().to_vec();
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        check(&bytes)?;
    }
}
