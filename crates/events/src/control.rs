//! Operator and user commands on the `control` topic (key: job id).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelJob {
    pub job_id: String,
    #[serde(default)]
    pub reason: String,
}

/// Give a dead-lettered task (or every dead-lettered task of the job) a fresh set of retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueDeadLetter {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveJob {
    pub job_id: String,
}

/// The head of the gateway's audit chain, written to `control` now and then by a gateway (signed;
/// no API token may write one). The log is where an attacker with the database cannot reach:
/// `splai audit verify` compares the chain with these, naming a deleted tail or a rewritten chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    /// The last record's sequence number and keyed hash.
    pub seq: u64,
    pub hash: String,
}

/// A scheduler wrote a snapshot of its state as of these log positions (key `scheduler`; written
/// by the scheduler, signed when auth is on; no API token may write one). A scheduler starting up
/// restores the newest one whose object verifies and reads the log from its positions on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The next offset to read in one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
}
