//! `stopped_jobs = jobs cancelled by the user, failed by a dead-lettered task, or past their
//! deadline`: nothing more of them is scheduled.

use super::C;
use crate::model::{Job, Tk};

pub fn stopped_jobs<'s>(cancelled: C<'s, Job>, dead: C<'s, Tk>, expired: C<'s, Job>) -> C<'s, Job> {
    cancelled.concat(dead.map(|(job, _)| job)).concat(expired).distinct()
}
