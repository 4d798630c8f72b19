//! A task that becomes runnable is assigned in the step in which its last parent's success is
//! applied — also when that step is the second within one clock reading (two batches read within
//! one millisecond). Virtual time, the real driver.

use crate::support::{options, succeeded};
use splai_dataflow::Scheduler;
use splai_events::*;

/// A live scheduler at 1 000 ms with one worker of `slots` slots.
fn scheduler(slots: u32) -> Scheduler {
    let mut s = Scheduler::new(options());
    s.advance(1_000);
    s.go_live();
    let mut out = Vec::new();
    let mut registration = crate::support::registration();
    if let Event::WorkerRegistered(r) = &mut registration {
        r.slots = slots;
    }
    s.apply(&Envelope::new("reg", 1_000, "acme", registration), &mut out);
    s.tick(&mut out);
    s
}

fn assigned(out: &[Envelope]) -> Vec<Assign> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::Assign(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn started(a: &Assign) -> Event {
    Event::AttemptStarted(AttemptStarted { attempt: a.attempt.clone(), worker_id: a.worker_id.clone() })
}

/// Submit `dag` at 1 010 ms and return the first step's assignments, their decisions read back.
fn submit(s: &mut Scheduler, dag: serde_json::Value) -> Vec<Assign> {
    let request: JobRequest =
        serde_json::from_value(serde_json::json!({"type": "explicit", "job_id": "j", "dag": dag})).unwrap();
    let mut out = Vec::new();
    s.advance(1_010);
    s.apply(&Envelope::new("req", 1_010, "acme", Event::JobRequest(request)), &mut out);
    s.tick(&mut out);
    assigned(&out)
}

fn names(assigns: &[Assign]) -> Vec<String> {
    let mut v: Vec<String> = assigns.iter().map(|a| a.attempt.task_id.clone()).collect();
    v.sort();
    v
}

#[test]
fn the_children_of_a_success_are_assigned_in_its_own_step() {
    let mut s = scheduler(8);
    let dag = serde_json::json!({"tasks": [
        {"id": "split", "kind": "aggregation"},
        {"id": "m1", "kind": "aggregation", "parents": ["split"]},
        {"id": "m2", "kind": "aggregation", "parents": ["split"]}]});
    let first = submit(&mut s, dag);
    assert_eq!(names(&first), ["split"]);

    // All within one clock reading: a step (the decision read back, which changes nothing), then
    // the attempt's start and success, then the batch's step.
    let mut out = Vec::new();
    s.advance(1_020);
    s.apply(&Envelope::new("echo", 1_010, "acme", Event::Assign(first[0].clone())), &mut out);
    s.tick(&mut out);
    s.apply(&Envelope::new("start", 1_015, "acme", started(&first[0])), &mut out);
    s.apply(
        &Envelope::new("ok", 1_020, "acme", succeeded(first[0].attempt.clone(), &first[0].worker_id)),
        &mut out,
    );
    out.clear();
    s.tick(&mut out);
    assert_eq!(names(&assigned(&out)), ["m1", "m2"], "{out:#?}");
}

#[test]
fn a_join_is_assigned_in_the_step_of_its_last_parents_success() {
    let mut s = scheduler(8);
    let dag = serde_json::json!({"tasks": [
        {"id": "a", "kind": "aggregation"},
        {"id": "b", "kind": "aggregation"},
        {"id": "reduce", "kind": "aggregation", "parents": ["a", "b"]}]});
    let first = submit(&mut s, dag);
    assert_eq!(names(&first), ["a", "b"]);
    let mut out = Vec::new();
    s.advance(1_020);
    for (i, a) in first.iter().enumerate() {
        s.apply(&Envelope::new(format!("echo{i}"), 1_010, "acme", Event::Assign(a.clone())), &mut out);
    }
    s.tick(&mut out);

    s.apply(
        &Envelope::new("ok-a", 1_020, "acme", succeeded(first[0].attempt.clone(), &first[0].worker_id)),
        &mut out,
    );
    out.clear();
    s.tick(&mut out);
    assert!(assigned(&out).is_empty(), "the join waits for its other parent: {out:#?}");

    // The last parent's success, in the same clock reading as the step before.
    s.apply(
        &Envelope::new("ok-b", 1_020, "acme", succeeded(first[1].attempt.clone(), &first[1].worker_id)),
        &mut out,
    );
    out.clear();
    s.tick(&mut out);
    assert_eq!(names(&assigned(&out)), ["reduce"], "{out:#?}");
}
