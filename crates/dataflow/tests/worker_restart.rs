//! A worker id registering again (a restarted executor process) ends the attempts the old process
//! had, at once — not a heartbeat ttl later — and the task is retried. Virtual time, the real
//! driver.

use splai_dataflow::{Scheduler, SchedulerOptions};
use splai_events::{Envelope, Event, JobRequest, WorkerRegistered};
use splai_ingest::plan::Limits;

const TTL: u64 = 15_000;

fn options() -> SchedulerOptions {
    SchedulerOptions {
        heartbeat_ttl_ms: TTL,
        retry_base_ms: 100,
        retry_cap_ms: 1_000,
        default_max_retries: 3,
        default_task_timeout_ms: 600_000,
        tenants: Default::default(),
        limits: Limits::default(),
        policy: Default::default(),
    }
}

fn registration() -> Event {
    Event::WorkerRegistered(WorkerRegistered {
        worker_id: "w1".into(),
        cores: 1,
        memory_mb: 1024,
        slots: 1,
        models: vec![],
        tools: vec![],
        labels: Default::default(),
        heartbeat_interval_ms: 5_000,
        version: "test".into(),
    })
}

/// Apply `event` at `at`, step, and feed the scheduler's own assignments back as the log would.
fn at(s: &mut Scheduler, at: u64, event: Event) -> Vec<Envelope> {
    let mut out = Vec::new();
    s.advance(at);
    s.apply(&Envelope::new(format!("e{at}"), at, "acme", event), &mut out);
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

fn assigned_attempts(out: &[Envelope]) -> Vec<(u32, u64)> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::Assign(a) => Some((a.attempt.attempt, e.ts_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn re_registration_ends_the_old_attempts_and_retries_at_once() {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": "j1", "dag": {"tasks": [{"id": "t", "kind": "aggregation"}]}}))
    .unwrap();
    let first = at(&mut s, 1_010, Event::JobRequest(request));
    assert_eq!(assigned_attempts(&first), vec![(1, 1_010)]);

    // The executor process dies and its successor registers under the same id 90 ms later.
    let second = at(&mut s, 1_100, registration());
    let retried = assigned_attempts(&second);
    assert_eq!(retried.len(), 1, "{second:#?}");
    let (attempt, when) = retried[0];
    assert_eq!(attempt, 2);
    assert!(when < 1_000 + TTL, "retried at {when}, not after the ttl");
    assert_eq!(s.task_status("j1", "t").map(|(_, a)| a), Some(2));
}
