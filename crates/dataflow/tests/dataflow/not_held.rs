//! Executors report what they hold (issue 21 item 5): an attempt the scheduler thinks is running
//! but its worker's heartbeats stop naming (its assignment was lost on the way, or the worker
//! dropped it) is revoked `not_held` and retried at once, instead of at its timeout (here ten
//! minutes). Virtual time, the real driver; the worker beats every 5 s.

use crate::support::{at, job, live, succeeded};
use splai_dataflow::Scheduler;
use splai_events::*;

fn beat(running: Vec<AttemptId>) -> Event {
    Event::Heartbeat(crate::support::heartbeat(running))
}

fn assigned(out: &[Envelope]) -> Vec<AttemptId> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::Assign(a) => Some(a.attempt.clone()),
            _ => None,
        })
        .collect()
}

fn not_held(out: &[Envelope]) -> Vec<Envelope> {
    out.iter()
        .filter(|e| matches!(&e.event, Event::Revoke(r) if r.reason == RevokeReason::NotHeld))
        .cloned()
        .collect()
}

/// Job `j`'s one task assigned at 1 010 ms: the scheduler and its first attempt.
fn running() -> (Scheduler, AttemptId) {
    let mut s = live();
    let first = assigned(&at(&mut s, 1_010, job("j", 3)));
    assert_eq!(first.len(), 1);
    (s, first[0].clone())
}

#[test]
fn an_attempt_left_out_of_two_beats_is_revoked_and_retried_at_once() {
    let (mut s, first) = running();
    // A beat sent before the worker had a beat interval to read its assignment proves nothing.
    assert!(not_held(&at(&mut s, 3_000, beat(vec![]))).is_empty());
    assert!(not_held(&at(&mut s, 4_000, beat(vec![]))).is_empty());
    // One beat that leaves it out is not enough (a result may be on its way) ...
    assert!(not_held(&at(&mut s, 6_100, beat(vec![]))).is_empty());
    // ... and a beat that names it starts the count again.
    assert!(not_held(&at(&mut s, 6_200, beat(vec![first.clone()]))).is_empty());
    assert!(not_held(&at(&mut s, 6_300, beat(vec![]))).is_empty());
    let out = at(&mut s, 6_400, beat(vec![]));
    let revokes = not_held(&out);
    assert_eq!(revokes.len(), 1, "{out:#?}");
    let Event::Revoke(r) = &revokes[0].event else { unreachable!() };
    assert_eq!((&r.attempt, r.worker_id.as_str()), (&first, "w1"));

    // A revoke the log lost is written again two beats later (its effect waits for the read-back).
    assert!(not_held(&at(&mut s, 6_500, beat(vec![]))).is_empty());
    assert_eq!(not_held(&at(&mut s, 6_600, beat(vec![]))).len(), 1, "written again");

    // Read back from the log, the revoke ends the attempt as lost and the retry is placed in
    // the same step, ten minutes before the attempt's timeout.
    let mut retry = Vec::new();
    s.advance(6_602);
    s.apply(&revokes[0], &mut retry);
    s.tick(&mut retry);
    let again = assigned(&retry);
    assert_eq!(again.len(), 1, "{retry:#?}");
    assert_eq!((again[0].task_id.as_str(), again[0].attempt), ("t", 2));
    // The attempt's end is on `job-events` too, for the read model (the worker never reports it).
    let why = retry.iter().find_map(|e| match &e.event {
        Event::TaskStateChanged(t) if t.state == TaskState::Runnable && t.attempt == 1 => t.reason.clone(),
        _ => None,
    });
    assert!(why.as_deref().is_some_and(|w| w.contains("no longer held it")), "{retry:#?}");
}

#[test]
fn an_attempt_whose_result_comes_between_two_beats_is_not_revoked() {
    let (mut s, first) = running();
    assert!(not_held(&at(&mut s, 6_100, beat(vec![]))).is_empty());
    at(&mut s, 6_150, succeeded(first, "w1"));
    assert!(not_held(&at(&mut s, 6_200, beat(vec![]))).is_empty());
    assert_eq!(s.job_status("j"), Some(splai_dataflow::model::JobStatus::Succeeded));
}
