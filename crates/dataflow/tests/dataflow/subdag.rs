//! Sub-DAGs at run time (issue 18 part 4) through the real driver in virtual time: a `map`
//! task's output appends one task per item of a list known only then, plus a reduce its child
//! reads; the job ends only after them; a refused proposal fails the task with the reason or
//! appends the fallback; cancellation reaches appended tasks; and a replay of the log (topics
//! read in any order) rebuilds the same states and lineage without assigning anything again.

use std::collections::BTreeMap;

use crate::support::{options, registration};
use serde_json::{Value, json};
use splai_dataflow::Scheduler;
use splai_dataflow::model::{JobStatus, TaskStatus};
use splai_events::*;

/// A scheduler and the log it reads: every record applied, and the decisions it wrote.
struct Run {
    s: Scheduler,
    log: Vec<Envelope>,
    emitted: Vec<Envelope>,
    t: u64,
    answered: usize,
}

impl Run {
    fn new() -> Self {
        Self::with(options())
    }

    fn with(opts: splai_dataflow::SchedulerOptions) -> Self {
        let mut s = Scheduler::new(opts);
        s.advance(1_000);
        s.go_live();
        let mut run = Run { s, log: Vec::new(), emitted: Vec::new(), t: 1_000, answered: 0 };
        run.record(registration());
        run
    }

    /// Apply `event` as read from the log, step, and read back the scheduler's own decisions.
    fn record(&mut self, event: Event) {
        self.t += 10;
        let env = Envelope::new(format!("e{}", self.t), self.t, "acme", event);
        let mut out = Vec::new();
        self.s.advance(self.t);
        self.s.apply(&env, &mut out);
        self.log.push(env);
        self.s.tick(&mut out);
        while !out.is_empty() {
            let decisions: Vec<Envelope> =
                out.iter().filter(|e| matches!(e.event, Event::Assign(_))).cloned().collect();
            self.emitted.append(&mut out);
            self.t += 1;
            self.s.advance(self.t);
            for d in decisions {
                self.s.apply(&d, &mut out);
                self.log.push(d);
            }
            self.s.tick(&mut out);
        }
    }

    fn assigns(&self) -> Vec<Assign> {
        self.log
            .iter()
            .filter_map(|e| match &e.event {
                Event::Assign(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    /// Answer every assignment not answered yet: `answer` gives the sub-DAG an expanding task
    /// reports. Returns how many it answered.
    fn work(&mut self, answer: &dyn Fn(&Assign) -> Option<Value>) -> usize {
        let open: Vec<Assign> = self.assigns().into_iter().skip(self.answered).collect();
        self.answered += open.len();
        for a in &open {
            let path =
                format!("acme/{}/{}/{}/output.json", a.attempt.job_id, a.attempt.task_id, a.attempt.attempt);
            let inputs = a
                .inputs
                .values()
                .filter_map(|i| match i {
                    ResolvedInput::Artifact { artifact, .. } => Some(artifact.clone()),
                    ResolvedInput::Literal(_) => None,
                })
                .collect();
            let done = AttemptSucceeded {
                attempt: a.attempt.clone(),
                worker_id: "w1".into(),
                artifact: ArtifactRef { path, sha256: "00".into(), size_bytes: 2 },
                inputs,
                duration_ms: 1,
                usage: None,
                provenance: None,
                subdag: if a.expand { answer(a) } else { None },
            };
            self.record(Event::AttemptSucceeded(done));
        }
        open.len()
    }

    /// Work until nothing is assigned any more.
    fn run(&mut self, answer: &dyn Fn(&Assign) -> Option<Value>) {
        while self.work(answer) > 0 {}
    }

    fn expanded(&self) -> Vec<JobExpanded> {
        self.emitted
            .iter()
            .filter_map(|e| match &e.event {
                Event::JobExpanded(x) => Some(x.clone()),
                _ => None,
            })
            .collect()
    }
}

fn submit(run: &mut Run, id: &str, map: Value) {
    let request: JobRequest = serde_json::from_value(json!({
    "type": "explicit", "job_id": id,
    "dag": {"tasks": [
        {"id": "list", "kind": "aggregation"},
        map,
        {"id": "report", "kind": "aggregation", "parents": ["map"],
         "inputs": {"part-0": {"output": {"task": "map", "pointer": "/text"}}}},
    ]}}))
    .unwrap();
    run.record(Event::JobRequest(request));
}

fn map_task() -> Value {
    json!({"id": "map", "kind": "tool_execution", "parents": ["list"], "expand": {}})
}

/// What the `map` tool outputs for `n` items with a reduce (its shape, written by hand here).
fn fifty_and_a_reduce(n: usize) -> Value {
    let mut tasks: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("item-{i:03}"), "kind": "tool_execution",
                        "inputs": {"item": {"literal": i}, "tool": {"literal": "template"}}})
        })
        .collect();
    let parts: BTreeMap<String, Value> = (0..n)
        .map(|i| (format!("part-{i:03}"), json!({"output": {"task": format!("item-{i:03}")}})))
        .collect();
    let parents: Vec<String> = (0..n).map(|i| format!("item-{i:03}")).collect();
    tasks.push(json!({"id": "reduce", "kind": "aggregation", "parents": parents, "inputs": parts}));
    json!({"tasks": tasks, "output": "reduce"})
}

/// The last state told of each task (by id) in `envelopes`, with its attempt.
fn told_states(envelopes: &[Envelope]) -> BTreeMap<String, (String, u32)> {
    let told = envelopes.iter().filter_map(|e| match &e.event {
        Event::TaskStateChanged(t) => Some((t.task_id.clone(), (format!("{:?}", t.state), t.attempt))),
        _ => None,
    });
    told.collect()
}

#[test]
fn a_map_over_fifty_runtime_items_runs_them_then_its_child_reads_the_reduce() {
    let mut run = Run::new();
    submit(&mut run, "m1", map_task());
    run.run(&|_| Some(fifty_and_a_reduce(50)));
    assert_eq!(run.s.job_status("m1"), Some(JobStatus::Succeeded));
    let expanded = run.expanded();
    assert_eq!(expanded.len(), 1, "{expanded:?}");
    assert_eq!(expanded[0].added.len(), 51);
    assert_eq!(expanded[0].dag.tasks.len(), 54);
    let order: Vec<String> = run.assigns().iter().map(|a| a.attempt.task_id.clone()).collect();
    assert_eq!(order.len(), 54, "each task ran once: {order:?}");
    assert_eq!(order[..2], ["list", "map"]);
    assert_eq!(order[52..], ["map.reduce", "report"], "the child waited for the whole sub-DAG");
    let report = run.assigns().into_iter().find(|a| a.attempt.task_id == "report").unwrap();
    match &report.inputs["part-0"] {
        ResolvedInput::Artifact { artifact, pointer } => {
            assert_eq!(artifact.path, "acme/m1/map.reduce/1/output.json", "it reads the reduce's output");
            assert_eq!(pointer.as_deref(), Some("/text"));
        }
        other => panic!("{other:?}"),
    }
    let reduce = run.assigns().into_iter().find(|a| a.attempt.task_id == "map.reduce").unwrap();
    assert_eq!(reduce.inputs.len(), 50, "the reduce reads every item");
}

#[test]
fn a_replay_reaches_the_same_states_and_lineage_and_assigns_nothing_again() {
    let mut run = Run::new();
    submit(&mut run, "m1", map_task());
    run.run(&|_| Some(fifty_and_a_reduce(50)));
    let ids: Vec<String> = run.expanded()[0].dag.tasks.iter().map(|t| t.id.clone()).collect();
    // The job finished and left the scheduler's state: what live said of each task is the record.
    let live = told_states(&run.emitted);
    assert_eq!(live.len(), ids.len(), "every task's state was told");
    // Topics are read in parallel: a replay may read every assignment before any task event.
    let (decisions, rest): (Vec<Envelope>, Vec<Envelope>) =
        run.log.iter().cloned().partition(|e| matches!(e.event, Event::Assign(_)));
    for log in [run.log.clone(), [decisions, rest].concat()] {
        let mut s = Scheduler::new(options());
        let mut out = Vec::new();
        for e in &log {
            s.advance(e.ts_ms);
            s.apply(e, &mut out);
            s.tick(&mut out);
        }
        let snapshot = s.go_live();
        assert_eq!(s.job_status("m1"), Some(JobStatus::Succeeded));
        assert_eq!(told_states(&snapshot), live, "go-live tells every task's state as live did");
        let mut after = Vec::new();
        s.tick(&mut after);
        let again: Vec<&Envelope> =
            snapshot.iter().chain(&after).filter(|e| matches!(e.event, Event::Assign(_))).collect();
        assert!(again.is_empty(), "nothing runs twice: {again:?}");
        let admitted = snapshot.iter().find_map(|e| match &e.event {
            Event::JobAdmitted(a) => Some(a.dag.clone()),
            _ => None,
        });
        assert_eq!(admitted.as_ref(), Some(&run.expanded()[0].dag), "the snapshot carries the grown DAG");
    }
}

#[test]
fn a_refused_proposal_fails_the_task_with_the_reason() {
    let mut run = Run::new();
    submit(&mut run, "bad", map_task());
    let proposal = json!({"tasks": [{"id": "x", "kind": "aggregation", "parents": ["nowhere"]}]});
    run.run(&|_| Some(proposal.clone()));
    assert_eq!(run.s.job_status("bad"), Some(JobStatus::Failed));
    assert_eq!(run.s.task_status("bad", "map").map(|(s, _)| s), Some(TaskStatus::DeadLettered));
    let reason = run.emitted.iter().rev().find_map(|e| match &e.event {
        Event::JobStateChanged(c) => c.reason.clone(),
        _ => None,
    });
    let reason = reason.unwrap();
    assert!(
        reason.contains("sub-DAG refused (missing_parent): task `map.x` names parent `nowhere`"),
        "{reason}"
    );
    assert_eq!(run.assigns().len(), 2, "the proposal is not retried: the same output would come back");
}

#[test]
fn a_refused_proposal_with_a_fallback_appends_the_fallback_and_says_why() {
    let mut run = Run::new();
    let mut map = map_task();
    map["expand"] = json!({"fallback": {"tasks": [{"id": "plain", "kind": "aggregation"}]}});
    submit(&mut run, "fb", map);
    run.run(&|_| Some(json!("Sure! First I would read the text.")));
    assert_eq!(run.s.job_status("fb"), Some(JobStatus::Succeeded));
    let x = &run.expanded()[0];
    assert_eq!(x.added, ["map.plain"]);
    let why = x.fallback_reason.as_deref().unwrap();
    assert!(
        why.starts_with("sub-DAG refused (invalid_input): `subdag` is invalid: the output is not JSON"),
        "{why}"
    );
}

#[test]
fn cancelling_the_job_cancels_its_appended_tasks() {
    let mut run = Run::new();
    submit(&mut run, "c1", map_task());
    // Run list and map; the appended items are then assigned one at a time (one slot).
    run.work(&|_| None);
    run.work(&|_| Some(fifty_and_a_reduce(5)));
    assert_eq!(run.s.task_status("c1", "map.item-000").map(|(s, _)| s), Some(TaskStatus::Assigned));
    run.record(Event::CancelJob(CancelJob { job_id: "c1".into(), reason: "enough".into() }));
    assert_eq!(run.s.job_status("c1"), Some(JobStatus::Cancelled));
    for id in ["map.item-004", "map.reduce", "report"] {
        assert_eq!(run.s.task_status("c1", id).map(|(s, _)| s), Some(TaskStatus::Cancelled), "{id}");
    }
    let revoked = run.emitted.iter().any(
        |e| matches!(&e.event, Event::Revoke(r) if r.attempt.task_id == "map.item-000" && r.reason == RevokeReason::Cancelled),
    );
    assert!(revoked, "the running appended task is told to stop");
}

#[test]
fn an_appended_task_the_policy_gate_denies_is_refused_like_at_admission() {
    let policy = r#"
[[rules]]
name = "model-x-retired"
task_kinds = ["llm_inference"]
models = ["model-x"]
action = "deny"
reason = "model-x is retired"
"#;
    let policy = splai_ingest::policy::PolicySet::parse(policy).unwrap();
    let mut run =
        Run::with(splai_dataflow::SchedulerOptions { policy: std::sync::Arc::new(policy), ..options() });
    submit(&mut run, "p1", map_task());
    let proposal = json!({"tasks": [{"id": "x", "kind": "llm_inference", "requirements": {"model": "model-x"},
                                     "inputs": {"prompt": {"literal": "hi"}}}]});
    run.run(&|_| Some(proposal.clone()));
    assert_eq!(run.s.job_status("p1"), Some(JobStatus::Failed));
    let reason = run.emitted.iter().rev().find_map(|e| match &e.event {
        Event::JobStateChanged(c) => c.reason.clone(),
        _ => None,
    });
    let reason = reason.unwrap();
    assert!(
        reason.contains(
            "sub-DAG refused (policy_denied): denied by policy rule `model-x-retired`: model-x is retired"
        ),
        "{reason}"
    );
}
