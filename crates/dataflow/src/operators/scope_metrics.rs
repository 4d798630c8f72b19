//! `scope_metrics(scope, tally) = count`: per metrics scope (a tenant and a model), each tally of
//! its sliding window (facts that retract themselves a window after they happened). The driver
//! adds the scope's runnable and running tasks (read off the `runnable` and `active` outputs it
//! already absorbs) and writes the changes to `metrics`.

use super::C;
use crate::model::{Scope, Tally};

pub fn scope_metrics<'s>(tallies: C<'s, (Scope, Tally)>) -> C<'s, ((Scope, Tally), isize)> {
    tallies.count()
}
