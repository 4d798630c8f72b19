//! `live_workers(w) = capacity` of every worker whose latest liveness fact is a heartbeat that has
//! not expired. Beats are inserted at their time and retracted at time + ttl by the driver, so a
//! worker that stops beating leaves by a temporal retraction, never by a sweeper. A `Leave` at or
//! after the latest beat removes it at once.

use super::C;
use crate::model::{Time, Worker};

pub fn live_workers<'s>(
    beats: C<'s, (Worker, (Time, u32))>,
    leaves: C<'s, (Worker, Time)>,
) -> C<'s, (Worker, u32)> {
    // (ts, 1) for a leave sorts after (ts, 0) for a beat at the same time: leaving wins ties.
    let beats = beats.map(|(w, (ts, cap))| (w, (ts, 0u8, cap)));
    let leaves = leaves.map(|(w, ts)| (w, (ts, 1u8, 0u32)));
    beats.concat(leaves).reduce(|_w, facts, out| {
        let latest = facts.iter().filter(|(_, diff)| *diff > 0).map(|(v, _)| **v).max();
        if let Some((_, 0, cap)) = latest {
            out.push((cap, 1));
        }
    })
}
