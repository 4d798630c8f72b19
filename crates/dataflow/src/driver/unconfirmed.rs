//! Decisions written to the log and not yet read back. Until its `Assign` comes back, a task
//! stays out of placement (so it is never assigned twice); if it never came back — a broker that
//! acknowledged a record and lost it, as tansu 0.6 did after a crash — the task would wait
//! forever. So a decision not read back within the resend interval is written again, the same
//! envelope (same id, attempt, worker and deadline): the scheduler and executors ignore a
//! `(task, attempt)` they have seen, so a duplicate changes nothing.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use splai_events::Envelope;

use crate::model::{Attempt, Time, Tk};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Unconfirmed {
    /// By task: the decision's attempt, when it is due to be resent, and the envelope.
    sent: HashMap<Tk, (Attempt, Time, Envelope)>,
    /// Resend times, for finding the due ones without a scan.
    due: BTreeMap<Time, Vec<(Tk, Attempt)>>,
}

impl Unconfirmed {
    /// `decision` for `attempt` of `tk` was written at `now`; resend it at `now + after` unless it
    /// has come back by then.
    pub fn sent(&mut self, tk: Tk, attempt: Attempt, decision: Envelope, now: Time, after: u64) {
        let at = now + after;
        self.sent.insert(tk, (attempt, at, decision));
        self.due.entry(at).or_default().push((tk, attempt));
    }

    /// The decision for `attempt` of `tk` (or a later one) came back from the log.
    pub fn confirmed(&mut self, tk: Tk, attempt: Attempt) {
        if self.sent.get(&tk).is_some_and(|(a, _, _)| *a <= attempt) {
            self.sent.remove(&tk);
        }
    }

    /// Forget `tk`'s decision, whichever attempt (its job finished and left the state).
    pub fn drop_task(&mut self, tk: Tk) {
        self.sent.remove(&tk);
    }

    /// Decisions still not read back whose resend time has come, each rescheduled `after` later.
    pub fn due(&mut self, now: Time, after: u64) -> Vec<Envelope> {
        let later = self.due.split_off(&(now + 1));
        let due = std::mem::replace(&mut self.due, later);
        let mut again = Vec::new();
        for (tk, attempt) in due.into_values().flatten() {
            let Some((a, at, decision)) = self.sent.get_mut(&tk) else { continue };
            if *a != attempt || *at > now {
                continue; // confirmed and replaced by a later decision, or already rescheduled
            }
            *at = now + after;
            again.push(decision.clone());
            self.due.entry(now + after).or_default().push((tk, attempt));
        }
        again
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Unconfirmed;
    use splai_events::{Envelope, Event, WorkerLeaving};

    fn decision(id: &str) -> Envelope {
        let leaving = WorkerLeaving { worker_id: "w".into(), reason: String::new(), handed_back: vec![] };
        Envelope::new(id, 0, "t", Event::WorkerLeaving(leaving))
    }

    #[test]
    fn a_decision_not_read_back_is_resent_until_it_is() {
        let mut u = Unconfirmed::default();
        u.sent((0, 0), 1, decision("a"), 100, 50);
        u.sent((0, 1), 1, decision("b"), 100, 50);
        assert!(u.due(149, 50).is_empty(), "not due before the interval");
        u.confirmed((0, 1), 1);
        let again: Vec<String> = u.due(150, 50).into_iter().map(|e| e.id).collect();
        assert_eq!(again, vec!["a"], "only the one that did not come back");
        assert!(u.due(199, 50).is_empty());
        assert_eq!(u.due(200, 50).len(), 1, "and again, every interval");
        u.confirmed((0, 0), 1);
        assert!(u.due(10_000, 50).is_empty());
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn a_stale_echo_does_not_confirm_a_newer_decision() {
        let mut u = Unconfirmed::default();
        u.sent((0, 0), 2, decision("a2"), 0, 10);
        u.confirmed((0, 0), 1);
        assert_eq!(u.due(10, 10).len(), 1);
    }

    #[test]
    fn a_dropped_task_s_decision_is_not_resent() {
        let mut u = Unconfirmed::default();
        u.sent((0, 0), 1, decision("a"), 0, 10);
        u.sent((0, 1), 1, decision("b"), 0, 10);
        u.drop_task((0, 0));
        let again: Vec<String> = u.due(10, 10).into_iter().map(|e| e.id).collect();
        assert_eq!(again, vec!["b"]);
    }
}
