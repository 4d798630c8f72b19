//! Operator and user commands on the `control` topic (key: job id).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CancelJob {
    pub job_id: String,
    #[serde(default)]
    pub reason: String,
}

/// Give a dead-lettered task (or every dead-lettered task of the job) a fresh set of retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequeueDeadLetter {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ArchiveJob {
    pub job_id: String,
}

/// The head of the gateway's audit chain, written to `control` now and then by a gateway (signed;
/// no API token may write one). The log is where an attacker with the database cannot reach:
/// `splai audit verify` compares the chain with these, naming a deleted tail or a rewritten chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditAnchor {
    /// The last record's sequence number and keyed hash.
    pub seq: u64,
    pub hash: String,
}

/// A scheduler wrote a snapshot of its state as of these log positions (key `scheduler`; written
/// by the scheduler, signed when auth is on; no API token may write one). A scheduler starting up
/// restores the newest one whose object verifies and reads the log from its positions on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotWritten {
    /// The snapshot object in the artifact store (path, sha256, size).
    pub artifact: crate::ArtifactRef,
    /// Its format version (a scheduler reads only its own).
    pub format: u32,
    /// The next offset to read in each input partition: the snapshot holds everything before.
    pub positions: Vec<LogPosition>,
    /// Log records the scheduler had applied in all when it took the snapshot.
    pub events: u64,
}

/// A scheduler claims or renews leadership (key `scheduler`, on `control`; written by schedulers
/// only, signed when auth is on). The first record of an epoch in the partition wins it; later
/// ones of that epoch by its holder renew it (`until_ms` moves), by anyone else change nothing.
/// A standby that reads no renewal by `until_ms` claims `epoch + 1`. A holder that stops appends
/// `until_ms` = now, so a standby takes over at once. Every decision the leader writes carries
/// its epoch in the envelope (`epoch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SchedulerLease {
    pub epoch: u64,
    /// The scheduler process that claims it (host, pid and a random part).
    pub holder: String,
    /// Leadership lapses at this wall-clock time (epoch ms) without a renewal.
    pub until_ms: u64,
}

/// A new leader's first record in one partition of a topic it writes decisions to (`topic`).
/// Readers of that partition (executors, the read model, schedulers reading decisions back)
/// ignore, from here on, decisions whose envelope `epoch` is older: a deposed leader that wakes
/// after its lease lapsed cannot cause an effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EpochFence {
    pub epoch: u64,
    pub topic: crate::Topic,
    pub partition: u32,
}

/// The next offset to read in one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LogPosition {
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
}
