//! An executor's pool for light attempts (tools but `shell`, aggregations): light work is
//! placed there while inference holds every ordinary slot, never the other way round, and the
//! executor's heartbeats and restarts cover the pool. Virtual time, the real driver.

use crate::support::{assigned, at, succeeded};
use splai_dataflow::Scheduler;
use splai_events::*;

/// A live scheduler with `w1`: `slots` ordinary slots, `light` light ones, model `m`.
fn scheduler(slots: u32, light: u32) -> Scheduler {
    let mut s = Scheduler::new(crate::support::options());
    s.advance(1_000);
    s.go_live();
    let mut registration = crate::support::registration();
    if let Event::WorkerRegistered(r) = &mut registration {
        (r.slots, r.light_slots, r.models) = (slots, light, vec!["m".into()]);
    }
    at(&mut s, 1_000, registration);
    s
}

/// One inference task and three aggregations, none depending on another.
fn job() -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({"type": "explicit", "job_id": "j",
        "dag": {"tasks": [
            {"id": "infer", "kind": "llm_inference", "inputs": {"prompt": {"literal": "hi"}},
             "requirements": {"model": "m"}},
            {"id": "agg1", "kind": "aggregation"},
            {"id": "agg2", "kind": "aggregation"},
            {"id": "agg3", "kind": "aggregation"}]}}))
    .unwrap();
    Event::JobRequest(request)
}

fn placed(assigns: &[Assign]) -> Vec<(String, bool)> {
    assigns.iter().map(|a| (a.attempt.task_id.clone(), a.light)).collect()
}

#[test]
fn light_work_runs_beside_inference_that_holds_every_slot() {
    let mut s = scheduler(1, 2);
    let first = assigned(&at(&mut s, 1_010, job()));
    // Inference takes the one ordinary slot; two aggregations the two light ones, on the same
    // executor (the assignment names it, not its pool).
    assert_eq!(
        placed(&first),
        [("agg1".into(), true), ("agg2".into(), true), ("infer".into(), false)],
        "{first:#?}"
    );
    assert!(first.iter().all(|a| a.worker_id == "w1"));

    // A light slot frees: the last aggregation takes it, though inference still runs.
    let done = succeeded(first[0].attempt.clone(), "w1");
    let next = assigned(&at(&mut s, 1_020, done));
    assert_eq!(placed(&next), [("agg3".into(), true)]);
}

#[test]
fn inference_never_takes_a_light_slot() {
    let mut s = scheduler(1, 8);
    let request: JobRequest = serde_json::from_value(serde_json::json!({"type": "explicit", "job_id": "j",
        "dag": {"tasks": [
            {"id": "a", "kind": "llm_inference", "inputs": {"prompt": {"literal": "a"}}, "requirements": {"model": "m"}},
            {"id": "b", "kind": "llm_inference", "inputs": {"prompt": {"literal": "b"}}, "requirements": {"model": "m"}}]}}))
    .unwrap();
    let first = assigned(&at(&mut s, 1_010, Event::JobRequest(request)));
    assert_eq!(placed(&first), [("a".into(), false)], "one ordinary slot, so one inference: {first:#?}");
}

#[test]
fn a_heartbeat_naming_its_light_attempts_keeps_them() {
    let mut s = scheduler(1, 2);
    let first = assigned(&at(&mut s, 1_010, job()));
    let beat = Event::Heartbeat(crate::support::heartbeat(first.iter().map(|a| a.attempt.clone()).collect()));
    let out = at(&mut s, 2_000, beat);
    let revoked: Vec<&Envelope> = out.iter().filter(|e| matches!(e.event, Event::Revoke(_))).collect();
    assert!(revoked.is_empty(), "attempts the scheduler placed are current: {revoked:#?}");
}

#[test]
fn a_restarted_executor_loses_its_light_attempts_too() {
    let mut s = scheduler(1, 2);
    at(&mut s, 1_010, job());
    let mut again = crate::support::registration();
    if let Event::WorkerRegistered(r) = &mut again {
        (r.slots, r.light_slots, r.models) = (1, 2, vec!["m".into()]);
    }
    let out = at(&mut s, 1_100, again);
    // Every attempt ended with the old process and is placed again, light work in the pool.
    let second = assigned(&out);
    assert_eq!(
        placed(&second),
        [("agg1".into(), true), ("agg2".into(), true), ("infer".into(), false)],
        "{out:#?}"
    );
    assert!(second.iter().all(|a| a.attempt.attempt == 2), "{second:#?}");
}
