//! Catching up with a backlog in time order. A consumer hands out a backlog a partition at a
//! time, so without this a scheduler replaying a large log would read every `task-events` record
//! long before the `assignments` and `jobs` they follow, park them all, and past the parking
//! limit apply them out of order (wrong states, tasks run again). Records are held per partition
//! and released in timestamp order up to the oldest "newest record seen" of the partitions still
//! behind: nothing older can still arrive from them (appends are in time order per partition,
//! up to producer clock skew, which the live path tolerates too).

use std::collections::{BTreeMap, VecDeque};

use splai_events::{Envelope, SourcePosition};
use splai_ingest::intake::Denied;
use splai_ingest::log::EventBatch;

/// An envelope to apply: refused at intake (with why), and whether a Kafka producer sent it with a
/// token.
pub type Entry = (Envelope, Option<Denied>, bool);

type Partition = (String, u32);

/// A batch's envelopes, accepted or refused at intake, in one list with their positions.
pub fn entries(batch: EventBatch) -> Vec<(SourcePosition, Entry)> {
    let producers = batch.from_producers;
    let accepted = batch.events.into_iter().map(|(pos, e)| {
        let produced = producers.contains(&pos);
        (pos, (e, None, produced))
    });
    let refused = batch.denied.into_iter().map(|(pos, e, d)| (pos, (e, Some(d), false)));
    accepted.chain(refused).collect()
}

#[derive(Debug, Default)]
pub struct TimeMerge {
    held: BTreeMap<Partition, VecDeque<Entry>>,
    /// Per partition, the newest timestamp read from it.
    newest: BTreeMap<Partition, u64>,
}

impl TimeMerge {
    /// Hold what `batch` read.
    pub fn push(&mut self, batch: EventBatch) {
        for p in &batch.positions {
            self.newest.entry((p.topic.clone(), p.partition)).or_insert(0);
        }
        let mut entries = entries(batch);
        entries.sort_by_key(|(pos, _)| pos.offset);
        for (pos, entry) in entries {
            let key = (pos.topic, pos.partition);
            let newest = self.newest.entry(key.clone()).or_insert(0);
            *newest = (*newest).max(entry.0.ts_ms);
            self.held.entry(key).or_default().push_back(entry);
        }
    }

    /// What may be applied now, in timestamp order: everything up to the oldest newest-seen
    /// timestamp of the partitions in `behind` (all of it when none is behind).
    pub fn release<'a>(&mut self, behind: impl IntoIterator<Item = &'a Partition>) -> Vec<Entry> {
        let up_to =
            behind.into_iter().map(|p| self.newest.get(p).copied().unwrap_or(0)).min().unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for queue in self.held.values_mut() {
            while queue.front().is_some_and(|e| e.0.ts_ms <= up_to) {
                out.extend(queue.pop_front());
            }
        }
        out.sort_by_key(|e| e.0.ts_ms);
        out
    }

    /// Records held back.
    pub fn held(&self) -> usize {
        self.held.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use splai_events::{CancelJob, Event};

    use super::*;

    fn batch(records: &[(&str, u64, u64)]) -> EventBatch {
        let mut b = EventBatch::default();
        for (topic, offset, ts) in records {
            let pos = SourcePosition { topic: topic.to_string(), partition: 0, offset: *offset };
            let e = Envelope::new(
                format!("{topic}@{offset}"),
                *ts,
                "acme",
                Event::CancelJob(CancelJob { job_id: "j".into(), reason: String::new() }),
            );
            b.positions.push(pos.clone());
            b.events.push((pos, e));
        }
        b
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.0.id.clone()).collect()
    }

    fn key(topic: &str) -> Partition {
        (topic.to_string(), 0)
    }

    #[test]
    fn a_partition_ahead_in_time_waits_for_the_others() {
        let mut m = TimeMerge::default();
        m.push(batch(&[("jobs", 0, 10), ("jobs", 1, 50), ("events", 0, 20), ("events", 1, 30)]));
        let behind = [key("jobs"), key("events")];
        assert_eq!(ids(&m.release(&behind)), ["jobs@0", "events@0", "events@1"]);
        assert_eq!(m.held(), 1, "jobs@1 (t=50) waits: `events` may still hold records before it");
        m.push(batch(&[("events", 2, 60)]));
        assert_eq!(ids(&m.release(&behind)), ["jobs@1"]);
        assert!(m.release(&behind).is_empty(), "events@2 (t=60) waits for `jobs`, seen up to 50");
        assert_eq!(ids(&m.release(&[key("events")])), ["events@2"], "jobs caught up: it holds nothing back");
    }

    #[test]
    fn nothing_is_released_before_every_partition_behind_has_been_read() {
        let mut m = TimeMerge::default();
        m.push(batch(&[("events", 0, 20)]));
        assert!(m.release(&[key("jobs"), key("events")]).is_empty());
        assert_eq!(ids(&m.release(std::iter::empty())), ["events@0"], "all caught up: everything goes");
    }
}
