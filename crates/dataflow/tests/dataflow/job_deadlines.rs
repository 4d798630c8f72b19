//! A job's `timeout_s` is a deadline for the whole job (issue 16 item 7; it was accepted and
//! documented but never enforced): at the deadline the job fails with `deadline_exceeded`, its
//! running attempts are revoked and its other tasks cancelled; a job that finished in time is
//! untouched. Virtual time, the real driver.

use crate::support::{at, live, succeeded};
use splai_dataflow::model::{JobStatus, TaskStatus};
use splai_events::{Envelope, Event, JobRequest, RevokeReason};

fn job(id: &str, timeout_s: u32) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id, "timeout_s": timeout_s,
        "dag": {"tasks": [{"id": "a", "kind": "aggregation"}, {"id": "b", "kind": "aggregation", "parents": ["a"]}]}}))
    .unwrap();
    Event::JobRequest(request)
}

#[test]
fn a_job_past_its_deadline_fails_and_its_attempts_are_revoked() {
    let mut s = live();
    at(&mut s, 1_010, job("slow", 2));
    assert_eq!(s.task_status("slow", "a").map(|(st, _)| st), Some(TaskStatus::Assigned));
    let before = at(&mut s, 3_008, registration_beat()); // steps to 3_009
    assert_eq!(s.job_status("slow"), Some(JobStatus::Running), "not before the deadline: {before:#?}");
    let out = at(&mut s, 3_010, registration_beat());
    assert_eq!(s.job_status("slow"), Some(JobStatus::Failed));
    let reason = out.iter().find_map(|e| match &e.event {
        Event::JobStateChanged(c) => c.reason.clone(),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("deadline_exceeded: the job's timeout_s of 2 s passed before it finished")
    );
    assert!(
        out.iter().any(|e| matches!(&e.event, Event::Revoke(r) if r.attempt.task_id == "a" && r.reason == RevokeReason::TimedOut)),
        "the running attempt is told to stop: {out:#?}"
    );
    assert_eq!(s.task_status("slow", "b").map(|(st, _)| st), Some(TaskStatus::Cancelled));
}

#[test]
fn a_job_that_finished_in_time_is_untouched_by_its_deadline() {
    let mut s = live();
    let out = at(&mut s, 1_010, job("quick", 2));
    let succeed = |out: &[Envelope], task: &str| {
        out.iter()
            .find_map(|e| match &e.event {
                Event::Assign(a) if a.attempt.task_id == task => Some(a.attempt.clone()),
                _ => None,
            })
            .map(|attempt| succeeded(attempt, "w1"))
            .expect("assigned")
    };
    let out = at(&mut s, 1_100, succeed(&out, "a"));
    at(&mut s, 1_200, succeed(&out, "b"));
    assert_eq!(s.job_status("quick"), Some(JobStatus::Succeeded));
    at(&mut s, 5_000, registration_beat());
    assert_eq!(
        s.job_status("quick"),
        Some(JobStatus::Succeeded),
        "the deadline changes nothing after success"
    );
}

/// A heartbeat of the test's worker, to move time on with the worker alive.
fn registration_beat() -> Event {
    Event::Heartbeat(splai_events::Heartbeat {
        worker_id: "w1".into(),
        seq: 1,
        cpu_pct: 0.0,
        memory_used_mb: 0,
        running: vec![],
        warm_models: vec![],
        engines: Default::default(),
    })
}
