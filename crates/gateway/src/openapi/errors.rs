//! The error statuses every operation can answer with, added to each from what it is built of
//! (the `Caller` extractor, a JSON body, path parameters, the read model), so the document
//! names every status a client can meet, each with its body's schema.

use serde_json::{Value, json};

/// Paths answered in OpenAI's error shape (`OpenAiError`) instead of `ErrorBody`.
const OPENAI: &[&str] = &["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"];
/// Paths without a caller: no token, no tenant header.
const PUBLIC: &[&str] = &["/healthz", "/readyz"];
/// Paths that submit a job, and so meet the tenant's submit rate and active-job quota.
const SUBMITS: &[&str] = &["/v1/jobs", "/v1/chat/completions", "/v1/completions", "/v1/embeddings"];
/// Paths that wait for the job they submitted.
const WAITS: &[&str] = &["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

/// Add, to every operation of `doc` (an OpenAPI document as JSON), each error status it can
/// answer with and does not document yet.
pub fn document(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                continue;
            }
            let post = method == "post";
            add_errors(path, post, operation);
        }
    }
}

fn add_errors(path: &str, post: bool, operation: &mut Value) {
    if PUBLIC.contains(&path) {
        // Health probes answer anyone.
        operation["security"] = json!([]);
        return;
    }
    let schema = if OPENAI.contains(&path) { "OpenAiError" } else { "ErrorBody" };
    let mut statuses: Vec<(&str, &str)> = vec![
        (
            "400",
            "Bad request: a malformed `X-SPLAI-Tenant` header, query or path parameter, or body, naming the field",
        ),
        ("401", "Auth is on and the bearer token is missing or unknown"),
        ("403", "The token's roles do not allow this, or `X-SPLAI-Tenant` names another tenant"),
        ("503", "The read model or the event log is unavailable; retry"),
    ];
    if post {
        statuses.push(("413", "The body exceeds `gateway.max_body_bytes`"));
        statuses.push(("415", "The body is not `Content-Type: application/json`"));
    }
    if path.contains('{') || OPENAI.contains(&path) {
        statuses.push(("404", "No such job, task, artifact or model for this tenant"));
    }
    if SUBMITS.contains(&path) {
        statuses.push(("429", "Over the tenant's submit rate or active-job quota; see `Retry-After`"));
    }
    if WAITS.contains(&path) {
        statuses.push(("500", "The job this request ran failed (the body says why)"));
        statuses.push(("504", "The job is still running after the gateway's wait"));
    }
    let responses = &mut operation["responses"];
    for (status, description) in statuses {
        if responses.get(status).is_none() {
            responses[status] = json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_gains_the_statuses_its_parts_can_answer_with_and_keeps_its_own() {
        let mut doc = json!({"paths": {
            "/v1/jobs/{id}": {"get": {"responses": {"404": {"description": "mine"}}}},
            "/v1/embeddings": {"post": {"responses": {}}},
            "/healthz": {"get": {"responses": {}}},
        }});
        document(&mut doc);
        let get = &doc["paths"]["/v1/jobs/{id}"]["get"]["responses"];
        assert_eq!(get["404"]["description"], "mine");
        for status in ["400", "401", "403", "503"] {
            assert_eq!(
                get[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody"
            );
        }
        assert!(get.get("415").is_none());
        let post = &doc["paths"]["/v1/embeddings"]["post"]["responses"];
        for status in ["400", "404", "413", "415", "429", "500", "504"] {
            assert_eq!(
                post[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/OpenAiError"
            );
        }
        assert_eq!(doc["paths"]["/healthz"]["get"], json!({"responses": {}, "security": []}));
    }
}
