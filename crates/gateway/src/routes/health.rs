//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops", responses((status = 200, description = "The process is up")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    responses((status = 200, description = "The read model answers and has caught up with the log"), (status = 503)))]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let caught_up = *st.ready.borrow();
    let store = st.store.ping().await.map_err(|e| e.to_string());
    let ok = caught_up && store.is_ok();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(
            json!({"ready": ok, "projector_caught_up": caught_up, "read_model": store.err().unwrap_or_else(|| "ok".into())}),
        ),
    )
}
