//! Shared by the driver's virtual-time scenario tests: options, a worker, a job, and a step that
//! feeds the scheduler's own decisions back as the log would; and, for the tests on the real
//! runner and clock, [`wait_until`].
#![allow(dead_code)]

use std::fmt::Display;
use std::time::{Duration, Instant};

use splai_dataflow::{Scheduler, SchedulerOptions};
use splai_events::{
    Assign, AttemptId, AttemptSucceeded, Envelope, Event, Heartbeat, JobRequest, WorkerRegistered,
};
use splai_ingest::plan::Limits;

pub const TTL: u64 = 15_000;

pub fn options() -> SchedulerOptions {
    SchedulerOptions {
        heartbeat_ttl_ms: TTL,
        retry_base_ms: 100,
        retry_cap_ms: 1_000,
        default_max_retries: 3,
        max_lost_attempts: 8,
        decision_resend_ms: 5_000,
        unschedulable_timeout_ms: 0,
        default_task_timeout_ms: 600_000,
        tenants: Default::default(),
        limits: Limits::default(),
        policy: Default::default(),
        admission: Default::default(),
        metrics: Default::default(),
    }
}

/// A live scheduler at 1 000 ms with worker `w1` registered.
pub fn live() -> Scheduler {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    s
}

pub fn registration() -> Event {
    Event::WorkerRegistered(WorkerRegistered {
        worker_id: "w1".into(),
        cores: 1,
        memory_mb: 1024,
        slots: 1,
        light_slots: 0,
        engines: Default::default(),
        models: vec![],
        tools: vec![],
        labels: Default::default(),
        heartbeat_interval_ms: 5_000,
        version: "test".into(),
    })
}

/// `w1`'s first heartbeat, naming `running`.
pub fn heartbeat(running: Vec<AttemptId>) -> Heartbeat {
    Heartbeat {
        worker_id: "w1".into(),
        seq: 1,
        cpu_pct: 0.0,
        memory_used_mb: 0,
        running,
        warm_models: vec![],
        engines: Default::default(),
    }
}

/// Apply `event` at `at`, step, and feed the scheduler's own assignments back as the log would.
pub fn at(s: &mut Scheduler, at: u64, event: Event) -> Vec<Envelope> {
    at_as(s, at, "acme", event)
}

/// [`at`] for a record produced by `tenant`.
pub fn at_as(s: &mut Scheduler, at: u64, tenant: &str, event: Event) -> Vec<Envelope> {
    let mut out = Vec::new();
    s.advance(at);
    s.apply(&Envelope::new(format!("e{at}"), at, tenant, event), &mut out);
    s.tick(&mut out);
    // The decisions come back through the log a moment later.
    let mut echoed = Vec::new();
    s.advance(at + 1);
    for e in out.iter().filter(|e| matches!(e.event, Event::Assign(_))) {
        s.apply(e, &mut echoed);
    }
    s.tick(&mut echoed);
    out.extend(echoed);
    out
}

/// The assignments among `out`, by task id.
pub fn assigned(out: &[Envelope]) -> Vec<Assign> {
    let mut v: Vec<Assign> = out
        .iter()
        .filter_map(|e| match &e.event {
            Event::Assign(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    v.sort_by(|a, b| a.attempt.task_id.cmp(&b.attempt.task_id));
    v
}

/// The dead letters among `out`: their reasons.
pub fn dead_letters(out: &[Envelope]) -> Vec<String> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::DeadLetter(d) => Some(d.reason.clone()),
            _ => None,
        })
        .collect()
}

/// `attempt` succeeded on `worker`, with a small artifact of its own.
pub fn succeeded(attempt: AttemptId, worker: &str) -> Event {
    let path = format!("acme/{}/{}/{}/output.json", attempt.job_id, attempt.task_id, attempt.attempt);
    Event::AttemptSucceeded(AttemptSucceeded {
        attempt,
        worker_id: worker.into(),
        artifact: serde_json::from_value(serde_json::json!({"path": path, "sha256": "00", "size_bytes": 2}))
            .unwrap(),
        inputs: vec![],
        duration_ms: 1,
        usage: None,
        provenance: None,
        subdag: None,
    })
}

pub fn job(id: &str, max_retries: u32) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id, "max_retries": max_retries,
        "dag": {"tasks": [{"id": "t", "kind": "aggregation"}]}}))
    .unwrap();
    Event::JobRequest(request)
}

/// Poll `probe` every 20 ms until it returns `Ok`, and return that value. After `within`, fail
/// naming what was awaited and what the last probe saw (its `Err`).
pub async fn wait_until<T, S: Display>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "waited {within:?} for {what}; last saw: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
