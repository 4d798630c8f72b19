//! Metrics as a stream (issue 21 item 6): the scheduler's dataflow counts, per tenant and model,
//! runnable and running tasks and a sliding window of tallies, and the driver writes the scopes
//! that changed to `metrics` at most once per interval. Virtual time, the real driver.

use crate::support::{assigned, at, job, live, succeeded};
use splai_events::{Envelope, Event, ScopeMetrics};

/// The newest `scope_metrics` record of `scope` among `out`.
fn newest(out: &[Envelope], scope: &str) -> Option<ScopeMetrics> {
    out.iter().rev().find_map(|e| match &e.event {
        Event::ScopeMetrics(m) if m.scope == scope => Some(m.clone()),
        _ => None,
    })
}

/// A clock tick at `t` with nothing read.
fn tick_at(s: &mut splai_dataflow::Scheduler, t: u64) -> Vec<Envelope> {
    let mut out = Vec::new();
    s.advance(t);
    s.tick(&mut out);
    out
}

#[test]
fn a_scopes_gauges_and_window_follow_its_jobs() {
    let mut s = live();
    // One slot: the first job's task runs, the second's waits.
    let mut out = at(&mut s, 3_000, job("a", 0));
    let first = newest(&out, "acme/-").expect("a record for the new scope");
    assert_eq!((first.admitted, first.window_ms), (1, 60_000), "{first:?}");
    out.extend(at(&mut s, 3_000, job("b", 0)));
    let attempt = assigned(&out).remove(0).attempt;
    assert!(newest(&tick_at(&mut s, 3_500), "acme/-").is_none(), "written at most once per interval");
    let m = newest(&tick_at(&mut s, 4_100), "acme/-").expect("the changes, after the interval");
    assert_eq!((m.runnable, m.running, m.admitted, m.queue_wait_ms.count), (1, 1, 2, 1), "{m:?}");

    at(&mut s, 4_500, succeeded(attempt, "w1"));
    let m = newest(&tick_at(&mut s, 5_200), "acme/-").expect("the success is written");
    assert_eq!(
        (m.succeeded, m.running, m.runnable, m.run_ms.count),
        (1, 1, 0, 1),
        "the second took the slot: {m:?}"
    );

    // A window after they happened the tallies are gone; the gauges follow the tasks (the worker
    // sent no heartbeat for its TTL: the second job's attempt is lost and its task runnable).
    let m = newest(&tick_at(&mut s, 70_000), "acme/-").expect("the window moved on");
    assert_eq!((m.admitted, m.succeeded, m.queue_wait_ms.count), (0, 0, 0), "{m:?}");
    assert_eq!((m.running, m.runnable), (0, 1), "{m:?}");
}

#[test]
fn going_live_writes_every_scope() {
    let mut s = splai_dataflow::Scheduler::new(crate::support::options());
    s.advance(2_000);
    let mut quiet = Vec::new();
    s.apply(&Envelope::new("r1", 2_000, "acme", job("a", 0)), &mut quiet);
    s.apply(&Envelope::new("r2", 2_000, "globex", job("g", 0)), &mut quiet);
    s.tick(&mut quiet);
    assert!(quiet.is_empty(), "replay writes nothing");
    let out = s.go_live();
    let (acme, globex) = (newest(&out, "acme/-").unwrap(), newest(&out, "globex/-").unwrap());
    assert_eq!((acme.runnable, acme.admitted, globex.runnable), (1, 1, 1));
    let tenants: Vec<&str> =
        out.iter().filter(|e| matches!(e.event, Event::ScopeMetrics(_))).map(|e| e.tenant.as_str()).collect();
    assert_eq!(tenants, ["acme", "globex"], "each record is its tenant's");
}
