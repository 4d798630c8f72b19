//! Finished jobs leave the state, so what the scheduler holds — and what a snapshot writes and a
//! restart reads — grows with the jobs in flight, not with history (issue 21's flat recovery).
//!
//! A job retires once it succeeded or was cancelled, has no attempt that may still report (one
//! open before its deadline: a revoked attempt may still report), and the scheduler is live (its final states are written: a replay keeps every
//! job until go-live writes them, then retires the finished). Its dataflow facts are retracted
//! and every part forgets it; the registry keeps its number, its id (a job id is used once) and
//! its final state. Failed jobs stay: their dead letters may be requeued.
//!
//! Both states are final: a cancel of a job whose every task succeeded changes nothing
//! (`job_status`), and a cancelled job with nothing open has no attempt left to report. So when a
//! job retires cannot change what any replay of the log reaches.

use std::collections::BTreeSet;

use splai_events::{Envelope, Event};

use super::{Scheduler, emit};
use crate::model::{Job, JobStatus};

/// Finished jobs waiting to retire (their open attempts have not ended yet).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Retiring {
    jobs: BTreeSet<Job>,
}

/// Whether a job in `status` leaves the state once nothing of it is open.
pub(super) fn retires(status: JobStatus) -> bool {
    matches!(status, JobStatus::Succeeded | JobStatus::Cancelled)
}

impl Retiring {
    pub fn finished(&mut self, job: Job) {
        self.jobs.insert(job);
    }
}

impl Scheduler {
    /// Retire the finished jobs with nothing open (live, with a dataflow that keeps its inputs).
    pub(super) fn retire_finished(&mut self) {
        if !self.mode.live || !self.engine.keeps_inputs() || self.retiring.jobs.is_empty() {
            return;
        }
        let candidates = std::mem::take(&mut self.retiring.jobs);
        for job in candidates {
            let finished = self.reg.is_held(job)
                && !self.controls.is_refused(job)
                && self.view.job(job).is_some_and(retires);
            if !finished {
                continue;
            }
            if !self.attempts.may_report(job) {
                self.retire(job);
            } else {
                self.retiring.jobs.insert(job);
            }
        }
    }

    /// At go-live: every held job that finished while replaying is a candidate.
    pub(super) fn find_finished(&mut self) {
        let finished: Vec<Job> =
            self.reg.held_jobs().map(|(j, _)| j).filter(|j| self.view.job(*j).is_some_and(retires)).collect();
        self.retiring.jobs.extend(finished);
    }

    fn retire(&mut self, job: Job) {
        let Some(status) = self.view.job(job) else { return };
        let info = self.reg.job(job);
        let tasks = info.dag.tasks.len() as u32;
        let deadline = info.timeout_s.map(|t| info.admitted_at + u64::from(t) * 1000);
        self.engine.retire(job);
        self.view.forget_job(job, tasks);
        self.attempts.forget_job(job, tasks);
        self.pending.forget_job(job, tasks);
        self.waiting.forget_job(job, tasks);
        for t in 0..tasks {
            self.ready.remove((job, t));
        }
        self.controls.forget(job, deadline);
        self.admission.forget(job);
        self.metrics.leave(job);
        self.reg.retire(job, status);
    }
}

/// A record about a retired job of its tenant: its job ended as it ended. A cancel or requeue
/// changes nothing (nothing is running, nothing was dead-lettered), a late report was fenced
/// anyway; an archive is recorded and told, as for any finished job.
pub(super) fn apply(s: &mut Scheduler, e: &Envelope, job: Job, status: JobStatus, out: &mut Vec<Envelope>) {
    match &e.event {
        Event::ArchiveJob(a) => {
            let why = format!("archived ({})", format!("{status:?}").to_lowercase());
            if s.controls.archive(job, why.clone()) && s.mode.live {
                out.push(emit::archived(s, &e.tenant, &a.job_id, why, None));
            }
        }
        Event::RequeueDeadLetter(r) if s.controls.archived(job).is_some() => {
            super::apply::refuse(s, e, format!("requeue_dead_letter: job `{}` is archived", r.job_id), out);
        }
        _ => {}
    }
}

/// The job a record names, for the records that act on one job (a job request is not one: its id
/// is checked on its own).
pub(super) fn named_job(e: &Envelope) -> Option<&str> {
    use splai_events::{
        ArchiveJob, Assign, AttemptFailed, AttemptStarted, AttemptSucceeded, CancelJob, JobAccepted,
        JobRefused, RequeueDeadLetter, Revoke, TaskUnschedulable,
    };
    match &e.event {
        Event::CancelJob(CancelJob { job_id, .. })
        | Event::ArchiveJob(ArchiveJob { job_id, .. })
        | Event::RequeueDeadLetter(RequeueDeadLetter { job_id, .. })
        | Event::JobAccepted(JobAccepted { job_id })
        | Event::JobRefused(JobRefused { job_id, .. }) => Some(job_id),
        Event::Assign(Assign { attempt, .. })
        | Event::TaskUnschedulable(TaskUnschedulable { attempt, .. })
        | Event::AttemptStarted(AttemptStarted { attempt, .. })
        | Event::AttemptSucceeded(AttemptSucceeded { attempt, .. })
        | Event::AttemptFailed(AttemptFailed { attempt, .. })
        | Event::Revoke(Revoke { attempt, .. }) => Some(&attempt.job_id),
        _ => None,
    }
}
