//! `runnable_tasks(task) = next attempt` for tasks whose parents all succeeded and that are not
//! done, not held by an active attempt, not waiting out a backoff, not dead-lettered and whose job
//! is not stopped. The next attempt is one past the latest assigned (so every `Assign` is fenced
//! by a fresh `(task, attempt)`).

use super::C;
use crate::model::{Attempt, Budget, Job, Tk, Worker};

#[allow(clippy::too_many_arguments)]
pub fn runnable_tasks<'s>(
    tasks: C<'s, (Tk, Budget)>,
    blocked: C<'s, Tk>,
    done: C<'s, Tk>,
    active: C<'s, (Tk, (Attempt, Worker))>,
    backoff: C<'s, Tk>,
    dead: C<'s, Tk>,
    stopped: C<'s, Job>,
    current: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, Attempt)> {
    // Inputs may repeat a task (one row per unfinished parent, overlapping backoffs): one
    // distinct here makes the set every antijoin below needs.
    let excluded =
        blocked.concat(done).concat(active.map(|(tk, _)| tk)).concat(backoff).concat(dead).distinct();
    let candidates = tasks
        .map(|(tk, _)| (tk, ()))
        .antijoin(excluded)
        .map(|(tk, ())| (tk.0, tk))
        .antijoin(stopped)
        .map(|(_, tk)| (tk, 0u32));
    let latest = current.map(|(tk, (a, _))| (tk, a));
    candidates.clone().concat(latest.semijoin(candidates.map(|(tk, _)| tk))).reduce(|_tk, attempts, out| {
        let max = attempts.iter().filter(|(_, d)| *d > 0).map(|(a, _)| **a).max().unwrap_or(0);
        out.push((max + 1, 1));
    })
}
