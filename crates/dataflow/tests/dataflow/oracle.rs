//! The incremental dataflow equals the from-scratch oracle at every time, for random sequences of
//! submissions, heartbeats (expiring), worker departures, assignments, starts, successes,
//! failures, timeouts, backoffs and cancellations.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use splai_dataflow::Engine;
use splai_dataflow::job_status::JobTally;
use splai_dataflow::model::{Attempt, Budget, Fact, Job, JobStatus, Outcome, TaskStatus, Time, Tk};
use splai_dataflow::oracle::{self, Snapshot};

const TTL: Time = 5;

/// One random step: how far time moves, and what happens at the new time.
#[derive(Debug, Clone)]
enum Op {
    Submit { job: u32, tasks: u32, edges: Vec<(u32, u32)>, retries: u32, losses: u32 },
    Beat { worker: u32, cap: u32 },
    Leave { worker: u32 },
    Assign { job: u32, task: u32, worker: u32 },
    Start { job: u32, task: u32 },
    End { job: u32, task: u32, outcome: Outcome },
    Backoff { job: u32, task: u32, for_ms: Time },
    Cancel { job: u32 },
    Expire { job: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Succeeded),
        2 => Just(Outcome::Failed),
        1 => Just(Outcome::Fatal),
        1 => Just(Outcome::TimedOut),
        1 => Just(Outcome::Lost)
    ];
    prop_oneof![
        2 => (0u32..4, 1u32..5, proptest::collection::vec((0u32..5, 0u32..5), 0..5), 0u32..3, 0u32..3)
            .prop_map(|(job, tasks, edges, retries, losses)| Op::Submit { job, tasks, edges, retries, losses }),
        4 => (0u32..3, 1u32..3).prop_map(|(worker, cap)| Op::Beat { worker, cap }),
        1 => (0u32..3).prop_map(|worker| Op::Leave { worker }),
        4 => (0u32..4, 0u32..5, 0u32..3).prop_map(|(job, task, worker)| Op::Assign { job, task, worker }),
        2 => (0u32..4, 0u32..5).prop_map(|(job, task)| Op::Start { job, task }),
        4 => (0u32..4, 0u32..5, outcome).prop_map(|(job, task, outcome)| Op::End { job, task, outcome }),
        1 => (0u32..4, 0u32..5, 1u64..6).prop_map(|(job, task, for_ms)| Op::Backoff { job, task, for_ms }),
        1 => (0u32..4).prop_map(|job| Op::Cancel { job }),
        1 => (0u32..4).prop_map(|job| Op::Expire { job }),
    ]
}

/// Applies ops the way the driver does (each static fact once, one outcome per attempt, attempts
/// increasing, liveness and backoff expiring by future retractions), recording every update.
#[derive(Default)]
struct Feeder {
    updates: Vec<(Fact, Time, isize)>,
    submitted: BTreeSet<u32>,
    attempts: BTreeMap<(u32, u32), u32>,
    ended: BTreeSet<((u32, u32), u32)>,
    cancelled: BTreeSet<u32>,
    expired: BTreeSet<u32>,
}

impl Feeder {
    fn apply(&mut self, op: &Op, now: Time, engine: &mut Engine) {
        let push = |f: Fact, t: Time, d: isize, e: &mut Engine, u: &mut Vec<(Fact, Time, isize)>| {
            e.feed(f.clone(), t, d);
            u.push((f, t, d));
        };
        let u = &mut self.updates;
        match op {
            Op::Submit { job, tasks, edges, retries, losses } => {
                if self.submitted.insert(*job) {
                    for t in 0..*tasks {
                        let budget = Budget { retries: *retries, losses: *losses };
                        push(Fact::Task((*job, t), budget), now, 1, engine, u);
                    }
                    let dag: BTreeSet<(u32, u32)> =
                        edges.iter().filter(|(p, c)| p < c && *c < *tasks).copied().collect();
                    for (p, c) in dag {
                        push(Fact::Edge((*job, p), (*job, c)), now, 1, engine, u);
                    }
                }
            }
            Op::Beat { worker, cap } => {
                push(Fact::Beat(*worker, now, *cap), now, 1, engine, u);
                push(Fact::Beat(*worker, now, *cap), now + TTL, -1, engine, u);
            }
            Op::Leave { worker } => {
                push(Fact::Leave(*worker, now), now, 1, engine, u);
                push(Fact::Leave(*worker, now), now + TTL, -1, engine, u);
            }
            Op::Assign { job, task, worker } => {
                let a = self.attempts.entry((*job, *task)).or_insert(0);
                *a += 1;
                push(Fact::Assigned((*job, *task), *a, *worker), now, 1, engine, u);
            }
            Op::Start { job, task } => {
                if let Some(a) = self.attempts.get(&(*job, *task)) {
                    push(Fact::Started((*job, *task), *a), now, 1, engine, u);
                }
            }
            Op::End { job, task, outcome } => {
                if let Some(a) = self.attempts.get(&(*job, *task)).copied()
                    && self.ended.insert(((*job, *task), a))
                {
                    push(Fact::Ended((*job, *task), a, *outcome), now, 1, engine, u);
                }
            }
            Op::Backoff { job, task, for_ms } => {
                push(Fact::Backoff((*job, *task)), now, 1, engine, u);
                push(Fact::Backoff((*job, *task)), now + for_ms, -1, engine, u);
            }
            Op::Cancel { job } => {
                if self.cancelled.insert(*job) {
                    push(Fact::Cancelled(*job), now, 1, engine, u);
                }
            }
            Op::Expire { job } => {
                if self.expired.insert(*job) {
                    push(Fact::Expired(*job), now, 1, engine, u);
                }
            }
        }
    }
}

fn accumulate<D: Ord + Clone>(set: &mut BTreeMap<D, isize>, changes: &[(D, isize)]) {
    for (d, diff) in changes {
        let e = set.entry(d.clone()).or_insert(0);
        *e += diff;
        if *e == 0 {
            set.remove(d);
        }
    }
}

fn as_set<D: Ord + Clone + std::fmt::Debug>(m: &BTreeMap<D, isize>) -> BTreeSet<D> {
    for (d, c) in m {
        assert_eq!(*c, 1, "output record {d:?} has multiplicity {c}");
    }
    m.keys().cloned().collect()
}

/// Job states as the driver keeps them ([`JobTally`]) from the dataflow's task states and the
/// cancels and expiries present.
fn job_states(
    tasks: &BTreeSet<(Tk, (TaskStatus, Attempt))>,
    facts: &BTreeSet<Fact>,
) -> BTreeSet<(Job, JobStatus)> {
    let mut tallies: BTreeMap<Job, JobTally> = BTreeMap::new();
    for ((job, _), (status, _)) in tasks {
        tallies.entry(*job).or_default().add(*status);
    }
    for fact in facts {
        match fact {
            Fact::Cancelled(job) => tallies.entry(*job).or_default().cancel(),
            Fact::Expired(job) => tallies.entry(*job).or_default().expire(),
            _ => {}
        }
    }
    tallies.into_iter().filter_map(|(job, t)| Some((job, t.status()?))).collect()
}

/// Run `steps` (time advance, ops, whether to step the engine there) and compare the accumulated
/// outputs with the oracle after every step.
fn check(mut engine: Engine, steps: &[(Time, Vec<Op>, bool)]) -> Result<(), TestCaseError> {
    let mut feeder = Feeder::default();
    let mut acc: (
        BTreeMap<_, isize>,
        BTreeMap<_, isize>,
        BTreeMap<_, isize>,
        BTreeMap<_, isize>,
        BTreeMap<_, isize>,
        BTreeMap<_, isize>,
    ) = Default::default();
    let mut now: Time = 0;
    // Run past the last expiry so every temporal retraction is checked too.
    let tail = [(TTL + 6, vec![], true)];
    for (advance, ops, step) in steps.iter().chain(tail.iter()) {
        now += advance;
        for op in ops {
            feeder.apply(op, now, &mut engine);
        }
        if !step {
            continue;
        }
        let changes = engine.step_to(now + 1);
        accumulate(&mut acc.0, &changes.runnable);
        accumulate(&mut acc.1, &changes.free_slots);
        accumulate(&mut acc.2, &changes.live_workers);
        accumulate(&mut acc.3, &changes.active);
        accumulate(&mut acc.4, &changes.orphaned);
        accumulate(&mut acc.5, &changes.task_states);
        let present = oracle::present(&feeder.updates, now + 1);
        let task_states = as_set(&acc.5);
        let incremental = Snapshot {
            job_states: job_states(&task_states, &present),
            runnable: as_set(&acc.0),
            free_slots: as_set(&acc.1),
            live_workers: as_set(&acc.2),
            active: as_set(&acc.3),
            orphaned: as_set(&acc.4),
            task_states,
        };
        let expected = oracle::compute(&present);
        prop_assert_eq!(&incremental, &expected, "at time {}", now);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch_at_every_time(steps in proptest::collection::vec((1u64..4, proptest::collection::vec(op(), 0..4)), 1..40)) {
        let steps: Vec<_> = steps.into_iter().map(|(advance, ops)| (advance, ops, true)).collect();
        check(Engine::new(), &steps)?;
    }

    /// A windowed engine, stepped only now and then, ends each step where the oracle is.
    #[test]
    fn windowed_steps_end_where_from_scratch_is(steps in proptest::collection::vec((1u64..4, proptest::collection::vec(op(), 0..4), proptest::bool::weighted(0.3)), 1..60)) {
        check(Engine::windowed(), &steps)?;
    }
}

proptest! {
    // Fewer cases: every case starts three worker threads.
    #![proptest_config(ProptestConfig { cases: 30, ..ProptestConfig::default() })]

    /// The same on three timely workers: keyed state spread across threads, outputs gathered.
    #[test]
    fn three_workers_equal_from_scratch_at_every_time(steps in proptest::collection::vec((1u64..4, proptest::collection::vec(op(), 0..4)), 1..40)) {
        let steps: Vec<_> = steps.into_iter().map(|(advance, ops)| (advance, ops, true)).collect();
        check(Engine::with_workers(3), &steps)?;
    }

    /// Windowed on two worker threads (as `splai replay` runs it).
    #[test]
    fn windowed_on_two_workers_ends_where_from_scratch_is(steps in proptest::collection::vec((1u64..4, proptest::collection::vec(op(), 0..4), proptest::bool::weighted(0.3)), 1..60)) {
        check(Engine::windowed_on(2), &steps)?;
    }
}
