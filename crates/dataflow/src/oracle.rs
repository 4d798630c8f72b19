//! The scheduler's rules computed from scratch over the accumulated input, with plain maps.
//! Property tests check that the incremental dataflow ([`crate::Engine`]) agrees with this at
//! every time; it is also the executable specification of the operators.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Attempt, Budget, Fact, Failures, Job, JobStatus, Outcome, TaskStatus, Time, Tk, Worker};

/// The outputs the engine maintains, as sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub runnable: BTreeSet<(Tk, Attempt)>,
    pub free_slots: BTreeSet<(Worker, i64)>,
    pub live_workers: BTreeSet<(Worker, u32)>,
    pub active: BTreeSet<(Tk, (Attempt, Worker))>,
    pub orphaned: BTreeSet<(Tk, (Attempt, Worker))>,
    pub task_states: BTreeSet<(Tk, (TaskStatus, Attempt))>,
    pub job_states: BTreeSet<(Job, JobStatus)>,
}

/// Facts present (multiplicity > 0) given `(fact, time, diff)` updates, counting those before `upto`.
pub fn present(updates: &[(Fact, Time, isize)], upto: Time) -> BTreeSet<Fact> {
    let mut counts: BTreeMap<&Fact, isize> = BTreeMap::new();
    for (fact, time, diff) in updates {
        if *time < upto {
            *counts.entry(fact).or_insert(0) += diff;
        }
    }
    counts.into_iter().filter(|(_, c)| *c > 0).map(|(f, _)| f.clone()).collect()
}

/// Compute every output from the set of present facts.
pub fn compute(facts: &BTreeSet<Fact>) -> Snapshot {
    let mut tasks: BTreeMap<Tk, Budget> = BTreeMap::new();
    let mut edges = Vec::new();
    let mut assigned: BTreeMap<Tk, BTreeSet<(Attempt, Worker)>> = BTreeMap::new();
    let mut started = BTreeSet::new();
    let mut ended: BTreeMap<(Tk, Attempt), BTreeSet<Outcome>> = BTreeMap::new();
    let mut backoff = BTreeSet::new();
    let mut liveness: BTreeMap<Worker, BTreeSet<(Time, u8, u32)>> = BTreeMap::new();
    let mut cancelled = BTreeSet::new();
    let mut expired = BTreeSet::new();
    for f in facts {
        match f {
            Fact::Task(tk, r) => {
                // Several budgets for one task would be a driver bug; take the largest.
                let e = tasks.entry(*tk).or_insert(*r);
                *e = Budget { retries: e.retries.max(r.retries), losses: e.losses.max(r.losses) };
            }
            Fact::Edge(p, c) => edges.push((*p, *c)),
            Fact::Assigned(tk, a, w) => {
                assigned.entry(*tk).or_default().insert((*a, *w));
            }
            Fact::Started(tk, a) => {
                started.insert((*tk, *a));
            }
            Fact::Ended(tk, a, o) => {
                ended.entry((*tk, *a)).or_default().insert(*o);
            }
            Fact::Backoff(tk) => {
                backoff.insert(*tk);
            }
            Fact::Beat(w, ts, cap) => {
                liveness.entry(*w).or_default().insert((*ts, 0, *cap));
            }
            Fact::Leave(w, ts) => {
                liveness.entry(*w).or_default().insert((*ts, 1, 0));
            }
            Fact::Cancelled(job) => {
                cancelled.insert(*job);
            }
            Fact::Expired(job) => {
                expired.insert(*job);
            }
            // Metrics are checked by their own tests (`metrics_stream.rs`), not by this oracle.
            Fact::Tally(..) => {}
        }
    }
    let live: BTreeMap<Worker, u32> = liveness
        .iter()
        .filter_map(|(w, facts)| {
            facts.iter().max().filter(|(_, leave, _)| *leave == 0).map(|(_, _, cap)| (*w, *cap))
        })
        .collect();
    let current: BTreeMap<Tk, (Attempt, Worker)> =
        assigned.iter().filter_map(|(tk, set)| set.iter().max().map(|aw| (*tk, *aw))).collect();
    let open: BTreeMap<Tk, (Attempt, Worker)> = current
        .iter()
        .filter(|(tk, (a, _))| !ended.contains_key(&(**tk, *a)))
        .map(|(k, v)| (*k, *v))
        .collect();
    let orphaned: BTreeSet<(Tk, (Attempt, Worker))> =
        open.iter().filter(|(_, (_, w))| !live.contains_key(w)).map(|(k, v)| (*k, *v)).collect();
    let active: BTreeSet<(Tk, (Attempt, Worker))> =
        open.iter().filter(|(_, (_, w))| live.contains_key(w)).map(|(k, v)| (*k, *v)).collect();

    // Per task and attempt: whether it is the task's own failure (else a loss), and fatal.
    let mut failed: BTreeMap<Tk, BTreeMap<Attempt, (bool, bool)>> = BTreeMap::new();
    for ((tk, a), outcomes) in &ended {
        for o in outcomes.iter().filter(|o| **o != Outcome::Succeeded) {
            let e = failed.entry(*tk).or_default().entry(*a).or_insert((false, false));
            e.0 |= o.is_task_failure();
            e.1 |= *o == Outcome::Fatal;
        }
    }
    for (tk, (a, _)) in &orphaned {
        failed.entry(*tk).or_default().entry(*a).or_insert((false, false));
    }
    let failure_counts: BTreeMap<Tk, Failures> = failed
        .iter()
        .map(|(tk, attempts)| {
            let own = attempts.values().filter(|(own, _)| *own).count() as u32;
            let fatal = attempts.values().any(|(_, fatal)| *fatal);
            (*tk, Failures { failed: own, lost: attempts.len() as u32 - own, fatal })
        })
        .collect();
    let dead: BTreeSet<Tk> = tasks
        .iter()
        .filter(|(tk, budget)| failure_counts.get(tk).is_some_and(|f| f.exhaust(**budget)))
        .map(|(tk, _)| *tk)
        .collect();
    let done: BTreeSet<Tk> =
        ended.iter().filter(|(_, o)| o.contains(&Outcome::Succeeded)).map(|((tk, _), _)| *tk).collect();
    let blocked: BTreeSet<Tk> = edges.iter().filter(|(p, _)| !done.contains(p)).map(|(_, c)| *c).collect();
    let stopped: BTreeSet<Job> =
        cancelled.iter().copied().chain(dead.iter().map(|tk| tk.0)).chain(expired.iter().copied()).collect();
    let active_tasks: BTreeSet<Tk> = active.iter().map(|(tk, _)| *tk).collect();
    let runnable: BTreeSet<(Tk, Attempt)> = tasks
        .keys()
        .filter(|tk| {
            !blocked.contains(tk)
                && !done.contains(tk)
                && !active_tasks.contains(tk)
                && !backoff.contains(tk)
                && !dead.contains(tk)
                && !stopped.contains(&tk.0)
        })
        .map(|tk| (*tk, current.get(tk).map_or(0, |(a, _)| *a) + 1))
        .collect();
    let free_slots: BTreeSet<(Worker, i64)> = live
        .iter()
        .map(|(w, cap)| (*w, i64::from(*cap) - active.iter().filter(|(_, (_, aw))| aw == w).count() as i64))
        .collect();

    let mut task_states = BTreeSet::new();
    let mut per_job: BTreeMap<Job, Vec<TaskStatus>> = BTreeMap::new();
    let mut all_tasks: BTreeSet<Tk> = tasks.keys().copied().collect();
    all_tasks.extend(current.keys().copied());
    for tk in &all_tasks {
        use TaskStatus::*;
        let mut s: Option<TaskStatus> = None;
        let mut raise = |x: TaskStatus| s = Some(s.map_or(x, |y| y.max(x)));
        if tasks.contains_key(tk) {
            raise(Pending);
            if stopped.contains(&tk.0) {
                raise(Cancelled);
            }
        }
        if runnable.iter().any(|(r, _)| r == tk) {
            raise(Runnable);
        }
        if let Some((_, (a, _))) = active.iter().find(|(t, _)| t == tk) {
            raise(Assigned);
            if started.contains(&(*tk, *a)) {
                raise(Running);
            }
        }
        if done.contains(tk) {
            raise(Succeeded);
        }
        if failure_counts.contains_key(tk) {
            raise(Failed);
        }
        if dead.contains(tk) {
            raise(DeadLettered);
        }
        let attempt = current.get(tk).map_or(0, |(a, _)| *a);
        let status = s.unwrap_or(Pending);
        task_states.insert((*tk, (status, attempt)));
        per_job.entry(tk.0).or_default().push(status);
    }
    let mut jobs: BTreeSet<Job> = per_job.keys().copied().collect();
    jobs.extend(cancelled.iter().copied());
    jobs.extend(expired.iter().copied());
    let job_states = jobs
        .into_iter()
        .map(|job| {
            use TaskStatus::*;
            let states = per_job.get(&job).cloned().unwrap_or_default();
            let status = if states.contains(&DeadLettered) {
                JobStatus::Failed
            } else if !states.is_empty() && states.iter().all(|s| *s == Succeeded) {
                JobStatus::Succeeded
            } else if cancelled.contains(&job) {
                JobStatus::Cancelled
            } else if expired.contains(&job) {
                JobStatus::Failed
            } else if states.iter().any(|s| matches!(s, Assigned | Running | Succeeded | Failed)) {
                JobStatus::Running
            } else {
                JobStatus::Queued
            };
            (job, status)
        })
        .collect();

    Snapshot {
        runnable,
        free_slots,
        live_workers: live.into_iter().collect(),
        active,
        orphaned,
        task_states,
        job_states,
    }
}
