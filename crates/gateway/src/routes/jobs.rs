//! Jobs: submit (admission answered at once by the scheduler's own planner and validation), get,
//! list with cursor pagination, cancel, and tasks.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use splai_events::{ArtifactRef, CancelJob, Envelope, Event, JobRequest, JobState, wire_name};
use splai_ingest::plan::{PlanError, parse_request, plan};
use splai_store::read::{JobFilter, JobView, NewJob, Submitted};
use splai_telemetry::chain;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

use splai_events::now_ms;

fn plan_error(e: PlanError) -> ApiError {
    let status = if matches!(e, PlanError::InputTooLarge { .. }) {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string()).with_field(e.field())
}

/// A `traceparent` continuing the caller's trace when it sent one, else starting a new trace.
fn traceparent(headers: &HeaderMap) -> String {
    let span: u64 = rand::random::<u64>() | 1;
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|tp| {
        let parts: Vec<&str> = tp.split('-').collect();
        (parts.len() == 4 && parts[1].len() == 32 && parts[1].chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| parts[1].to_ascii_lowercase())
    });
    let trace = incoming.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>() | 1));
    format!("00-{trace}-{span:016x}-01")
}

/// Read a JSON body under the size limit, with the right status for each fault.
pub async fn json_body(st: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Value> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected `Content-Type: application/json`, got `{content_type}`"),
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {} bytes", st.max_body_bytes),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > st.max_body_bytes) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, st.max_body_bytes).await.map_err(|_| too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))
}

#[utoipa::path(post, path = "/v1/jobs", operation_id = "submit_job", tag = "jobs",
    request_body(content = Object, description = "A JobRequest: `type` (chat, batch_analysis, embed, explicit, auto), `input`, optional `dag`, `priority`, `model`, `idempotency_key`…"),
    responses(
        (status = 202, description = "Accepted: `{job_id, trace_id, state}`"),
        (status = 200, description = "The same request was already submitted with this idempotency key"),
        (status = 400, description = "Invalid request, naming the field", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, description = "Idempotency key reused for a different request, or job id taken", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 429, description = "Over the tenant's submit rate or active-job quota; see Retry-After", body = crate::error::ErrorBody),
    ))]
pub async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Operator])?;
    let value = match json_body(&st, &headers, body).await {
        Ok(v) => v,
        Err(e) => {
            audit_refusal(&st, &caller, &e).await;
            return Err(e);
        }
    };
    let (status, doc) = submit_value(&st, &caller, &headers, value).await?;
    Ok((status, Json(doc)).into_response())
}

async fn audit_refusal(st: &AppState, caller: &Caller, e: &ApiError) {
    crate::audit::record_all(st, caller, vec![rejection(e)]).await;
}

/// The audit record of a refused submission.
fn rejection(e: &ApiError) -> (String, String, Value) {
    let detail = json!({"status": e.status.as_u16(), "code": e.body.code, "message": e.body.message,
                        "field": e.body.field});
    ("job.reject".into(), "-".into(), detail)
}

/// Admit a request document (the job API and the OpenAI-compatible endpoints): 202 with
/// `{job_id, trace_id, state, links}`, or 200 for an idempotent replay; refusals are audited.
pub async fn submit_value(
    st: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    value: Value,
) -> ApiResult<(StatusCode, Value)> {
    // The policy's decision is audited with the submission's outcome, in one transaction.
    let mut decision = None;
    let outcome = admit(st, caller, headers, value, &mut decision).await;
    let mut records: Vec<_> = decision.into_iter().collect();
    if let Err(e) = &outcome {
        records.push(rejection(e));
    }
    if !records.is_empty() {
        crate::audit::record_all(st, caller, records).await;
    }
    outcome
}

/// Admission proper: every refusal is an `ApiError`. The policy's decision is left in
/// `decision` for the caller to audit, unless an accepted submission audited it already.
async fn admit(
    st: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    value: Value,
    decision: &mut Option<(String, String, Value)>,
) -> ApiResult<(StatusCode, Value)> {
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let span = tracing::info_span!("splai.admission", otel.name = "admission", tenant = %caller.tenant,
                                   job_id = tracing::field::Empty, job_type = tracing::field::Empty);
    splai_telemetry::set_parent_from_traceparent(&span, incoming);
    let mut request: JobRequest = parse_request(&value).map_err(plan_error)?;
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        request.idempotency_key = Some(key.to_string());
    }
    let dag = tracing::info_span!(parent: &span, "splai.planning", otel.name = "planning")
        .in_scope(|| plan(&request, &st.limits))
        .map_err(plan_error)?;
    let verdict = st.policy.admit(&caller.tenant, &request, &dag);
    let detail = json!({"stage": "admission", "allowed": verdict.allowed, "rule": verdict.rule,
                        "reason": verdict.reason, "task_id": verdict.task_id, "job_id": request.job_id});
    *decision =
        Some(("policy.decision".into(), request.job_id.as_deref().unwrap_or("-").to_string(), detail));
    if !verdict.allowed {
        let rule = verdict.rule.as_deref().unwrap_or("default");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "policy_denied",
            format!("denied by policy rule `{rule}`: {}", verdict.reason),
        )
        .with_field(verdict.task_id.map(|t| format!("dag.tasks[{t}]"))));
    }
    st.rate.take(&caller.tenant).map_err(|wait| {
        ApiError::too_many(
            "rate_limited",
            format!("tenant `{}` is over its submit rate", caller.tenant),
            wait,
        )
    })?;
    let max_active = st.tenant_max_active_jobs.get(&caller.tenant).copied().unwrap_or(st.max_active_jobs);
    let request_sha256 = hex::encode(Sha256::digest(serde_json::to_vec(&request).unwrap_or_default()));
    let job_id = request.job_id.clone().unwrap_or_else(|| format!("job-{}", uuid::Uuid::now_v7().simple()));
    request.job_id = Some(job_id.clone());
    span.record("job_id", job_id.as_str()).record("job_type", wire_name(&request.job_type).as_str());
    // The job's trace: this admission span's context when spans are exported, else a fresh id.
    let tp = span.in_scope(splai_telemetry::current_traceparent).unwrap_or_else(|| traceparent(headers));
    let trace_id = tp.split('-').nth(1).unwrap_or_default().to_string();
    let now = now_ms();
    let record = NewJob {
        job_id: job_id.clone(),
        tenant: caller.tenant.clone(),
        job_type: request.job_type,
        priority: request.priority,
        data_classification: request.data_classification,
        model: request.model.clone(),
        idempotency_key: request.idempotency_key.clone(),
        request_sha256,
        trace_id: trace_id.clone(),
        tasks_total: dag.tasks.len() as i64,
        now_ms: now as i64,
        max_active_jobs: max_active,
    };
    match st.store.record_submission(&record).await? {
        Submitted::New => {}
        Submitted::Replay(job) => {
            return Ok((StatusCode::OK, accepted(&job.job_id, job.trace_id.as_deref(), job.state)));
        }
        Submitted::KeyConflict(job) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("idempotency key was used for a different request (job `{}`)", job.job_id),
            )
            .with_field(Some("idempotency_key".into())));
        }
        Submitted::OverQuota(open) => {
            return Err(ApiError::too_many(
                "quota_exceeded",
                format!(
                    "tenant `{}` has {open} jobs queued or running, its limit ({max_active})",
                    caller.tenant
                ),
                1,
            ));
        }
        Submitted::IdTaken => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "job_exists",
                format!("job `{job_id}` already exists"),
            )
            .with_field(Some("job_id".into())));
        }
    }
    let envelope = Envelope::new(job_id.clone(), now, &caller.tenant, Event::JobRequest(request))
        .with_traceparent(Some(tp));
    if let Err(e) = st.writer.append(&[envelope]).await {
        st.store.tenant(&caller.tenant).forget_submission(&job_id).await.ok();
        return Err(ApiError::unavailable(format!("the event log refused the job: {}", chain(&e))));
    }
    tracing::info!(job = %job_id, tenant = %caller.tenant, trace_id = %trace_id, "job accepted");
    let detail = json!({"type": record.job_type, "tasks": record.tasks_total, "trace_id": trace_id,
                        "idempotency_key": record.idempotency_key, "data_classification": record.data_classification});
    let records =
        decision.take().into_iter().chain([("job.submit".into(), job_id.clone(), detail)]).collect();
    crate::audit::record_all(st, caller, records).await;
    Ok((StatusCode::ACCEPTED, accepted(&job_id, Some(&trace_id), JobState::Queued)))
}

fn accepted(job_id: &str, trace_id: Option<&str>, state: JobState) -> Value {
    json!({
        "job_id": job_id,
        "trace_id": trace_id,
        "state": state,
        "links": {
            "self": format!("/v1/jobs/{job_id}"),
            "tasks": format!("/v1/jobs/{job_id}/tasks"),
            "stream": format!("/v1/jobs/{job_id}/stream"),
        }
    })
}

/// The job of the caller's tenant, or 404.
pub async fn own_job(st: &AppState, caller: &Caller, id: &str) -> ApiResult<JobView> {
    st.store.tenant(&caller.tenant).job(id).await?.ok_or_else(|| ApiError::not_found("job", id))
}

/// The result document: the output of the DAG's single sink once the job succeeded.
pub async fn result_of(st: &AppState, job: &JobView) -> ApiResult<Option<Value>> {
    let Some(task) = job.result_task.as_deref().filter(|_| job.state == JobState::Succeeded) else {
        return Ok(None);
    };
    let tasks = st.store.tenant(&job.tenant).tasks(&job.job_id, None, None, i64::MAX).await?;
    let Some(path) = tasks.into_iter().find(|t| t.task_id == task).and_then(|t| t.artifact) else {
        return Ok(None);
    };
    let Some(meta) = st.store.tenant(&job.tenant).artifact(&path).await? else { return Ok(None) };
    let reference = ArtifactRef { path, sha256: meta.sha256, size_bytes: meta.size_bytes as u64 };
    let bytes = st
        .artifacts
        .get(&reference)
        .await
        .map_err(|e| ApiError::unavailable(format!("reading the result artifact failed: {e}")))?;
    Ok(serde_json::from_slice(&bytes).ok())
}

#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "get_job", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, description = "Status, progress counters, timestamps, trace id and, once succeeded, the result"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    let job = own_job(&st, &caller, &id).await?;
    let result = result_of(&st, &job).await?;
    let mut doc = serde_json::to_value(&job).unwrap_or_default();
    doc["progress"] =
        json!({"total": job.tasks_total, "succeeded": job.tasks_succeeded, "failed": job.tasks_failed});
    doc["result"] = result.unwrap_or(Value::Null);
    // Why it has not moved on: the scheduler's reason for each waiting task (a few).
    let waiting = st.store.tenant(&job.tenant).waiting_tasks(&job.job_id, 5).await?;
    doc["waiting"] =
        waiting.into_iter().map(|(task_id, reason)| json!({"task_id": task_id, "reason": reason})).collect();
    Ok(Json(doc))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state (queued, running, succeeded, failed, cancelled, rejected).
    pub state: Option<String>,
    /// Only jobs of this type.
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Page size (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn cursor_of(job: &JobView) -> String {
    format!("{}.{}", job.submitted_at_ms, job.job_id)
}

fn parse_cursor(c: &str) -> ApiResult<(i64, String)> {
    c.split_once('.').and_then(|(ts, id)| Some((ts.parse().ok()?, id.to_string()))).ok_or_else(|| {
        ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned")
            .with_field(Some("cursor".into()))
    })
}

/// A query parameter naming one of an enum's values (a state, a type): 400 naming it otherwise.
fn named<T: serde::de::DeserializeOwned>(param: &str, value: &str) -> ApiResult<T> {
    splai_events::from_wire(value).map_err(|e| {
        ApiError::bad_request(&format!("invalid_{param}"), format!("`{param}`: {}", e.source))
            .with_field(Some(param.into()))
    })
}

fn page_size(limit: Option<i64>) -> ApiResult<i64> {
    match limit.unwrap_or(50) {
        n @ 1..=500 => Ok(n),
        _ => {
            Err(ApiError::bad_request("invalid_limit", "`limit` must be 1–500")
                .with_field(Some("limit".into())))
        }
    }
}

#[utoipa::path(get, path = "/v1/jobs", operation_id = "list_jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, description = "`{jobs, next_cursor}`, newest first")))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    let limit = page_size(q.limit)?;
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let state = q.state.as_deref().map(|s| named("state", s)).transpose()?;
    let job_type = q.job_type.as_deref().map(|s| named("type", s)).transpose()?;
    let filter = JobFilter { state, job_type, after, limit: limit + 1 };
    let mut jobs = st.store.tenant(&caller.tenant).jobs(&filter).await?;
    let next = (jobs.len() as i64 > limit).then(|| {
        jobs.truncate(limit as usize);
        jobs.last().map(cursor_of)
    });
    Ok(Json(json!({"jobs": jobs, "next_cursor": next.flatten()})))
}

#[utoipa::path(delete, path = "/v1/jobs/{id}", operation_id = "cancel_job", tag = "jobs", params(("id" = String, Path)),
    responses((status = 202, description = "Cancellation requested"), (status = 200, description = "Already finished; nothing to do"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Operator])?;
    let job = own_job(&st, &caller, &id).await?;
    if job.state.is_terminal() {
        return Ok((StatusCode::OK, Json(json!({"job_id": id, "state": job.state}))).into_response());
    }
    request_cancel(&st, &caller.tenant, &id, format!("requested by {}", caller.actor)).await?;
    crate::audit::record(&st, &caller, "job.cancel", &id, json!({"state_before": job.state})).await;
    Ok((StatusCode::ACCEPTED, Json(json!({"job_id": id, "state": "cancelling"}))).into_response())
}

/// Append a `cancel_job` for the tenant's job `id` to the log (the scheduler acts on it).
pub async fn request_cancel(st: &AppState, tenant: &str, id: &str, reason: String) -> Result<(), ApiError> {
    let cancel = CancelJob { job_id: id.to_string(), reason };
    let envelope = Envelope::new(
        format!("cancel-{}", uuid::Uuid::now_v7().simple()),
        now_ms(),
        tenant,
        Event::CancelJob(cancel),
    );
    st.writer
        .append(&[envelope])
        .await
        .map(|_| ())
        .map_err(|e| ApiError::unavailable(format!("the event log refused the cancellation: {}", chain(&e))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Only tasks in this state.
    pub state: Option<String>,
    /// Page size (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/jobs/{id}/tasks", operation_id = "list_tasks", tag = "jobs", params(("id" = String, Path), TaskQuery),
    responses((status = 200, description = "`{tasks, next_cursor}`: each task with its attempts and artifact"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn tasks(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    own_job(&st, &caller, &id).await?;
    let limit = page_size(q.limit)?;
    let state = q.state.as_deref().map(|s| named("state", s)).transpose()?;
    let mut tasks = st.store.tenant(&caller.tenant).tasks(&id, state, q.cursor.as_deref(), limit + 1).await?;
    let next = (tasks.len() as i64 > limit).then(|| {
        tasks.truncate(limit as usize);
        tasks.last().map(|t| t.task_id.clone())
    });
    let attempts = st.store.tenant(&caller.tenant).attempts(&id).await?;
    let docs: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let mut doc = serde_json::to_value(t).unwrap_or_default();
            doc["attempts"] = json!(attempts.iter().filter(|a| a.task_id == t.task_id).collect::<Vec<_>>());
            doc
        })
        .collect();
    Ok(Json(json!({"tasks": docs, "next_cursor": next.flatten()})))
}
