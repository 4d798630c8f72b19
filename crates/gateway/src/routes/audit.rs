//! `GET /v1/admin/audit` (the caller's tenant's records, filters, JSON or CSV) and
//! `GET /v1/admin/audit/verify` (re-check the whole chain; name the first broken record).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use splai_store::audit::AuditFilter;
use splai_telemetry::chain;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action (e.g. `job.submit`, `job.cancel`, `dead_letter.requeue`, `admin.read`).
    pub action: Option<String>,
    /// Only records about this subject (e.g. a job id).
    pub subject: Option<String>,
    /// From this time (epoch ms, inclusive).
    pub since_ms: Option<i64>,
    /// Until this time (epoch ms, exclusive).
    pub until_ms: Option<i64>,
    /// Records after this seq (the `next_cursor` of the previous page).
    pub cursor: Option<i64>,
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[utoipa::path(get, path = "/v1/admin/audit", operation_id = "list_audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "`{records, next_cursor}` of the caller's tenant in chain order, or CSV"),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    caller.require(&[])?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_limit", "`limit` must be 1–1000").with_field(Some("limit".into()))
        );
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!("`format` must be json or csv, not `{other}`"),
            )
            .with_field(Some("format".into())));
        }
    };
    let filter = AuditFilter {
        tenant: Some(caller.tenant.clone()),
        action: q.action.clone(),
        subject: q.subject.clone(),
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        after_seq: q.cursor.unwrap_or(0),
        limit,
    };
    let records = st.store.audit_list(&filter).await?;
    crate::audit::record(
        &st,
        &caller,
        "admin.read",
        "audit",
        json!({"filter": {"action": q.action, "subject": q.subject}, "records": records.len()}),
    )
    .await;
    let next = (records.len() as i64 == limit).then(|| records.last().map(|r| r.seq)).flatten();
    if !csv {
        return Ok(Json(json!({"records": records, "next_cursor": next})).into_response());
    }
    let mut out = String::from("seq,ts_ms,tenant,actor,action,subject,detail,prev_hash,hash\n");
    for r in &records {
        let fields = [
            r.seq.to_string(),
            r.ts_ms.to_string(),
            r.tenant.clone(),
            r.actor.clone(),
            r.action.clone(),
            r.subject.clone(),
            r.detail.clone(),
            r.prev_hash.clone(),
            r.hash.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    let mut response = out.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    Ok(response)
}

#[utoipa::path(get, path = "/v1/admin/audit/verify", operation_id = "verify_audit", tag = "admin",
    responses((status = 200, description = "`{ok, records, first_broken_seq, reason, keyed, anchors_checked, anchored_seq}`: the whole chain, under its key, against the anchors on the log"),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn verify(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&[])?;
    let verdict = crate::audit::verify(&st.store, &st.writer, st.gate.clone())
        .await
        .map_err(|e| crate::error::ApiError::unavailable(chain(&e)))?;
    crate::audit::record(&st, &caller, "admin.read", "audit.verify", json!({"ok": verdict.ok})).await;
    Ok(Json(json!(verdict)))
}
