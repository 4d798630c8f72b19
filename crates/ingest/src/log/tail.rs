//! The embedded log's newest records, kept in memory once committed, so that a consumer in this
//! process reads what was just appended without a SQLite query: the reader's connection would
//! start each read transaction on a page cache that the writer's commit had just invalidated,
//! and every hop of a DAG (an executor's outcome to the scheduler, its decision to an executor,
//! both to the projector) is such a read. Records another process appended are not here: a
//! consumer reads them, and whatever else the tail lacks, from SQLite as before.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::Delivered;

/// Records kept per partition; a consumer further behind reads from SQLite. In-process consumers
/// are normally a few records behind; with 8 topics of 8 partitions this bounds the tail to
/// 64 MiB however large the records (typically a few MiB).
const KEEP: usize = 256;
/// Bytes of payload kept per partition (a few large records must not pin much memory).
const KEEP_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
struct Partition {
    records: VecDeque<Delivered>,
    bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Tails(Mutex<HashMap<(String, u32), Partition>>);

impl Tails {
    /// Keep `written` (committed; in offset order within each partition).
    pub(crate) fn push(&self, written: Vec<Delivered>) {
        let mut parts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for record in written {
            let key = (record.position.topic.clone(), record.position.partition);
            let part = parts.entry(key).or_default();
            // Offsets only grow; anything else means the file changed under us: start afresh.
            if part.records.back().is_some_and(|last| last.position.offset >= record.position.offset) {
                *part = Partition::default();
            }
            part.bytes += record.payload.len();
            part.records.push_back(record);
            while part.records.len() > KEEP || part.bytes > KEEP_BYTES && part.records.len() > 1 {
                let gone = part.records.pop_front().expect("not empty");
                part.bytes -= gone.payload.len();
            }
        }
    }

    /// Up to `max` records of the partition from offset `from` on, as long as they follow one
    /// another here (a gap, another process's appends, ends the run).
    pub(crate) fn read(&self, topic: &str, partition: u32, from: u64, max: usize) -> Vec<Delivered> {
        let parts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(part) = parts.get(&(topic.to_string(), partition)) else { return Vec::new() };
        let Ok(first) = part.records.binary_search_by_key(&from, |r| r.position.offset) else {
            return Vec::new();
        };
        part.records
            .range(first..)
            .zip(from..)
            .take_while(|(r, expected)| r.position.offset == *expected)
            .take(max)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Forget the partition's records before `offset` (they were deleted from the log).
    pub(crate) fn drop_before(&self, topic: &str, partition: u32, offset: u64) {
        let mut parts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(part) = parts.get_mut(&(topic.to_string(), partition)) {
            while part.records.front().is_some_and(|r| r.position.offset < offset) {
                let gone = part.records.pop_front().expect("not empty");
                part.bytes -= gone.payload.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use splai_events::SourcePosition;

    use super::*;

    fn rec(partition: u32, offset: u64, bytes: usize) -> Delivered {
        Delivered {
            position: SourcePosition { topic: "t".into(), partition, offset },
            key: Some("k".into()),
            payload: vec![b'x'; bytes],
            headers: Vec::new(),
            ts_ms: 1,
        }
    }

    fn offsets(records: &[Delivered]) -> Vec<u64> {
        records.iter().map(|r| r.position.offset).collect()
    }

    #[test]
    fn reads_a_run_that_starts_where_asked() {
        let tails = Tails::default();
        tails.push((0..5).map(|o| rec(0, o, 1)).collect());
        assert_eq!(offsets(&tails.read("t", 0, 2, 10)), vec![2, 3, 4]);
        assert_eq!(offsets(&tails.read("t", 0, 1, 2)), vec![1, 2]);
        assert!(tails.read("t", 0, 5, 10).is_empty(), "nothing past the end");
        assert!(tails.read("t", 1, 0, 10).is_empty(), "another partition");
    }

    #[test]
    fn a_gap_ends_the_run() {
        let tails = Tails::default();
        // Offsets 3 and 4 were appended by another process.
        tails.push(vec![rec(0, 1, 1), rec(0, 2, 1), rec(0, 5, 1)]);
        assert_eq!(offsets(&tails.read("t", 0, 1, 10)), vec![1, 2]);
        assert!(tails.read("t", 0, 3, 10).is_empty());
        assert_eq!(offsets(&tails.read("t", 0, 5, 10)), vec![5]);
    }

    #[test]
    fn keeps_the_newest_records_within_its_bounds() {
        let tails = Tails::default();
        tails.push((0..KEEP as u64 + 10).map(|o| rec(0, o, 1)).collect());
        assert!(tails.read("t", 0, 9, 1).is_empty(), "the oldest went");
        assert_eq!(tails.read("t", 0, 10, usize::MAX).len(), KEEP);
        tails.push(vec![rec(1, 0, KEEP_BYTES), rec(1, 1, KEEP_BYTES)]);
        assert_eq!(offsets(&tails.read("t", 1, 0, 10)), Vec::<u64>::new(), "over the byte bound");
        assert_eq!(offsets(&tails.read("t", 1, 1, 10)), vec![1]);
    }

    #[test]
    fn forgets_deleted_records_and_a_rewound_file() {
        let tails = Tails::default();
        tails.push((0..5).map(|o| rec(0, o, 1)).collect());
        tails.drop_before("t", 0, 3);
        assert!(tails.read("t", 0, 2, 10).is_empty());
        assert_eq!(offsets(&tails.read("t", 0, 3, 10)), vec![3, 4]);
        tails.push(vec![rec(0, 0, 1)]);
        assert_eq!(offsets(&tails.read("t", 0, 0, 10)), vec![0]);
        assert!(tails.read("t", 0, 3, 10).is_empty());
    }
}
