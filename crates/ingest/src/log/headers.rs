//! Record headers in the embedded log's SQLite rows: a JSON array of `[name, hex value]`, NULL
//! when there are none (most records).

use super::Headers;

/// Headers as a JSON array of `[name, hex value]`; NULL when there are none (most records).
pub(super) fn encode(headers: &Headers) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), hex::encode(v))).collect();
    serde_json::to_string(&pairs).ok()
}

pub(super) fn decode(column: Option<String>) -> Headers {
    let Some(text) = column else { return Headers::new() };
    let pairs: Vec<(String, String)> = serde_json::from_str(&text).unwrap_or_default();
    pairs.into_iter().filter_map(|(k, v)| Some((k, hex::decode(&v).ok()?))).collect()
}
