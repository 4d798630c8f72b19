//! Scheduler decisions on the `assignments` topic (key: worker id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ArtifactRef, AttemptId, Requirements, TaskKind};

/// Run `attempt` on `worker_id` before `deadline_ms` (epoch ms; the attempt's lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assign {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
    pub kind: TaskKind,
    pub inputs: BTreeMap<String, ResolvedInput>,
    pub requirements: Requirements,
    pub deadline_ms: u64,
}

/// An input as the executor sees it: a literal, or a parent's artifact narrowed by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedInput {
    Literal(Value),
    Artifact {
        artifact: ArtifactRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pointer: Option<String>,
    },
}

/// Stop an attempt. Executors ignore a revoke for an attempt they do not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    #[serde(flatten)]
    pub attempt: AttemptId,
    pub worker_id: String,
    pub reason: RevokeReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Cancelled,
    TimedOut,
    WorkerLost,
    Superseded,
}
