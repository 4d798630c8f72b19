//! Scheduler decisions on the `assignments` topic (key: worker id; job id for
//! `task_unschedulable`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attempt::attempt_event;
use crate::{ArtifactRef, Requirements, TaskKind};

attempt_event! {
    /// Run `attempt` on `worker_id` before `deadline_ms` (epoch ms; the attempt's lease).
    #[derive(Debug, Clone, PartialEq)]
    pub struct Assign {
        pub worker_id: String,
        pub kind: TaskKind,
        pub inputs: BTreeMap<String, ResolvedInput>,
        pub requirements: Requirements,
        pub deadline_ms: u64,
        /// Whether the attempt may reuse, and offer, a cached output (the task's `cache`).
        #[serde(default = "crate::attempt::yes", skip_serializing_if = "crate::attempt::is_true")]
        pub cache: bool,
        /// The task's output is a sub-DAG: report it in `attempt_succeeded.subdag`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub expand: bool,
        /// The attempt runs in the worker's pool for light tasks (tools, aggregations), beside
        /// the slots inference takes (`worker_registered.light_slots`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub light: bool,
        /// The attempt is a sequence of the worker's inference engine for its model
        /// (`worker_registered.engines`), not an ordinary slot's.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pub engine: bool,
    }
}

attempt_event! {
    /// The scheduler gave up placing `attempt`: no live worker could take the task (no worker
    /// offers its model, tool or labels, or has enough slots) for
    /// `scheduler.unschedulable_timeout_ms`. The task fails for good with `reason`. Written by the
    /// scheduler and read back like its assignments, so replay decides the same. Key: job id.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TaskUnschedulable {
        pub reason: String,
    }
}

/// The scheduler refused a job produced straight to Kafka at admission: its tenant was over
/// `max_active_jobs` or its submit rate (codes `quota_exceeded`, `rate_limited`, as REST's 429).
/// Users see the `job_rejected` on `job-events`; this copy is for the scheduler's own replay,
/// which decides admission from the log. Key: job id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobRefused {
    pub job_id: String,
    pub code: String,
    pub reason: String,
}

/// The scheduler admitted a job produced straight to Kafka by a tenant with admission limits
/// (`max_active_jobs` or a submit rate): the decision that [`JobRefused`] records the other way,
/// so a replay knows the job was decided live and does not decide it again. Key: job id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobAccepted {
    pub job_id: String,
}

/// An input as the executor sees it: a literal, or a parent's artifact narrowed by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResolvedInput {
    Literal(Value),
    Artifact {
        artifact: ArtifactRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pointer: Option<String>,
    },
}

attempt_event! {
    /// Stop an attempt. Executors ignore a revoke for an attempt they do not run.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Revoke {
        pub worker_id: String,
        pub reason: RevokeReason,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Cancelled,
    TimedOut,
    WorkerLost,
    Superseded,
    /// The worker is live but its heartbeats stopped naming the attempt (its assignment was lost
    /// on the way, or the worker dropped it): the attempt is over and is retried at once.
    NotHeld,
}
