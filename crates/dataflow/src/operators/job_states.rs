//! `job_states(job)`: Failed if a task is dead-lettered; else Succeeded when every task succeeded
//! (a cancel that comes after the work is done changes nothing, so a finished job's state is
//! final); else Cancelled if the user cancelled it; else Failed if its deadline passed
//! (`deadline_exceeded`); else Running once any task got past Runnable; else Queued.

use super::C;
use crate::model::{Attempt, Job, JobStatus, TaskStatus, Tk};

/// What is known of a job besides its tasks' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
enum Mark {
    Task(TaskStatus),
    Cancelled,
    Expired,
}

pub fn job_states<'s>(
    task_states: C<'s, (Tk, (TaskStatus, Attempt))>,
    cancelled: C<'s, Job>,
    expired: C<'s, Job>,
) -> C<'s, (Job, JobStatus)> {
    let per_task = task_states.map(|((job, _), (s, _))| (job, Mark::Task(s)));
    // Repeats need no `distinct`: the reduce asks only whether a mark is present.
    let cancel = cancelled.map(|job| (job, Mark::Cancelled));
    let expire = expired.map(|job| (job, Mark::Expired));
    per_task.concat(cancel).concat(expire).reduce(|_job, facts, out| {
        use TaskStatus::*;
        let live = || facts.iter().filter(|(_, d)| *d > 0).map(|(v, _)| **v);
        let tasks = || live().filter_map(|m| if let Mark::Task(s) = m { Some(s) } else { None });
        let status = if tasks().any(|s| s == DeadLettered) {
            JobStatus::Failed
        } else if tasks().next().is_some() && tasks().all(|s| s == Succeeded) {
            JobStatus::Succeeded
        } else if live().any(|m| m == Mark::Cancelled) {
            JobStatus::Cancelled
        } else if live().any(|m| m == Mark::Expired) {
            JobStatus::Failed
        } else if tasks().any(|s| matches!(s, Assigned | Running | Succeeded | Failed)) {
            JobStatus::Running
        } else {
            JobStatus::Queued
        };
        out.push((status, 1));
    })
}
