//! Attempt lifecycle on the `task-events` topic (key: job id).

use serde::{Deserialize, Serialize};

/// `(job, task, attempt)`: the fencing token of every execution. Attempts count from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttemptId {
    pub job_id: String,
    pub task_id: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptStarted {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
}

/// Streaming progress, e.g. tokens generated so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptProgress {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
    pub tokens: u32,
    /// Text generated since the previous progress event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptSucceeded {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
    /// The output this attempt wrote.
    pub artifact: ArtifactRef,
    /// Lineage: every artifact this attempt read.
    pub inputs: Vec<ArtifactRef>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFailed {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
    pub error: String,
    /// False when running it again cannot help (bad input, unknown tool).
    pub retryable: bool,
}

/// An object in the artifact store: `{tenant}/{job}/{task}/{attempt}/output.json`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Token counts of an inference attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}
