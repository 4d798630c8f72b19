//! An executor's inference engines: a language model's `llm_inference` attempts fill the
//! sequences its engine advertised (`worker_registered.engines`), not the ordinary slots, which
//! stay for embeddings and the rest; the engine's attempts beat, and end at a restart, with their
//! executor. Virtual time, the real driver.

use std::collections::BTreeMap;

use crate::support::{assigned, at, succeeded};
use splai_dataflow::Scheduler;
use splai_events::*;

/// `w1` registering `slots` ordinary slots and an engine of `sequences` for model `llm`; it also
/// has the embedding model `emb`.
fn registration(slots: u32, sequences: u32) -> Event {
    let mut registration = crate::support::registration();
    if let Event::WorkerRegistered(r) = &mut registration {
        r.slots = slots;
        r.models = vec!["emb".into(), "llm".into()];
        r.engines = BTreeMap::from([("llm".to_string(), sequences)]);
    }
    registration
}

fn scheduler(slots: u32, sequences: u32) -> Scheduler {
    let mut s = Scheduler::new(crate::support::options());
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration(slots, sequences));
    s
}

/// `inferences` inference tasks on `llm` and `embeddings` embedding tasks on `emb`, independent.
fn job(id: &str, inferences: usize, embeddings: usize) -> Event {
    let infer = (0..inferences).map(|i| {
        serde_json::json!({"id": format!("infer{i:02}"), "kind": "llm_inference",
            "inputs": {"prompt": {"literal": "hi"}}, "requirements": {"model": "llm"}})
    });
    let embed = (0..embeddings).map(|i| {
        serde_json::json!({"id": format!("embed{i:02}"), "kind": "embedding",
            "inputs": {"texts": {"literal": ["hi"]}}, "requirements": {"model": "emb"}})
    });
    let tasks: Vec<serde_json::Value> = infer.chain(embed).collect();
    let request: JobRequest = serde_json::from_value(
        serde_json::json!({"type": "explicit", "job_id": id, "dag": {"tasks": tasks}}),
    )
    .unwrap();
    Event::JobRequest(request)
}

/// (inference attempts placed in the engine, other attempts placed in the ordinary slots).
fn split(assigns: &[Assign]) -> (usize, usize) {
    let engine = assigns.iter().filter(|a| a.engine).count();
    assert!(
        assigns.iter().all(|a| a.engine == (a.kind == TaskKind::LlmInference) && a.worker_id == "w1"),
        "inference goes to the engine only, the rest never; all name the executor: {assigns:#?}"
    );
    (engine, assigns.len() - engine)
}

#[test]
fn inference_fills_the_engines_sequences_and_embeddings_keep_the_slots() {
    let mut s = scheduler(2, 8);
    let first = assigned(&at(&mut s, 1_010, job("j", 12, 3)));
    // Eight sequences of the engine, two ordinary slots: inference never spills into the slots,
    // and embeddings never wait behind inference.
    assert_eq!(split(&first), (8, 2), "{first:#?}");

    // A sequence ends: the next inference takes its place at once.
    let done = first.iter().find(|a| a.engine).unwrap().attempt.clone();
    let next = assigned(&at(&mut s, 1_020, succeeded(done, "w1")));
    assert_eq!(split(&next), (1, 0), "{next:#?}");
}

/// `n` inference tasks that name no model (as chat jobs' do).
fn naming_no_model(id: &str, n: usize) -> Event {
    let tasks: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"id": format!("t{i}"), "kind": "llm_inference", "inputs": {"prompt": {"literal": "hi"}}}))
        .collect();
    let request = serde_json::json!({"type": "explicit", "job_id": id, "dag": {"tasks": tasks}});
    Event::JobRequest(serde_json::from_value(request).unwrap())
}

#[test]
fn inference_that_names_no_model_runs_in_an_engine_and_the_assignment_names_its_model() {
    let mut s = scheduler(1, 4);
    let first = assigned(&at(&mut s, 1_010, naming_no_model("j", 3)));
    // All three fit the engine's four sequences (one ordinary slot would take only one).
    assert_eq!(split(&first), (3, 0), "{first:#?}");
    assert!(first.iter().all(|a| a.requirements.model.as_deref() == Some("llm")), "{first:#?}");
    // Read back, they hold the engine's places: one more fits, not more.
    let next = assigned(&at(&mut s, 1_020, naming_no_model("k", 3)));
    assert_eq!(split(&next), (1, 0), "{next:#?}");
}

#[test]
fn an_engine_is_the_only_place_its_model_runs() {
    // No sequences advertised at all for `llm` (an engine of 0): its inference waits, naming why,
    // rather than running in an ordinary slot.
    let mut s = scheduler(4, 0);
    let out = at(&mut s, 1_010, job("j", 1, 0));
    assert!(assigned(&out).is_empty(), "{out:#?}");
    let why = s.explain("j", "infer00").expect("the task is known");
    assert!(why.chosen.is_none(), "{why:#?}");
}

#[test]
fn the_engines_attempts_are_current_at_a_heartbeat_and_end_at_a_restart() {
    let mut s = scheduler(1, 4);
    let first = assigned(&at(&mut s, 1_010, job("j", 4, 0)));
    assert_eq!(split(&first), (4, 0));
    let mut beat = crate::support::heartbeat(first.iter().map(|a| a.attempt.clone()).collect());
    beat.warm_models = vec!["llm".into()];
    beat.engines = BTreeMap::from([("llm".to_string(), EngineLoad { active: 4, waiting: 0 })]);
    let beat = Event::Heartbeat(beat);
    let out = at(&mut s, 7_000, beat);
    assert!(!out.iter().any(|e| matches!(e.event, Event::Revoke(_))), "all current: {out:#?}");

    // The executor restarts (same id): its engine's attempts died with it and are placed again.
    let again = assigned(&at(&mut s, 7_100, registration(1, 4)));
    assert_eq!(split(&again), (4, 0), "{again:#?}");
    assert!(again.iter().all(|a| a.attempt.attempt == 2), "{again:#?}");
}

#[test]
fn a_replay_places_the_engines_attempts_where_the_live_scheduler_did() {
    // Live: fill the engine, end one attempt, place the next.
    let mut live = scheduler(1, 2);
    let mut log = vec![(1_000, registration(1, 2)), (1_010, job("j", 3, 0))];
    let first = assigned(&at(&mut live, 1_010, job("j", 3, 0)));
    let done = succeeded(first[0].attempt.clone(), "w1");
    let next = assigned(&at(&mut live, 1_020, done.clone()));
    assert_eq!((split(&first), split(&next)), ((2, 0), (1, 0)));

    // Replay the same log, the decisions included, then go live: nothing is placed again (the
    // engine is full with the replayed attempts), and the third attempt is the one in flight.
    log.extend(first.iter().map(|a| (1_011, Event::Assign(a.clone()))));
    log.push((1_020, done));
    log.extend(next.iter().map(|a| (1_021, Event::Assign(a.clone()))));
    let mut replayed = Scheduler::new(crate::support::options());
    let mut out = Vec::new();
    for (i, (t, e)) in log.into_iter().enumerate() {
        replayed.advance(t);
        replayed.apply(&Envelope::new(format!("r{i}"), t, "acme", e), &mut out);
        replayed.tick(&mut out);
    }
    replayed.go_live();
    let mut after = Vec::new();
    replayed.advance(1_030);
    replayed.tick(&mut after);
    assert!(assigned(&after).is_empty(), "replay keeps the engine full: {after:#?}");
}
