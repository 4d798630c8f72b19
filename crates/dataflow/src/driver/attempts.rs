//! Fencing and the attempt clock: which attempt of each task is current, when it times out, when
//! a failed attempt may be retried. Time-driven rules are data, not a sweeper: a timeout is fed
//! into the dataflow at its deadline (with the backoff that follows it), once the deadline has
//! passed with the attempt still open — at the first step after it, or before the attempt's state
//! changes, whichever comes first — so the dataflow sees it at the same time as if it had been
//! fed ahead, and the attempts that end in time (nearly all) never feed and withdraw one.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;

use splai_events::ArtifactRef;

use super::task_map::TaskMap;
use crate::model::{Attempt, Budget, Failures, Time, Tk, Worker};

#[derive(Debug, Clone, Copy)]
pub struct AttemptState {
    pub attempt: Attempt,
    pub worker: Worker,
    pub deadline: Time,
    pub ended: bool,
    /// Its timeout is in the dataflow.
    pub timeout_fed: bool,
}

#[derive(Debug, Default)]
pub struct Attempts {
    pub current: TaskMap<AttemptState>,
    pub artifacts: TaskMap<ArtifactRef>,
    pub errors: HashMap<Tk, String>,
    /// Attempts of each task that ended without success: (the task's own failure, else lost to
    /// infrastructure; fatal). Mirrors what the dataflow's `failed_attempts` counts.
    failed: HashMap<Tk, BTreeMap<Attempt, (bool, bool)>>,
    /// Open attempts on workers that are not live (the dataflow's `orphaned`): lost, unless their
    /// worker comes back first.
    pub orphaned: HashSet<(Tk, Attempt)>,
    /// Budget fed for each task (changes on requeue).
    pub budget: TaskMap<Budget>,
    /// Attempts already told to stop.
    pub revoked: HashSet<(Tk, Attempt)>,
    /// Attempts a worker still reported after they stopped being current, already revoked.
    pub stale_revoked: HashSet<splai_events::AttemptId>,
    /// Attempts by deadline whose timeout is not fed yet (see the module note).
    pub timeouts: BTreeMap<Time, Vec<(Tk, Attempt)>>,
    /// Attempts found open at their deadline, for the next live step to revoke.
    pub timed_out: Vec<(Tk, Attempt)>,
}

impl Attempts {
    /// `attempt` of `tk` ended without success: `own` if by the task's own failure (spends its
    /// retries), else lost to infrastructure (spends its loss budget). Once per attempt; a task
    /// failure outranks a loss.
    pub fn record_failure(&mut self, tk: Tk, attempt: Attempt, own: bool, fatal: bool) {
        let e = self.failed.entry(tk).or_default().entry(attempt).or_insert((own, fatal));
        e.0 |= own;
        e.1 |= fatal;
    }

    /// The failed attempts of `tk` by cause, as the dataflow counts them.
    pub fn failures(&self, tk: Tk) -> Failures {
        let mut f = Failures::default();
        let ended = self.failed.get(&tk);
        for (own, fatal) in ended.into_iter().flat_map(|m| m.values()) {
            if *own {
                f.failed += 1;
            } else {
                f.lost += 1;
            }
            f.fatal |= *fatal;
        }
        let orphan = self.current.get(&tk).map(|c| c.attempt).filter(|a| self.orphaned.contains(&(tk, *a)));
        if orphan.is_some_and(|a| ended.is_none_or(|m| !m.contains_key(&a))) {
            f.lost += 1;
        }
        f
    }
}

/// Exponential backoff, capped, with jitter in [50 %, 100 %] derived from a hash of the task and
/// attempt, so every replay computes the same delay.
pub fn backoff_ms(job: &str, task: &str, attempt: Attempt, base: u64, cap: u64) -> u64 {
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30)).min(cap);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job.bytes().chain([0]).chain(task.bytes()).chain([0]).chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let jitter = 500 + h % 501; // per mille
    (exp * jitter / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_is_capped_and_deterministic() {
        let a1 = backoff_ms("j", "t", 1, 1000, 60_000);
        let a3 = backoff_ms("j", "t", 3, 1000, 60_000);
        assert!((500..=1000).contains(&a1), "{a1}");
        assert!((2000..=4000).contains(&a3), "{a3}");
        assert!(backoff_ms("j", "t", 30, 1000, 60_000) <= 60_000);
        assert_eq!(a3, backoff_ms("j", "t", 3, 1000, 60_000));
        assert_ne!(backoff_ms("j", "t", 2, 1000, 60_000), backoff_ms("j", "u", 2, 1000, 60_000));
    }
}
