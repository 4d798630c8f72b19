//! `GET /v1/metrics/live`: the newest record of each key of the `metrics` topic, as the read model
//! keeps them — the figures the scheduler's dataflow maintains (per tenant and model: runnable,
//! running, a sliding window of outcomes and latency percentiles; the cluster's capacity). A
//! caller sees its own tenant's scopes; operators and admins every tenant's.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::{Caller, Role};
use crate::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/metrics/live", operation_id = "live_metrics", tag = "ops",
    responses(
        (status = 200, description = "`{scopes: [{tenant, ...scope_metrics body}], cluster}` (see docs/kafka.md)"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn live(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    let everyone = caller.roles.iter().any(|r| matches!(r, Role::Operator | Role::Admin));
    let records = st.store.latest_metrics((!everyone).then_some(caller.tenant.as_str())).await?;
    let mut scopes = Vec::new();
    let mut cluster = Value::Null;
    for (key, tenant, mut body) in records {
        if key == "cluster" {
            cluster = body;
        } else {
            if let Some(fields) = body.as_object_mut() {
                fields.insert("tenant".into(), Value::String(tenant));
            }
            scopes.push(body);
        }
    }
    Ok(Json(json!({"scopes": scopes, "cluster": cluster})))
}
