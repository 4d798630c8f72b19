//! Fencing and the attempt clock: which attempt of each task is current, when it times out, when
//! a failed attempt may be retried. Time-driven rules are data, not a sweeper: a timeout is fed
//! into the dataflow at its deadline (with the backoff that follows it), once the deadline has
//! passed with the attempt still open — at the first step after it, or before the attempt's state
//! changes, whichever comes first — so the dataflow sees it at the same time as if it had been
//! fed ahead, and the attempts that end in time (nearly all) never feed and withdraw one.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};

use splai_events::ArtifactRef;

use super::task_map::TaskMap;
use crate::model::{Attempt, Budget, Failures, Time, Tk, Worker};

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AttemptState {
    pub attempt: Attempt,
    pub worker: Worker,
    pub deadline: Time,
    pub ended: bool,
    /// Its timeout is in the dataflow.
    pub timeout_fed: bool,
    /// When it was assigned (the scheduler's clock: its decision's time).
    pub assigned_at: Time,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Attempts {
    current: TaskMap<AttemptState>,
    artifacts: TaskMap<ArtifactRef>,
    errors: HashMap<Tk, String>,
    /// Attempts of each task that ended without success: (the task's own failure, else lost to
    /// infrastructure; fatal). Mirrors what the dataflow's `failed_attempts` counts.
    failed: HashMap<Tk, BTreeMap<Attempt, (bool, bool)>>,
    /// Open attempts on workers that are not live (the dataflow's `orphaned`): lost, unless their
    /// worker comes back first.
    orphaned: HashSet<(Tk, Attempt)>,
    /// Budget fed for each task (changes on requeue).
    budget: TaskMap<Budget>,
    /// Attempts already told to stop.
    revoked: HashSet<(Tk, Attempt)>,
    /// Attempts a worker still reported after they stopped being current, already revoked.
    stale_revoked: HashSet<splai_events::AttemptId>,
    /// Attempts by deadline whose timeout is not fed yet (see the module note).
    timeouts: BTreeMap<Time, Vec<(Tk, Attempt)>>,
    /// Attempts found open at their deadline, for the next live step to revoke.
    timed_out: Vec<(Tk, Attempt)>,
    /// Open attempts by how many heartbeats of their worker in a row left them out.
    missed: HashMap<(Tk, Attempt), u32>,
    /// Tasks with an open current attempt, by worker: every heartbeat looks its worker's up, so
    /// not a scan of every task ever assigned.
    open_by_worker: HashMap<Worker, BTreeSet<Tk>>,
}

impl Attempts {
    /// Forget finished `job`'s `tasks` tasks (none that may still report). Deadlines still queued for them find
    /// no current attempt when due and are skipped.
    pub fn forget_job(&mut self, job: crate::model::Job, tasks: u32) {
        for t in 0..tasks {
            let tk = (job, t);
            // One past its deadline may still be open on its worker.
            if let Some(open) = self.current.get(&tk).copied().filter(|c| !c.ended) {
                self.close(tk, open.worker);
            }
            let last = self.current.get(&tk).map_or(0, |c| c.attempt);
            for attempt in 1..=last {
                self.orphaned.remove(&(tk, attempt));
                self.revoked.remove(&(tk, attempt));
                self.missed.remove(&(tk, attempt));
            }
            self.errors.remove(&tk);
            self.failed.remove(&tk);
        }
        self.current.remove_job(job);
        self.artifacts.remove_job(job);
        self.budget.remove_job(job);
    }

    /// `tk`'s current attempt (the latest assigned).
    pub fn current(&self, tk: Tk) -> Option<AttemptState> {
        self.current.get(&tk).copied()
    }

    /// `attempt` of `tk` is current and has not ended.
    pub fn is_open(&self, tk: Tk, attempt: Attempt) -> bool {
        self.current(tk).is_some_and(|c| c.attempt == attempt && !c.ended)
    }

    /// `st` is `tk`'s current attempt from now on; its timeout is due at its deadline.
    pub fn assign(&mut self, tk: Tk, st: AttemptState) {
        if let Some(old) = self.current.insert(tk, st).filter(|old| !old.ended) {
            self.close(tk, old.worker);
        }
        self.open_by_worker.entry(st.worker).or_default().insert(tk);
        self.timeouts.entry(st.deadline).or_default().push((tk, st.attempt));
    }

    /// `tk`'s current attempt ended.
    pub fn end(&mut self, tk: Tk) {
        if let Some(cur) = self.current.get_mut(&tk) {
            cur.ended = true;
            let (worker, attempt, deadline) = (cur.worker, cur.attempt, cur.deadline);
            self.missed.remove(&(tk, attempt));
            self.close(tk, worker);
            // Its timeout can no longer fire: not kept until its deadline (a task timeout is
            // minutes, so at a high rate that would be most attempts of the last minutes).
            if let Some(due) = self.timeouts.get_mut(&deadline) {
                due.retain(|d| *d != (tk, attempt));
                if due.is_empty() {
                    self.timeouts.remove(&deadline);
                }
            }
        }
    }

    /// `tk` no longer has an open attempt on `worker`.
    fn close(&mut self, tk: Tk, worker: Worker) {
        if let Some(open) = self.open_by_worker.get_mut(&worker) {
            open.remove(&tk);
            if open.is_empty() {
                self.open_by_worker.remove(&worker);
            }
        }
    }

    /// A heartbeat of its worker named `attempt` of `tk` (`held`) or left it out; how many in a
    /// row have left it out.
    pub fn heartbeat_named(&mut self, tk: Tk, attempt: Attempt, held: bool) -> u32 {
        if held {
            self.missed.remove(&(tk, attempt));
            return 0;
        }
        let n = self.missed.entry((tk, attempt)).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// Note that the timeout of `attempt` of `tk` is fed; false when it already was.
    pub fn feed_timeout_once(&mut self, tk: Tk, attempt: Attempt) -> bool {
        match self.current.get_mut(&tk).filter(|c| c.attempt == attempt) {
            Some(cur) if cur.timeout_fed => false,
            Some(cur) => {
                cur.timeout_fed = true;
                true
            }
            None => true,
        }
    }

    /// Open attempts of `job`'s tasks.
    /// Whether an attempt of `job` may still report something that counts: open, and its
    /// deadline not passed (a report after it is fenced, live and in replay alike).
    pub fn may_report(&self, job: crate::model::Job) -> bool {
        self.current.of_job(job).any(|(_, a)| !a.ended && !a.timeout_fed)
    }

    pub fn open_of_job(&self, job: crate::model::Job) -> Vec<(Tk, Attempt)> {
        self.current.of_job(job).filter(|(_, a)| !a.ended).map(|(tk, a)| (tk, a.attempt)).collect()
    }

    /// Open attempts on worker `w`.
    pub fn open_on(&self, w: crate::model::Worker) -> Vec<(Tk, AttemptState)> {
        let open = self.open_by_worker.get(&w).into_iter().flatten();
        open.filter_map(|tk| self.current(*tk).map(|st| (*tk, st))).collect()
    }

    /// Attempts whose deadline is before `now` and whose timeout is not fed yet. One at `now`
    /// waits for a later time, so every event stamped with its deadline (a cancel, the attempt's
    /// own end) is applied first: live, where ticks of the clock feed timeouts between events,
    /// and in a replay, which ticks only at events, alike.
    pub fn due_timeouts(&mut self, now: Time) -> Vec<(Tk, Attempt)> {
        let later = self.timeouts.split_off(&now);
        std::mem::replace(&mut self.timeouts, later).into_values().flatten().collect()
    }

    /// `attempt` of `tk` was found open at its deadline: revoke it at the next live step.
    pub fn timed_out(&mut self, tk: Tk, attempt: Attempt) {
        self.timed_out.push((tk, attempt));
    }

    pub fn take_timed_out(&mut self) -> Vec<(Tk, Attempt)> {
        std::mem::take(&mut self.timed_out)
    }

    /// Why `tk`'s last attempt did not succeed.
    pub fn error(&self, tk: Tk) -> Option<&str> {
        self.errors.get(&tk).map(String::as_str)
    }

    pub fn set_error(&mut self, tk: Tk, why: String) {
        self.errors.insert(tk, why);
    }

    pub fn artifact(&self, tk: Tk) -> Option<&ArtifactRef> {
        self.artifacts.get(&tk)
    }

    pub fn set_artifact(&mut self, tk: Tk, artifact: ArtifactRef) {
        self.artifacts.insert(tk, artifact);
    }

    pub fn budget(&self, tk: Tk) -> Option<Budget> {
        self.budget.get(&tk).copied()
    }

    pub fn set_budget(&mut self, tk: Tk, budget: Budget) {
        self.budget.insert(tk, budget);
    }

    /// The dataflow says `attempt` of `tk` is (`true`) or is no longer orphaned.
    pub fn set_orphaned(&mut self, tk: Tk, attempt: Attempt, orphaned: bool) {
        if orphaned {
            self.orphaned.insert((tk, attempt));
        } else {
            self.orphaned.remove(&(tk, attempt));
        }
    }

    /// `attempt` of `tk` is told to stop now; false when it already was.
    pub fn first_revoke(&mut self, tk: Tk, attempt: Attempt) -> bool {
        self.revoked.insert((tk, attempt))
    }

    /// A stale attempt a worker reported is told to stop now; false when it already was.
    pub fn first_stale_revoke(&mut self, attempt: &splai_events::AttemptId) -> bool {
        self.stale_revoked.insert(attempt.clone())
    }

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
    use super::{AttemptState, Attempts, backoff_ms};

    fn state(attempt: u32, worker: u32, deadline: u64) -> AttemptState {
        AttemptState { attempt, worker, deadline, ended: false, timeout_fed: false, assigned_at: 0 }
    }

    #[test]
    fn an_assigned_attempt_is_open_until_it_ends_and_its_timeout_is_due_after_its_deadline() {
        let mut a = Attempts::default();
        a.assign((0, 0), state(1, 7, 100));
        assert!(a.is_open((0, 0), 1) && !a.is_open((0, 0), 2));
        assert_eq!(a.open_of_job(0), vec![((0, 0), 1)]);
        assert_eq!(a.open_on(7).len(), 1);
        assert!(a.due_timeouts(100).is_empty(), "not before every event at its deadline is in");
        assert_eq!(a.due_timeouts(101), vec![((0, 0), 1)]);
        assert!(a.due_timeouts(1_000).is_empty(), "due once");
        a.end((0, 0));
        assert!(!a.is_open((0, 0), 1));
        assert!(a.open_of_job(0).is_empty() && a.open_on(7).is_empty());
    }

    #[test]
    fn an_open_attempt_superseded_on_another_worker_is_open_only_there() {
        let mut a = Attempts::default();
        a.assign((0, 0), state(1, 7, 100));
        a.assign((0, 0), state(2, 8, 200));
        assert!(a.open_on(7).is_empty());
        assert_eq!(a.open_on(8).iter().map(|(tk, st)| (*tk, st.attempt)).collect::<Vec<_>>(), [((0, 0), 2)]);
    }

    #[test]
    fn a_timeout_is_fed_and_an_attempt_revoked_once() {
        let mut a = Attempts::default();
        a.assign((0, 0), state(2, 1, 50));
        assert!(a.feed_timeout_once((0, 0), 2));
        assert!(!a.feed_timeout_once((0, 0), 2));
        assert!(a.first_revoke((0, 0), 2));
        assert!(!a.first_revoke((0, 0), 2));
    }

    #[test]
    fn an_orphaned_open_attempt_counts_as_lost_until_its_worker_returns() {
        let mut a = Attempts::default();
        a.assign((0, 0), state(1, 3, 50));
        a.set_orphaned((0, 0), 1, true);
        assert_eq!(a.failures((0, 0)).lost, 1);
        a.set_orphaned((0, 0), 1, false);
        assert_eq!(a.failures((0, 0)).lost, 0);
        a.record_failure((0, 0), 1, true, false);
        let f = a.failures((0, 0));
        assert_eq!((f.failed, f.lost, f.fatal), (1, 0, false));
    }

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
