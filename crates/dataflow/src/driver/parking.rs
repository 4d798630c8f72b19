//! Events that arrived before what they depend on. The log's topics are read in parallel, so a
//! report can be read before its attempt's assignment, an assignment before its job's admission,
//! or (in a replay) an appended task's assignment before the success that appended it. Such an
//! event waits here under what it waits for and is applied right after that arrives.

use rustc_hash::FxHashMap as HashMap;
use splai_events::{AttemptId, Envelope};

use crate::model::Attempt;

/// At most this many events wait; past it an event is applied at once (it then changes nothing,
/// as an event about an unknown job or attempt does), so memory stays bounded.
pub const MAX_PARKED: usize = 100_000;

/// What a parked event waits for. Every key carries the tenant: another tenant's job of the same
/// id never releases it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Cause {
    /// The admission of the tenant's job.
    Job { tenant: String, job: String },
    /// A sub-DAG appending this task to the (admitted) job.
    Task { tenant: String, job: String, task: String },
    /// The assignment of this attempt.
    Attempt { tenant: String, job: String, task: String, attempt: Attempt },
}

impl Cause {
    pub fn job(tenant: &str, job: &str) -> Self {
        Cause::Job { tenant: tenant.into(), job: job.into() }
    }

    pub fn task(tenant: &str, job: &str, task: &str) -> Self {
        Cause::Task { tenant: tenant.into(), job: job.into(), task: task.into() }
    }

    pub fn attempt(tenant: &str, a: &AttemptId) -> Self {
        Cause::Attempt {
            tenant: tenant.into(),
            job: a.job_id.clone(),
            task: a.task_id.clone(),
            attempt: a.attempt,
        }
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Parking {
    waiting: HashMap<Cause, Vec<Envelope>>,
    count: usize,
    /// Released by a cause that arrived in the middle of applying another event: applied after it.
    released: Vec<Envelope>,
}

impl Parking {
    /// Park `e` until `cause` arrives. False when full: the caller applies it now.
    pub fn park(&mut self, cause: Cause, e: &Envelope) -> bool {
        if self.count >= MAX_PARKED {
            return false;
        }
        self.count += 1;
        self.waiting.entry(cause).or_default().push(e.clone());
        true
    }

    /// `cause` arrived: what waited for it is to be applied next ([`Parking::take_released`]).
    pub fn release(&mut self, cause: &Cause) {
        if self.count == 0 {
            return;
        }
        if let Some(events) = self.waiting.remove(cause) {
            self.count -= events.len();
            self.released.extend(events);
        }
    }

    /// The released events, in the order they were parked per cause.
    pub fn take_released(&mut self) -> Vec<Envelope> {
        std::mem::take(&mut self.released)
    }

    /// Events still waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::{Cause, Parking};
    use splai_events::{AttemptId, Envelope, Event, WorkerLeaving};

    fn event(id: &str) -> Envelope {
        let leaving = WorkerLeaving { worker_id: "w".into(), reason: String::new(), handed_back: vec![] };
        Envelope::new(id, 0, "t", Event::WorkerLeaving(leaving))
    }

    fn ids(v: Vec<Envelope>) -> Vec<String> {
        v.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn an_event_waits_until_its_cause_arrives_then_is_released_once() {
        let mut p = Parking::default();
        assert!(p.park(Cause::job("a", "j"), &event("1")));
        assert!(p.park(Cause::job("a", "j"), &event("2")));
        assert_eq!(p.len(), 2);
        assert!(p.take_released().is_empty(), "nothing released before its cause");
        p.release(&Cause::job("a", "j"));
        assert_eq!(ids(p.take_released()), vec!["1", "2"]);
        assert_eq!(p.len(), 0);
        p.release(&Cause::job("a", "j"));
        assert!(p.take_released().is_empty(), "released once");
    }

    #[test]
    fn another_tenants_job_of_the_same_id_releases_nothing() {
        let mut p = Parking::default();
        p.park(Cause::job("a", "j"), &event("1"));
        p.release(&Cause::job("b", "j"));
        assert!(p.take_released().is_empty());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn attempts_and_tasks_are_distinct_causes() {
        let mut p = Parking::default();
        let a2 = AttemptId { job_id: "j".into(), task_id: "t".into(), attempt: 2 };
        p.park(Cause::attempt("a", &a2), &event("report-2"));
        p.park(Cause::task("a", "j", "t"), &event("assign"));
        let a1 = AttemptId { attempt: 1, ..a2.clone() };
        p.release(&Cause::attempt("a", &a1));
        assert!(p.take_released().is_empty(), "attempt 1's assignment does not release attempt 2's report");
        p.release(&Cause::task("a", "j", "t"));
        assert_eq!(ids(p.take_released()), vec!["assign"]);
        p.release(&Cause::attempt("a", &a2));
        assert_eq!(ids(p.take_released()), vec!["report-2"]);
    }

    #[test]
    fn a_full_parking_refuses_so_the_caller_applies_now() {
        let mut p = Parking::default();
        for i in 0..super::MAX_PARKED {
            assert!(p.park(Cause::job("a", &i.to_string()), &event("e")));
        }
        assert!(!p.park(Cause::job("a", "one-more"), &event("e")));
        assert_eq!(p.len(), super::MAX_PARKED);
    }
}
