//! A job request that repeats a (tenant, idempotency key) is answered, not dropped (issue 16
//! item 10): the scheduler rejects the repeat's id naming the job that took the key, as REST's
//! 200 replay or 409 conflict does. Virtual time, the real driver.

use crate::support::{at_as, dead_letters, live, options};
use splai_dataflow::Scheduler;
use splai_events::{Envelope, Event, JobRejected, JobRequest};

fn keyed(id: &str, key: &str, prompt: &str) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id, "idempotency_key": key,
        "dag": {"tasks": [{"id": "t", "kind": "aggregation", "inputs": {"p": {"literal": prompt}}}]}}))
    .unwrap();
    Event::JobRequest(request)
}

fn rejection(out: &[Envelope], id: &str) -> Option<JobRejected> {
    out.iter().find_map(|e| match &e.event {
        Event::JobRejected(r) if r.job_id == id => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn a_retried_request_names_the_job_that_took_its_key() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", keyed("first", "order-7", "same"));
    let out = at_as(&mut s, 1_020, "acme", keyed("retry", "order-7", "same"));
    let r = rejection(&out, "retry").expect("the repeat is answered on job-events");
    assert_eq!(r.code, "duplicate_idempotency_key");
    assert_eq!(r.duplicate_of.as_deref(), Some("first"));
    assert_eq!(r.field.as_deref(), Some("idempotency_key"));
    assert!(s.job_status("first").is_some() && s.job_status("retry").is_none(), "one job runs");
}

#[test]
fn a_key_reused_for_different_work_is_a_conflict() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", keyed("first", "order-7", "one thing"));
    let out = at_as(&mut s, 1_020, "acme", keyed("other", "order-7", "another thing"));
    let r = rejection(&out, "other").expect("the reuse is answered");
    assert_eq!(r.code, "idempotency_conflict");
    assert_eq!(r.duplicate_of.as_deref(), Some("first"));
}

#[test]
fn keys_belong_to_their_tenant() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", keyed("a-1", "order-7", "same"));
    let out = at_as(&mut s, 1_020, "globex", keyed("g-1", "order-7", "same"));
    assert!(rejection(&out, "g-1").is_none(), "globex's key is its own");
    assert!(s.job_status("g-1").is_some());
}

#[test]
fn replay_answers_the_repeat_the_same_way() {
    let records = [("first", "same"), ("retry", "same")]
        .map(|(id, prompt)| Envelope::new(format!("req-{id}"), 1_010, "acme", keyed(id, "order-7", prompt)));
    let mut s = Scheduler::new(options());
    s.advance(1_010);
    let mut out = Vec::new();
    for r in &records {
        s.apply(r, &mut out);
    }
    s.tick(&mut out);
    assert!(out.is_empty(), "replay emits nothing");
    let snapshot = s.go_live();
    let r = rejection(&snapshot, "retry").expect("the go-live snapshot re-emits the answer");
    assert_eq!(r.duplicate_of.as_deref(), Some("first"));
}

fn bad(id: &str) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id, "dag": {"tasks": [{"id": "t", "kind": "aggregation", "parents": ["nope"]}]}}))
    .unwrap();
    Event::JobRequest(request)
}

/// A job id is used once: another request under an id that a job took — admitted, or rejected —
/// is answered on `dead-letter` (it used to be dropped without a word when the first was
/// rejected); the very same request read again changes nothing.
#[test]
fn a_second_request_under_a_taken_job_id_is_answered() {
    let mut s = live();
    let first = at_as(&mut s, 1_010, "acme", bad("j-bad"));
    assert!(rejection(&first, "j-bad").is_some(), "the bad request is rejected");
    let again = at_as(&mut s, 1_020, "acme", keyed("j-bad", "k-1", "fixed"));
    let letters = dead_letters(&again);
    assert_eq!(letters.len(), 1, "{again:#?}");
    assert!(
        letters[0].contains("already submitted a job `j-bad`") && letters[0].contains("new id"),
        "{letters:?}"
    );
    assert_eq!(s.job_status("j-bad"), None, "the id stays rejected");

    at_as(&mut s, 1_030, "acme", keyed("j-ok", "k-2", "one"));
    let twice = at_as(&mut s, 1_040, "acme", keyed("j-ok", "k-3", "two"));
    assert_eq!(dead_letters(&twice).len(), 1, "an admitted id is taken too: {twice:#?}");

    // The same record delivered again is the same submission: nothing to say.
    let mut out = Vec::new();
    let record = Envelope::new("e1030", 1_030, "acme", keyed("j-ok", "k-2", "one"));
    s.apply(&record, &mut out);
    assert!(dead_letters(&out).is_empty() && rejection(&out, "j-ok").is_none(), "{out:#?}");
}
