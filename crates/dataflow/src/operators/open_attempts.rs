//! `open_attempts = current attempts that have not ended` (no success, failure or timeout yet).

use super::C;
use crate::model::{Attempt, Outcome, Tk, Worker};

pub fn open_attempts<'s>(
    current: C<'s, (Tk, (Attempt, Worker))>,
    ended: C<'s, (Tk, (Attempt, Outcome))>,
) -> C<'s, (Tk, (Attempt, Worker))> {
    current
        .map(|(tk, (a, w))| ((tk, a), w))
        .antijoin(ended.map(|(tk, (a, _))| (tk, a)).distinct())
        .map(|((tk, a), w)| (tk, (a, w)))
}
