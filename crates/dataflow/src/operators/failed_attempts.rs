//! `failed_attempts(task) = number of attempts that ended without success` (failed, timed out or
//! orphaned), plus whether one failure was fatal.

use super::C;
use crate::model::{Attempt, Outcome, Tk, Worker};

pub fn failed_attempts<'s>(
    ended: C<'s, (Tk, (Attempt, Outcome))>,
    orphaned: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, (u32, bool))> {
    let failed = ended
        .filter(|(_, (_, o))| *o != Outcome::Succeeded)
        .map(|(tk, (a, o))| (tk, (a, o == Outcome::Fatal)));
    let lost = orphaned.map(|(tk, (a, _))| (tk, (a, false)));
    failed.concat(lost).reduce(|_tk, attempts, out| {
        let count = attempts.iter().filter(|(_, d)| *d > 0).count() as u32;
        let fatal = attempts.iter().any(|((_, f), d)| *f && *d > 0);
        if count > 0 {
            out.push(((count, fatal), 1));
        }
    })
}
