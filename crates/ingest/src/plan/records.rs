//! `batch_analysis` with `"mode": "records"`: map-reduce over records (issue 18). Each non-empty
//! line of `text` (or each of `items`) is a record; per record one `llm_inference` extracts its
//! fields as JSON under a schema (the request's `schema`, or the template's, in which every number
//! must be one that appears in the record, or null: the model chooses, it does not write digits); batches
//! of records are embedded; one `aggregation` in `cluster` mode groups similar records, counts
//! them, sums numeric fields per group and states the table (JSON, CSV and a summary whose
//! numbers are copied from it).
//!
//! What a 135M model can do is choose among a record's own values; asked to write a record's
//! problem in its own words it drifts (measured: most answers were template filler), so records
//! are grouped by the embeddings of their own text, not of a generated paraphrase.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use splai_events::{Dag, JobRequest, Requirements, TaskInput, TaskKind};

use super::templates::{invalid, out, task};
use super::{Limits, PlanError, chunk_lines};

const EXTRACT_PROMPT: &str =
    "Extract this record as JSON: its id, its component, and the number of affected users.";

/// The numbers written in `record` (digits, optionally after `#`), in order, without repeats.
fn numbers(record: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for word in record.split(|c: char| !c.is_ascii_digit()) {
        if let Ok(n) = word.parse::<u64>()
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// The template's schema for `record`: id and affected users chosen among its numbers or null (a
/// record without a user count must be able to say so, not lend its id), component a short
/// string.
fn template_schema(record: &str) -> Value {
    let mut choices: Vec<Value> = numbers(record).into_iter().map(Value::from).collect();
    choices.push(Value::Null);
    let number = json!({"enum": choices});
    json!({"type": "json_schema", "json_schema": {"name": "record", "strict": true, "schema": {
        "type": "object", "additionalProperties": false,
        "required": ["id", "component", "affected_users"],
        "properties": {"id": number, "component": {"type": "string", "maxLength": 24}, "affected_users": number}}}})
}

/// Plan the records pipeline for `input`.
pub(super) fn plan(request: &JobRequest, limits: &Limits) -> Result<Dag, PlanError> {
    let input = &request.input;
    let records: Vec<String> =
        match (input.get("text").filter(|v| !v.is_null()), input.get("items").filter(|v| !v.is_null())) {
            (Some(Value::String(text)), None) => chunk_lines(text, 1),
            (None, Some(Value::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(&format!("items[{i}]"), "expected a string"))
                })
                .collect::<Result<_, _>>()?,
            (Some(_), Some(_)) => return Err(invalid("text", "give either `text` or `items`, not both")),
            _ => {
                return Err(invalid(
                    "text",
                    "expected `text` (one record per line) or `items` (a list of strings)",
                ));
            }
        };
    if records.is_empty() {
        return Err(invalid("text", "has no records (no non-empty lines)"));
    }
    let schema = match input.get("schema").filter(|v| !v.is_null()) {
        None => None,
        Some(format) => {
            crate::structured::response_format(format).map_err(|e| {
                invalid(&format!("schema{}", e.path.trim_start_matches("response_format")), &e.reason)
            })?;
            Some(format.clone())
        }
    };
    let threshold = match input.get("threshold").filter(|v| !v.is_null()) {
        None => None,
        Some(t) => Some(
            t.as_f64()
                .filter(|t| (0.0..=1.0).contains(t))
                .ok_or_else(|| invalid("threshold", "expected a cosine similarity in 0..=1"))?,
        ),
    };
    let sum_fields = match input.get("sum_fields").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(Value::Array(a.clone())),
        Some(_) => return Err(invalid("sum_fields", "expected a list of field names")),
    };
    let batch = limits.embed_batch.max(1);
    let count = records.len() + records.len().div_ceil(batch) + 1;
    if count > limits.max_tasks {
        return Err(PlanError::TooManyTasks { count, max: limits.max_tasks });
    }
    let model = Requirements { model: request.model.clone(), ..Requirements::default() };
    let lit = |v: Value| TaskInput::Literal(v);
    let mut tasks = Vec::new();
    let mut cluster: BTreeMap<String, TaskInput> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        let id = format!("extract-{i:05}");
        let format = schema.clone().unwrap_or_else(|| template_schema(record));
        let inputs = vec![
            ("prompt", lit(json!(EXTRACT_PROMPT))),
            ("text", lit(json!(record))),
            ("max_tokens", lit(json!(96))),
            ("response_format", lit(format)),
        ];
        tasks.push(task(&id, TaskKind::LlmInference, inputs, vec![], model.clone()));
        cluster.insert(format!("record-{i:05}"), out(&id, None));
    }
    for (j, group) in records.chunks(batch).enumerate() {
        let id = format!("embed-{j:05}");
        let inputs = vec![("texts", lit(json!(group)))];
        tasks.push(task(&id, TaskKind::Embedding, inputs, vec![], Requirements::default()));
        cluster.insert(format!("vectors-{j:05}"), out(&id, None));
    }
    let parents: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    cluster.insert("mode".into(), lit(json!("cluster")));
    cluster.insert("texts".into(), lit(json!(records)));
    if let Some(t) = threshold {
        cluster.insert("threshold".into(), lit(json!(t)));
    }
    if let Some(f) = sum_fields {
        cluster.insert("sum_fields".into(), lit(f));
    }
    let mut table = task("table", TaskKind::Aggregation, vec![], parents, Requirements::default());
    table.inputs = cluster;
    tasks.push(table);
    Ok(Dag { tasks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_in_order_once() {
        assert_eq!(numbers("#4471 [billing] Seen by 12 users since 4471 Monday; 0012"), vec![4471, 12]);
        assert!(numbers("no digits").is_empty());
    }

    #[test]
    fn the_template_schema_offers_only_the_records_numbers() {
        let s = template_schema("#7 seen by 3 users");
        assert_eq!(s["json_schema"]["schema"]["properties"]["id"], json!({"enum": [7, 3, null]}));
        assert!(crate::structured::response_format(&s).is_ok());
        assert!(crate::structured::response_format(&template_schema("none")).is_ok());
    }
}
