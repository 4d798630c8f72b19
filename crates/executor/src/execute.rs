//! One attempt: kind + resolved inputs → output JSON.

use std::collections::BTreeMap;

use serde_json::Value;
use splai_events::TaskKind;

use crate::{AttemptError, aggregate, tools};

/// Run the work of an attempt. Pure CPU: callers run it off the async runtime.
pub fn execute(
    kind: TaskKind,
    inputs: &BTreeMap<String, Value>,
    enabled_tools: &[String],
) -> Result<Value, AttemptError> {
    match kind {
        TaskKind::ToolExecution => tools::run(inputs, enabled_tools),
        TaskKind::Aggregation => aggregate::run(inputs),
        TaskKind::LlmInference | TaskKind::Embedding => Err(AttemptError::fatal(format!(
            "{kind:?} needs a model runtime, and this executor has none loaded (it advertises no models)"
        ))),
    }
}
