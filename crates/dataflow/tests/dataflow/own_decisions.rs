//! The scheduler applies its own decisions as it makes them: their `assigned` state is written
//! with them (once), their copies read back from the log bring nothing to step, and a task whose
//! attempt is lost before the next step goes back into placement. Virtual time, the real driver.

use crate::support::{options, registration, succeeded};
use splai_dataflow::Scheduler;
use splai_events::*;

fn live_with_worker() -> Scheduler {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    let mut out = Vec::new();
    s.apply(&Envelope::new("reg", 1_000, "ops", registration()), &mut out);
    s.tick(&mut out);
    s
}

fn submit(s: &mut Scheduler, at: u64, tasks: serde_json::Value) -> Vec<Envelope> {
    let request: JobRequest = serde_json::from_value(
        serde_json::json!({"type": "explicit", "job_id": "j", "dag": {"tasks": tasks}}),
    )
    .unwrap();
    let mut out = Vec::new();
    s.advance(at);
    s.apply(&Envelope::new("req", at, "acme", Event::JobRequest(request)), &mut out);
    s.tick(&mut out);
    out
}

fn assign_of(out: &[Envelope]) -> Vec<&Envelope> {
    out.iter().filter(|e| matches!(e.event, Event::Assign(_))).collect()
}

fn states(out: &[Envelope]) -> Vec<(String, TaskState)> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::TaskStateChanged(t) => Some((t.task_id.clone(), t.state)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_assigned_state_is_written_with_the_decision_and_only_once() {
    let mut s = live_with_worker();
    let out = submit(&mut s, 1_010, serde_json::json!([{"id": "a", "kind": "aggregation"}]));
    assert_eq!(assign_of(&out).len(), 1);
    let assigned = out.iter().find_map(|e| match &e.event {
        Event::TaskStateChanged(t) if t.state == TaskState::Assigned => Some(t.clone()),
        _ => None,
    });
    let assigned = assigned.expect("`assigned` written with the decision");
    assert_eq!(assigned.worker_id.as_deref(), Some("w1"), "naming its worker");
    assert_eq!(assigned.attempt, 1);

    // The next step has the decision in the dataflow's outputs: the state is not written again.
    let mut next = Vec::new();
    s.advance(1_020);
    s.tick(&mut next);
    assert!(!states(&next).iter().any(|(_, st)| *st == TaskState::Assigned), "{next:#?}");
    assert_eq!(s.task_status("j", "a").map(|(st, a)| (format!("{st:?}"), a)), Some(("Assigned".into(), 1)));
}

#[test]
fn own_decisions_read_back_bring_nothing_to_step() {
    let mut s = live_with_worker();
    let out = submit(&mut s, 1_010, serde_json::json!([{"id": "a", "kind": "aggregation"}]));
    assert!(!s.has_news(), "the decision alone asks for no step");
    let mut echoed = Vec::new();
    s.advance(1_011);
    for e in assign_of(&out) {
        s.apply(e, &mut echoed);
    }
    assert!(!s.has_news(), "its copy from the log changes nothing");
    assert!(echoed.is_empty(), "{echoed:#?}");

    // A report is news.
    let Event::Assign(a) = &assign_of(&out)[0].event else { unreachable!() };
    let started = AttemptStarted { attempt: a.attempt.clone(), worker_id: "w1".into() };
    s.apply(&Envelope::new("start", 1_012, "acme", Event::AttemptStarted(started)), &mut echoed);
    assert!(s.has_news());
}

#[test]
fn a_task_lost_before_the_step_after_its_decision_is_placed_again() {
    let mut s = live_with_worker();
    let out = submit(&mut s, 1_010, serde_json::json!([{"id": "a", "kind": "aggregation"}]));
    assert_eq!(assign_of(&out).len(), 1);

    // Its worker restarts before the next step: attempt 1 is lost in the step that also first
    // shows it assigned, and attempt 2 must be decided (not left out of placement).
    let mut next = Vec::new();
    s.advance(1_011);
    s.apply(&Envelope::new("reg-again", 1_011, "ops", registration()), &mut next);
    s.tick(&mut next);
    let again: Vec<u32> = next
        .iter()
        .filter_map(|e| match &e.event {
            Event::Assign(a) => Some(a.attempt.attempt),
            _ => None,
        })
        .collect();
    assert_eq!(again, vec![2], "{next:#?}");

    // And it runs to the end.
    let Some(Event::Assign(a)) = next.iter().map(|e| &e.event).find(|e| matches!(e, Event::Assign(_))) else {
        unreachable!()
    };
    let mut end = Vec::new();
    s.advance(1_020);
    s.apply(&Envelope::new("ok", 1_020, "acme", succeeded(a.attempt.clone(), "w1")), &mut end);
    s.tick(&mut end);
    assert_eq!(s.job_status("j").map(|st| format!("{st:?}")), Some("Succeeded".into()));
}

#[test]
fn a_snapshot_taken_with_facts_not_yet_stepped_still_asks_for_a_step() {
    let mut s = live_with_worker();
    let out = submit(&mut s, 1_010, serde_json::json!([{"id": "a", "kind": "aggregation"}]));
    let restored = Scheduler::restore(options(), &s.snapshot().unwrap()).unwrap();
    assert!(!restored.has_news(), "nothing but its own decision since the tick");

    let Event::Assign(a) = &assign_of(&out)[0].event else { unreachable!() };
    let started = AttemptStarted { attempt: a.attempt.clone(), worker_id: "w1".into() };
    s.apply(&Envelope::new("start", 1_012, "acme", Event::AttemptStarted(started)), &mut Vec::new());
    let restored = Scheduler::restore(options(), &s.snapshot().unwrap()).unwrap();
    assert!(restored.has_news(), "the start it read waits for a step");
}
