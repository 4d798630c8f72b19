//! What happened to jobs from outside their tasks: cancelled (and why), archived (and why),
//! refused by a `job_refused` read back in replay, and deadlines (`timeout_s`) with the jobs whose
//! deadline has passed.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Job, Time};

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct JobControls {
    /// Cancelled jobs: the reason, and when (which decides how an attempt still open at its
    /// deadline ends: see `apply::fire_timeout`).
    cancelled: BTreeMap<Job, (String, Time)>,
    archived: BTreeMap<Job, String>,
    refused: BTreeSet<Job>,
    /// Jobs with a `timeout_s` by deadline, not yet found expired.
    deadlines: BTreeMap<Time, Vec<Job>>,
    expired: BTreeSet<Job>,
    /// Expired while live, not yet revoked.
    to_revoke: Vec<Job>,
}

impl JobControls {
    /// Cancel `job` with `reason` at `at`; false if it already was (the first reason stays).
    pub fn cancel(&mut self, job: Job, reason: &str, at: Time) -> bool {
        if self.cancelled.contains_key(&job) {
            return false;
        }
        self.cancelled.insert(job, (reason.to_string(), at));
        true
    }

    /// When `job` was cancelled, if it was.
    pub fn cancelled_at(&self, job: Job) -> Option<Time> {
        self.cancelled.get(&job).map(|(_, at)| *at)
    }

    pub fn is_cancelled(&self, job: Job) -> bool {
        self.cancelled.contains_key(&job)
    }

    /// The reason `job`'s cancel gave, if it was cancelled.
    pub fn cancel_reason(&self, job: Job) -> Option<&str> {
        self.cancelled.get(&job).map(|(why, _)| why.as_str())
    }

    /// Archive `job` with `why`; false if it already was.
    pub fn archive(&mut self, job: Job, why: String) -> bool {
        if self.archived.contains_key(&job) {
            return false;
        }
        self.archived.insert(job, why);
        true
    }

    /// Why `job` was archived, if it was: its state reads `archived` from then on.
    pub fn archived(&self, job: Job) -> Option<&str> {
        self.archived.get(&job).map(String::as_str)
    }

    /// A `job_refused` withdrew `job` (admitted by a replay before the refusal was read); false
    /// if it already had.
    pub fn refuse(&mut self, job: Job) -> bool {
        self.refused.insert(job)
    }

    pub fn is_refused(&self, job: Job) -> bool {
        self.refused.contains(&job)
    }

    /// `job` must finish by `at`.
    pub fn set_deadline(&mut self, job: Job, at: Time) {
        self.deadlines.entry(at).or_default().push(job);
    }

    /// Jobs whose deadline is at or before `now` and not found before, with their deadline (in
    /// deadline order). `live`: they are also kept for [`JobControls::take_to_revoke`].
    pub fn due(&mut self, now: Time, live: bool) -> Vec<(Time, Job)> {
        let later = self.deadlines.split_off(&(now + 1));
        let due = std::mem::replace(&mut self.deadlines, later);
        let mut expired = Vec::new();
        for (deadline, jobs) in due {
            for job in jobs {
                if self.expired.insert(job) {
                    expired.push((deadline, job));
                    if live {
                        self.to_revoke.push(job);
                    }
                }
            }
        }
        expired
    }

    /// Finished `job` leaves the state; `deadline`: the one it was given, if any. Its archive
    /// stays (a retired job reads archived as any other).
    pub fn forget(&mut self, job: Job, deadline: Option<Time>) {
        self.cancelled.remove(&job);
        self.refused.remove(&job);
        self.expired.remove(&job);
        if let Some(at) = deadline
            && let Some(jobs) = self.deadlines.get_mut(&at)
        {
            jobs.retain(|j| *j != job);
            if jobs.is_empty() {
                self.deadlines.remove(&at);
            }
        }
    }

    pub fn is_expired(&self, job: Job) -> bool {
        self.expired.contains(&job)
    }

    /// Jobs that expired while live since the last call: their open attempts are to be stopped.
    pub fn take_to_revoke(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.to_revoke)
    }
}

#[cfg(test)]
mod tests {
    use super::JobControls;

    #[test]
    fn the_first_cancel_reason_stays() {
        let mut c = JobControls::default();
        assert!(c.cancel(1, "user", 5));
        assert!(!c.cancel(1, "again", 6));
        assert_eq!(c.cancel_reason(1), Some("user"));
        assert!(!c.is_cancelled(2));
    }

    #[test]
    fn archiving_is_once() {
        let mut c = JobControls::default();
        assert!(c.archive(3, "archived (succeeded)".into()));
        assert!(!c.archive(3, "other".into()));
        assert_eq!(c.archived(3), Some("archived (succeeded)"));
    }

    #[test]
    fn deadlines_expire_once_in_order_and_only_live_ones_are_revoked() {
        let mut c = JobControls::default();
        c.set_deadline(1, 200);
        c.set_deadline(2, 100);
        c.set_deadline(3, 300);
        assert!(c.due(99, false).is_empty());
        assert_eq!(c.due(200, false), vec![(100, 2), (200, 1)]);
        assert!(c.take_to_revoke().is_empty(), "found in replay: nothing to revoke");
        assert!(c.is_expired(1) && c.is_expired(2) && !c.is_expired(3));
        assert_eq!(c.due(1_000, true), vec![(300, 3)]);
        assert_eq!(c.take_to_revoke(), vec![3]);
        assert!(c.take_to_revoke().is_empty());
        assert!(c.due(2_000, true).is_empty(), "once");
    }

    #[test]
    fn a_job_with_two_deadlines_expires_once() {
        let mut c = JobControls::default();
        c.set_deadline(1, 100);
        c.set_deadline(1, 150);
        assert_eq!(c.due(200, true), vec![(100, 1)]);
        assert_eq!(c.take_to_revoke(), vec![1]);
    }
}
