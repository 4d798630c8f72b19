//! `worker_load(w)`: what the open attempts on worker `w` come to. On a live worker, its free
//! slots: `capacity − open attempts on w` (none of them is orphaned, since `w` is live). On a
//! worker that is not live, each open attempt on it: orphaned, retried elsewhere (and counted
//! against the task's losses); if the worker comes back before that, the attempt is simply open
//! again.
//!
//! One reduce per worker for both rules. As an antijoin of the open attempts with the live
//! workers beside a reduce for the free slots, they were two arrangements of every open attempt
//! by worker and a join, updated on every assignment and every end: a fifth of the step in which
//! a parent's success makes its child runnable.

use super::C;
use crate::model::{Attempt, Tk, Worker};

/// What a worker holds, as far as its load needs: capacity sorts before attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
enum Held {
    Capacity(u32),
    Attempt(Tk, Attempt),
}

/// A worker's load: its free slots (live), or one of its open attempts (not live: orphaned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Load {
    Free(i64),
    Orphan(Tk, Attempt),
}

pub fn worker_load<'s>(
    live: C<'s, (Worker, u32)>,
    open: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Worker, Load)> {
    let capacity = live.map(|(w, cap)| (w, Held::Capacity(cap)));
    let attempts = open.map(|(tk, (a, w))| (w, Held::Attempt(tk, a)));
    capacity.concat(attempts).reduce(|_w, held, out| {
        let present = || held.iter().filter(|(_, d)| *d > 0);
        let capacity = present().find_map(|(h, _)| if let Held::Capacity(c) = h { Some(*c) } else { None });
        match capacity {
            Some(cap) => {
                let open: isize =
                    present().filter(|(h, _)| matches!(h, Held::Attempt(..))).map(|(_, d)| *d).sum();
                out.push((Load::Free(i64::from(cap) - open as i64), 1));
            }
            None => {
                for (h, _) in present() {
                    if let Held::Attempt(tk, a) = h {
                        out.push((Load::Orphan(*tk, *a), 1));
                    }
                }
            }
        }
    })
}

/// Live workers' free slots.
pub fn free_of<'s>(load: C<'s, (Worker, Load)>) -> C<'s, (Worker, i64)> {
    load.flat_map(|(w, l)| if let Load::Free(n) = l { Some((w, n)) } else { None })
}

/// Open attempts on workers that are not live.
pub fn orphans_of<'s>(load: C<'s, (Worker, Load)>) -> C<'s, (Tk, (Attempt, Worker))> {
    load.flat_map(|(w, l)| if let Load::Orphan(tk, a) = l { Some((tk, (a, w))) } else { None })
}
