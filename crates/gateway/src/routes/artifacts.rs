//! Artifacts of a job (metadata with lineage, and content) and the job's lineage graph.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use splai_events::ArtifactRef;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::jobs::own_job;
use crate::state::AppState;

const READ: [Role; 3] = [Role::Reader, Role::Submitter, Role::Operator];

#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts", operation_id = "list_artifacts", tag = "artifacts", params(("id" = String, Path)),
    responses((status = 200, description = "`{artifacts}`: path, task, attempt, sha256, size and the input artifacts of each"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&READ)?;
    own_job(&st, &caller, &id).await?;
    let artifacts = st.store.tenant(&caller.tenant).artifacts(&id).await?;
    Ok(Json(json!({"job_id": id, "artifacts": artifacts})))
}

#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{task}/{attempt}", operation_id = "get_artifact", tag = "artifacts",
    params(("id" = String, Path), ("task" = String, Path), ("attempt" = u32, Path)),
    responses((status = 200, description = "The artifact's content (application/json), verified against its sha256"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn content(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, task, attempt)): Path<(String, String, i64)>,
) -> ApiResult<Response> {
    caller.require(&READ)?;
    own_job(&st, &caller, &id).await?;
    let artifact = st
        .store
        .tenant(&caller.tenant)
        .artifacts(&id)
        .await?
        .into_iter()
        .find(|a| a.task_id == task && a.attempt == attempt)
        .ok_or_else(|| ApiError::not_found("artifact", &format!("{id}/{task}/{attempt}")))?;
    let reference = ArtifactRef {
        path: artifact.path.clone(),
        sha256: artifact.sha256.clone(),
        size_bytes: artifact.size_bytes as u64,
    };
    let bytes = st
        .artifacts
        .get(&reference)
        .await
        .map_err(|e| ApiError::unavailable(format!("reading artifact {} failed: {e}", artifact.path)))?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&artifact.sha256) {
        headers.insert("x-splai-sha256", v);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/jobs/{id}/result.csv", operation_id = "get_result_csv", tag = "artifacts", params(("id" = String, Path)),
    responses((status = 200, description = "The table of a job whose result has one (batch_analysis records mode), as text/csv"),
              (status = 404, body = crate::error::ErrorBody, description = "no such job, or its result has no table"),
              (status = 409, body = crate::error::ErrorBody, description = "the job has no result yet")))]
pub async fn result_csv(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&READ)?;
    let job = own_job(&st, &caller, &id).await?;
    let result = crate::routes::jobs::result_of(&st, &job).await?;
    let Some(result) = result else {
        let message = format!("job `{id}` has no result yet (state {})", job.state);
        return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "no_result", message));
    };
    let csv = result.get("csv").and_then(Value::as_str).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no_table",
            format!("the result of job `{id}` has no table"),
        )
    })?;
    let disposition = format!("attachment; filename=\"{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv.to_string(),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/jobs/{id}/lineage", operation_id = "get_lineage", tag = "artifacts", params(("id" = String, Path)),
    responses((status = 200, description = "The DAG: each task with its parents, state, artifact, the artifacts it read, its provenance (cache key, model sha256, executor version, cached_from) and, for a task that appended a sub-DAG, its expansion (added tasks, fallback_reason)"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn lineage(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&READ)?;
    own_job(&st, &caller, &id).await?;
    let tasks = st.store.tenant(&caller.tenant).tasks(&id, None, None, i64::MAX).await?;
    let artifacts = st.store.tenant(&caller.tenant).artifacts(&id).await?;
    let nodes: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let artifact = t.artifact.as_ref().and_then(|p| artifacts.iter().find(|a| &a.path == p));
            let inputs = artifact.map(|a| a.inputs.clone()).unwrap_or_default();
            let provenance = artifact.and_then(|a| a.provenance.clone());
            json!({"task_id": t.task_id, "kind": t.kind, "state": t.state, "attempt": t.attempt,
                   "parents": t.parents, "artifact": t.artifact, "inputs": inputs, "provenance": provenance,
                   "expansion": t.expansion})
        })
        .collect();
    Ok(Json(json!({"job_id": id, "tasks": nodes})))
}
