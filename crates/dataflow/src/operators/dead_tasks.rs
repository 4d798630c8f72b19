//! `dead_tasks = tasks whose failures exceed their budget`: more of their own failures than their
//! retries, more infrastructure losses than their loss budget, or one fatal failure.

use super::C;
use crate::model::{Budget, Failures, Tk};

pub fn dead_tasks<'s>(tasks: C<'s, (Tk, Budget)>, failures: C<'s, (Tk, Failures)>) -> C<'s, Tk> {
    tasks.join(failures).filter(|(_, (budget, failures))| failures.exhaust(*budget)).map(|(tk, _)| tk)
}
