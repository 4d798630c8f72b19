//! Reading a request from JSON with specific errors (the gateway and the scheduler's handling of
//! job records whose body does not decode).

use serde_json::Value;
use splai_events::JobRequest;

use super::PlanError;

const KINDS: [&str; 4] = ["llm_inference", "embedding", "tool_execution", "aggregation"];

/// Decode a `JobRequest`, naming an unknown task kind specifically.
pub fn parse_request(value: &Value) -> Result<JobRequest, PlanError> {
    if let Some(tasks) = value.pointer("/dag/tasks").and_then(Value::as_array) {
        for (i, t) in tasks.iter().enumerate() {
            if let Some(kind) = t.get("kind").and_then(Value::as_str)
                && !KINDS.contains(&kind)
            {
                let task =
                    t.get("id").and_then(Value::as_str).map_or_else(|| format!("#{i}"), str::to_string);
                return Err(PlanError::UnknownKind { task, kind: kind.to_string() });
            }
        }
    }
    serde_json::from_value(value.clone())
        .map_err(|e| PlanError::InvalidInput { field: "request".into(), reason: e.to_string() })
}
