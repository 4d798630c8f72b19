//! The driver's oracle: random workloads run closed-loop through the live scheduler (virtual
//! time; simulated executors that start, succeed, fail and die; workers that register, restart,
//! stop beating and leave; cancels from the job's tenant and from others; decisions the log
//! loses), and at every step:
//! - a scheduler built from scratch by replaying the log so far reaches exactly the live one's
//!   job and task states (the log is the source of truth);
//! - no task is assigned before each of its parents reported a success;
//! - no job is assigned anything after its own tenant's cancel, and no job ends cancelled that its
//!   own tenant did not cancel;
//!
//! and when the churn stops, every job ends, in a state its tasks explain.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use splai_dataflow::model::{JobStatus, TaskStatus};
use splai_dataflow::{Scheduler, SchedulerOptions, States};
use splai_events::{
    ArtifactRef, AttemptFailed, AttemptId, AttemptStarted, AttemptSucceeded, CancelJob, Envelope, Event,
    Heartbeat, JobRequest, WorkerLeaving, WorkerRegistered,
};
use splai_ingest::plan::Limits;

const TTL: u64 = 10_000;

const TENANTS: [&str; 2] = ["acme", "globex"];

fn options() -> SchedulerOptions {
    SchedulerOptions {
        heartbeat_ttl_ms: TTL,
        retry_base_ms: 200,
        retry_cap_ms: 2_000,
        default_max_retries: 2,
        max_lost_attempts: 3,
        decision_resend_ms: 4_000,
        unschedulable_timeout_ms: 0,
        default_task_timeout_ms: 8_000,
        tenants: Default::default(),
        limits: Limits::default(),
        policy: Default::default(),
        admission: Default::default(),
        metrics: Default::default(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        tenant: usize,
        tasks: u8,
        edges: Vec<(u8, u8)>,
        retries: u32,
        timeout_s: Option<u32>,
    },
    /// A worker process starts (again, if it ran before: what it ran died with it).
    Register {
        worker: u8,
        slots: u32,
    },
    Beat {
        worker: u8,
    },
    Leave {
        worker: u8,
    },
    Start {
        pick: usize,
    },
    /// 0–2 succeed, 3 fails (retryable), 4 fails for good.
    Report {
        pick: usize,
        outcome: u8,
    },
    Cancel {
        pick: usize,
        by_other_tenant: bool,
    },
    /// A decision of the last step that the log loses (the scheduler must write it again).
    LoseDecision {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..TENANTS.len(), 1u8..5, proptest::collection::vec((0u8..5, 0u8..5), 0..5), 0u32..3,
              proptest::option::weighted(0.2, 5u32..40))
            .prop_map(|(tenant, tasks, edges, retries, timeout_s)| Op::Submit { tenant, tasks, edges, retries, timeout_s }),
        2 => (0u8..3, 1u32..3).prop_map(|(worker, slots)| Op::Register { worker, slots }),
        4 => (0u8..3).prop_map(|worker| Op::Beat { worker }),
        1 => (0u8..3).prop_map(|worker| Op::Leave { worker }),
        2 => any::<usize>().prop_map(|pick| Op::Start { pick }),
        6 => (any::<usize>(), 0u8..5).prop_map(|(pick, outcome)| Op::Report { pick, outcome }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, by_other_tenant)| Op::Cancel { pick, by_other_tenant }),
        1 => any::<usize>().prop_map(|pick| Op::LoseDecision { pick }),
    ]
}

/// An attempt a simulated executor holds.
#[derive(Debug, Clone)]
struct Held {
    tenant: String,
    attempt: AttemptId,
    worker: String,
}

/// The closed loop: the live scheduler, the log it has read, and the simulated world around it.
struct World {
    s: Scheduler,
    now: u64,
    log: Vec<(u64, Envelope)>,
    /// Decisions of the last step, read back from the log at the next.
    unread: Vec<Envelope>,
    /// The scheduler's assignments, when it made them: it applies its own decisions as it makes
    /// them, so its state is a replay of what it read and of these (also those the log lost).
    own: Vec<(u64, Envelope)>,
    /// Everything the scheduler wrote, in order.
    written: Vec<Envelope>,
    /// Running worker processes and their slots.
    workers: BTreeMap<String, u32>,
    held: Vec<Held>,
    jobs: Vec<(String, String, usize)>,
    /// (tenant, job) → (task → parents).
    dags: BTreeMap<(String, String), BTreeMap<String, Vec<String>>>,
    /// Jobs whose own tenant cancelled them, and tasks that reported a success.
    cancelled: BTreeSet<(String, String)>,
    succeeded: BTreeSet<(String, String, String)>,
    timed: BTreeSet<(String, String)>,
    seq: u64,
}

impl World {
    fn new() -> Self {
        let mut s = Scheduler::new(options());
        s.advance(1_000);
        s.go_live();
        World {
            s,
            now: 1_000,
            log: Vec::new(),
            unread: Vec::new(),
            own: Vec::new(),
            written: Vec::new(),
            workers: BTreeMap::new(),
            held: Vec::new(),
            jobs: Vec::new(),
            dags: BTreeMap::new(),
            cancelled: BTreeSet::new(),
            succeeded: BTreeSet::new(),
            timed: BTreeSet::new(),
            seq: 0,
        }
    }

    /// The scheduler reads `event` from the log now.
    fn read(&mut self, tenant: &str, event: Event) {
        self.seq += 1;
        let e = Envelope::new(format!("e{}", self.seq), self.now, tenant, event);
        self.read_envelope(e);
    }

    fn read_envelope(&mut self, e: Envelope) {
        let mut out = Vec::new();
        self.s.apply(&e, &mut out);
        self.written.extend(out.iter().cloned());
        self.log.push((self.now, e));
        self.unread
            .extend(out.into_iter().filter(|e| matches!(e.event, Event::Assign(_) | Event::Revoke(_))));
    }

    fn step(&mut self, dt: u64, ops: &[Op]) -> Result<(), TestCaseError> {
        self.now += dt;
        self.s.advance(self.now);
        let mut decisions = std::mem::take(&mut self.unread);
        for op in ops {
            if let Op::LoseDecision { pick } = op
                && !decisions.is_empty()
            {
                decisions.remove(pick % decisions.len());
            }
        }
        for d in decisions {
            self.read_back(d);
        }
        for op in ops {
            self.apply_op(op);
        }
        let mut out = Vec::new();
        self.s.tick(&mut out);
        self.written.extend(out.iter().cloned());
        for e in &out {
            if let Event::Assign(a) = &e.event {
                self.check_assignable(&e.tenant, &a.attempt)?;
                self.own.push((self.now, e.clone()));
            }
        }
        self.unread
            .extend(out.into_iter().filter(|e| matches!(e.event, Event::Assign(_) | Event::Revoke(_))));
        self.check_states()
    }

    /// A decision comes back from the log; executors act on it.
    fn read_back(&mut self, d: Envelope) {
        match &d.event {
            Event::Assign(a) if self.workers.contains_key(&a.worker_id) => {
                let held = Held {
                    tenant: d.tenant.clone(),
                    attempt: a.attempt.clone(),
                    worker: a.worker_id.clone(),
                };
                if !self.held.iter().any(|h| h.attempt == held.attempt && h.tenant == held.tenant) {
                    self.held.push(held);
                }
            }
            Event::Revoke(r) => self.held.retain(|h| !(h.attempt == r.attempt && h.tenant == d.tenant)),
            _ => {}
        }
        self.read_envelope(d);
    }

    fn apply_op(&mut self, op: &Op) {
        match op {
            Op::Submit { tenant, tasks, edges, retries, timeout_s } => {
                let tenant = TENANTS[*tenant].to_string();
                let id = format!("j{}", self.jobs.len());
                let mut parents: BTreeMap<String, Vec<String>> =
                    (0..*tasks).map(|t| (format!("t{t}"), Vec::new())).collect();
                for (a, b) in edges {
                    let (p, c) = (a.min(b), a.max(b));
                    if p != c && *c < *tasks && !parents[&format!("t{c}")].contains(&format!("t{p}")) {
                        parents.get_mut(&format!("t{c}")).unwrap().push(format!("t{p}"));
                    }
                }
                let specs: Vec<_> = parents
                    .iter()
                    .map(|(t, ps)| serde_json::json!({"id": t, "kind": "aggregation", "parents": ps}))
                    .collect();
                let request: JobRequest = serde_json::from_value(serde_json::json!({
                    "type": "explicit", "job_id": id, "max_retries": retries, "timeout_s": timeout_s,
                    "dag": {"tasks": specs}}))
                .expect("a valid request");
                if timeout_s.is_some() {
                    self.timed.insert((tenant.clone(), id.clone()));
                }
                self.dags.insert((tenant.clone(), id.clone()), parents);
                self.jobs.push((tenant.clone(), id, *tasks as usize));
                self.read(&tenant, Event::JobRequest(request));
            }
            Op::Register { worker, slots } => {
                let id = format!("w{worker}");
                self.held.retain(|h| h.worker != id);
                self.workers.insert(id.clone(), *slots);
                self.read("ops", registration(&id, *slots));
            }
            Op::Beat { worker } => {
                let id = format!("w{worker}");
                if self.workers.contains_key(&id) {
                    let running =
                        self.held.iter().filter(|h| h.worker == id).map(|h| h.attempt.clone()).collect();
                    let beat = Heartbeat {
                        worker_id: id,
                        seq: self.seq,
                        cpu_pct: 10.0,
                        memory_used_mb: 1,
                        running,
                        warm_models: vec![],
                        engines: Default::default(),
                    };
                    self.read("ops", Event::Heartbeat(beat));
                }
            }
            Op::Leave { worker } => {
                let id = format!("w{worker}");
                if self.workers.remove(&id).is_some() {
                    self.held.retain(|h| h.worker != id);
                    let leaving =
                        WorkerLeaving { worker_id: id, reason: "scale-in".into(), handed_back: vec![] };
                    self.read("ops", Event::WorkerLeaving(leaving));
                }
            }
            Op::Start { pick } if !self.held.is_empty() => {
                let h = self.held[pick % self.held.len()].clone();
                let started = AttemptStarted { attempt: h.attempt, worker_id: h.worker };
                self.read(&h.tenant, Event::AttemptStarted(started));
            }
            Op::Report { pick, outcome } if !self.held.is_empty() => {
                let h = self.held.remove(pick % self.held.len());
                self.report(h, *outcome);
            }
            Op::Cancel { pick, by_other_tenant } if !self.jobs.is_empty() => {
                let (tenant, job, _) = self.jobs[pick % self.jobs.len()].clone();
                let by = if *by_other_tenant {
                    TENANTS.iter().find(|t| **t != tenant).unwrap()
                } else {
                    tenant.as_str()
                };
                if !by_other_tenant {
                    self.cancelled.insert((tenant.clone(), job.clone()));
                }
                self.read(by, Event::CancelJob(CancelJob { job_id: job, reason: "test".into() }));
            }
            _ => {}
        }
    }

    fn report(&mut self, h: Held, outcome: u8) {
        let event = if outcome < 3 {
            self.succeeded.insert((h.tenant.clone(), h.attempt.job_id.clone(), h.attempt.task_id.clone()));
            let artifact = ArtifactRef {
                path: format!(
                    "{}/{}/{}/{}/out.json",
                    h.tenant, h.attempt.job_id, h.attempt.task_id, h.attempt.attempt
                ),
                sha256: "0".repeat(64),
                size_bytes: 2,
            };
            Event::AttemptSucceeded(AttemptSucceeded {
                attempt: h.attempt,
                worker_id: h.worker,
                artifact,
                inputs: vec![],
                duration_ms: 1,
                usage: None,
                provenance: None,
                subdag: None,
            })
        } else {
            Event::AttemptFailed(AttemptFailed {
                attempt: h.attempt,
                worker_id: h.worker,
                error: "simulated failure".into(),
                retryable: outcome == 3,
                revoked: None,
            })
        };
        self.read(&h.tenant, event);
    }

    /// A decision the scheduler just made: every parent reported a success, and its job's own
    /// tenant has not cancelled it.
    fn check_assignable(&self, tenant: &str, a: &AttemptId) -> Result<(), TestCaseError> {
        let job = (tenant.to_string(), a.job_id.clone());
        prop_assert!(!self.cancelled.contains(&job), "{:?} assigned after its job was cancelled", a);
        for p in &self.dags[&job][&a.task_id] {
            let parent = (tenant.to_string(), a.job_id.clone(), p.clone());
            prop_assert!(
                self.succeeded.contains(&parent),
                "{:?} assigned before its parent {} succeeded",
                a,
                p
            );
        }
        Ok(())
    }

    /// The live states equal a from-scratch replay's, and only the own tenant's cancel cancels.
    fn check_states(&self) -> Result<(), TestCaseError> {
        let live = self.s.states();
        let log = self.known();
        let replayed = replay(&log, self.now);
        if live != replayed {
            let log: Vec<String> =
                log.iter().map(|(t, e)| format!("{t} {} {}", e.tenant, e.event.kind())).collect();
            return Err(TestCaseError::fail(format!(
                "the live scheduler and a replay of its log disagree at {}:\n live {live:?}\n replay {replayed:?}\n log {log:#?}",
                self.now
            )));
        }
        for (job, state) in &live.jobs {
            if *state == JobStatus::Cancelled {
                prop_assert!(self.cancelled.contains(job), "{:?} cancelled, but not by its own tenant", job);
            }
        }
        Ok(())
    }

    /// What the scheduler's state is a replay of: the log it read, and its own decisions made
    /// before this step (this step's are in the dataflow's outputs from the next step on).
    fn known(&self) -> Vec<(u64, Envelope)> {
        let decided = self.own.iter().filter(|(t, _)| *t < self.now).cloned();
        let mut log: Vec<(u64, Envelope)> = self.log.iter().cloned().chain(decided).collect();
        // Stable: within one time, what was read comes before the decisions made after it.
        log.sort_by_key(|(t, _)| *t);
        log
    }

    /// The scheduler stops here and a new one starts from its snapshot.
    fn restart_from_snapshot(&mut self) {
        let bytes = self.s.snapshot().expect("a snapshot");
        self.s = Scheduler::restore(options(), &bytes).expect("its own snapshot restores");
    }

    /// Churn stops: every worker restarts with room, beats, and runs what it is given to success.
    fn drain(&mut self) -> Result<States, TestCaseError> {
        let ops: Vec<Op> = (0..3).map(|w| Op::Register { worker: w, slots: 2 }).collect();
        self.step(1, &ops)?;
        for _ in 0..400 {
            let states = self.s.states();
            let ended = states.jobs.values().filter(|s| is_terminal(**s)).count();
            if ended == self.jobs.len() && self.unread.is_empty() {
                return Ok(states);
            }
            let mut ops: Vec<Op> = (0..3).map(|w| Op::Beat { worker: w }).collect();
            ops.extend((0..self.held.len()).map(|_| Op::Report { pick: 0, outcome: 0 }));
            self.step(250, &ops)?;
        }
        let open: Vec<_> = self.s.states().jobs.into_iter().filter(|(_, s)| !is_terminal(*s)).collect();
        Err(TestCaseError::fail(format!("jobs never ended: {open:?}\n{:?}", self.s.states())))
    }
}

fn is_terminal(s: JobStatus) -> bool {
    matches!(s, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
}

fn registration(id: &str, slots: u32) -> Event {
    Event::WorkerRegistered(WorkerRegistered {
        worker_id: id.into(),
        cores: 1,
        memory_mb: 1024,
        slots,
        light_slots: 0,
        engines: Default::default(),
        models: vec![],
        tools: vec![],
        labels: Default::default(),
        heartbeat_interval_ms: 2_000,
        version: "test".into(),
    })
}

/// A scheduler built from scratch: the log replayed, time by time, then live at `now`.
fn replay(log: &[(u64, Envelope)], now: u64) -> States {
    replay_cut(log, now, None)
}

/// [`replay`], stopping after the first `cut` records (at the end of a time) to continue from a
/// snapshot of the state there.
fn replay_cut(log: &[(u64, Envelope)], now: u64, cut: Option<usize>) -> States {
    replay_from(Scheduler::new(options()), log, now, cut)
}

/// `log` replayed onto `s`, then live at `now`.
fn replay_onto(s: Scheduler, log: &[(u64, Envelope)], now: u64) -> States {
    replay_from(s, log, now, None)
}

fn replay_from(mut s: Scheduler, log: &[(u64, Envelope)], now: u64, cut: Option<usize>) -> States {
    let mut ignored = Vec::new();
    let mut i = 0;
    while i < log.len() {
        let t = log[i].0;
        s.advance(t);
        while i < log.len() && log[i].0 == t {
            s.apply(&log[i].1, &mut ignored);
            i += 1;
        }
        s.tick(&mut ignored);
        if cut.is_some_and(|c| i >= c) {
            s = Scheduler::restore(options(), &s.snapshot().expect("a snapshot")).expect("restores");
        }
    }
    // After a tick at `t` the scheduler's next time is `t + 1`: advance only to a later step.
    if log.last().is_none_or(|(t, _)| *t < now) {
        s.advance(now);
    }
    s.go_live();
    s.states()
}

proptest! {
    // Each case replays its log at every step (quadratic): shrinking a failure is bounded in time
    // so a failing case is reported within CI's budget instead of shrinking for an hour.
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_time: 120_000, ..ProptestConfig::default() })]

    #[test]
    fn the_live_driver_agrees_with_a_replay_of_its_log_at_every_step(
        steps in proptest::collection::vec((1u64..3_000, proptest::collection::vec(op(), 0..5)), 1..30)
    ) {
        let mut world = World::new();
        for (dt, ops) in &steps {
            world.step(*dt, ops)?;
        }
        let end = world.drain()?;
        for (tenant, job, _) in &world.jobs {
            let key = (tenant.clone(), job.clone());
            let state = end.jobs[&key];
            let tasks: Vec<TaskStatus> = end.tasks.iter()
                .filter(|((t, j, _), _)| t == tenant && j == job)
                .map(|(_, (s, _))| *s)
                .collect();
            match state {
                JobStatus::Succeeded => prop_assert!(tasks.iter().all(|s| *s == TaskStatus::Succeeded), "{:?}: {:?}", key, tasks),
                JobStatus::Failed => prop_assert!(
                    tasks.contains(&TaskStatus::DeadLettered) || world.timed.contains(&key),
                    "{:?} failed with no dead-lettered task and no deadline: {:?}", key, tasks),
                JobStatus::Cancelled => prop_assert!(world.cancelled.contains(&key), "{:?}", key),
                other => prop_assert!(false, "{:?} did not end: {:?}", key, other),
            }
        }
    }
}

proptest! {
    // Two schedulers in lockstep, one of them replaced at a random step by one restored from its
    // snapshot (live): every envelope they write, their states at every step (each also checked
    // against a replay of its log) and their explanations must be identical. Then a replay of the
    // whole log cut at a random point and continued from a snapshot must end where the full
    // replay does.
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_time: 120_000, ..ProptestConfig::default() })]

    #[test]
    fn a_scheduler_restored_from_its_snapshot_continues_exactly_as_the_original(
        steps in proptest::collection::vec((1u64..3_000, proptest::collection::vec(op(), 0..5)), 1..20),
        restart in any::<proptest::sample::Index>(),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut original = World::new();
        let mut restored = World::new();
        let at = restart.index(steps.len());
        let mut taken = None;
        for (i, (dt, ops)) in steps.iter().enumerate() {
            if i == at {
                restored.restart_from_snapshot();
                taken = Some((original.s.snapshot().expect("a snapshot"), original.log.len(), original.own.len()));
            }
            original.step(*dt, ops)?;
            restored.step(*dt, ops)?;
            prop_assert_eq!(&original.written, &restored.written, "diverged at step {}", i);
            prop_assert_eq!(original.s.states(), restored.s.states());
        }
        let end = original.drain()?;
        prop_assert_eq!(end, restored.drain()?);
        prop_assert_eq!(&original.written, &restored.written);
        for (tenant, job, tasks) in &original.jobs {
            for t in 0..*tasks {
                let task = format!("t{t}");
                let (a, b) = (original.s.explain(job, &task), restored.s.explain(job, &task));
                prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}/{}/{}", tenant, job, task);
            }
        }

        // A restart: the live snapshot, then the log after it replayed, then live again.
        let (bytes, read, decided) = taken.expect("a snapshot was taken");
        let mut tail: Vec<(u64, Envelope)> =
            original.log[read..].iter().chain(original.own[decided..].iter().filter(|(t, _)| *t < original.now)).cloned().collect();
        tail.sort_by_key(|(t, _)| *t);
        let mut resumed = Scheduler::restore(options(), &bytes).expect("restores");
        resumed.replay_tail();
        let log = original.known();
        prop_assert_eq!(replay_onto(resumed, &tail, original.now), replay(&log, original.now), "restart at step {}", at);

        let boundaries: Vec<usize> =
            (1..log.len()).filter(|&i| log[i - 1].0 != log[i].0).chain([log.len()]).collect();
        let k = boundaries[cut.index(boundaries.len())];
        prop_assert_eq!(replay_cut(&log, original.now, Some(k)), replay(&log, original.now), "cut at {}", k);
    }
}

#[test]
fn a_damaged_or_foreign_snapshot_is_refused() {
    let mut world = World::new();
    world.step(1, &[Op::Register { worker: 0, slots: 1 }]).unwrap();
    let bytes = world.s.snapshot().unwrap();
    assert!(Scheduler::restore(options(), &bytes).is_ok());
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    let err = Scheduler::restore(options(), &damaged).unwrap_err();
    assert!(matches!(err, splai_dataflow::SnapshotError::Checksum), "{err}");
    let mut newer = bytes.clone();
    newer[14..18].copy_from_slice(&(splai_dataflow::SNAPSHOT_VERSION + 1).to_be_bytes());
    let err = Scheduler::restore(options(), &newer).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    let err = Scheduler::restore(options(), b"{\"not\": \"a snapshot\"}").unwrap_err();
    assert!(matches!(err, splai_dataflow::SnapshotError::NotASnapshot), "{err}");
}

/// Found by the property above: a decision the log lost, then its job's cancel. The decision
/// must not be written again, and no job is left unfinished (its attempt, open on a worker that
/// never ran it, ends when that worker restarts, or is revoked `not_held`).
#[test]
fn a_lost_decision_of_a_cancelled_job_is_not_written_again() {
    let steps = [
        (
            1,
            vec![
                Op::Register { worker: 0, slots: 1 },
                Op::Submit { tenant: 0, tasks: 1, edges: vec![], retries: 0, timeout_s: None },
            ],
        ),
        (369, vec![Op::LoseDecision { pick: 0 }]),
        (
            933,
            vec![
                Op::Cancel { pick: 0, by_other_tenant: false },
                Op::Submit { tenant: 0, tasks: 2, edges: vec![], retries: 1, timeout_s: None },
            ],
        ),
        (2197, vec![Op::Register { worker: 2, slots: 1 }]),
    ];
    let mut world = World::new();
    for (dt, ops) in &steps {
        world.step(*dt, ops).unwrap();
    }
    let end = world.drain().unwrap();
    assert_eq!(end.jobs[&("acme".to_string(), "j0".to_string())], JobStatus::Cancelled);
    assert_eq!(end.jobs[&("acme".to_string(), "j1".to_string())], JobStatus::Succeeded);
}

/// A case the live/replay property found (pre-existing): a worker registered at 1003 (TTL 10 s)
/// holds an attempt; at 11002 the live scheduler still has it, but a replay's go-live settled
/// one more step, closing 11003, and applied the worker's expiry there. A step with nothing fed
/// since the last one now closes `now` and no more.
#[test]
fn a_replay_going_live_steps_no_time_past_its_last_event() {
    let steps: Vec<(u64, Vec<Op>)> = vec![
        (1, vec![Op::Register { worker: 2, slots: 1 }]),
        (1, vec![]),
        (
            1,
            vec![
                Op::Submit { tenant: 0, tasks: 2, edges: vec![], retries: 0, timeout_s: None },
                Op::Register { worker: 1, slots: 1 },
            ],
        ),
        (
            1382,
            vec![
                Op::Cancel { pick: 6961181328685421852_usize, by_other_tenant: true },
                Op::Submit { tenant: 0, tasks: 4, edges: vec![], retries: 2, timeout_s: None },
                Op::Report { pick: 5834256884414528191_usize, outcome: 0 },
            ],
        ),
        (2726, vec![Op::Report { pick: 16594039116449469648_usize, outcome: 4 }, Op::Beat { worker: 0 }]),
        (
            2829,
            vec![
                Op::Cancel { pick: 107203819775053168_usize, by_other_tenant: false },
                Op::Report { pick: 15687385405286519345_usize, outcome: 0 },
                Op::Beat { worker: 2 },
                Op::Beat { worker: 2 },
            ],
        ),
        (2796, vec![Op::Leave { worker: 0 }]),
        (
            266,
            vec![
                Op::Submit { tenant: 0, tasks: 2, edges: vec![], retries: 2, timeout_s: Some(10) },
                Op::Report { pick: 3601880960812564489_usize, outcome: 2 },
            ],
        ),
    ];
    let mut world = World::new();
    for (dt, ops) in &steps {
        world.step(*dt, ops).unwrap();
    }
}

/// Shrunk from a failure of `check_assignable`: a decision the log lost, for an attempt that then
/// ended (its worker left), was written again after its job was cancelled — an executor could
/// then run a task of a cancelled job.
#[test]
fn a_lost_decision_is_not_written_again_after_its_job_is_cancelled() {
    let steps: Vec<(u64, Vec<Op>)> = vec![
        (1, vec![Op::Submit { tenant: 1, tasks: 1, edges: vec![], retries: 0, timeout_s: None }]),
        (1, vec![Op::Submit { tenant: 0, tasks: 1, edges: vec![], retries: 0, timeout_s: None }]),
        (
            1,
            vec![Op::Submit {
                tenant: 1,
                tasks: 2,
                edges: vec![(0, 2), (2, 3), (4, 3)],
                retries: 0,
                timeout_s: Some(19),
            }],
        ),
        (
            1995,
            vec![
                Op::Report { pick: 10121466143794930_usize, outcome: 3 },
                Op::Register { worker: 2, slots: 2 },
            ],
        ),
        (
            2901,
            vec![
                Op::Report { pick: 2680544510431951244_usize, outcome: 4 },
                Op::Start { pick: 5325497895075309709_usize },
                Op::Submit { tenant: 1, tasks: 2, edges: vec![], retries: 0, timeout_s: None },
                Op::Beat { worker: 1 },
            ],
        ),
        (1419, vec![Op::Beat { worker: 1 }, Op::Report { pick: 4518504451712980235_usize, outcome: 4 }]),
        (
            1018,
            vec![
                Op::Submit { tenant: 0, tasks: 4, edges: vec![(2, 3)], retries: 0, timeout_s: Some(24) },
                Op::Leave { worker: 2 },
                Op::Start { pick: 14032017075231153404_usize },
            ],
        ),
        (
            2007,
            vec![
                Op::Cancel { pick: 4121191031462205233_usize, by_other_tenant: true },
                Op::Report { pick: 12062120689912259951_usize, outcome: 1 },
                Op::Report { pick: 16257225597491187291_usize, outcome: 2 },
                Op::Report { pick: 16599684252472228099_usize, outcome: 4 },
            ],
        ),
        (
            1694,
            vec![
                Op::Submit { tenant: 1, tasks: 3, edges: vec![(1, 1)], retries: 0, timeout_s: None },
                Op::Submit { tenant: 0, tasks: 2, edges: vec![(0, 0)], retries: 0, timeout_s: None },
            ],
        ),
        (
            455,
            vec![
                Op::Cancel { pick: 12648095929572863335_usize, by_other_tenant: true },
                Op::Submit {
                    tenant: 0,
                    tasks: 2,
                    edges: vec![(3, 4), (0, 3), (2, 1)],
                    retries: 1,
                    timeout_s: None,
                },
            ],
        ),
        (
            2310,
            vec![
                Op::Submit { tenant: 0, tasks: 3, edges: vec![], retries: 1, timeout_s: None },
                Op::Cancel { pick: 18417282361869134691_usize, by_other_tenant: false },
                Op::Beat { worker: 2 },
                Op::Beat { worker: 1 },
            ],
        ),
        (1347, vec![Op::Register { worker: 1, slots: 2 }]),
        (
            1580,
            vec![
                Op::LoseDecision { pick: 7564486205419471553_usize },
                Op::Start { pick: 823403645412303518_usize },
                Op::Leave { worker: 0 },
            ],
        ),
        (1206, vec![Op::Register { worker: 1, slots: 1 }]),
        (
            2921,
            vec![
                Op::Cancel { pick: 3150466672837242335_usize, by_other_tenant: false },
                Op::Cancel { pick: 13801358978947001894_usize, by_other_tenant: true },
            ],
        ),
    ];
    let mut world = World::new();
    for (dt, ops) in &steps {
        world.step(*dt, ops).unwrap();
    }
}
