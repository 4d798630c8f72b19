//! The scheduler's account of jobs on the `job-events` topic (key: job id). The gateway projects
//! these into its read model; metrics and streaming consumers read them too.

use serde::{Deserialize, Serialize};

use crate::{Dag, JobType, Priority};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobAdmitted {
    pub job_id: String,
    pub job_type: JobType,
    pub priority: Priority,
    /// The planned DAG, exactly as the scheduler will run it.
    pub dag: Dag,
    /// Job deadline, epoch ms, when the request set `timeout_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

/// A task's sub-DAG was appended to its job (see [`crate::SubDag`]): `dag` is the job's whole
/// DAG from now on, `added` the new tasks' ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobExpanded {
    pub job_id: String,
    /// The expanding task and the attempt whose output this is.
    pub task_id: String,
    pub attempt: u32,
    pub added: Vec<String>,
    pub dag: Dag,
    /// Why the task's own proposal was refused, when its `expand.fallback` was appended instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// Admission refused the job; nothing else happens to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobRejected {
    pub job_id: String,
    /// Stable machine-readable code, e.g. `dag_cycle`, `policy_denied`.
    pub code: String,
    pub reason: String,
    /// The request field at fault, as a JSON path, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The job this request repeats: the tenant already submitted its `idempotency_key` as that
    /// job (code `duplicate_idempotency_key` when the requests are the same, else
    /// `idempotency_conflict`). Follow that job; this id never runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Runnable,
    Assigned,
    Running,
    Succeeded,
    /// Failed; a retry is scheduled.
    Failed,
    DeadLettered,
    Cancelled,
}

/// Where one attempt is, as the read model shows it: started, or ended with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskStateChanged {
    pub job_id: String,
    pub task_id: String,
    pub attempt: u32,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Archived,
    /// Refused at admission (the read model's state for a `job_rejected`; no
    /// `job_state_changed` carries it).
    Rejected,
}

impl JobState {
    /// Nothing more will happen to the job (archived is not: it is a label on a job that may
    /// have been stopped while it ran).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::Rejected)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JobStateChanged {
    pub job_id: String,
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The task whose dead letter failed the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PolicyStage {
    Admission,
    Placement,
}

/// One evaluation of the policy gate, recorded whether it allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PolicyDecision {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub stage: PolicyStage,
    pub allowed: bool,
    /// The rule that decided, or absent for the default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
}

/// A metrics scope's figures now (topic `metrics`, key `scope`, the envelope's tenant
/// is the scope's): written by the scheduler when they change (at most once per
/// `scheduler.metrics_interval_ms` per scope) and for every scope when a scheduler goes live, so
/// the newest record per key is the current value. Maintained incrementally by its dataflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScopeMetrics {
    /// `<tenant>/<model>` (`-` for none): the record key.
    pub scope: String,
    /// The model the scope's jobs ask for (`None`: jobs that name none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The sliding window the counts and percentiles cover (ms).
    pub window_ms: u64,
    /// Tasks runnable and not yet assigned, now.
    pub runnable: u64,
    /// Attempts assigned or running, now.
    pub running: u64,
    /// Jobs admitted, succeeded and failed in the window.
    pub admitted: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Failed attempts that will be tried again, and tasks dead-lettered, in the window.
    pub retries: u64,
    pub dead_letters: u64,
    /// Runnable → assigned, over the decisions of the window (ms).
    pub queue_wait_ms: Percentiles,
    /// Attempt run time over the attempts that ended in the window (ms).
    pub run_ms: Percentiles,
}

/// Percentiles read off log-scale buckets (each ~19 % wide; the value is the bucket's top).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Percentiles {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<u64>,
}

/// The cluster's capacity now (topic `metrics`, key `cluster`, tenant `system`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClusterMetrics {
    pub live_workers: u64,
    /// Ordinary slots free on live workers, summed.
    pub free_slots: i64,
}
