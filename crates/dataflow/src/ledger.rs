//! Every fact in the engine's inputs, what a snapshot keeps ([`crate::engine::Engine::inputs`]).
//! Facts of closed times are kept per fact, summed, without their time: a restore feeds them all
//! at one past time anyway. So a fact and its later retraction (a heartbeat and its expiry, a
//! metrics tally and the end of its window) cancel once both are in the past instead of staying
//! as two entries forever. Facts of open times keep their time until it closes.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap as HashMap;

use crate::model::{Fact, Time};

#[derive(Debug, Default)]
pub struct Ledger {
    closed: HashMap<Fact, isize>,
    open: BTreeMap<Time, HashMap<Fact, isize>>,
}

fn add(facts: &mut HashMap<Fact, isize>, fact: Fact, diff: isize) {
    match facts.entry(fact) {
        Entry::Occupied(e) if *e.get() + diff == 0 => drop(e.remove()),
        Entry::Occupied(mut e) => *e.get_mut() += diff,
        Entry::Vacant(e) => drop(e.insert(diff)),
    }
}

impl Ledger {
    /// `fact` with `diff` at `t` (an open time).
    pub fn add(&mut self, fact: Fact, t: Time, diff: isize) {
        let at = self.open.entry(t).or_default();
        add(at, fact, diff);
        if at.is_empty() {
            self.open.remove(&t);
        }
    }

    /// Every time before `t` is closed: fold its facts into the closed ones.
    pub fn close_before(&mut self, t: Time) {
        let still_open = self.open.split_off(&t);
        for (_, facts) in std::mem::replace(&mut self.open, still_open) {
            for (fact, diff) in facts {
                add(&mut self.closed, fact, diff);
            }
        }
    }

    /// The facts, sorted: closed ones at `now − 1`, open ones at their times.
    pub fn facts(&self, now: Time) -> Vec<(Fact, Time, isize)> {
        let past = now.saturating_sub(1);
        let closed = self.closed.iter().map(|(f, d)| (f.clone(), past, *d));
        let open = self.open.iter().flat_map(|(t, facts)| facts.iter().map(|(f, d)| (f.clone(), *t, *d)));
        let mut facts: Vec<_> = closed.chain(open).collect();
        facts.sort();
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tally;

    #[test]
    fn a_fact_and_its_later_retraction_cancel_once_both_are_closed() {
        let mut l = Ledger::default();
        let tally = Fact::Tally(0, Tally::Admitted);
        l.add(tally.clone(), 10, 1);
        l.add(tally.clone(), 70, -1);
        l.add(Fact::Cancelled(3), 10, 1);
        l.close_before(11);
        let expected = vec![(Fact::Cancelled(3), 10, 1), (tally.clone(), 10, 1), (tally.clone(), 70, -1)];
        assert_eq!(l.facts(11), expected, "the retraction keeps its time until it closes");
        l.close_before(71);
        assert_eq!(l.facts(71), vec![(Fact::Cancelled(3), 70, 1)], "the tally and its retraction are gone");
    }
}
