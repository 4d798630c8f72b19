//! `failed_attempts(task) = attempts that ended without success, by cause`: the task's own
//! failures (failed, fatal, timed out) and the attempts lost to infrastructure (ended `Lost`, or
//! open on a worker that is not live). Each attempt counts once; one that both was lost and
//! reported its own failure counts as the task's failure.

use super::C;
use crate::model::{Attempt, Failures, Outcome, Tk, Worker};

pub fn failed_attempts<'s>(
    ended: C<'s, (Tk, (Attempt, Outcome))>,
    orphaned: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, Failures)> {
    let failed = ended.filter(|(_, (_, o))| *o != Outcome::Succeeded);
    let lost = orphaned.map(|(tk, (a, _))| (tk, (a, Outcome::Lost)));
    failed.concat(lost).reduce(|_tk, attempts, out| {
        let mut f = Failures::default();
        let mut last = None;
        // Values are sorted by (attempt, outcome) and `Lost` sorts last, so the first value of an
        // attempt says whether it is a task failure.
        for ((attempt, outcome), _) in attempts.iter().filter(|(_, d)| *d > 0) {
            f.fatal |= *outcome == Outcome::Fatal;
            if last.replace(*attempt) == Some(*attempt) {
                continue;
            }
            if outcome.is_task_failure() {
                f.failed += 1;
            } else {
                f.lost += 1;
            }
        }
        if f != Failures::default() {
            out.push((f, 1));
        }
    })
}
