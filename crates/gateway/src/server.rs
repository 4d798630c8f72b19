//! The gateway process: migrate the read model, start the projector, serve the API.

use axum::serve::ListenerExt as _;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use splai_config::Settings;
use splai_ingest::log::{EventLog, EventWriter, LogError};
use splai_ingest::plan::Limits;
use splai_store::artifacts::ArtifactStore;
use splai_store::{Store, StoreError};
use splai_telemetry::chain;
use tokio::sync::watch;

use crate::auth::Tokens;
use crate::error::ApiError;
use crate::rate::RateLimiter;
use crate::routes::{
    admin, artifacts, audit, health, jobs, live_metrics, metrics, openai, stream, ui, workers,
};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("serving HTTP failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Policy(#[from] splai_ingest::policy::PolicyError),
    #[error(transparent)]
    Intake(#[from] splai_ingest::intake::IntakeError),
}

/// The routes, over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/tasks", get(jobs::tasks))
        .route("/v1/jobs/{id}/stream", get(stream::stream))
        .route("/v1/jobs/{id}/artifacts", get(artifacts::list))
        .route("/v1/jobs/{id}/artifacts/{task}/{attempt}", get(artifacts::content))
        .route("/v1/jobs/{id}/lineage", get(artifacts::lineage))
        .route("/v1/jobs/{id}/result.csv", get(artifacts::result_csv))
        .route("/v1/workers", get(workers::list))
        .route("/v1/admin/dead-letter", get(admin::list))
        .route("/v1/admin/dead-letter/requeue", post(admin::requeue))
        .route("/v1/admin/audit", get(audit::list))
        .route("/v1/admin/audit/verify", get(audit::verify))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/metrics/live", get(live_metrics::live))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/", get(ui::to_ui))
        .route("/ui", get(ui::to_ui))
        .route("/ui/", get(ui::index))
        .route("/ui/app.js", get(ui::app))
        .route("/ui/style.css", get(ui::style))
        .route("/openapi.json", get(crate::openapi::json))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// Errors raised by axum itself (a malformed path or query, a wrong method) come as plain text:
/// give them the same JSON body as ours.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let mut out = ApiError::new(status, code, message).into_response();
    for (k, v) in parts.headers.iter().filter(|(k, _)| *k == header::ALLOW || *k == header::RETRY_AFTER) {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

/// Serve on `listener` until `shutdown`, projecting the log into the read model meanwhile.
pub async fn serve(
    settings: &Settings,
    log: Arc<dyn EventLog>,
    store: Store,
    artifacts: ArtifactStore,
    listener: tokio::net::TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<(), GatewayError> {
    let policy = Arc::new(splai_ingest::policy::PolicySet::load(&settings.policy.file)?);
    let audit_key = crate::audit::key(&settings.gateway);
    if audit_key.is_empty() {
        tracing::warn!(
            "the audit chain is unkeyed (no gateway.audit_key or signing_key): edits can be recomputed"
        );
    }
    let store = store.with_audit_key(&audit_key);
    store.migrate().await?;
    let signer = splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(Arc::new);
    let writer = EventWriter::new(log, settings.log.topic_prefix.clone()).signing(signer.clone());
    writer.create_all_topics(settings.log.partitions).await?;
    let grown = crate::grown::Grown::default();
    let (ready_tx, ready) = watch::channel(false);
    let g = &settings.gateway;
    let projector_group = format!("{}{}", settings.log.topic_prefix, g.projector_group);
    let metrics = crate::metrics::registry();
    let projector = tokio::spawn(crate::projector::run(
        writer.clone(),
        store.clone(),
        projector_group.clone(),
        metrics,
        grown.clone(),
        ready_tx,
        shutdown.clone(),
    ));
    if g.audit_anchor_interval_ms > 0 {
        let interval = std::time::Duration::from_millis(g.audit_anchor_interval_ms);
        tokio::spawn(crate::audit::anchor_loop(writer.clone(), store.clone(), interval, shutdown.clone()));
    }
    let state = AppState {
        gate: signer,
        writer,
        store,
        artifacts,
        tokens: Arc::new(Tokens::from_settings(g)),
        rate: Arc::new(g.tenants.iter().fold(
            RateLimiter::new(g.submit_rate_per_s, g.submit_burst),
            |r, (name, t)| {
                r.with_tenant(
                    name,
                    t.submit_rate_per_s.unwrap_or(g.submit_rate_per_s),
                    t.submit_burst.unwrap_or(g.submit_burst),
                )
            },
        )),
        tenant_max_active_jobs: g
            .tenants
            .iter()
            .filter_map(|(n, t)| Some((n.clone(), t.max_active_jobs?)))
            .collect(),
        limits: Limits::default(),
        max_body_bytes: g.max_body_bytes as usize,
        max_active_jobs: g.max_active_jobs,
        cancel_on_disconnect: g.cancel_on_disconnect,
        heartbeat_ttl_ms: settings.scheduler.heartbeat_ttl_ms as i64,
        grown,
        ready,
        metrics,
        projector_group,
        policy,
    };
    let mut stop = shutdown.clone();
    // Nagle's algorithm held a response's second small write until the client's delayed ACK
    // (40 ms on Linux): every POST and every SSE event after the first paid it.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let served = server.await;
    match projector.await {
        Ok(Err(e)) => tracing::error!(error = %chain(&e), "the projector stopped"),
        Err(e) => tracing::error!(error = %e, "the projector panicked"),
        Ok(Ok(())) => {}
    }
    served?;
    Ok(())
}
