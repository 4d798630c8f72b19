//! Dead letters of the caller's tenant: list, and requeue a dead-lettered task (a fresh set of
//! retries) through the scheduler's `control` topic.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use splai_events::{Envelope, Event, RequeueDeadLetter};
use splai_telemetry::chain;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::jobs::{json_body, own_job};
use crate::state::AppState;
use splai_events::now_ms;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/admin/dead-letter", operation_id = "list_dead_letters", tag = "admin", params(DeadLetterQuery),
    responses((status = 200, description = "`{dead_letters}` of the caller's tenant, newest first"),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Operator])?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_limit", "`limit` must be 1–1000").with_field(Some("limit".into()))
        );
    }
    let rows = st.store.tenant(&caller.tenant).dead_letters(limit).await?;
    crate::audit::record(&st, &caller, "admin.read", "dead-letter", json!({"rows": rows.len()})).await;
    Ok(Json(json!({"dead_letters": rows})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequeueRequest {
    pub job_id: String,
    /// One task; all dead-lettered tasks of the job when absent.
    pub task_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/admin/dead-letter/requeue", operation_id = "requeue_dead_letter", tag = "admin", request_body = RequeueRequest,
    responses((status = 202, description = "Requeue requested"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn requeue(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(&[Role::Operator])?;
    let value = json_body(&st, &headers, body).await?;
    let req: RequeueRequest = serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request("invalid_request", format!("expected {{job_id, task_id?}}: {e}"))
    })?;
    own_job(&st, &caller, &req.job_id).await?;
    let event = RequeueDeadLetter { job_id: req.job_id.clone(), task_id: req.task_id.clone() };
    let envelope = Envelope::new(
        format!("requeue-{}", uuid::Uuid::now_v7().simple()),
        now_ms(),
        &caller.tenant,
        Event::RequeueDeadLetter(event),
    );
    st.writer
        .append(&[envelope])
        .await
        .map_err(|e| ApiError::unavailable(format!("the event log refused the requeue: {}", chain(&e))))?;
    let marked = st
        .store
        .tenant(&caller.tenant)
        .mark_requeued(&req.job_id, req.task_id.as_deref(), now_ms() as i64)
        .await?;
    let detail = json!({"task_id": req.task_id, "marked": marked});
    crate::audit::record(&st, &caller, "dead_letter.requeue", &req.job_id, detail).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": req.job_id, "task_id": req.task_id, "dead_letters_marked": marked})),
    ))
}
