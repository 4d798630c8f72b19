//! A worker id registering again (a restarted executor process) ends the attempts the old process
//! had, at once — not a heartbeat ttl later — and the task is retried. Virtual time, the real
//! driver.

use crate::support::{TTL, at, job, options, registration};
use splai_dataflow::Scheduler;
use splai_events::{Envelope, Event, JobRequest};

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

fn job_failure_reason(out: &[Envelope]) -> Option<String> {
    out.iter().find_map(|e| match &e.event {
        Event::JobStateChanged(c) if c.state == splai_events::JobState::Failed => c.reason.clone(),
        _ => None,
    })
}

/// The `up_e2e` failure (issue 15): every restart of the executor processes ended the attempts
/// they ran as *failed*, spending the task's `max_retries`, so restarts alone dead-lettered a task
/// that never failed. Losses to infrastructure spend a budget of their own.
#[test]
fn restarts_do_not_spend_the_task_retries() {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    let first = at(&mut s, 1_010, job("j1", 0));
    assert_eq!(assigned_attempts(&first).len(), 1);
    // Three restarts, each while the task runs: more than `max_retries` (0) losses.
    let mut all = first;
    for (i, t) in [1_100u64, 1_200, 1_300].into_iter().enumerate() {
        let out = at(&mut s, t, registration());
        assert_eq!(assigned_attempts(&out).iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![i as u32 + 2]);
        all.extend(out);
    }
    assert_eq!(job_failure_reason(&all), None);
    assert_eq!(s.task_status("j1", "t"), Some((splai_dataflow::model::TaskStatus::Assigned, 4)));
    assert_eq!(s.job_status("j1"), Some(splai_dataflow::model::JobStatus::Running));
}

/// A worker that stops heartbeating loses its attempt (orphaned, then superseded on another
/// worker, "worker lost" in the old driver): a loss, not a failure of the task.
#[test]
fn an_expired_worker_loses_the_attempt_without_spending_retries() {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    at(&mut s, 1_010, job("j1", 0));
    // w1 goes silent; w2 appears after w1's ttl, and the task moves there.
    let w2 = match registration() {
        Event::WorkerRegistered(mut r) => {
            r.worker_id = "w2".into();
            Event::WorkerRegistered(r)
        }
        _ => unreachable!(),
    };
    let out = at(&mut s, 1_000 + TTL + 10, w2);
    assert_eq!(assigned_attempts(&out).iter().map(|(a, _)| *a).collect::<Vec<_>>(), vec![2]);
    assert_eq!(job_failure_reason(&out), None);
    assert_eq!(s.task_status("j1", "t"), Some((splai_dataflow::model::TaskStatus::Assigned, 2)));
}

/// A task that takes down every worker it lands on still ends: after `max_lost_attempts` losses it
/// is dead-lettered, and the job says it was lost to infrastructure, not that retries ran out.
#[test]
fn a_task_that_loses_every_worker_ends_with_the_loss_budget() {
    let mut opts = options();
    opts.max_lost_attempts = 2;
    let mut s = Scheduler::new(opts);
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    let mut all = at(&mut s, 1_010, job("j1", 5));
    for t in [1_100u64, 1_200, 1_300] {
        all.extend(at(&mut s, t, registration()));
    }
    assert_eq!(s.job_status("j1"), Some(splai_dataflow::model::JobStatus::Failed));
    let reason = job_failure_reason(&all).expect("the job failed with a reason");
    assert!(reason.contains("3 attempts lost to infrastructure"), "{reason}");
    assert!(reason.contains("worker w1 restarted"), "{reason}");
}

/// The chaos failure (issue 15): a broker acknowledged the scheduler's `Assign` and lost it, so it
/// never came back; the task stayed out of placement (waiting for its own decision) and its
/// worker's slot stayed reserved, and the job never finished. A decision not read back within
/// `decision_resend_ms` is written again, the same envelope.
#[test]
fn a_decision_the_log_lost_is_written_again() {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    // Submitted and placed; the broker loses the decision: nothing comes back.
    let mut out = Vec::new();
    s.advance(1_010);
    s.apply(&Envelope::new("submit", 1_010, "acme", job("j1", 2)), &mut out);
    s.tick(&mut out);
    let first: Vec<Envelope> = out.into_iter().filter(|e| matches!(e.event, Event::Assign(_))).collect();
    assert_eq!(first.len(), 1);
    let mut quiet = Vec::new();
    s.advance(1_010 + 4_999);
    s.tick(&mut quiet);
    assert!(quiet.iter().all(|e| !matches!(e.event, Event::Assign(_))), "not resent before the interval");
    let mut again = Vec::new();
    s.advance(1_010 + 5_000);
    s.tick(&mut again);
    let resent: Vec<&Envelope> = again.iter().filter(|e| matches!(e.event, Event::Assign(_))).collect();
    assert_eq!(resent.len(), 1, "{again:#?}");
    assert_eq!(resent[0], &first[0], "the same decision: same id, attempt, worker and deadline");
    // This time it comes back: the task is assigned, and nothing is resent any more.
    let mut echoed = Vec::new();
    s.advance(6_020);
    s.apply(resent[0], &mut echoed);
    s.tick(&mut echoed);
    assert_eq!(s.task_status("j1", "t"), Some((splai_dataflow::model::TaskStatus::Assigned, 1)));
    let mut later = Vec::new();
    s.advance(20_000);
    s.tick(&mut later);
    assert!(later.iter().all(|e| !matches!(e.event, Event::Assign(_))), "{later:#?}");
}
