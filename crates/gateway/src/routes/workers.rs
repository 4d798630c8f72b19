//! `GET /v1/workers`: capabilities, utilization, last beat and whether each worker is live.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::error::ApiResult;
use crate::state::AppState;
use splai_events::now_ms;

#[utoipa::path(get, path = "/v1/workers", operation_id = "list_workers", tag = "workers",
    responses((status = 200, description = "`{workers}`, live ones first")))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    let workers = st.store.workers(now_ms() as i64, st.heartbeat_ttl_ms).await?;
    Ok(Json(json!({"workers": workers})))
}
