//! `open_attempts = current attempts that have not ended` (no success, failure or timeout yet).
//!
//! One reduce per task over its current attempt and the attempts that ended, rather than an
//! antijoin against a `distinct` of the ends: a third of the operators, each of which costs
//! every scheduler step its share of progress tracking.

use super::C;
use crate::model::{Attempt, Outcome, Tk, Worker};

pub fn open_attempts<'s>(
    current: C<'s, (Tk, (Attempt, Worker))>,
    ended: C<'s, (Tk, (Attempt, Outcome))>,
) -> C<'s, (Tk, (Attempt, Worker))> {
    // `None`: the attempt ended; it sorts before the attempt's `Some(worker)`.
    let current = current.map(|(tk, (a, w))| (tk, (a, Some(w))));
    let ends = ended.map(|(tk, (a, _))| (tk, (a, None)));
    current.concat(ends).reduce(|_tk, facts, out| {
        let present = || facts.iter().filter(|(_, d)| *d > 0).map(|(f, _)| **f);
        for (a, w) in present() {
            if let Some(w) = w
                && !present().any(|(b, end)| b == a && end.is_none())
            {
                out.push(((a, w), 1));
            }
        }
    })
}
