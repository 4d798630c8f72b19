//! `current_attempts(task) = (attempt, worker)` of the task's latest assignment. Older attempts are
//! stale: the scheduler ignores their events and executors are told to drop them.

use super::C;
use crate::model::{Attempt, Tk, Worker};

pub fn current_attempts<'s>(assigned: C<'s, (Tk, (Attempt, Worker))>) -> C<'s, (Tk, (Attempt, Worker))> {
    assigned.reduce(|_tk, attempts, out| {
        // Values are sorted: the last positive one is the latest attempt.
        if let Some((latest, _)) = attempts.iter().rev().find(|(_, diff)| *diff > 0) {
            out.push((**latest, 1));
        }
    })
}
