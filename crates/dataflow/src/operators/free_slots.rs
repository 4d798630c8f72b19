//! `free_slots(w) = capacity − active attempts on w`, for live workers only.

use super::C;
use crate::model::{Attempt, Tk, Worker};

pub fn free_slots<'s>(
    live: C<'s, (Worker, u32)>,
    active: C<'s, (Tk, (Attempt, Worker))>,
) -> C<'s, (Worker, i64)> {
    let capacity = live.map(|(w, cap)| (w, Some(cap)));
    let running = active.map(|(_, (_, w))| (w, None));
    capacity.concat(running).reduce(|_w, facts, out| {
        let cap = facts.iter().find_map(|(v, d)| if *d > 0 { **v } else { None });
        if let Some(cap) = cap {
            let running: isize = facts.iter().filter(|(v, _)| v.is_none()).map(|(_, d)| *d).sum();
            out.push((i64::from(cap) - running as i64, 1));
        }
    })
}
