//! The scheduler's own decisions on their way: applied to its state as they are made (the log's
//! copy, read back, changes nothing), they are not yet in the dataflow's outputs until the next
//! step — meanwhile the task stays out of placement and its slots stay reserved on the worker —
//! and a decision is written again if it does not come back from the log in time
//! ([`Unconfirmed`]).

use rustc_hash::FxHashMap as HashMap;
use splai_events::Envelope;

use super::unconfirmed::Unconfirmed;
use crate::model::{Attempt, Time, Tk, Worker};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    /// Decided since the last step: not yet in the dataflow's outputs.
    decided: HashMap<Tk, (Attempt, Worker)>,
    unconfirmed: Unconfirmed,
}

impl Pending {
    /// `decision` (attempt `attempt` of `tk` on `worker`) was written at `now`; written again
    /// every `resend_after` ms until it comes back.
    pub fn decided(
        &mut self,
        tk: Tk,
        attempt: Attempt,
        worker: Worker,
        decision: Envelope,
        now: Time,
        resend_after: u64,
    ) {
        self.decided.insert(tk, (attempt, worker));
        self.unconfirmed.sent(tk, attempt, decision, now, resend_after);
    }

    /// An assignment of `tk` for `attempt` was read from the log: a decision for that attempt or
    /// an earlier one is confirmed.
    pub fn read_back(&mut self, tk: Tk, attempt: Attempt) {
        self.unconfirmed.confirmed(tk, attempt);
    }

    /// The dataflow stepped: every decision made before is in its outputs now. Returns them,
    /// by task: (attempt, worker).
    pub fn stepped(&mut self) -> HashMap<Tk, (Attempt, Worker)> {
        std::mem::take(&mut self.decided)
    }

    /// No decision of `job`'s `tasks` tasks is written again: the job was cancelled or ran out of
    /// time. Its open attempts are revoked; one that already ended (its worker left) before its
    /// decision was read back must not reach an executor either. Its attempt is then missing
    /// from the log, as a withdrawn open attempt's is: the job makes no attempt after it, so
    /// no later attempt number or retry count depends on it.
    pub fn withdraw_job(&mut self, job: crate::model::Job, tasks: u32) {
        for t in 0..tasks {
            self.unconfirmed.drop_task((job, t));
        }
    }

    /// Finished `job`'s `tasks` tasks: no decision of theirs is written again.
    pub fn forget_job(&mut self, job: crate::model::Job, tasks: u32) {
        for t in 0..tasks {
            self.decided.remove(&(job, t));
            self.unconfirmed.drop_task((job, t));
        }
    }

    pub fn contains(&self, tk: Tk) -> bool {
        self.decided.contains_key(&tk)
    }

    /// Pending decisions: (task, worker).
    pub fn iter(&self) -> impl Iterator<Item = (Tk, Worker)> + '_ {
        self.decided.iter().map(|(tk, (_, w))| (*tk, *w))
    }

    /// Decisions not read back whose resend time has come.
    pub fn due(&mut self, now: Time, resend_after: u64) -> Vec<Envelope> {
        self.unconfirmed.due(now, resend_after)
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;
    use splai_events::{Envelope, Event, WorkerLeaving};

    fn decision(id: &str) -> Envelope {
        let leaving = WorkerLeaving { worker_id: "w".into(), reason: String::new(), handed_back: vec![] };
        Envelope::new(id, 0, "t", Event::WorkerLeaving(leaving))
    }

    #[test]
    fn a_decision_is_pending_until_the_next_step_and_resent_until_read_back() {
        let mut p = Pending::default();
        p.decided((0, 0), 1, 7, decision("a"), 0, 100);
        assert!(p.contains((0, 0)));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![((0, 0), 7)]);
        assert_eq!(p.stepped().get(&(0, 0)), Some(&(1, 7)));
        assert!(!p.contains((0, 0)), "in the dataflow's outputs after the step");
        assert_eq!(p.iter().count(), 0, "its worker's slot is counted by the dataflow now");
        assert_eq!(p.due(100, 100).len(), 1, "not read back yet");
        p.read_back((0, 0), 1);
        assert!(p.due(1_000, 100).is_empty());
    }

    #[test]
    fn reading_back_an_older_attempt_keeps_resending_the_newer() {
        let mut p = Pending::default();
        p.decided((0, 0), 2, 7, decision("a2"), 0, 100);
        p.read_back((0, 0), 1);
        assert_eq!(p.due(100, 100).len(), 1, "attempt 2's decision has not come back");
    }

    #[test]
    fn a_withdrawn_job_s_decisions_are_not_resent_whichever_attempt() {
        let mut p = Pending::default();
        p.decided((0, 0), 1, 7, decision("a"), 0, 100);
        p.decided((0, 1), 3, 7, decision("b"), 0, 100);
        p.decided((1, 0), 1, 7, decision("c"), 0, 100);
        p.withdraw_job(0, 2);
        let again: Vec<String> = p.due(1_000, 100).into_iter().map(|e| e.id).collect();
        assert_eq!(again, vec!["c"], "another job's decision stays");
    }
}
