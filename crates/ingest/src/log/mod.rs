//! The event log: the source of truth every SPLAI process reads and writes.
//!
//! Semantics both backends keep (checked by `tests/conformance.rs` against each):
//! - a record goes to partition `partition_for(key, partitions)`; records with one key keep order;
//! - a consumer belongs to a named group and resumes after the group's last commit;
//! - nothing is committed implicitly: a consumer that dies before `commit` sees the records again
//!   (at-least-once; envelope ids make the effect exactly-once).

mod embedded;
mod events;
mod group_commit;
mod headers;
mod kafka;
mod open;
mod tail;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
pub use embedded::EmbeddedLog;
pub use events::{EventBatch, EventReader, EventWriter};
pub use kafka::KafkaLog;
pub use open::open_log;
use splai_events::SourcePosition;

/// Record headers (name, value), in order; Kafka headers on Kafka, a column on the embedded log.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Headers,
}

impl Record {
    pub fn new(key: impl Into<String>, payload: Vec<u8>) -> Self {
        Self { key: key.into(), payload, headers: Headers::new() }
    }
}

/// A record read back, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub position: SourcePosition,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Headers,
    /// Append time, epoch ms.
    pub ts_ms: u64,
}

/// The first header called `name` (case-insensitive, as HTTP and Kafka clients vary).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

impl Delivered {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        header(&self.headers, name)
    }
}

/// What a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Consumer group: the name committed positions are stored under.
    pub group: String,
    pub topics: Vec<String>,
    /// Read only these partitions (of every topic) without group membership, e.g. an executor
    /// reading its own partition of `assignments`. `None`: all partitions, balanced by the group.
    pub partitions: Option<Vec<u32>>,
    /// With `partitions`: begin these (topic, partition)s at these offsets instead of the group's
    /// committed ones (a scheduler resuming from a snapshot taken at them).
    pub start: BTreeMap<(String, u32), u64>,
}

impl Subscription {
    pub fn group(group: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            partitions: None,
            start: BTreeMap::new(),
        }
    }
}

/// The error under a [`LogError`]: the backend's own (SQLite, librdkafka) or a plain reason.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic `{topic}` does not exist")]
    UnknownTopic { topic: String },
    #[error("append to `{topic}` failed")]
    Append {
        topic: String,
        #[source]
        source: Cause,
    },
    #[error("reading {topics:?} as group `{group}` failed")]
    Consume {
        group: String,
        topics: Vec<String>,
        #[source]
        source: Cause,
    },
    #[error("commit of group `{group}` at {topic}/{partition}@{offset} failed")]
    Commit {
        group: String,
        topic: String,
        partition: u32,
        offset: u64,
        #[source]
        source: Cause,
    },
    #[error("creating topic `{topic}` failed")]
    CreateTopic {
        topic: String,
        #[source]
        source: Cause,
    },
    #[error(
        "`{topic}` partition {partition} starts at offset {first}: the records before it were deleted \
         (retention or `splai log compact`) and no valid scheduler snapshot covers them"
    )]
    Truncated { topic: String, partition: u32, first: u64 },
    #[error("cannot open the {backend} log")]
    Open {
        backend: &'static str,
        #[source]
        source: Cause,
    },
}

/// A keyed, partitioned, append-only log of topics.
#[async_trait]
pub trait EventLog: Send + Sync + Debug {
    /// Create these topics with `partitions` partitions each; existing topics are left alone.
    async fn create_topics(&self, topics: &[String], partitions: u32) -> Result<(), LogError>;

    /// Append records to `topic`, durably, in order per key. Returns each record's position.
    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<SourcePosition>, LogError>;

    /// [`EventLog::append`] to several topics at once: each topic's positions, in order. By
    /// default the appends run concurrently (a Kafka producer sends them together instead of
    /// one round trip after another); the embedded log writes them in one transaction.
    async fn append_topics(
        &self,
        batches: Vec<(String, Vec<Record>)>,
    ) -> Result<Vec<Vec<SourcePosition>>, LogError> {
        futures::future::try_join_all(
            batches.into_iter().map(|(topic, records)| async move { self.append(&topic, records).await }),
        )
        .await
    }

    /// Start reading as `subscription.group`, from its committed positions (or the beginning).
    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn LogConsumer>, LogError>;

    /// Partition count of `topic`.
    async fn partitions(&self, topic: &str) -> Result<u32, LogError>;

    /// The next offset to be written in each partition of `topic` (its high watermark): a reader
    /// that has read below these has caught up with everything appended before the call.
    async fn high_watermarks(&self, topic: &str) -> Result<Vec<u64>, LogError>;

    /// The first offset each partition of `topic` still holds (its high watermark when it holds
    /// nothing): above 0 once records were deleted by retention or compaction.
    async fn log_starts(&self, topic: &str) -> Result<Vec<u64>, LogError>;

    /// Delete the records of one partition below `offset` (compaction behind a snapshot that
    /// holds what they said); how many went.
    async fn delete_before(&self, topic: &str, partition: u32, offset: u64) -> Result<u64, LogError>;

    /// Per partition of `topic`, the lowest next offset any consumer group committed there
    /// (None: no group did, or the backend does not tell): every committing group has read
    /// everything below it.
    async fn committed_floor(&self, topic: &str) -> Result<Vec<Option<u64>>, LogError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait LogConsumer: Send + Debug {
    /// Up to `max` records, waiting at most `wait` for the first one. Empty on timeout.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError>;

    /// Record that the group has processed these records (and everything before them in their
    /// partitions). Call only once their effect is durable.
    async fn commit(&mut self, processed: &[SourcePosition]) -> Result<(), LogError>;
}

/// The partition of `key` among `partitions` (FNV-1a 32). Both backends use it, so a key lands
/// in the same partition on the embedded log and on Kafka.
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % partitions.max(1)
}

/// The next offset to read per `(topic, partition)` after `processed`: max offset + 1.
pub(crate) fn commit_points(processed: &[SourcePosition]) -> Vec<SourcePosition> {
    let mut best: std::collections::BTreeMap<(String, u32), u64> = Default::default();
    for p in processed {
        let e = best.entry((p.topic.clone(), p.partition)).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    best.into_iter().map(|((topic, partition), offset)| SourcePosition { topic, partition, offset }).collect()
}

pub(crate) use splai_events::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_is_stable_and_spread() {
        assert_eq!(partition_for("job-1", 8), partition_for("job-1", 8));
        let used: std::collections::BTreeSet<u32> =
            (0..200).map(|i| partition_for(&format!("job-{i}"), 8)).collect();
        assert_eq!(used.len(), 8);
        assert_eq!(partition_for("anything", 1), 0);
    }

    #[test]
    fn commit_points_take_the_max_per_partition() {
        let p = |t: &str, part, offset| SourcePosition { topic: t.into(), partition: part, offset };
        let points = commit_points(&[p("a", 0, 3), p("a", 0, 7), p("a", 1, 0), p("b", 0, 2)]);
        assert_eq!(points, vec![p("a", 0, 8), p("a", 1, 1), p("b", 0, 3)]);
    }
}
