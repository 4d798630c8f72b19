//! `orphaned_attempts = open attempts on workers that are not live`. They are retried elsewhere
//! (and count against the task's retries); if the worker comes back before that, the attempt is
//! simply open again.

use super::C;
use crate::model::{Attempt, Tk, Worker};

pub fn orphaned_attempts<'s>(
    open: C<'s, (Tk, (Attempt, Worker))>,
    live: C<'s, (Worker, u32)>,
) -> C<'s, (Tk, (Attempt, Worker))> {
    open.map(|(tk, (a, w))| (w, (tk, a))).antijoin(live.map(|(w, _)| w)).map(|(w, (tk, a))| (tk, (a, w)))
}
