//! `dead_tasks = tasks whose failures exceed their retry budget, or whose failure was fatal`.

use super::C;
use crate::model::Tk;

pub fn dead_tasks<'s>(tasks: C<'s, (Tk, u32)>, failures: C<'s, (Tk, (u32, bool))>) -> C<'s, Tk> {
    tasks
        .join(failures)
        .filter(|(_, (max_retries, (count, fatal)))| *fatal || *count > *max_retries)
        .map(|(tk, _)| tk)
}
