//! Aggregation: merge the parts (inputs named `part-*`, in name order) with the `mode` input.
//!
//! - `concat`: the parts' `text` (or their JSON) joined by blank lines → `{"text", "parts"}`;
//! - `json_merge`: objects merged key by key; a key with different values keeps the first and is
//!   listed in `conflicts` → `{"merged", "conflicts"}`;
//! - `vote`: the most common part value (ties: the smallest) → `{"winner", "votes"}`;
//! - `top_k`: items `{score, ...}` from every part's `items`, best `k` → `{"items"}`;
//! - `concat_vectors`: the parts' `vectors` in order → `{"vectors", "count"}`;
//! - `cluster`: records grouped by embedding similarity, counted and summed → a table ([`cluster`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::AttemptError;

mod cluster;

fn parts(inputs: &BTreeMap<String, Value>) -> Vec<&Value> {
    inputs.iter().filter(|(k, _)| k.starts_with("part")).map(|(_, v)| v).collect()
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("text") {
            Some(Value::String(s)) => s.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

pub fn run(inputs: &BTreeMap<String, Value>) -> Result<Value, AttemptError> {
    let mode = inputs.get("mode").and_then(Value::as_str).unwrap_or("concat");
    let parts = parts(inputs);
    match mode {
        "concat" => {
            let texts: Vec<String> = parts.iter().map(|p| as_text(p)).collect();
            Ok(json!({ "text": texts.join("\n\n"), "parts": texts.len() }))
        }
        "json_merge" => {
            let mut merged = serde_json::Map::new();
            let mut conflicts = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let obj = p.as_object().ok_or_else(|| {
                    AttemptError::fatal(format!("json_merge: part {i} is not a JSON object"))
                })?;
                for (k, v) in obj {
                    match merged.get(k) {
                        Some(existing) if existing != v => {
                            conflicts.push(json!({"key": k, "kept": existing, "dropped": v, "part": i}))
                        }
                        Some(_) => {}
                        None => {
                            merged.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            Ok(json!({ "merged": merged, "conflicts": conflicts }))
        }
        "vote" => {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for p in &parts {
                *counts.entry(as_text(p).trim().to_string()).or_insert(0) += 1;
            }
            let best =
                counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(k, n)| (k.clone(), *n));
            let (winner, votes) = best.ok_or_else(|| AttemptError::fatal("vote: no parts to vote on"))?;
            Ok(json!({ "winner": winner, "votes": votes, "of": parts.len() }))
        }
        "top_k" => {
            let k = inputs.get("k").and_then(Value::as_u64).unwrap_or(10) as usize;
            let mut items = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let list = p
                    .get("items")
                    .and_then(Value::as_array)
                    .ok_or_else(|| AttemptError::fatal(format!("top_k: part {i} has no `items` list")))?;
                for item in list {
                    let score = item.get("score").and_then(Value::as_f64).ok_or_else(|| {
                        AttemptError::fatal(format!("top_k: an item of part {i} has no numeric `score`"))
                    })?;
                    items.push((score, item.clone()));
                }
            }
            items.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.to_string().cmp(&b.1.to_string())));
            Ok(json!({ "items": items.into_iter().take(k).map(|(_, v)| v).collect::<Vec<_>>() }))
        }
        "concat_vectors" => {
            let mut vectors = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let list = p.get("vectors").and_then(Value::as_array).ok_or_else(|| {
                    AttemptError::fatal(format!("concat_vectors: part {i} has no `vectors`"))
                })?;
                vectors.extend(list.iter().cloned());
            }
            Ok(json!({ "count": vectors.len(), "vectors": vectors }))
        }
        "cluster" => cluster::run(inputs),
        other => Err(AttemptError::fatal(format!(
            "unknown aggregation mode `{other}` (concat, json_merge, vote, top_k, concat_vectors, cluster)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(v: Value) -> Result<Value, AttemptError> {
        run(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn modes() {
        assert_eq!(
            run_with(json!({"mode": "concat", "part-1": {"text": "b"}, "part-0": "a"})).unwrap()["text"],
            "a\n\nb"
        );
        let m =
            run_with(json!({"mode": "json_merge", "part-0": {"x": 1, "y": 2}, "part-1": {"x": 3, "z": 4}}))
                .unwrap();
        assert_eq!(m["merged"], json!({"x": 1, "y": 2, "z": 4}));
        assert_eq!(m["conflicts"][0]["key"], "x");
        assert_eq!(
            run_with(json!({"mode": "vote", "part-0": "yes", "part-1": "no", "part-2": "yes"})).unwrap()["winner"],
            "yes"
        );
        let t = run_with(json!({"mode": "top_k", "k": 2, "part-0": {"items": [{"score": 1, "id": "a"}, {"score": 5, "id": "b"}]}, "part-1": {"items": [{"score": 3, "id": "c"}]}})).unwrap();
        assert_eq!(t["items"], json!([{"score": 5, "id": "b"}, {"score": 3, "id": "c"}]));
        assert!(
            run_with(json!({"mode": "median"})).unwrap_err().message.contains("unknown aggregation mode")
        );
        assert!(!run_with(json!({"mode": "json_merge", "part-0": [1]})).unwrap_err().retryable);
    }
}
