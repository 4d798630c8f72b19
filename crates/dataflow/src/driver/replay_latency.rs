//! Replay only: the runnable → assigned latency of recorded decisions, from the times the
//! dataflow saw each (task, attempt) become runnable and the times the decisions were read.

use rustc_hash::FxHashMap as HashMap;

use super::Stats;
use crate::model::{Attempt, Time, Tk};

#[derive(Debug, Default)]
pub struct ReplayLatency {
    /// Decisions read in this step: (task, attempt, when).
    decided: Vec<(Tk, Attempt, Time)>,
    runnable_since: HashMap<(Tk, Attempt), Time>,
}

impl ReplayLatency {
    /// A recorded decision for `attempt` of `tk` was read at `at`.
    pub fn decided(&mut self, tk: Tk, attempt: Attempt, at: Time) {
        self.decided.push((tk, attempt, at));
    }

    /// Close a step: `runnable_timed` are its timed runnable changes; each decision of the step
    /// counts as an assignment, with its latency when the task's runnable time is known.
    pub fn close_step(&mut self, runnable_timed: &[((Tk, Attempt), Time, isize)], stats: &mut Stats) {
        for ((tk, attempt), t, diff) in runnable_timed {
            if *diff > 0 {
                let e = self.runnable_since.entry((*tk, *attempt)).or_insert(*t);
                *e = (*e).max(*t);
            }
        }
        for (tk, attempt, at) in self.decided.drain(..) {
            stats.assignments += 1;
            if let Some(since) = self.runnable_since.remove(&(tk, attempt)) {
                stats.decision_latency_ms.push(at.saturating_sub(since));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayLatency;
    use crate::driver::Stats;

    #[test]
    fn latency_is_from_the_latest_runnable_time_to_the_decision() {
        let mut r = ReplayLatency::default();
        let mut stats = Stats::default();
        r.decided((0, 0), 1, 50);
        r.close_step(&[(((0, 0), 1), 10, 1), (((0, 0), 1), 30, 1)], &mut stats);
        assert_eq!(stats.assignments, 1);
        assert_eq!(stats.decision_latency_ms, vec![20]);
    }

    #[test]
    fn a_decision_without_a_known_runnable_time_counts_without_latency() {
        let mut r = ReplayLatency::default();
        let mut stats = Stats::default();
        r.decided((0, 0), 2, 50);
        r.close_step(&[(((0, 0), 1), 10, 1)], &mut stats);
        assert_eq!((stats.assignments, stats.decision_latency_ms.len()), (1, 0));
    }
}
