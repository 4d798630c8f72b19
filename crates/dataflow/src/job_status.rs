//! `job_status(job)`: Failed if a task is dead-lettered; else Succeeded when every task succeeded
//! (a cancel that comes after the work is done changes nothing, so a finished job's state is
//! final); else Cancelled if the user cancelled it; else Failed if its deadline passed
//! (`deadline_exceeded`); else Running once any task got past Runnable; else Queued.
//!
//! Kept by the driver from the task states the dataflow outputs, not by the dataflow: a reduce
//! over them was the last stage of every step (the scheduler waited for it before deciding
//! anything) for a function of one count per task state, which a change updates in O(1).

use crate::model::{JobStatus, TaskStatus};

// One count per task state: `Succeeded` is the last of them.
const _: () = assert!(TaskStatus::Succeeded as usize == 7);

/// Task states (in [`TaskStatus`] order) of one job, counted, and what else is known of it.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobTally {
    counts: [u32; 8],
    cancelled: bool,
    expired: bool,
}

impl JobTally {
    /// One more task in `status`.
    pub fn add(&mut self, status: TaskStatus) {
        self.counts[status as usize] += 1;
    }

    /// One task fewer in `status` (it had it).
    pub fn remove(&mut self, status: TaskStatus) {
        let n = &mut self.counts[status as usize];
        debug_assert!(*n > 0, "removing a {status:?} the job did not count");
        *n = n.saturating_sub(1);
    }

    /// The user cancelled the job.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// The job's deadline passed.
    pub fn expire(&mut self) {
        self.expired = true;
    }

    fn count(&self, status: TaskStatus) -> u32 {
        self.counts[status as usize]
    }

    /// The job's state; `None` while nothing is known of it (no task state, no cancel, no expiry).
    pub fn status(&self) -> Option<JobStatus> {
        use TaskStatus::*;
        let tasks: u32 = self.counts.iter().sum();
        if tasks == 0 && !self.cancelled && !self.expired {
            return None;
        }
        Some(if self.count(DeadLettered) > 0 {
            JobStatus::Failed
        } else if tasks > 0 && self.count(Succeeded) == tasks {
            JobStatus::Succeeded
        } else if self.cancelled {
            JobStatus::Cancelled
        } else if self.expired {
            JobStatus::Failed
        } else if [Assigned, Running, Succeeded, Failed].into_iter().any(|s| self.count(s) > 0) {
            JobStatus::Running
        } else {
            JobStatus::Queued
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    fn of(states: &[TaskStatus]) -> JobTally {
        let mut t = JobTally::default();
        states.iter().for_each(|s| t.add(*s));
        t
    }

    #[test]
    fn nothing_known_is_no_state_and_a_mark_alone_is_one() {
        assert_eq!(JobTally::default().status(), None);
        let mut t = JobTally::default();
        t.cancel();
        assert_eq!(t.status(), Some(JobStatus::Cancelled));
        let mut t = JobTally::default();
        t.expire();
        assert_eq!(t.status(), Some(JobStatus::Failed));
    }

    #[test]
    fn queued_until_a_task_gets_past_runnable() {
        assert_eq!(of(&[Pending, Runnable]).status(), Some(JobStatus::Queued));
        for s in [Assigned, Running, Succeeded, Failed] {
            assert_eq!(of(&[Pending, s]).status(), Some(JobStatus::Running), "{s:?}");
        }
    }

    #[test]
    fn a_dead_letter_fails_and_all_succeeded_wins_over_a_late_cancel() {
        let mut t = of(&[Succeeded, DeadLettered]);
        t.cancel();
        assert_eq!(t.status(), Some(JobStatus::Failed));
        let mut t = of(&[Succeeded, Succeeded]);
        t.cancel();
        t.expire();
        assert_eq!(t.status(), Some(JobStatus::Succeeded));
        let mut t = of(&[Succeeded, Running]);
        t.expire();
        assert_eq!(t.status(), Some(JobStatus::Failed));
        t.cancel();
        assert_eq!(t.status(), Some(JobStatus::Cancelled), "a cancel comes before an expiry");
    }

    #[test]
    fn a_removed_state_no_longer_counts() {
        let mut t = of(&[Running]);
        t.remove(Running);
        t.add(Succeeded);
        assert_eq!(t.status(), Some(JobStatus::Succeeded));
        t.remove(Succeeded);
        assert_eq!(t.status(), None);
    }
}
