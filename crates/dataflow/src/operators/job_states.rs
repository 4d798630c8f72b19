//! `job_states(job)`: Failed if a task is dead-lettered; else Cancelled if the user cancelled it;
//! else Succeeded when every task succeeded; else Running once any task got past Runnable;
//! else Queued.

use super::C;
use crate::model::{Attempt, Job, JobStatus, TaskStatus, Tk};

pub fn job_states<'s>(
    task_states: C<'s, (Tk, (TaskStatus, Attempt))>,
    cancelled: C<'s, Job>,
) -> C<'s, (Job, JobStatus)> {
    let per_task = task_states.map(|((job, _), (s, _))| (job, Some(s)));
    let cancel = cancelled.distinct().map(|job| (job, None));
    per_task.concat(cancel).reduce(|_job, facts, out| {
        use TaskStatus::*;
        let live = || facts.iter().filter(|(_, d)| *d > 0).map(|(v, _)| **v);
        let status = if live().any(|s| s == Some(DeadLettered)) {
            JobStatus::Failed
        } else if live().any(|s| s.is_none()) {
            JobStatus::Cancelled
        } else if live().all(|s| s == Some(Succeeded)) {
            JobStatus::Succeeded
        } else if live().any(|s| matches!(s, Some(Assigned | Running | Succeeded | Failed))) {
            JobStatus::Running
        } else {
            JobStatus::Queued
        };
        out.push((status, 1));
    })
}
