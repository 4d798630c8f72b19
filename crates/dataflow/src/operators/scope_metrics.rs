//! `scope_metrics(scope, gauge) = count`: per metrics scope (a tenant and a model), its runnable
//! tasks and running attempts now, and each tally of its sliding window (facts that retract
//! themselves a window after they happened). The driver writes the changes to `metrics`.

use super::C;
use crate::model::{Attempt, Gauge, Job, Scope, Tally, Tk, Worker};

pub fn scope_metrics<'s>(
    job_scope: C<'s, (Job, Scope)>,
    runnable: C<'s, (Tk, Attempt)>,
    active: C<'s, (Tk, (Attempt, Worker))>,
    tallies: C<'s, (Scope, Tally)>,
) -> C<'s, ((Scope, Gauge), isize)> {
    let runnable = runnable.map(|((job, _), _)| (job, Gauge::Runnable));
    let running = active.map(|((job, _), _)| (job, Gauge::Running));
    let tasks = runnable.concat(running).join(job_scope).map(|(_, (gauge, scope))| (scope, gauge));
    tallies.map(|(scope, tally)| (scope, Gauge::Tally(tally))).concat(tasks).count()
}
