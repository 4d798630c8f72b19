//! `GET /metrics`: Prometheus text. Operators only when auth is on (it names tenants).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use splai_store::ProjectorOffsets;

use crate::auth::{Caller, Role};
use crate::error::ApiResult;
use crate::metrics::Gauge;
use crate::projector::TOPICS;
use crate::state::AppState;
use splai_events::now_ms;

#[utoipa::path(get, path = "/metrics", operation_id = "prometheus_metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text exposition format"), (status = 403, body = crate::error::ErrorBody)))]
pub async fn metrics(State(st): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(&[Role::Operator])?;
    let mut gauges = Vec::new();
    let (runnable, jobs) = st.store.queue_depths().await?;
    for (tenant, n) in &runnable {
        gauges.push(Gauge::new("splai_runnable_tasks", &[("tenant", tenant)], *n as f64));
    }
    for (state, n) in &jobs {
        gauges.push(Gauge::new("splai_jobs", &[("state", state)], *n as f64));
    }
    let workers = st.store.workers(now_ms() as i64, st.heartbeat_ttl_ms).await?;
    let live: Vec<_> = workers.iter().filter(|w| w.live).collect();
    gauges.push(Gauge::new("splai_workers_live", &[], live.len() as f64));
    for w in live {
        gauges.push(Gauge::new("splai_worker_slots", &[("worker", &w.worker_id)], w.slots as f64));
        gauges.push(Gauge::new("splai_worker_slots_in_use", &[("worker", &w.worker_id)], w.running as f64));
        gauges.push(Gauge::new(
            "splai_worker_cpu_percent",
            &[("worker", &w.worker_id)],
            w.cpu_pct.unwrap_or(0.0),
        ));
    }
    // Lag: the log's end minus what the read model has applied, per topic.
    let applied = ProjectorOffsets::new(&st.projector_group).load(&st.store).await?;
    for topic in TOPICS {
        let name = st.writer.topic(topic);
        let Ok(ends) = st.writer.log().high_watermarks(&name).await else { continue };
        let lag: u64 = ends
            .iter()
            .enumerate()
            .map(|(p, end)| {
                let done = applied
                    .iter()
                    .find(|a| a.topic == name && a.partition == p as u32)
                    .map_or(0, |a| a.offset);
                end.saturating_sub(done)
            })
            .sum();
        gauges.push(Gauge::new("splai_consumer_lag_records", &[("topic", topic.name())], lag as f64));
    }
    let mut response = st.metrics.render(&gauges).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}
