//! Every fact in the engine's inputs, what a snapshot keeps ([`crate::engine::Engine::inputs`]).
//! Facts of closed times are kept per fact, summed, without their time: a restore feeds them all
//! at one past time anyway. So a fact and its later retraction (a heartbeat and its expiry, a
//! metrics tally and the end of its window) cancel once both are in the past instead of staying
//! as two entries forever. Facts of open times keep their time until it closes. Facts are kept
//! per job, so a finished job's can be found and retracted ([`Ledger::of_job`]) without a scan.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

use crate::model::{Fact, Job, Time};

#[derive(Debug, Default)]
pub struct Ledger {
    /// Facts of closed times, by the job they are about (`None`: workers' and metrics' facts).
    closed: HashMap<Option<Job>, HashMap<Fact, isize>>,
    open: BTreeMap<Time, HashMap<Fact, isize>>,
    /// The open times that hold facts of each job (some may since have cancelled out).
    open_times: HashMap<Job, BTreeSet<Time>>,
}

fn add(facts: &mut HashMap<Fact, isize>, fact: Fact, diff: isize) {
    match facts.entry(fact) {
        Entry::Occupied(e) if *e.get() + diff == 0 => drop(e.remove()),
        Entry::Occupied(mut e) => *e.get_mut() += diff,
        Entry::Vacant(e) => drop(e.insert(diff)),
    }
}

impl Ledger {
    /// `fact` with `diff` at `t` (an open time).
    pub fn add(&mut self, fact: Fact, t: Time, diff: isize) {
        if let Some(job) = fact.job() {
            self.open_times.entry(job).or_default().insert(t);
        }
        let at = self.open.entry(t).or_default();
        add(at, fact, diff);
        if at.is_empty() {
            self.open.remove(&t);
        }
    }

    /// Every time before `t` is closed: fold its facts into the closed ones.
    pub fn close_before(&mut self, t: Time) {
        let still_open = self.open.split_off(&t);
        for (time, facts) in std::mem::replace(&mut self.open, still_open) {
            for (fact, diff) in facts {
                let job = fact.job();
                if let Some(j) = job
                    && let Some(times) = self.open_times.get_mut(&j)
                {
                    times.remove(&time);
                    if times.is_empty() {
                        self.open_times.remove(&j);
                    }
                }
                let of_job = self.closed.entry(job).or_default();
                add(of_job, fact, diff);
                if of_job.is_empty() {
                    self.closed.remove(&job);
                }
            }
        }
    }

    /// `job`'s facts: closed ones without a time, open ones at theirs.
    pub fn of_job(&self, job: Job) -> Vec<(Fact, Option<Time>, isize)> {
        let closed = self.closed.get(&Some(job)).into_iter().flatten().map(|(f, d)| (f.clone(), None, *d));
        let times = self.open_times.get(&job).into_iter().flatten();
        let open = times.flat_map(|t| {
            let at = self.open.get(t).into_iter().flatten();
            at.filter(|(f, _)| f.job() == Some(job)).map(|(f, d)| (f.clone(), Some(*t), *d))
        });
        closed.chain(open).collect()
    }

    /// The facts, sorted: closed ones at `now − 1`, open ones at their times.
    pub fn facts(&self, now: Time) -> Vec<(Fact, Time, isize)> {
        let past = now.saturating_sub(1);
        let closed = self.closed.values().flatten().map(|(f, d)| (f.clone(), past, *d));
        let open = self.open.iter().flat_map(|(t, facts)| facts.iter().map(|(f, d)| (f.clone(), *t, *d)));
        let mut facts: Vec<_> = closed.chain(open).collect();
        facts.sort();
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tally;

    #[test]
    fn a_fact_and_its_later_retraction_cancel_once_both_are_closed() {
        let mut l = Ledger::default();
        let tally = Fact::Tally(0, Tally::Admitted);
        l.add(tally.clone(), 10, 1);
        l.add(tally.clone(), 70, -1);
        l.add(Fact::Cancelled(3), 10, 1);
        l.close_before(11);
        let expected = vec![(Fact::Cancelled(3), 10, 1), (tally.clone(), 10, 1), (tally.clone(), 70, -1)];
        assert_eq!(l.facts(11), expected, "the retraction keeps its time until it closes");
        l.close_before(71);
        assert_eq!(l.facts(71), vec![(Fact::Cancelled(3), 70, 1)], "the tally and its retraction are gone");
    }

    #[test]
    fn a_jobs_facts_are_found_closed_and_open() {
        let mut l = Ledger::default();
        l.add(Fact::Task((4, 0), crate::model::Budget { retries: 1, losses: 1 }), 5, 1);
        l.add(Fact::Backoff((4, 0)), 5, 1);
        l.add(Fact::Backoff((4, 0)), 90, -1);
        l.add(Fact::Cancelled(5), 5, 1);
        l.add(Fact::Beat(1, 5, 2), 5, 1);
        l.close_before(6);
        let mut of_4 = l.of_job(4);
        of_4.sort();
        assert_eq!(
            of_4,
            vec![
                (Fact::Task((4, 0), crate::model::Budget { retries: 1, losses: 1 }), None, 1),
                (Fact::Backoff((4, 0)), None, 1),
                (Fact::Backoff((4, 0)), Some(90), -1),
            ]
        );
        assert_eq!(l.of_job(5), vec![(Fact::Cancelled(5), None, 1)]);
        for (fact, t, diff) in l.of_job(4) {
            l.add(fact, t.unwrap_or(6), -diff);
        }
        l.close_before(7);
        assert!(l.of_job(4).is_empty(), "retracted");
        assert_eq!(l.facts(7).len(), 2, "the other job's and the worker's facts stay");
    }
}
