//! Request bodies as the handlers check them: `POST /v1/jobs` takes the contract's `JobRequest`
//! (generated from `splai-events`' types, the schema Kafka producers get) with each job type's
//! `input` as the planner checks it; the OpenAI endpoints take what their handlers read.

use serde_json::{Value, json};
use splai_events::JobType;
use splai_ingest::plan::{MAX_TOKENS, generation_schema, input_schema, messages_schema};

/// Put the request schemas in `doc`'s components and point each operation's body at its own.
pub fn document(doc: &mut Value) {
    let mut components = Vec::new();
    let mut job_request = serde_json::to_value(splai_events::schema::job_request()).unwrap_or_default();
    if let Some(Value::Object(defs)) = job_request.as_object_mut().and_then(|o| o.remove("$defs")) {
        components.extend(defs);
    }
    components.push(("JobRequest".into(), job_request));
    components.push(("JobSubmission".into(), job_submission()));
    components.push(("ChatCompletionRequest".into(), chat_completion()));
    components.push(("CompletionRequest".into(), completion()));
    components.push(("EmbeddingRequest".into(), embedding()));
    for (name, mut schema) in components {
        strip_schema_keyword(&mut schema);
        doc["components"]["schemas"][name] = schema;
    }
    for (path, schema) in [
        ("/v1/jobs", "JobSubmission"),
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/v1/completions", "CompletionRequest"),
        ("/v1/embeddings", "EmbeddingRequest"),
    ] {
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"] =
            json!({"$ref": format!("#/components/schemas/{schema}")});
        doc["paths"][path]["post"]["requestBody"]["required"] = json!(true);
    }
    rewrite_refs(doc);
}

/// A `JobRequest` whose `input` has its job type's shape, and whose `dag` is there exactly when
/// the type is `explicit`.
fn job_submission() -> Value {
    let types = [JobType::Chat, JobType::BatchAnalysis, JobType::Embed, JobType::Explicit, JobType::Auto];
    let variants: Vec<Value> = types
        .into_iter()
        .map(|t| {
            let name = splai_events::wire_name(&t);
            let mut variant = json!({
                "properties": {"type": {"const": name}, "input": input_schema(t)},
                "required": ["type"],
            });
            if t == JobType::Explicit {
                variant["required"] = json!(["type", "dag"]);
            } else {
                variant["required"] = json!(["type", "input"]);
                variant["not"] = json!({"required": ["dag"]});
            }
            variant
        })
        .collect();
    json!({
        "description": "A job: a `JobRequest` (the same the `jobs` topic takes) with its type's `input`",
        "allOf": [{"$ref": "#/components/schemas/JobRequest"}, {"oneOf": variants}],
    })
}

/// What the OpenAI handlers pass on to a `chat` job's input (the planner's generation settings,
/// checked there) and read themselves.
fn sampling() -> serde_json::Map<String, Value> {
    let mut props = generation_schema();
    props.insert(
        "model".into(),
        json!({"type": "string", "description": "A model a live worker serves (`GET /v1/models`); 404 otherwise"}),
    );
    props.insert(
        "max_completion_tokens".into(),
        json!({"type": "integer", "minimum": 1, "maximum": MAX_TOKENS}),
    );
    props.insert("n".into(), json!({"type": "integer", "minimum": 1, "maximum": 1, "description": "Only 1"}));
    props
}

fn chat_completion() -> Value {
    let mut props = sampling();
    props.insert("messages".into(), messages_schema());
    props.insert("stream".into(), json!({"type": "boolean"}));
    props.insert(
        "stream_options".into(),
        json!({"type": "object", "properties": {"include_usage": {"type": "boolean"}}}),
    );
    json!({"type": "object", "required": ["messages"], "properties": props, "additionalProperties": false})
}

fn completion() -> Value {
    let mut props = sampling();
    props.insert("prompt".into(), json!({"type": "string", "description": "Runs as one user message"}));
    json!({"type": "object", "required": ["prompt"], "properties": props, "additionalProperties": false})
}

fn embedding() -> Value {
    json!({
        "type": "object",
        "required": ["input"],
        "additionalProperties": false,
        "properties": {
            "model": {"type": "string"},
            "input": {"anyOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": {"type": "string"}},
            ]},
        },
    })
}

/// A schema's own `$schema` keyword has no place inside an OpenAPI document.
fn strip_schema_keyword(schema: &mut Value) {
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
}

/// schemars points at `#/$defs/X`; in the document those live at `#/components/schemas/X`. A
/// property or item schema `true` (any value) becomes `{}`, which means the same and which
/// OpenAPI tooling (openapi-python-client) reads.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                props.values_mut().filter(|p| **p == Value::Bool(true)).for_each(|p| *p = json!({}));
            }
            if map.get("items") == Some(&Value::Bool(true)) {
                map.insert("items".into(), json!({}));
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
