//! JSON codec with typed errors: a consumer knows why a record could not be read and dead-letters it
//! with that reason instead of stopping.

use serde::Deserialize;
use serde_json::Value;

use crate::fast::Fast;
use crate::{ENVELOPE_VERSION, Envelope, Event};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("payload is not UTF-8 (invalid byte at {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed { line: usize, column: usize, message: String },
    #[error("envelope is not a JSON object")]
    NotAnObject,
    #[error("envelope field `{field}` is missing")]
    MissingField { field: &'static str },
    #[error("envelope field `{field}` is invalid: {message}")]
    InvalidField { field: &'static str, message: String },
    #[error("unsupported envelope version {found} (this build reads version {supported})")]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("unknown event kind `{kind}`")]
    UnknownKind { kind: String },
    #[error("invalid body for kind `{kind}`: {message}")]
    InvalidBody { kind: String, message: String },
}

/// Encode an envelope as one line of JSON.
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    // Serialising plain data structs with string keys cannot fail.
    serde_json::to_vec(envelope).expect("envelope serialisation is infallible")
}

/// Decode raw bytes from a topic.
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    decode_str(text)
}

/// The envelope header, read before the body so each fault gets its own error.
#[derive(Deserialize)]
struct Header {
    v: Option<Value>,
    id: Option<Value>,
    ts_ms: Option<Value>,
    tenant: Option<Value>,
    #[serde(default)]
    traceparent: Option<Value>,
    #[serde(default)]
    epoch: Option<Value>,
    kind: Option<Value>,
    #[serde(default)]
    body: Value,
}

/// Decode a JSON text.
pub fn decode_str(text: &str) -> Result<Envelope, DecodeError> {
    // Fast path: a well-formed current envelope decodes in one pass. Anything else takes the
    // careful path below, which finds the specific fault.
    let fast = serde_json::from_str::<Fast>(text).ok().map(|f| f.0);
    if let Some(envelope) =
        fast.filter(|e| e.v == ENVELOPE_VERSION && !e.id.is_empty() && !e.tenant.is_empty())
    {
        return Ok(envelope);
    }
    diagnose(text)
}

/// Decode field by field so each fault gets its own error.
fn diagnose(text: &str) -> Result<Envelope, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| DecodeError::Malformed {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(DecodeError::NotAnObject);
    }
    let header: Header = serde_json::from_value(value)
        .map_err(|e| DecodeError::InvalidField { field: "envelope", message: e.to_string() })?;

    let v =
        required(header.v, "v")?.as_u64().ok_or_else(|| invalid("v", "expected a non-negative integer"))?;
    if v != u64::from(ENVELOPE_VERSION) {
        return Err(DecodeError::UnsupportedVersion { found: v, supported: ENVELOPE_VERSION });
    }
    let id = string(required(header.id, "id")?, "id")?;
    if id.is_empty() {
        return Err(invalid("id", "must not be empty"));
    }
    let ts_ms = required(header.ts_ms, "ts_ms")?
        .as_u64()
        .ok_or_else(|| invalid("ts_ms", "expected epoch milliseconds as a non-negative integer"))?;
    let tenant = string(required(header.tenant, "tenant")?, "tenant")?;
    if tenant.is_empty() {
        return Err(invalid("tenant", "must not be empty"));
    }
    let traceparent = match header.traceparent {
        None | Some(Value::Null) => None,
        Some(t) => Some(string(t, "traceparent")?),
    };
    let epoch = match header.epoch {
        None | Some(Value::Null) => None,
        Some(e) => Some(e.as_u64().ok_or_else(|| invalid("epoch", "expected a non-negative integer"))?),
    };
    let kind = string(required(header.kind, "kind")?, "kind")?;
    if !Event::KINDS.contains(&kind.as_str()) {
        return Err(DecodeError::UnknownKind { kind });
    }
    let tagged = serde_json::json!({ "kind": kind, "body": header.body });
    let event: Event = serde_json::from_value(tagged)
        .map_err(|e| DecodeError::InvalidBody { kind: kind.clone(), message: e.to_string() })?;
    Ok(Envelope { v: ENVELOPE_VERSION, id, ts_ms, tenant, traceparent, epoch, event })
}

fn required(value: Option<Value>, field: &'static str) -> Result<Value, DecodeError> {
    match value {
        None | Some(Value::Null) => Err(DecodeError::MissingField { field }),
        Some(v) => Ok(v),
    }
}

fn string(value: Value, field: &'static str) -> Result<String, DecodeError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(invalid(field, &format!("expected a string, found {}", type_name(&other)))),
    }
}

fn invalid(field: &'static str, message: &str) -> DecodeError {
    DecodeError::InvalidField { field, message: message.to_string() }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
