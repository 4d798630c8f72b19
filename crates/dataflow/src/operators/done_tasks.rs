//! `done_tasks = tasks with a succeeded attempt`.

use super::C;
use crate::model::{Attempt, Outcome, Tk};

pub fn done_tasks<'s>(ended: C<'s, (Tk, (Attempt, Outcome))>) -> C<'s, Tk> {
    ended.filter(|(_, (_, o))| *o == Outcome::Succeeded).map(|(tk, _)| tk).distinct()
}
