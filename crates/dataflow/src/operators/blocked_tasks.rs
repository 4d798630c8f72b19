//! `blocked_tasks = tasks with at least one parent that has not succeeded`.

use super::C;
use crate::model::Tk;

pub fn blocked_tasks<'s>(edges: C<'s, (Tk, Tk)>, done: C<'s, Tk>) -> C<'s, Tk> {
    edges.antijoin(done).map(|(_parent, child)| child).distinct()
}
