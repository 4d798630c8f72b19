//! `active_attempts = open attempts − orphaned attempts`: what holds a slot on a live worker.

use super::C;
use crate::model::{Attempt, Tk, Worker};

pub fn active_attempts<'s>(
    open: C<'s, (Tk, (Attempt, Worker))>,
    orphaned: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Tk, (Attempt, Worker))> {
    open.concat(orphaned.negate())
}
