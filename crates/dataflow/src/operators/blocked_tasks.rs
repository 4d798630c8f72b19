//! `blocked_tasks = tasks with at least one parent that has not succeeded`, once per such parent:
//! its one reader, `runnable_tasks`, takes the distinct of everything that excludes a task, so a
//! distinct here would only add an arrangement over every edge.

use super::C;
use crate::model::Tk;

pub fn blocked_tasks<'s>(edges: C<'s, (Tk, Tk)>, done: C<'s, Tk>) -> C<'s, Tk> {
    edges.antijoin(done).map(|(_parent, child)| child)
}
