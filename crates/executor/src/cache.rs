//! Result caching by lineage (issue 18): an attempt whose output is determined by its inputs
//! reuses the tenant's earlier output for the same key instead of running. The key is the sha256
//! of the task's kind, its resolved input values (generation parameters are inputs), the model's
//! weights (file sha256 and how they are held) and the executor's version; it is filed per tenant
//! in the artifact store, so a tenant never reuses another's outputs.
//!
//! Determined by inputs: `embedding`, `aggregation`, greedy `llm_inference` (no temperature or
//! 0; sampled output is a draw, not a function of the inputs), and the pure tools. Not: `sleep`
//! (its point is the time it takes) and `shell` (commands have effects).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use splai_events::TaskKind;

/// Tools whose output is a function of their inputs.
const PURE_TOOLS: [&str; 5] = ["split_lines", "json_extract", "regex", "template", "map"];

/// The executor's version, part of every key (a new executor may compute differently).
pub const EXECUTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether an attempt of `kind` with `inputs` may reuse or offer a cached output.
/// Whether a tool's output depends on its inputs alone (and it neither waits nor runs commands).
pub fn pure_tool(tool: &str) -> bool {
    PURE_TOOLS.contains(&tool)
}

pub fn cacheable(kind: TaskKind, inputs: &BTreeMap<String, Value>) -> bool {
    match kind {
        TaskKind::Embedding | TaskKind::Aggregation => true,
        TaskKind::LlmInference => inputs.get("temperature").and_then(Value::as_f64).is_none_or(|t| t == 0.0),
        TaskKind::ToolExecution => inputs.get("tool").and_then(Value::as_str).is_some_and(pure_tool),
    }
}

/// The cache key: hex sha256 over the kind, the inputs (objects serialise with sorted keys), the
/// model identity (`None` for tools and aggregation) and the executor version.
pub fn key(kind: TaskKind, inputs: &BTreeMap<String, Value>, model: Option<&str>) -> String {
    let doc = json!({"kind": kind, "inputs": inputs, "model": model, "executor": EXECUTOR_VERSION});
    hex::encode(Sha256::digest(serde_json::to_vec(&doc).expect("JSON values serialise")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_outputs_determined_by_inputs_are_cacheable() {
        assert!(cacheable(TaskKind::LlmInference, &inputs(json!({"prompt": "p"}))));
        assert!(cacheable(TaskKind::LlmInference, &inputs(json!({"prompt": "p", "temperature": 0}))));
        assert!(!cacheable(TaskKind::LlmInference, &inputs(json!({"prompt": "p", "temperature": 0.7}))));
        assert!(cacheable(TaskKind::ToolExecution, &inputs(json!({"tool": "split_lines"}))));
        assert!(!cacheable(TaskKind::ToolExecution, &inputs(json!({"tool": "shell"}))));
        assert!(!cacheable(TaskKind::ToolExecution, &inputs(json!({"tool": "sleep"}))));
    }

    #[test]
    fn the_key_changes_with_any_input_and_the_model() {
        let a = inputs(json!({"prompt": "p", "max_tokens": 8}));
        let b = inputs(json!({"prompt": "p", "max_tokens": 9}));
        let k = key(TaskKind::LlmInference, &a, Some("m:abc"));
        assert_eq!(k, key(TaskKind::LlmInference, &a, Some("m:abc")));
        assert_ne!(k, key(TaskKind::LlmInference, &b, Some("m:abc")));
        assert_ne!(k, key(TaskKind::LlmInference, &a, Some("m:abd")));
        assert_ne!(k, key(TaskKind::Embedding, &a, Some("m:abc")));
    }
}
