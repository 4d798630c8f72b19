//! The placement queue: runnable tasks not yet placed, kept in the order the assignment step
//! considers them (priority class, tenant, admission time, task), updated as tasks become
//! runnable, are placed or stop being runnable. A tick then reads only the tasks it places,
//! instead of rebuilding and sorting the whole backlog.

use std::collections::BTreeSet;
use std::ops::Bound::{Excluded, Included, Unbounded};

use rustc_hash::FxHashMap as HashMap;
use splai_events::Priority;

use crate::assign::{Candidate, Candidates};
use crate::model::{Time, Tk};

type Key = (Priority, u32, Time, Tk);

#[derive(Debug, Default)]
pub struct Ready {
    order: BTreeSet<Key>,
    keys: HashMap<Tk, Key>,
}

impl Ready {
    /// Queue `tk` with its class, tenant and admission time (a no-op when queued).
    pub fn insert(&mut self, tk: Tk, priority: Priority, tenant: u32, admitted_at: Time) {
        let key = (priority, tenant, admitted_at, tk);
        if self.keys.insert(tk, key).is_none() {
            self.order.insert(key);
        }
    }

    pub fn remove(&mut self, tk: Tk) {
        if let Some(key) = self.keys.remove(&tk) {
            self.order.remove(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A reader that turns queued tasks into candidates with `make` (None: skip it this tick).
    pub fn reader<'a, F>(&'a self, make: F) -> Reader<'a, F>
    where
        F: FnMut(Tk) -> Option<Candidate>,
    {
        Reader { ready: self, make, cursors: HashMap::default(), peeked: HashMap::default() }
    }
}

/// One tick's walk over the queue: per (class, tenant), a cursor and the candidate peeked at it.
pub struct Reader<'a, F> {
    ready: &'a Ready,
    make: F,
    cursors: HashMap<(Priority, u32), Key>,
    peeked: HashMap<(Priority, u32), Candidate>,
}

impl<F: FnMut(Tk) -> Option<Candidate>> Reader<'_, F> {
    /// The first queued task after the cursor of (class, tenant) that `make` accepts.
    fn advance(&mut self, class: Priority, tenant: u32) -> Option<Candidate> {
        let lower = match self.cursors.get(&(class, tenant)) {
            Some(at) => Excluded(*at),
            None => Included((class, tenant, Time::MIN, (0, 0))),
        };
        let upper = Included((class, tenant, Time::MAX, (u32::MAX, u32::MAX)));
        for key in self.ready.order.range((lower, upper)) {
            self.cursors.insert((class, tenant), *key);
            if let Some(c) = (self.make)(key.3) {
                return Some(c);
            }
        }
        None
    }
}

impl<F: FnMut(Tk) -> Option<Candidate>> Candidates for Reader<'_, F> {
    fn classes(&self) -> Vec<Priority> {
        let mut out = Vec::new();
        let mut from = Unbounded;
        while let Some(key) = self.ready.order.range((from, Unbounded)).next() {
            out.push(key.0);
            from = Excluded((key.0, u32::MAX, Time::MAX, (u32::MAX, u32::MAX)));
        }
        out
    }

    fn tenants(&self, class: Priority) -> Vec<u32> {
        let mut out = Vec::new();
        let mut from = Included((class, 0, Time::MIN, (0, 0)));
        let upper = Included((class, u32::MAX, Time::MAX, (u32::MAX, u32::MAX)));
        while let Some(key) = self.ready.order.range((from, upper)).next() {
            out.push(key.1);
            from = Excluded((class, key.1, Time::MAX, (u32::MAX, u32::MAX)));
        }
        out
    }

    fn peek(&mut self, class: Priority, tenant: u32) -> Option<&Candidate> {
        if !self.peeked.contains_key(&(class, tenant)) {
            let next = self.advance(class, tenant)?;
            self.peeked.insert((class, tenant), next);
        }
        self.peeked.get(&(class, tenant))
    }

    fn pop(&mut self, class: Priority, tenant: u32) -> Option<Candidate> {
        match self.peeked.remove(&(class, tenant)) {
            Some(c) => Some(c),
            None => self.advance(class, tenant),
        }
    }
}
