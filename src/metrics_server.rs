//! `/metrics` for processes without the gateway (`splai scheduler`, `splai executor`): the
//! process registry on `telemetry.metrics_listen`.

use anyhow::Context;
use axum::http::header;
use axum::routing::get;

/// Serve the process registry until the process ends; returns the bound address.
pub async fn spawn(listen: &str) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot serve metrics on {listen}"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                splai_telemetry::metrics::global().render(&[]),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%addr, "metrics on /metrics");
    Ok(Some(addr))
}
