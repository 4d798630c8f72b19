//! JSON Schema (the subset in `mod.rs`) → [`Shape`].

use std::sync::Arc;

use serde_json::Value;

/// Deepest nesting of objects and arrays a shape may have.
pub const MAX_DEPTH: usize = 16;

/// The values a structured output may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Any JSON value (nested at most [`MAX_DEPTH`] deep).
    Any,
    /// Any JSON object (`json_object` mode).
    AnyObject,
    /// Properties (at most 64, given in any order, each at most once), each with whether it is
    /// required.
    Object(Vec<(String, Arc<Shape>, bool)>),
    Array {
        /// Shapes of the first items, by position (`prefixItems`); `items` for the rest.
        prefix: Arc<[Arc<Shape>]>,
        items: Arc<Shape>,
        min: usize,
        max: Option<usize>,
    },
    String {
        min: usize,
        max: Option<usize>,
    },
    Integer,
    Number,
    Boolean,
    Null,
    /// One of these JSON texts (`enum`, `const`).
    OneOf(Vec<String>),
    /// The shape or null.
    Nullable(Arc<Shape>),
}

/// Why a schema cannot be used, naming where in it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ShapeError {
    pub path: String,
    pub reason: String,
}

fn err(path: &str, reason: impl Into<String>) -> ShapeError {
    ShapeError { path: path.to_string(), reason: reason.into() }
}

/// Keywords that only describe (ignored) or that the shape already implies.
const HARMLESS: [&str; 11] = [
    "title",
    "description",
    "$schema",
    "$id",
    "examples",
    "default",
    "additionalProperties",
    "strict",
    "format",
    "$comment",
    "name",
];

/// The shape of an OpenAI `response_format` (`None` for `{"type": "text"}`).
pub fn response_format(format: &Value) -> Result<Option<Shape>, ShapeError> {
    let kind = format.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Shape::AnyObject)),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .ok_or_else(|| err("response_format.json_schema", "required for type json_schema"))?;
            let schema = spec
                .get("schema")
                .ok_or_else(|| err("response_format.json_schema.schema", "required (a JSON Schema)"))?;
            Shape::compile(schema, "response_format.json_schema.schema", 0).map(Some)
        }
        _ => Err(err("response_format.type", "expected text, json_object or json_schema")),
    }
}

fn count(schema: &Value, key: &str, path: &str) -> Result<Option<usize>, ShapeError> {
    match schema.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| err(&format!("{path}.{key}"), "expected a non-negative integer")),
    }
}

impl Shape {
    /// An array's shape for its item at `position` (its own shape for anything else).
    pub(crate) fn item(&self, position: usize) -> &Arc<Shape> {
        match self {
            Shape::Array { prefix, items, .. } => prefix.get(position).unwrap_or(items),
            _ => unreachable!("items exist only in arrays"),
        }
    }

    /// Compile `schema` found at `path`, `depth` levels down.
    pub fn compile(schema: &Value, path: &str, depth: usize) -> Result<Shape, ShapeError> {
        if depth > MAX_DEPTH {
            return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        if schema == &Value::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(Shape::Any);
        }
        let obj = schema.as_object().ok_or_else(|| err(path, "expected a schema object"))?;
        let known = [
            "type",
            "properties",
            "required",
            "items",
            "prefixItems",
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "enum",
            "const",
        ];
        if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str()) && !HARMLESS.contains(&k.as_str()))
        {
            return Err(err(&format!("{path}.{k}"), "this keyword is not supported by structured outputs"));
        }
        if obj.get("additionalProperties").is_some_and(|a| a != &Value::Bool(false)) {
            return Err(err(
                &format!("{path}.additionalProperties"),
                "only false is supported (outputs hold exactly the listed properties)",
            ));
        }
        if let Some(c) = obj.get("const") {
            return Ok(Shape::OneOf(vec![c.to_string()]));
        }
        if let Some(e) = obj.get("enum") {
            let values = e
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err(&format!("{path}.enum"), "expected a non-empty array of values"))?;
            return Ok(Shape::OneOf(values.iter().map(Value::to_string).collect()));
        }
        let types: Vec<&str> = match obj.get("type") {
            None => return Ok(Shape::Any),
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(err(&format!("{path}.type"), "expected a type name or a list of them")),
        };
        let (nullable, rest): (Vec<&str>, Vec<&str>) = types.iter().partition(|t| **t == "null");
        let inner = match rest.as_slice() {
            [] if !nullable.is_empty() => return Ok(Shape::Null),
            [one] => Self::of_type(one, obj, path, depth)?,
            _ => {
                return Err(err(&format!("{path}.type"), "expected one type, or one type and \"null\""));
            }
        };
        Ok(if nullable.is_empty() { inner } else { Shape::Nullable(Arc::new(inner)) })
    }

    fn of_type(
        t: &str,
        obj: &serde_json::Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Shape, ShapeError> {
        let schema = Value::Object(obj.clone());
        match t {
            "string" => {
                let (min, max) =
                    (count(&schema, "minLength", path)?.unwrap_or(0), count(&schema, "maxLength", path)?);
                if max.is_some_and(|m| m < min) {
                    return Err(err(&format!("{path}.maxLength"), "is below minLength"));
                }
                Ok(Shape::String { min, max })
            }
            "integer" => Ok(Shape::Integer),
            "number" => Ok(Shape::Number),
            "boolean" => Ok(Shape::Boolean),
            "null" => Ok(Shape::Null),
            "array" => {
                let items = match obj.get("items") {
                    None => Shape::Any,
                    Some(i) => Shape::compile(i, &format!("{path}.items"), depth + 1)?,
                };
                let prefix = match obj.get("prefixItems") {
                    None => Vec::new(),
                    Some(Value::Array(shapes)) => shapes
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            Shape::compile(s, &format!("{path}.prefixItems[{i}]"), depth + 1).map(Arc::new)
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(err(&format!("{path}.prefixItems"), "expected an array of schemas"));
                    }
                };
                let (min, max) =
                    (count(&schema, "minItems", path)?.unwrap_or(0), count(&schema, "maxItems", path)?);
                if max.is_some_and(|m| m < min) {
                    return Err(err(&format!("{path}.maxItems"), "is below minItems"));
                }
                Ok(Shape::Array { prefix: prefix.into(), items: Arc::new(items), min, max })
            }
            "object" => {
                let props = match obj.get("properties") {
                    None => return Ok(Shape::AnyObject),
                    Some(Value::Object(p)) => p,
                    Some(_) => return Err(err(&format!("{path}.properties"), "expected an object")),
                };
                let required: Vec<&str> = match obj.get("required") {
                    None => vec![],
                    Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
                    Some(_) => return Err(err(&format!("{path}.required"), "expected an array of names")),
                };
                if props.len() > 64 {
                    return Err(err(&format!("{path}.properties"), "more than 64 properties"));
                }
                if let Some(missing) = required.iter().find(|r| !props.contains_key(**r)) {
                    return Err(err(&format!("{path}.required"), format!("`{missing}` is not a property")));
                }
                props
                    .iter()
                    .map(|(name, s)| {
                        let shape = Shape::compile(s, &format!("{path}.properties.{name}"), depth + 1)?;
                        Ok((name.clone(), Arc::new(shape), required.contains(&name.as_str())))
                    })
                    .collect::<Result<_, _>>()
                    .map(Shape::Object)
            }
            other => Err(err(&format!("{path}.type"), format!("unknown type `{other}`"))),
        }
    }

    /// The shortest JSON text of this shape.
    pub fn minimal(&self) -> String {
        match self {
            Shape::Any | Shape::Null | Shape::Nullable(_) => "null".into(),
            Shape::AnyObject => "{}".into(),
            Shape::Object(props) => {
                let parts: Vec<String> = props
                    .iter()
                    .filter(|(_, _, req)| *req)
                    .map(|(name, s, _)| format!("{}:{}", Value::String(name.clone()), s.minimal()))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Shape::Array { min, .. } => {
                format!("[{}]", (0..*min).map(|i| self.item(i).minimal()).collect::<Vec<_>>().join(","))
            }
            Shape::String { min, .. } => format!("\"{}\"", "x".repeat(*min)),
            Shape::Integer | Shape::Number => "0".into(),
            Shape::Boolean => "false".into(),
            Shape::OneOf(options) => options.iter().min_by_key(|o| o.len()).cloned().unwrap_or_default(),
        }
    }
}
