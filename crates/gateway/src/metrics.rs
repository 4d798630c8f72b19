//! The series the gateway exports at `/metrics` (recorded into the process registry of
//! `splai_telemetry::metrics`).
//!
//! Event-driven series (job latency, attempt durations, retries, dead letters, decision latency,
//! events consumed per topic) are counted by the projector as it applies the log, so they cover
//! what this gateway projects (gateways sharing a projector group split the partitions: sum them).
//! State series (runnable tasks per tenant, jobs per state, workers, slots in use, consumer lag)
//! are read from the read model when scraped, so every gateway reports the same, complete picture.

pub use splai_telemetry::metrics::{Gauge, Metrics, global};

pub const SERIES: &[(&str, &str, &str)] = &[
    ("splai_job_latency_seconds", "histogram", "Submit to terminal state, by job type and outcome."),
    (
        "splai_task_attempt_duration_seconds",
        "histogram",
        "Attempt durations reported by executors, by task kind and outcome.",
    ),
    ("splai_decision_latency_seconds", "histogram", "Task runnable to assigned, by the scheduler's clock."),
    ("splai_task_retries_total", "counter", "Attempts that failed with a retry scheduled."),
    ("splai_dead_letters_total", "counter", "Dead letters (undecodable records and dead-lettered tasks)."),
    (
        "splai_projection_refused_total",
        "counter",
        "Records the read model can never store, dead-lettered and skipped by the projector.",
    ),
    ("splai_events_consumed_total", "counter", "Log records applied to the read model, by topic."),
    ("splai_runnable_tasks", "gauge", "Tasks runnable and waiting for a worker, by tenant."),
    ("splai_jobs", "gauge", "Jobs by state."),
    ("splai_workers_live", "gauge", "Workers beating within the ttl."),
    ("splai_worker_slots", "gauge", "Slots of each live worker."),
    ("splai_worker_slots_in_use", "gauge", "Attempts running on each live worker."),
    ("splai_worker_cpu_percent", "gauge", "CPU utilization of each live worker (0-100 x cores)."),
    (
        "splai_consumer_lag_records",
        "gauge",
        "Records in the log not yet applied to the read model, by topic.",
    ),
];

/// The process registry with the gateway's series described.
pub fn registry() -> &'static Metrics {
    let m = global();
    m.describe(SERIES);
    m
}
