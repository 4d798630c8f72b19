//! `cluster`: group records whose embeddings are similar, count them and sum their numeric
//! fields per group, and state the groups in a table, a CSV text and a summary whose numbers are
//! copied from the table — the reduce step of `batch_analysis` over records (issue 18).
//!
//! Inputs: `record-NNNNN` (one per record, in name order: a JSON object, or an LLM output whose
//! `text` holds one — the record's extracted fields), `vectors-NNNNN` (embedding outputs whose
//! `vectors`, concatenated in name order, give one unit vector per record), `texts` (the records'
//! own text, for labels), and optional `threshold` (cosine, default 0.68), `id_field` (default
//! `id`), `sum_fields` (default `["affected_users"]`), `top` (rows in the summary, default 10).
//! A summed value missing, not a number, or equal to the record's id (copied from the id, not
//! counted) is left out of the sum and counted in `sums.unknown`.
//!
//! Grouping is average-linkage agglomeration: the two groups with the highest mean pairwise
//! cosine merge while that mean is at least `threshold`; ties go to the lowest group indices, so
//! the same inputs always give the same groups. Each group is labelled by its medoid (the record
//! most similar on average to the others; ties: the first). Table rows: `{rank, count, label,
//! sums, ids, records}` (`records`: the members' 1-based positions in the input).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::AttemptError;

/// Records that fit in one grouping (the pairwise similarities take n² floats).
const MAX_RECORDS: usize = 5_000;

fn fatal(msg: impl Into<String>) -> AttemptError {
    AttemptError::fatal(format!("cluster: {}", msg.into()))
}

/// The inputs named `prefix*`, in name order.
fn named<'a>(inputs: &'a BTreeMap<String, Value>, prefix: &str) -> Vec<&'a Value> {
    inputs.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).collect()
}

/// A record's fields: an object, or an LLM output whose `text` parses as one; anything else has
/// none (the record still counts; its numbers and id are missing).
fn fields(v: &Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(o) => match o.get("text").and_then(Value::as_str) {
            Some(text) => serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default(),
            None => o.clone(),
        },
        Value::String(text) => {
            serde_json::from_str::<Value>(text).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
        }
        _ => serde_json::Map::new(),
    }
}

/// Group `vectors` (unit length) by average linkage at `threshold`; groups of record indices,
/// each in record order.
pub(crate) fn group(vectors: &[Vec<f32>], threshold: f32) -> Vec<Vec<usize>> {
    let n = vectors.len();
    // sums[a][b]: the sum of similarities between the members of groups a and b.
    let mut sums: Vec<Vec<f32>> =
        (0..n).map(|i| (0..n).map(|j| dot(&vectors[i], &vectors[j])).collect()).collect();
    let mut members: Vec<Option<Vec<usize>>> = (0..n).map(|i| Some(vec![i])).collect();
    loop {
        let mut best: Option<(f32, usize, usize)> = None;
        for a in 0..n {
            let Some(ma) = &members[a] else { continue };
            for b in a + 1..n {
                let Some(mb) = &members[b] else { continue };
                let mean = sums[a][b] / (ma.len() * mb.len()) as f32;
                if mean >= threshold && best.is_none_or(|(m, _, _)| mean > m) {
                    best = Some((mean, a, b));
                }
            }
        }
        let Some((_, a, b)) = best else { break };
        let moved = members[b].take().unwrap_or_default();
        members[a].get_or_insert_with(Vec::new).extend(moved);
        let merged_row: Vec<f32> = sums[a].iter().zip(&sums[b]).map(|(x, y)| x + y).collect();
        for (row, v) in sums.iter_mut().zip(&merged_row) {
            row[a] = *v;
        }
        sums[a] = merged_row;
    }
    let mut groups: Vec<Vec<usize>> = members.into_iter().flatten().collect();
    groups.iter_mut().for_each(|g| g.sort_unstable());
    groups
}

/// Cosine similarity of two unit vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The member most similar on average to the others (ties: the first).
fn medoid(group: &[usize], vectors: &[Vec<f32>]) -> usize {
    let mut best = (f32::NEG_INFINITY, group[0]);
    for &i in group {
        let total: f32 = group.iter().map(|&j| dot(&vectors[i], &vectors[j])).sum();
        if total > best.0 {
            best = (total, i);
        }
    }
    best.1
}

pub fn run(inputs: &BTreeMap<String, Value>) -> Result<Value, AttemptError> {
    let records: Vec<serde_json::Map<String, Value>> =
        named(inputs, "record-").into_iter().map(fields).collect();
    let mut vectors: Vec<Vec<f32>> = Vec::new();
    for (i, part) in named(inputs, "vectors-").into_iter().enumerate() {
        let list = part
            .get("vectors")
            .and_then(Value::as_array)
            .ok_or_else(|| fatal(format!("vectors part {i} has no `vectors`")))?;
        for v in list {
            let v: Vec<f32> =
                serde_json::from_value(v.clone()).map_err(|e| fatal(format!("a vector of part {i}: {e}")))?;
            vectors.push(v);
        }
    }
    let texts: Vec<String> = match inputs.get("texts") {
        Some(Value::Array(a)) => a.iter().map(|t| t.as_str().unwrap_or_default().to_string()).collect(),
        _ => return Err(fatal("needs `texts`, the records' text")),
    };
    let n = texts.len();
    if vectors.len() != n || records.len() != n {
        return Err(fatal(format!(
            "{n} texts, {} records and {} vectors: one of each per record",
            records.len(),
            vectors.len()
        )));
    }
    if n == 0 || n > MAX_RECORDS {
        return Err(fatal(format!("{n} records; between 1 and {MAX_RECORDS} can be grouped")));
    }
    let threshold = match inputs.get("threshold") {
        None => 0.68,
        Some(t) => t
            .as_f64()
            .filter(|t| (-1.0..=1.0).contains(t))
            .ok_or_else(|| fatal("`threshold` must be a cosine in -1..=1"))? as f32,
    };
    let id_field = inputs.get("id_field").and_then(Value::as_str).unwrap_or("id");
    let sum_fields: Vec<String> = match inputs.get("sum_fields") {
        None => vec!["affected_users".into()],
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| fatal("`sum_fields` must be a list of field names"))?,
    };
    let top = inputs.get("top").and_then(Value::as_u64).unwrap_or(10) as usize;

    let mut rows = Vec::new();
    for g in group(&vectors, threshold) {
        let ids: Vec<Value> = g
            .iter()
            .map(|&i| records[i].get(id_field).cloned().unwrap_or_else(|| json!(format!("record {i}"))))
            .collect();
        let mut sums = serde_json::Map::new();
        let mut unknown = serde_json::Map::new();
        for f in &sum_fields {
            // A value equal to the record's id was copied from the id, not counted: unknown.
            let known = |i: usize| -> Option<f64> {
                let v = records[i].get(f)?;
                (records[i].get(id_field) != Some(v)).then(|| v.as_f64()).flatten()
            };
            let total: f64 = g.iter().filter_map(|&i| known(i)).sum();
            let missing = g.iter().filter(|&&i| known(i).is_none()).count();
            sums.insert(f.clone(), json!(total));
            if missing > 0 {
                unknown.insert(f.clone(), json!(missing));
            }
        }
        sums.insert("unknown".into(), Value::Object(unknown));
        let label = texts[medoid(&g, &vectors)].clone();
        rows.push((g.len(), sums, ids, label, g));
    }
    // Most records first, then the first numeric field's sum, then the earliest first record.
    let key = |s: &serde_json::Map<String, Value>| {
        sum_fields.first().and_then(|f| s.get(f)).and_then(Value::as_f64).unwrap_or(0.0)
    };
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(key(&b.1).total_cmp(&key(&a.1))).then(a.4[0].cmp(&b.4[0])));

    let table: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(rank, (count, sums, ids, label, members))| {
            // `records`: the members' positions in the input (1-based), which no extraction
            // error can change; `ids`: their extracted ids.
            let records: Vec<usize> = members.iter().map(|i| i + 1).collect();
            json!({"rank": rank + 1, "count": count, "label": label, "sums": sums, "ids": ids, "records": records})
        })
        .collect();
    let id_text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let mut csv = format!("rank,count,{},label,ids\n", sum_fields.join(","));
    for (rank, (count, sums, ids, label, _)) in rows.iter().enumerate() {
        let numbers: Vec<String> = sum_fields.iter().map(|f| number(&sums[f])).collect();
        let ids: Vec<String> = ids.iter().map(id_text).collect();
        csv.push_str(&format!(
            "{},{count},{},{},{}\n",
            rank + 1,
            numbers.join(","),
            quoted(label),
            quoted(&ids.join(" "))
        ));
    }
    let mut summary = format!(
        "{n} records in {} groups of similar records (cosine ≥ {threshold}). Most recurring:\n",
        rows.len()
    );
    for (rank, (count, sums, ids, label, _)) in rows.iter().take(top).enumerate() {
        let numbers: Vec<String> = sum_fields
            .iter()
            .map(|f| match sums["unknown"].get(f).and_then(Value::as_u64) {
                // No member gave a value: a sum of 0 would read as "nobody affected".
                Some(n) if n == *count as u64 => format!("{f} not given"),
                Some(n) => format!("{f} {} ({n} without a value)", number(&sums[f])),
                None => format!("{f} {}", number(&sums[f])),
            })
            .collect();
        let examples: Vec<String> = ids.iter().take(3).map(id_text).collect();
        let noun = if *count == 1 { "record" } else { "records" };
        summary.push_str(&format!(
            "{}. {label} — {count} {noun}, {}; e.g. {}\n",
            rank + 1,
            numbers.join(", "),
            examples.join(", ")
        ));
    }
    Ok(json!({"text": summary, "table": table, "csv": csv, "records": n, "groups": rows.len()}))
}

/// A sum as a whole number when it is one.
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
        None => String::new(),
    }
}

/// A CSV field, quoted with inner quotes doubled.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn similar_vectors_group_and_distinct_ones_stay_apart() {
        let v = vec![
            unit(&[1.0, 0.1, 0.0]),
            unit(&[0.0, 1.0, 0.0]),
            unit(&[1.0, 0.0, 0.1]),
            unit(&[0.1, 1.0, 0.0]),
            unit(&[0.0, 0.0, 1.0]),
        ];
        assert_eq!(group(&v, 0.9), vec![vec![0, 2], vec![1, 3], vec![4]]);
        assert_eq!(group(&v, 1.01).len(), 5);
    }

    #[test]
    fn the_table_counts_sums_and_ranks_groups() {
        let rec =
            |id: u64, users: u64| json!({"text": format!("{{\"id\": {id}, \"affected_users\": {users}}}")});
        let mut inputs: BTreeMap<String, Value> = BTreeMap::new();
        for (i, (id, users)) in [(10, 3), (11, 4), (12, 5), (13, 1)].into_iter().enumerate() {
            inputs.insert(format!("record-{i:05}"), rec(id, users));
        }
        inputs.insert(
            "vectors-00000".into(),
            json!({"vectors": [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]}),
        );
        inputs.insert(
            "texts".into(),
            json!(["login fails", "slow search", "login fails again", "cannot log in"]),
        );
        let out = run(&inputs).unwrap();
        assert_eq!(out["groups"], 2);
        assert_eq!(out["table"][0]["count"], 3);
        assert_eq!(out["table"][0]["sums"]["affected_users"], 9.0);
        assert_eq!(out["table"][0]["ids"], json!([10, 12, 13]));
        assert_eq!(out["table"][1]["ids"], json!([11]));
        assert_eq!(out["table"][0]["records"], json!([1, 3, 4]), "positions, 1-based");
        assert_eq!(out["table"][0]["sums"]["unknown"], json!({}));
        let text = out["text"].as_str().unwrap();
        assert!(text.contains("1. login fails — 3 records, affected_users 9; e.g. 10, 12, 13"), "{text}");
        assert!(
            out["csv"]
                .as_str()
                .unwrap()
                .starts_with("rank,count,affected_users,label,ids\n1,3,9,\"login fails\",\"10 12 13\"\n")
        );
    }

    #[test]
    fn a_count_copied_from_the_id_is_unknown_not_summed() {
        let mut inputs: BTreeMap<String, Value> = BTreeMap::new();
        inputs.insert("record-00000".into(), json!({"id": 1035, "affected_users": 1035}));
        inputs.insert("record-00001".into(), json!({"id": 1057, "affected_users": 4}));
        inputs.insert("vectors-00000".into(), json!({"vectors": [[1.0], [1.0]]}));
        inputs.insert("texts".into(), json!(["slow search", "search is slow"]));
        let out = run(&inputs).unwrap();
        assert_eq!(out["table"][0]["sums"]["affected_users"], 4.0);
        assert_eq!(out["table"][0]["sums"]["unknown"]["affected_users"], 1);
        assert!(
            out["text"].as_str().unwrap().contains("affected_users 4 (1 without a value)"),
            "{}",
            out["text"]
        );
        inputs.insert("record-00001".into(), json!({"id": 1057, "affected_users": null}));
        let out = run(&inputs).unwrap();
        assert!(
            out["text"].as_str().unwrap().contains("2 records, affected_users not given"),
            "{}",
            out["text"]
        );
    }

    #[test]
    fn mismatched_inputs_are_refused_with_the_reason() {
        let mut inputs: BTreeMap<String, Value> = BTreeMap::new();
        inputs.insert("record-00000".into(), json!({}));
        inputs.insert("texts".into(), json!(["a", "b"]));
        inputs.insert("vectors-00000".into(), json!({"vectors": [[1.0]]}));
        let err = run(&inputs).unwrap_err();
        assert!(err.message.contains("one of each per record") && !err.retryable, "{}", err.message);
    }
}
