//! Unschedulable work says why and does not wait forever (issue 16 item 8): a task no live
//! worker can take shows the reason on its `runnable` state, and after
//! `unschedulable_timeout_ms` it fails for good with that reason once the scheduler's
//! `task_unschedulable` is read back; replay decides the same. Virtual time, the real driver.

use crate::support::{at, options, registration};
use splai_dataflow::Scheduler;
use splai_dataflow::model::JobStatus;
use splai_events::{Envelope, Event, JobRequest, TaskState};

fn needs_model(id: &str, model: &str) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id,
        "dag": {"tasks": [{"id": "chat", "kind": "aggregation", "requirements": {"model": model}}]}}))
    .unwrap();
    Event::JobRequest(request)
}

fn scheduler(timeout_ms: u64) -> Scheduler {
    let mut s = Scheduler::new(splai_dataflow::SchedulerOptions {
        unschedulable_timeout_ms: timeout_ms,
        ..options()
    });
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    s
}

fn waiting_reason(out: &[Envelope]) -> Option<String> {
    out.iter().find_map(|e| match &e.event {
        Event::TaskStateChanged(t) if t.state == TaskState::Runnable => t.reason.clone(),
        _ => None,
    })
}

/// Step the scheduler's clock in ticks of 500 ms up to `until`, keeping a heartbeat going.
fn run_until(s: &mut Scheduler, from: u64, until: u64) -> Vec<Envelope> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= until {
        out.extend(at(s, t, heartbeat()));
        t += 500;
    }
    out
}

fn heartbeat() -> Event {
    Event::Heartbeat(serde_json::from_value(serde_json::json!({"worker_id": "w1", "seq": 1, "cpu_pct": 0.0, "memory_used_mb": 0, "running": []})).unwrap())
}

#[test]
fn a_task_for_a_model_no_worker_offers_says_why() {
    let mut s = scheduler(0);
    at(&mut s, 1_010, needs_model("j", "gpt-9"));
    let out = run_until(&mut s, 1_500, 3_000);
    let reason = waiting_reason(&out).expect("the waiting task says why");
    assert_eq!(reason, "no live worker offers model `gpt-9`");
    let later = run_until(&mut s, 3_500, 60_000);
    assert!(waiting_reason(&later).is_none(), "said once, not every second");
    assert_eq!(s.job_status("j"), Some(JobStatus::Queued), "with no timeout it waits");
}

#[test]
fn past_the_timeout_the_task_fails_with_the_reason() {
    let mut s = scheduler(10_000);
    at(&mut s, 1_010, needs_model("j", "gpt-9"));
    let out = run_until(&mut s, 1_500, 13_000);
    let gave_up = out.iter().find(|e| matches!(e.event, Event::TaskUnschedulable(_))).cloned();
    let gave_up = gave_up.expect("the scheduler gives up on the task");
    assert_eq!(s.job_status("j"), Some(JobStatus::Queued), "nothing changes until the record is read back");
    let mut echoed = Vec::new();
    s.advance(13_500);
    s.apply(&gave_up, &mut echoed);
    s.tick(&mut echoed);
    assert_eq!(s.job_status("j"), Some(JobStatus::Failed));
    let job_reason = echoed.iter().find_map(|e| match &e.event {
        Event::JobStateChanged(j) => j.reason.clone(),
        _ => None,
    });
    let job_reason = job_reason.expect("the job fails with a reason");
    assert!(
        job_reason.contains("unschedulable: no live worker offers model `gpt-9` for 10 s"),
        "{job_reason}"
    );
}

#[test]
fn replay_fails_the_task_the_same_way() {
    let mut s = scheduler(10_000);
    let request = Envelope::new("req-j", 1_010, "acme", needs_model("j", "gpt-9"));
    let mut out = Vec::new();
    s.advance(1_010);
    s.apply(&request, &mut out);
    s.tick(&mut out);
    out.extend(run_until(&mut s, 1_500, 13_000));
    let gave_up = out.into_iter().find(|e| matches!(e.event, Event::TaskUnschedulable(_))).unwrap();
    // A fresh scheduler reads the record before the job request (topics are read in parallel).
    let mut replay = Scheduler::new(options());
    replay.advance(13_000);
    let mut ignored = Vec::new();
    replay.apply(&gave_up, &mut ignored);
    replay.apply(&request, &mut ignored);
    replay.tick(&mut ignored);
    replay.go_live();
    assert_eq!(replay.job_status("j"), Some(JobStatus::Failed));
}

#[test]
fn a_task_waiting_for_busy_workers_says_so_and_never_times_out() {
    let mut s = scheduler(2_000);
    let long = |id: &str| {
        let request: JobRequest = serde_json::from_value(serde_json::json!({
            "type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "t", "kind": "aggregation"}]}}))
        .unwrap();
        Event::JobRequest(request)
    };
    at(&mut s, 1_010, long("first")); // takes w1's only slot, and never ends here
    at(&mut s, 1_020, long("second"));
    let out = run_until(&mut s, 1_500, 30_000);
    let reason = waiting_reason(&out).expect("a task waiting for a slot says so");
    assert_eq!(reason, "waiting for a free slot: all 1 live worker(s) that can run it are busy");
    assert!(!out.iter().any(|e| matches!(e.event, Event::TaskUnschedulable(_))), "busy is not unschedulable");
}
