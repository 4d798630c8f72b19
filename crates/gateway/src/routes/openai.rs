//! OpenAI-compatible endpoints over ordinary SPLAI jobs: `POST /v1/chat/completions` (a `chat`
//! job; `stream: true` gives OpenAI's SSE chunks ending in `[DONE]`), `POST /v1/completions`
//! (the prompt as one user message), `POST /v1/embeddings` (an `embed` job) and `GET /v1/models`
//! (the models live workers have). Each call is admitted, traced, audited and visible in the job
//! API like any other job; errors come in OpenAI's `{"error": {message, type, param, code}}`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use splai_events::JobState;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::routes::abandoned::Abandoned;
use crate::routes::jobs::{json_body, result_of, submit_value};
use crate::state::AppState;
use splai_events::now_ms;

/// How long a non-streaming call waits for its job.
const WAIT: Duration = Duration::from_secs(600);

/// OpenAI's error body: `{"error": {message, type, param, code}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OpenAiError {
    pub error: OpenAiErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// SPLAI's error code (as in `ErrorBody.code`), e.g. `model_not_found`.
    pub code: String,
}

fn openai_error(e: ApiError) -> Response {
    let kind = match e.status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        // OpenAI answers an unknown model with 404 and this type.
        404 if e.body.code == "model_not_found" => "invalid_request_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let body = OpenAiError {
        error: OpenAiErrorDetail {
            message: e.body.message,
            kind: kind.into(),
            param: e.body.field,
            code: e.body.code,
        },
    };
    let mut r = (e.status, Json(body)).into_response();
    if let Some(s) = e.retry_after_s {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
    }
    r
}

/// A submitter's request body, or why not.
async fn request_of(
    st: &AppState,
    caller: Result<Caller, ApiError>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Caller, Value), ApiError> {
    let caller = caller?;
    caller.require(&[Role::Submitter, Role::Operator])?;
    Ok((caller, json_body(st, headers, body).await?))
}

/// Models that live workers have, sorted (`GET /v1/models`).
async fn served_models(st: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(served(st).await?.into_iter().map(|(name, _)| name).collect())
}

/// What a request needs its model to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Generate text: a language model some live worker decodes in an inference engine.
    Generate,
    /// Embed: a model served that is not a language model.
    Embed,
}

/// Models that live workers have, sorted, each with whether it is a language model (some live
/// worker decodes it in an engine).
async fn served(st: &AppState) -> Result<Vec<(String, bool)>, ApiError> {
    let workers = st.store.workers(now_ms() as i64, st.heartbeat_ttl_ms).await?;
    let live = || workers.iter().filter(|w| w.live);
    let decoded: std::collections::BTreeSet<&str> =
        live().filter_map(|w| w.engines.as_object()).flat_map(|e| e.keys().map(String::as_str)).collect();
    let mut names: Vec<(String, bool)> = live()
        .flat_map(|w| w.models.as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(|m| (m.to_string(), decoded.contains(m))))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// A model no live worker serves for this use is answered at once (404 `model_not_found`), not
/// queued: the job would wait for a worker that may never come while the client waits for its
/// answer (a chat request naming an embedding model would wait until it is unschedulable).
async fn check_model(st: &AppState, body: &Value, usage: Use) -> Result<(), ApiError> {
    let Some(model) = body.get("model").and_then(Value::as_str) else { return Ok(()) };
    let served = served(st).await?;
    let fit: Vec<&str> = served
        .iter()
        .filter(|(_, llm)| *llm == (usage == Use::Generate))
        .map(|(name, _)| name.as_str())
        .collect();
    if fit.contains(&model) {
        return Ok(());
    }
    let what = match usage {
        Use::Generate => "language models",
        Use::Embed => "embedding models",
    };
    let message = if served.iter().any(|(name, _)| name == model) {
        format!("The model `{model}` cannot serve this request; {what} served now: {fit:?}")
    } else {
        format!("The model `{model}` does not exist or no live worker serves it; {what} served now: {fit:?}")
    };
    Err(ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message).with_field(Some("model".into())))
}

/// The response, or the error in OpenAI's shape.
fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(openai_error)
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message).with_field(Some(param.to_string()))
}

/// The generation settings OpenAI requests carry, as SPLAI `input` fields.
fn generation(body: &Value, input: &mut serde_json::Map<String, Value>) -> Result<(), ApiError> {
    if let Some(n) = body.get("n").filter(|n| !n.is_null())
        && n.as_u64() != Some(1)
    {
        return Err(bad("n", "only n = 1 is supported"));
    }
    for key in ["temperature", "seed", "stop", "response_format"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            input.insert(key.into(), v.clone());
        }
    }
    let max = body.get("max_completion_tokens").or_else(|| body.get("max_tokens")).filter(|v| !v.is_null());
    if let Some(v) = max {
        input.insert("max_tokens".into(), v.clone());
    }
    Ok(())
}

/// Wait for a job to end; its final state.
async fn wait_for(st: &AppState, tenant: &str, job_id: &str) -> Result<JobState, ApiError> {
    let deadline = Instant::now() + WAIT;
    let mut follower = st.grown.follow(job_id);
    loop {
        if let Some(state) = st.store.tenant(tenant).job_state(job_id).await?
            && state.is_terminal()
        {
            return Ok(state);
        }
        if Instant::now() > deadline {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!("job {job_id} is still running"),
            ));
        }
        follower.grown(Duration::from_millis(200)).await;
    }
}

/// The job's result once it succeeded, or the error the caller should see.
async fn finished(st: &AppState, caller: &Caller, job_id: &str) -> Result<Value, ApiError> {
    let state = wait_for(st, &caller.tenant, job_id).await?;
    let job = st
        .store
        .tenant(&caller.tenant)
        .job(job_id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", job_id))?;
    if state != JobState::Succeeded {
        let reason = job.reason.clone().unwrap_or_else(|| state.to_string());
        let status = if state == JobState::Rejected {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        return Err(ApiError::new(status, "job_failed", format!("job {job_id} {state}: {reason}")));
    }
    result_of(st, &job).await?.ok_or_else(|| ApiError::unavailable(format!("job {job_id} has no result yet")))
}

/// [`finished`], cancelling the job if the caller goes away while it waits.
async fn answered(st: &AppState, caller: &Caller, job_id: &str) -> Result<Value, ApiError> {
    let watch = Abandoned::watch(st, caller, job_id);
    let result = finished(st, caller, job_id).await;
    watch.finished();
    result
}

async fn submit(
    st: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: Value,
) -> Result<String, ApiError> {
    let (_, accepted) = submit_value(st, caller, headers, request).await?;
    Ok(accepted["job_id"].as_str().unwrap_or_default().to_string())
}

fn usage_of(result: &Value) -> Value {
    let p = result["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
    let c = result["usage"]["completion_tokens"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

#[utoipa::path(post, path = "/v1/chat/completions", operation_id = "create_chat_completion", tag = "openai",
    request_body(content = Object, description = "OpenAI chat completion request: model, messages, max_tokens, temperature, seed, stop, response_format (text, json_object, json_schema), stream"),
    responses((status = 200, description = "chat.completion, or text/event-stream of chat.completion.chunk ending in [DONE]")))]
pub async fn chat_completions(
    State(st): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(chat(st, caller, headers, body).await)
}

async fn chat(
    st: AppState,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (caller, body) = request_of(&st, caller, &headers, body).await?;
    let messages = body.get("messages").cloned().ok_or_else(|| bad("messages", "`messages` is required"))?;
    check_model(&st, &body, Use::Generate).await?;
    let mut input = serde_json::Map::new();
    input.insert("messages".into(), messages);
    generation(&body, &mut input)?;
    let model = body.get("model").and_then(Value::as_str).map(str::to_string);
    let mut request = json!({"type": "chat", "input": input});
    if let Some(m) = &model {
        request["model"] = json!(m);
    }
    let streamed = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if streamed {
        // A streaming client asked to watch the answer being generated; a reused answer would
        // arrive whole, as one chunk.
        request["cache"] = json!(false);
    }
    let job_id = submit(&st, &caller, &headers, request).await?;
    let id = format!("chatcmpl-{job_id}");
    let created = now_ms() / 1000;
    let model_name = model.unwrap_or_else(|| "default".into());
    if streamed {
        let stops: Vec<String> = match body.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => vec![],
        };
        let include_usage = body["stream_options"]["include_usage"].as_bool().unwrap_or(false);
        return Ok(
            stream_chat(st, caller, job_id, id, created, model_name, stops, include_usage).into_response()
        );
    }
    let result = answered(&st, &caller, &job_id).await?;
    let model_used = result["model"].as_str().unwrap_or(&model_name).to_string();
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": model_used,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"]},
                     "finish_reason": result["finish_reason"]}],
        "usage": usage_of(&result),
        "splai": {"job_id": job_id},
    }))
    .into_response())
}

/// What of the streamed text may be shown now: the final text drops leading and trailing
/// whitespace and anything from a stop sequence on, so hold back trailing whitespace and a
/// possible start of a stop sequence until more arrives.
fn showable<'a>(raw: &'a str, stops: &[String]) -> &'a str {
    let mut text = raw.trim_start();
    if let Some(cut) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
        text = &text[..cut];
    }
    let end = text.trim_end().len();
    let hold = stops.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
    let mut end = end.saturating_sub(hold);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[allow(clippy::too_many_arguments)]
fn stream_chat(
    st: AppState,
    caller: Caller,
    job_id: String,
    id: String,
    created: u64,
    model: String,
    stops: Vec<String>,
    include_usage: bool,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let chunk = move |delta: Value, finish: Value, usage: Option<Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        if let Some(u) = usage {
            c["usage"] = u;
        }
        SseEvent::default().data(c.to_string())
    };
    let stream = async_stream(move |tx| async move {
        let watch = Abandoned::watch(&st, &caller, &job_id);
        let send = |e: SseEvent| tx.send(Ok(e));
        let _ = send(chunk(json!({"role": "assistant", "content": ""}), Value::Null, None));
        let (mut after, mut raw, mut sent) = (0i64, String::new(), 0usize);
        let mut follower = st.grown.follow(&job_id);
        let deadline = Instant::now() + WAIT;
        loop {
            if tx.is_closed() {
                return; // the client went away: `watch` cancels the job
            }
            let terminal = matches!(st.store.tenant(&caller.tenant).job_state(&job_id).await, Ok(Some(s)) if s.is_terminal());
            let rows =
                st.store.tenant(&caller.tenant).stream_after(&job_id, after, 500).await.unwrap_or_default();
            for r in &rows {
                after = r.seq;
                if r.event == "task.tokens" {
                    raw.push_str(r.data["delta"].as_str().unwrap_or(""));
                    let show = showable(&raw, &stops);
                    if show.len() > sent {
                        let _ = send(chunk(json!({"content": &show[sent..]}), Value::Null, None));
                        sent = show.len();
                    }
                }
            }
            if terminal && rows.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let _ = send(
                    SseEvent::default()
                        .data(json!({"error": {"message": "timed out", "type": "server_error"}}).to_string()),
                );
                watch.finished();
                return;
            }
            if rows.is_empty() {
                follower.grown(Duration::from_millis(200)).await;
            }
        }
        watch.finished();
        match finished(&st, &caller, &job_id).await {
            Ok(result) => {
                // The final text is the truth: send what the stream has not shown yet.
                let text = result["text"].as_str().unwrap_or("");
                if let Some(rest) = text.get(sent..).filter(|r| !r.is_empty() && text.is_char_boundary(sent))
                {
                    let _ = send(chunk(json!({"content": rest}), Value::Null, None));
                }
                let usage = include_usage.then(|| usage_of(&result));
                let _ = send(chunk(json!({}), result["finish_reason"].clone(), usage));
            }
            Err(e) => {
                let _ = send(SseEvent::default().data(json!({"error": {"message": e.body.message, "type": "server_error", "code": e.body.code}}).to_string()));
            }
        }
        let _ = send(SseEvent::default().data("[DONE]"));
    });
    Sse::new(stream)
}

/// A stream fed by a task through a channel.
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<Result<SseEvent, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[utoipa::path(post, path = "/v1/completions", operation_id = "create_completion", tag = "openai",
    request_body(content = Object, description = "OpenAI completion request: model, prompt (one string), max_tokens, temperature, seed, stop"),
    responses((status = 200, description = "text_completion (the prompt runs as one user message of the chat template)")))]
pub async fn completions(
    State(st): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (caller, body) = request_of(&st, caller, &headers, body).await?;
        let prompt = body
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("prompt", "`prompt` must be one string"))?;
        if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
            return Err(bad("stream", "streaming is supported on /v1/chat/completions"));
        }
        check_model(&st, &body, Use::Generate).await?;
        let mut input = serde_json::Map::new();
        input.insert("prompt".into(), json!(prompt));
        generation(&body, &mut input)?;
        let mut request = json!({"type": "chat", "input": input});
        if let Some(m) = body.get("model").and_then(Value::as_str) {
            request["model"] = json!(m);
        }
        let job_id = submit(&st, &caller, &headers, request).await?;
        let result = answered(&st, &caller, &job_id).await?;
        Ok::<_, ApiError>(Json(json!({
            "id": format!("cmpl-{job_id}"), "object": "text_completion", "created": now_ms() / 1000,
            "model": result["model"], "choices": [{"index": 0, "text": result["text"], "finish_reason": result["finish_reason"], "logprobs": null}],
            "usage": usage_of(&result), "splai": {"job_id": job_id},
        })))
    };
    respond(run.await.map(IntoResponse::into_response))
}

#[utoipa::path(post, path = "/v1/embeddings", operation_id = "create_embeddings", tag = "openai",
    request_body(content = Object, description = "OpenAI embeddings request: model, input (a string or a list of strings)"),
    responses((status = 200, description = "A list of embeddings, in input order")))]
pub async fn embeddings(
    State(st): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (caller, body) = request_of(&st, caller, &headers, body).await?;
        let texts: Vec<Value> = match body.get("input") {
            Some(Value::String(s)) => vec![json!(s)],
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => a.clone(),
            _ => return Err(bad("input", "`input` must be a string or a non-empty list of strings")),
        };
        check_model(&st, &body, Use::Embed).await?;
        let mut request = json!({"type": "embed", "input": {"texts": texts}});
        if let Some(m) = body.get("model").and_then(Value::as_str) {
            request["model"] = json!(m);
        }
        let job_id = submit(&st, &caller, &headers, request).await?;
        let result = answered(&st, &caller, &job_id).await?;
        let data: Vec<Value> = result["vectors"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        Ok::<_, ApiError>(Json(json!({
            "object": "list", "data": data, "model": body.get("model").cloned().unwrap_or(json!("default")),
            "usage": {"prompt_tokens": 0, "total_tokens": 0}, "splai": {"job_id": job_id},
        })))
    };
    respond(run.await.map(IntoResponse::into_response))
}

#[utoipa::path(get, path = "/v1/models", operation_id = "list_models", tag = "openai", responses((status = 200, description = "Models that live workers have")))]
pub async fn models(State(st): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    if let Err(e) = caller.and_then(|c| c.require(&[Role::Reader, Role::Submitter, Role::Operator])) {
        return openai_error(e);
    }
    let names = match served_models(&st).await {
        Ok(n) => n,
        Err(e) => return openai_error(e),
    };
    let data: Vec<Value> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "splai"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

#[cfg(test)]
mod tests {
    use super::showable;

    #[test]
    fn streamed_text_is_always_a_prefix_of_the_final_text() {
        let stops = vec!["\n\n".to_string()];
        assert_eq!(showable("  Paris is", &stops), "Paris i");
        assert_eq!(showable(" Paris.\n", &stops), "Paris");
        assert_eq!(showable(" Paris.\n\nMore", &stops), "Paris");
        assert_eq!(showable(" Paris is", &[]), "Paris is");
        assert_eq!(showable("é", &["ab".to_string()]), "");
    }
}
