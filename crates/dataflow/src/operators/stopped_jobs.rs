//! `stopped_jobs = jobs cancelled by the user or failed by a dead-lettered task`: nothing more of
//! them is scheduled.

use super::C;
use crate::model::{Job, Tk};

pub fn stopped_jobs<'s>(cancelled: C<'s, Job>, dead: C<'s, Tk>) -> C<'s, Job> {
    cancelled.concat(dead.map(|(job, _)| job)).distinct()
}
