//! Bad input gives a specific, typed error.

use splai_events::{DecodeError, decode, decode_str};

const GOOD: &str =
    r#"{"v":1,"id":"e1","ts_ms":1,"tenant":"acme","kind":"cancel_job","body":{"job_id":"j1"}}"#;

#[test]
fn a_good_envelope_decodes() {
    decode_str(GOOD).unwrap();
}

#[test]
fn unknown_kind() {
    let err = decode_str(r#"{"v":1,"id":"e1","ts_ms":1,"tenant":"acme","kind":"launch_rocket","body":{}}"#)
        .unwrap_err();
    assert_eq!(err, DecodeError::UnknownKind { kind: "launch_rocket".into() });
    assert_eq!(err.to_string(), "unknown event kind `launch_rocket`");
}

#[test]
fn wrong_version() {
    let err = decode_str(&GOOD.replace(r#""v":1"#, r#""v":7"#)).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 7, supported: 1 });
}

#[test]
fn truncated_json() {
    let err = decode_str(&GOOD[..GOOD.len() - 10]).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { line: 1, .. }), "{err:?}");
}

#[test]
fn not_utf8() {
    let err = decode(b"{\"v\":1,\xff}").unwrap_err();
    assert_eq!(err, DecodeError::NotUtf8 { valid_up_to: 7 });
}

#[test]
fn missing_and_invalid_header_fields() {
    assert_eq!(
        decode_str(r#"{"v":1,"ts_ms":1,"tenant":"a","kind":"cancel_job","body":{"job_id":"j"}}"#)
            .unwrap_err(),
        DecodeError::MissingField { field: "id" }
    );
    assert!(matches!(
        decode_str(r#"{"v":1,"id":"x","ts_ms":-5,"tenant":"a","kind":"cancel_job","body":{"job_id":"j"}}"#)
            .unwrap_err(),
        DecodeError::InvalidField { field: "ts_ms", .. }
    ));
    assert!(matches!(
        decode_str(r#"{"v":1,"id":"x","ts_ms":5,"tenant":"","kind":"cancel_job","body":{"job_id":"j"}}"#)
            .unwrap_err(),
        DecodeError::InvalidField { field: "tenant", .. }
    ));
    assert_eq!(decode_str("[1,2]").unwrap_err(), DecodeError::NotAnObject);
}

#[test]
fn invalid_body_names_the_kind_and_the_field() {
    let err = decode_str(r#"{"v":1,"id":"e","ts_ms":1,"tenant":"a","kind":"job_request","body":{"type":"chat","priorty":"batch"}}"#)
        .unwrap_err();
    match err {
        DecodeError::InvalidBody { kind, message } => {
            assert_eq!(kind, "job_request");
            assert!(message.contains("priorty"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
