//! `task_views(task) = (status, attempt, next)`: every fact about a task gathered under its key
//! and read in one `reduce`, from which both the runnable set and the task states follow.
//!
//! - `next` (runnable): the task exists, its parents all succeeded, it is not done, not held by an
//!   active attempt, not waiting out a backoff, not dead-lettered and its job is not stopped; the
//!   next attempt is one past the latest assigned (so every `Assign` is fenced by a fresh
//!   `(task, attempt)`).
//! - `status`: the highest-precedence fact (Succeeded > DeadLettered > Cancelled > Running >
//!   Assigned > Runnable > Failed > Pending), with the current attempt. Changes of the states are
//!   the `TaskStateChanged` events.
//!
//! One reduce instead of two rules of joins, antijoins and distincts: each operator costs every
//! scheduler step its share of timely's progress tracking, whether or not data reached it, and
//! those two rules were 150 of the dataflow's 390 operators.

use differential_dataflow::collection::concatenate;

use super::C;
use crate::model::{Attempt, Budget, Failures, Job, TaskStatus, Tk, Worker};

/// What a task's facts say, as far as its view needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
enum Mark {
    Task,
    /// One per parent that has not succeeded.
    Blocked,
    Done,
    Active(Attempt),
    Started(Attempt),
    Backoff,
    Failed,
    Dead,
    /// Its job is stopped (cancelled, expired, or another task dead-lettered).
    Stopped,
    Current(Attempt),
}

/// A task's view: its state and, when runnable, the attempt to assign next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct View {
    pub status: TaskStatus,
    pub attempt: Attempt,
    pub next: Option<Attempt>,
}

#[allow(clippy::too_many_arguments)]
pub fn task_views<'s>(
    tasks: C<'s, (Tk, Budget)>,
    blocked: C<'s, Tk>,
    done: C<'s, Tk>,
    active: C<'s, (Tk, (Attempt, Worker))>,
    started: C<'s, (Tk, Attempt)>,
    backoff: C<'s, Tk>,
    failures: C<'s, (Tk, Failures)>,
    dead: C<'s, Tk>,
    stopped: C<'s, Job>,
    current: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, View)> {
    let scope = tasks.scope();
    let stopped_tasks =
        tasks.clone().map(|(tk, _)| (tk.0, tk)).semijoin(stopped).map(|(_, tk)| (tk, Mark::Stopped));
    let marks = concatenate(
        scope,
        [
            tasks.map(|(tk, _)| (tk, Mark::Task)),
            blocked.map(|tk| (tk, Mark::Blocked)),
            done.map(|tk| (tk, Mark::Done)),
            active.map(|(tk, (a, _))| (tk, Mark::Active(a))),
            started.map(|(tk, a)| (tk, Mark::Started(a))),
            backoff.map(|tk| (tk, Mark::Backoff)),
            failures.map(|(tk, _)| (tk, Mark::Failed)),
            dead.map(|tk| (tk, Mark::Dead)),
            stopped_tasks,
            current.map(|(tk, (a, _))| (tk, Mark::Current(a))),
        ],
    );
    marks.reduce(|_tk, marks, out| {
        if let Some(view) = view(marks.iter().filter(|(_, d)| *d > 0).map(|(m, _)| **m)) {
            out.push((view, 1));
        }
    })
}

/// The view of a task whose present facts are `marks` (in order, each once); `None` when none of
/// them makes it a task with a state (a backoff or a stopped job alone does not).
fn view(marks: impl Iterator<Item = Mark> + Clone) -> Option<View> {
    use TaskStatus::*;
    let has = |m: Mark| marks.clone().any(|x| x == m);
    let task = has(Mark::Task);
    let attempt = marks.clone().filter_map(|m| if let Mark::Current(a) = m { Some(a) } else { None }).max();
    let active = || marks.clone().filter_map(|m| if let Mark::Active(a) = m { Some(a) } else { None });
    let started = |a: Attempt| has(Mark::Started(a));
    let (done, dead, failed, stopped) =
        (has(Mark::Done), has(Mark::Dead), has(Mark::Failed), has(Mark::Stopped));
    let held = active().next().is_some();
    let runnable = task && !held && !done && !dead && !stopped && !has(Mark::Blocked) && !has(Mark::Backoff);
    let stated = task || held || done || failed || dead || attempt.is_some();
    if !stated {
        return None;
    }
    let status = if done {
        Succeeded
    } else if dead {
        DeadLettered
    } else if task && stopped {
        Cancelled
    } else if active().any(started) {
        Running
    } else if held {
        Assigned
    } else if runnable {
        Runnable
    } else if failed {
        Failed
    } else {
        Pending
    };
    let attempt = attempt.unwrap_or(0);
    Some(View { status, attempt, next: runnable.then_some(attempt + 1) })
}

/// The runnable tasks with the attempt to assign next.
pub fn runnable_of<'s>(views: C<'s, (Tk, View)>) -> C<'s, (Tk, Attempt)> {
    views.flat_map(|(tk, v)| v.next.map(|next| (tk, next)))
}

/// Each task's state and current attempt.
pub fn states_of<'s>(views: C<'s, (Tk, View)>) -> C<'s, (Tk, (TaskStatus, Attempt))> {
    views.map(|(tk, v)| (tk, (v.status, v.attempt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(marks: &[Mark]) -> Option<View> {
        let mut marks = marks.to_vec();
        marks.sort();
        view(marks.into_iter())
    }

    #[test]
    fn a_task_alone_is_runnable_with_its_first_attempt() {
        let v = of(&[Mark::Task]).unwrap();
        assert_eq!((v.status, v.attempt, v.next), (TaskStatus::Runnable, 0, Some(1)));
    }

    #[test]
    fn a_blocked_or_backing_off_task_waits_pending() {
        for hold in [Mark::Blocked, Mark::Backoff] {
            let v = of(&[Mark::Task, hold]).unwrap();
            assert_eq!((v.status, v.next), (TaskStatus::Pending, None), "{hold:?}");
        }
    }

    #[test]
    fn a_failed_task_retries_with_the_next_attempt() {
        let v = of(&[Mark::Task, Mark::Failed, Mark::Current(2)]).unwrap();
        assert_eq!((v.status, v.attempt, v.next), (TaskStatus::Runnable, 2, Some(3)));
        let v = of(&[Mark::Task, Mark::Failed, Mark::Backoff, Mark::Current(2)]).unwrap();
        assert_eq!((v.status, v.next), (TaskStatus::Failed, None));
    }

    #[test]
    fn an_active_attempt_is_assigned_then_running() {
        let v = of(&[Mark::Task, Mark::Active(1), Mark::Current(1)]).unwrap();
        assert_eq!((v.status, v.next), (TaskStatus::Assigned, None));
        let v = of(&[Mark::Task, Mark::Active(1), Mark::Started(1), Mark::Current(1)]).unwrap();
        assert_eq!(v.status, TaskStatus::Running);
        // A start of another attempt does not make this one running.
        let v = of(&[Mark::Task, Mark::Active(2), Mark::Started(1), Mark::Current(2)]).unwrap();
        assert_eq!(v.status, TaskStatus::Assigned);
    }

    #[test]
    fn precedence_succeeded_dead_cancelled() {
        let all = [Mark::Task, Mark::Done, Mark::Dead, Mark::Stopped, Mark::Active(1), Mark::Current(1)];
        assert_eq!(of(&all).unwrap().status, TaskStatus::Succeeded);
        assert_eq!(
            of(&all[..1].iter().chain(&all[2..]).copied().collect::<Vec<_>>()).unwrap().status,
            TaskStatus::DeadLettered
        );
        let v = of(&[Mark::Task, Mark::Stopped, Mark::Active(1), Mark::Current(1)]).unwrap();
        assert_eq!((v.status, v.next), (TaskStatus::Cancelled, None));
    }

    #[test]
    fn facts_that_make_no_state_make_no_view() {
        assert_eq!(of(&[Mark::Backoff]), None);
        assert_eq!(of(&[Mark::Stopped, Mark::Blocked]), None);
        // An attempt of a task not (or no longer) known still has a state, as before.
        assert_eq!(of(&[Mark::Current(3)]).map(|v| (v.status, v.attempt)), Some((TaskStatus::Pending, 3)));
    }
}
