//! `task_states(task) = (status, attempt)`: the highest-precedence fact about the task
//! (Succeeded > DeadLettered > Cancelled > Running > Assigned > Runnable > Failed > Pending), with
//! its current attempt. Changes of this collection are the `TaskStateChanged` events.

use super::C;
use crate::model::{Attempt, Budget, Failures, Job, TaskStatus, Tk, Worker};

#[allow(clippy::too_many_arguments)]
pub fn task_states<'s>(
    tasks: C<'s, (Tk, Budget)>,
    runnable: C<'s, (Tk, Attempt)>,
    active: C<'s, (Tk, (Attempt, Worker))>,
    started: C<'s, (Tk, Attempt)>,
    done: C<'s, Tk>,
    failures: C<'s, (Tk, Failures)>,
    dead: C<'s, Tk>,
    stopped: C<'s, Job>,
    current: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, (TaskStatus, Attempt))> {
    use TaskStatus::*;
    let pending = tasks.clone().map(|(tk, _)| (tk, Pending));
    let runnable = runnable.map(|(tk, _)| (tk, Runnable));
    let running =
        active.clone().map(|(tk, (a, _))| ((tk, a), ())).semijoin(started).map(|((tk, _), ())| (tk, Running));
    let assigned = active.map(|(tk, _)| (tk, Assigned));
    let succeeded = done.map(|tk| (tk, Succeeded));
    let failed = failures.map(|(tk, _)| (tk, Failed));
    let dead_lettered = dead.map(|tk| (tk, DeadLettered));
    let cancelled = tasks.map(|(tk, _)| (tk.0, tk)).semijoin(stopped).map(|(_, tk)| (tk, Cancelled));
    let facts = pending
        .concat(runnable)
        .concat(running)
        .concat(assigned)
        .concat(succeeded)
        .concat(failed)
        .concat(dead_lettered)
        .concat(cancelled)
        .map(|(tk, s)| (tk, (s, 0u32)));
    let attempts = current.map(|(tk, (a, _))| (tk, (Pending, a)));
    // `Pending` sorts first, so attempt rows never win the status; they only carry the attempt.
    facts.concat(attempts).reduce(|_tk, facts, out| {
        let status = facts.iter().filter(|(_, d)| *d > 0).map(|((s, _), _)| *s).max().unwrap_or(Pending);
        let attempt = facts.iter().filter(|(_, d)| *d > 0).map(|((_, a), _)| *a).max().unwrap_or(0);
        out.push(((status, attempt), 1));
    })
}
