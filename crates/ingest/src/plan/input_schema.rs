//! JSON Schemas of each job type's `input`, as the templates here check it: what the REST API's
//! OpenAPI document says `POST /v1/jobs` takes, so a client generated from it builds requests
//! the planner accepts. They are no wider than the checks (a value they accept is accepted);
//! what a schema cannot say (a text's line count against the task limit, a `response_format`'s
//! own schema) is still refused by the planner, naming the field.

use serde_json::{Value, json};
use splai_events::JobType;

use super::validate::MAX_TOKENS;

/// The schema of `input` for `job_type`.
pub fn input_schema(job_type: JobType) -> Value {
    match job_type {
        JobType::Chat => chat(),
        JobType::BatchAnalysis => batch_analysis(),
        JobType::Embed => one_of_text_or(
            "texts",
            "Texts to embed, one vector each (batched by the planner)",
            "Text whose non-empty lines are embedded, one vector each",
            json!({}),
        ),
        JobType::Explicit => {
            json!({"description": "Free-form; an explicit job's tasks read their own `inputs`"})
        }
        JobType::Auto => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["goal"],
            "properties": {
                "goal": {"type": "string", "pattern": "\\S", "description": "What the job should achieve, in words"},
                "text": {"type": "string", "description": "The material the goal is about"},
                "max_steps": {"type": "integer", "minimum": 1, "maximum": super::hybrid::MAX_STEPS},
            },
        }),
    }
}

/// Generation settings every inference template passes through (the OpenAI endpoints take the
/// same ones).
pub fn generation() -> serde_json::Map<String, Value> {
    let props = json!({
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "seed": {"type": "integer", "minimum": 0},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "response_format": response_format(),
    });
    props.as_object().cloned().unwrap_or_default()
}

/// OpenAI's `response_format` (the planner checks the schema inside `json_schema` further).
fn response_format() -> Value {
    json!({
        "description": "OpenAI's response_format: constrain the output to JSON, or to a JSON Schema",
        "oneOf": [
            {"type": "object", "additionalProperties": false, "required": ["type"],
             "properties": {"type": {"enum": ["text", "json_object"]}}},
            {"type": "object", "additionalProperties": false, "required": ["type", "json_schema"],
             "properties": {
                "type": {"const": "json_schema"},
                "json_schema": {"type": "object", "required": ["name", "schema"], "properties": {
                    "name": {"type": "string"},
                    "strict": {"type": "boolean"},
                    "schema": {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}},
                }},
             }},
        ],
    })
}

/// A chat's messages, as the chat template checks them.
pub fn messages() -> Value {
    json!({"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["role", "content"],
        "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
    }})
}

fn chat() -> Value {
    let mut props = generation();
    props.insert("messages".into(), messages());
    props.insert("prompt".into(), json!({"type": "string", "description": "One user message"}));
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": props,
        "oneOf": [{"required": ["messages"]}, {"required": ["prompt"]}],
    })
}

fn batch_analysis() -> Value {
    let mut chunks = generation();
    chunks.insert("mode".into(), json!({"const": "chunks"}));
    chunks.insert("question".into(), json!({"type": "string", "description": "Asked of every chunk"}));
    chunks.insert("chunk_lines".into(), json!({"type": "integer", "minimum": 1, "maximum": 10_000}));
    let chunks = one_of_text_or(
        "items",
        "Chunks to analyse, one map task each",
        "Text cut into chunks of `chunk_lines` lines",
        Value::Object(chunks),
    );
    let records = one_of_text_or(
        "items",
        "Records, one per item",
        "Records, one per non-empty line",
        json!({
            "mode": {"const": "records"},
            "schema": response_format(),
            "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                          "description": "Cosine similarity at which records join a group"},
            "sum_fields": {"type": "array", "items": {"type": "string"}},
        }),
    );
    let mut records = records;
    records["required"] = json!(["mode"]);
    json!({"oneOf": [chunks, records]})
}

/// An object with `props` and exactly one of `list` (a non-empty array of strings) or `text` (a
/// string with a non-empty line).
fn one_of_text_or(list: &str, list_doc: &str, text_doc: &str, props: Value) -> Value {
    let mut props = props.as_object().cloned().unwrap_or_default();
    props.insert(
        list.into(),
        json!({"type": "array", "minItems": 1, "items": {"type": "string"}, "description": list_doc}),
    );
    props.insert("text".into(), json!({"type": "string", "pattern": "\\S", "description": text_doc}));
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": props,
        "oneOf": [{"required": [list]}, {"required": ["text"]}],
    })
}
