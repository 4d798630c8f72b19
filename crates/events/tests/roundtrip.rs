//! Every wire type survives encode → decode unchanged, and the golden samples stay readable.

mod strategies;

use proptest::prelude::*;
use splai_events::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn envelope_roundtrip(envelope in strategies::envelope()) {
        let bytes = encode(&envelope);
        let back = decode(&bytes).expect("a freshly encoded envelope decodes");
        prop_assert_eq!(&back, &envelope);
        // Encoding is stable: the same value always gives the same bytes (dedup and hashing rely on it).
        prop_assert_eq!(encode(&back), bytes);
    }

    #[test]
    fn every_kind_maps_to_its_topic_and_a_key(envelope in strategies::envelope()) {
        let kind = envelope.event.kind();
        prop_assert!(Event::KINDS.contains(&kind));
        let json: serde_json::Value = serde_json::from_slice(&encode(&envelope)).unwrap();
        prop_assert_eq!(json["kind"].as_str(), Some(kind));
        prop_assert!(!envelope.key().is_empty());
        prop_assert!(Topic::ALL.contains(&envelope.event.topic()));
    }

    #[test]
    fn job_request_roundtrip(request in strategies::job_request()) {
        let json = serde_json::to_string(&request).unwrap();
        let back: JobRequest = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, request);
    }

    #[test]
    fn dag_roundtrip(dag in strategies::dag()) {
        let json = serde_json::to_string(&dag).unwrap();
        let back: Dag = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, dag);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn truncation_is_a_typed_error(envelope in strategies::envelope(), cut in 1usize..64) {
        let bytes = encode(&envelope);
        let cut = bytes.len().saturating_sub(cut).max(1);
        match decode(&bytes[..cut]) {
            Err(DecodeError::Malformed { .. }) | Err(DecodeError::NotUtf8 { .. }) => {}
            other => prop_assert!(false, "truncated envelope gave {other:?}"),
        }
    }
}

#[test]
fn every_kind_is_generated() {
    // Guards the strategy: a kind added to `Event` without a strategy fails here.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = strategies::event();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5000 {
        seen.insert(strategy.new_tree(&mut runner).unwrap().current().kind());
    }
    let all: std::collections::BTreeSet<_> = Event::KINDS.iter().copied().collect();
    assert_eq!(seen, all);
}
