//! One attempt: kind + resolved inputs → output JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};
use splai_events::{TaskKind, Usage};

use crate::llm::{GenParams, LlmModel};
use crate::models::Models;
use crate::shell::ShellLimits;
use crate::{AttemptError, aggregate, tools};

/// What an attempt may use.
pub struct Context<'a> {
    /// Limits of the `shell` tool; `None` when it is off.
    pub shell: Option<&'a ShellLimits>,
    pub models: &'a Models,
    pub model: Option<&'a str>,
    pub cancel: &'a Arc<AtomicBool>,
    /// Streaming progress: (tokens so far, new text).
    pub progress: &'a mut dyn FnMut(u32, &str),
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("shell", &self.shell).field("model", &self.model).finish()
    }
}

/// The output document and, for inference, token counts.
pub type Output = (Value, Option<Usage>);

/// Run the work of an attempt. CPU-bound: callers run it off the async runtime.
pub fn execute(
    kind: TaskKind,
    inputs: &BTreeMap<String, Value>,
    ctx: &mut Context<'_>,
) -> Result<Output, AttemptError> {
    match kind {
        TaskKind::ToolExecution => Ok((tools::run(inputs, ctx.shell, ctx.cancel)?, None)),
        TaskKind::Aggregation => Ok((aggregate::run(inputs)?, None)),
        TaskKind::LlmInference => infer(inputs, ctx),
        TaskKind::Embedding => embed(inputs, ctx),
    }
}

fn messages(inputs: &BTreeMap<String, Value>) -> Result<Vec<(String, String)>, AttemptError> {
    if let Some(list) = inputs.get("messages") {
        let list = list.as_array().ok_or_else(|| AttemptError::fatal("input `messages` must be a list"))?;
        return list
            .iter()
            .map(|m| {
                match (m.get("role").and_then(Value::as_str), m.get("content").and_then(Value::as_str)) {
                    (Some(r), Some(c)) => Ok((r.to_string(), c.to_string())),
                    _ => Err(AttemptError::fatal("every message needs a string `role` and `content`")),
                }
            })
            .collect();
    }
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let prompt = inputs.get("prompt").map(text_of).unwrap_or_default();
    let body = inputs.get("text").map(text_of).unwrap_or_default();
    // The material first, the instruction last: small models follow an instruction they read
    // right before answering far better than one buried above a long text.
    let content = [body, prompt].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n\n");
    if content.is_empty() {
        return Err(AttemptError::fatal("llm_inference needs `messages`, or a `prompt` and/or `text`"));
    }
    Ok(vec![("user".to_string(), content)])
}

fn infer(inputs: &BTreeMap<String, Value>, ctx: &mut Context<'_>) -> Result<Output, AttemptError> {
    let messages = messages(inputs)?;
    let params = GenParams {
        max_tokens: inputs.get("max_tokens").and_then(Value::as_u64).unwrap_or(128) as usize,
        temperature: inputs.get("temperature").and_then(Value::as_f64),
        seed: inputs.get("seed").and_then(Value::as_u64).unwrap_or(0),
        stop: match inputs.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => vec![],
        },
        repeat_penalty: match inputs.get("repeat_penalty") {
            None => GenParams::default().repeat_penalty,
            Some(v) => v
                .as_f64()
                .filter(|p| (1.0..=2.0).contains(p))
                .ok_or_else(|| AttemptError::fatal("input `repeat_penalty` must be a number in 1..=2"))?
                as f32,
        },
        response: match inputs.get("response_format") {
            None | Some(Value::Null) => None,
            Some(format) => splai_ingest::structured::response_format(format)
                .map_err(|e| AttemptError::fatal(format!("input `response_format`: {e}")))?
                .map(std::sync::Arc::new),
        },
        ..GenParams::default()
    };
    let model = ctx.models.llm(ctx.model)?;
    let generation = model.generate(&LlmModel::chat_prompt(&messages), &params, ctx.cancel, ctx.progress)?;
    let usage =
        Usage { prompt_tokens: generation.prompt_tokens, completion_tokens: generation.completion_tokens };
    let out = json!({
        "text": generation.text,
        "model": model.name,
        "finish_reason": generation.finish_reason,
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
    });
    Ok((out, Some(usage)))
}

fn embed(inputs: &BTreeMap<String, Value>, ctx: &mut Context<'_>) -> Result<Output, AttemptError> {
    let texts: Vec<String> = match inputs.get("texts").or_else(|| inputs.get("text")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| AttemptError::fatal("input `texts` must hold only strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(AttemptError::fatal("embedding needs `texts` (a list of strings) or `text`")),
    };
    let model = ctx.models.embedder(ctx.model)?;
    let vectors = {
        let _turn = ctx.models.embedding_turn();
        model.embed(&texts)?
    };
    let dims = vectors.first().map_or(0, Vec::len);
    Ok((json!({ "model": model.name, "dims": dims, "vectors": vectors }), None))
}
