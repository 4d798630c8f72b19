//! `batch_analysis` with `"mode": "records"`: map-reduce over records (issue 18). Each non-empty
//! line of `text` (or each of `items`) is a record; per record one `llm_inference` extracts its
//! fields as JSON under a schema (the request's `schema`, or the template's, in which every number
//! must be one that appears in the record where a rule allows it, or null: the model chooses, it
//! does not write digits); batches
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

/// The numbers written in `record`, in order, without repeats, each with the words that follow it.
fn numbers(record: &str) -> Vec<(u64, Vec<String>)> {
    let mut out: Vec<(u64, Vec<String>)> = Vec::new();
    let words: Vec<&str> = record.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        for digits in word.split(|c: char| !c.is_ascii_digit()) {
            if let Ok(n) = digits.parse::<u64>()
                && !out.iter().any(|(m, _)| *m == n)
            {
                let after = words[i + 1..].iter().take(3).map(|w| w.to_lowercase()).collect();
                out.push((n, after));
            }
        }
    }
    out
}

/// Words that make a number a count of people affected ("12 users", "3 customers reported").
const PEOPLE: [&str; 6] = ["user", "customer", "people", "person", "client", "account"];

/// The template's schema for `record`. The model only chooses; what a rule can decide is decided
/// here. `id`: the numbers written after `#` when there are any (the record's marker), else every
/// number. `affected_users`: the numbers followed within three words by a word for people, or
/// only null when there is none — a record without a user count cannot lend it its id or a
/// duration. `component`: a short string. Both numbers may be null.
fn template_schema(record: &str) -> Value {
    let found = numbers(record);
    let marked: Vec<u64> = record
        .split('#')
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    let ids: Vec<u64> = if marked.is_empty() { found.iter().map(|(n, _)| *n).collect() } else { marked };
    let people: Vec<u64> = found
        .iter()
        .filter(|(_, after)| after.iter().any(|w| PEOPLE.iter().any(|p| w.starts_with(p))))
        .map(|(n, _)| *n)
        .collect();
    let choices = |ns: Vec<u64>| {
        let mut c: Vec<Value> = ns.into_iter().map(Value::from).collect();
        c.push(Value::Null);
        json!({"enum": c})
    };
    json!({"type": "json_schema", "json_schema": {"name": "record", "strict": true, "schema": {
        "type": "object", "additionalProperties": false,
        "required": ["id", "component", "affected_users"],
        "properties": {"id": choices(ids), "component": {"type": "string", "maxLength": 24},
                       "affected_users": choices(people)}}}})
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
    fn numbers_are_read_in_order_once_with_the_words_after_them() {
        let found = numbers("#4471 [billing] Seen by 12 users since 4471 Monday; 0012");
        let values: Vec<u64> = found.iter().map(|(n, _)| *n).collect();
        assert_eq!(values, vec![4471, 12]);
        assert_eq!(found[1].1, ["users", "since", "4471"]);
        assert!(numbers("no digits").is_empty());
    }

    #[test]
    fn the_template_schema_offers_ids_after_hash_and_user_counts_near_people() {
        let s = template_schema("#7 took 40 minutes; seen by 3 users");
        let props = &s["json_schema"]["schema"]["properties"];
        assert_eq!(props["id"], json!({"enum": [7, null]}));
        assert_eq!(props["affected_users"], json!({"enum": [3, null]}));
        assert!(crate::structured::response_format(&s).is_ok());
        let none = template_schema("CSV export times out after 60 seconds");
        assert_eq!(none["json_schema"]["schema"]["properties"]["affected_users"], json!({"enum": [null]}));
        assert_eq!(none["json_schema"]["schema"]["properties"]["id"], json!({"enum": [60, null]}));
        assert!(crate::structured::response_format(&none).is_ok());
        assert!(crate::structured::response_format(&template_schema("none")).is_ok());
    }
}
