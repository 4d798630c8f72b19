//! Job submissions: the request a user sends and the DAG of tasks it becomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job submission, produced to the `jobs` topic by the gateway or by any Kafka producer.
///
/// The tenant is the envelope's `tenant`; it is not repeated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Job id. When absent, the envelope `id` is the job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9_.\-]{1,128}$")))]
    pub job_id: Option<String>,
    /// Which planner template turns this request into a DAG.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Free-form input of the template (text, chunks, messages...).
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub priority: Priority,
    /// Model name for inference tasks; the worker's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub data_classification: DataClassification,
    /// Name of the policy set to evaluate; the tenant default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Job deadline in seconds from admission (at most a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 604_800)))]
    pub timeout_s: Option<u32>,
    /// Retries per task unless a task overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub max_retries: Option<u32>,
    /// Same key and same tenant ⇒ same job; a different request with a used key is a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Explicit DAG; required when `type` is `explicit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<Dag>,
    /// `false`: no task of this job reuses an earlier output or offers its own for reuse (see
    /// [`TaskSpec::cache`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    Chat,
    BatchAnalysis,
    Embed,
    Explicit,
    /// A goal in words: the hybrid planner asks the model for the DAG (see `input.goal`).
    Auto,
}

/// Scheduling class; `Interactive` goes before `Standard` before `Batch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Interactive,
    #[default]
    Standard,
    Batch,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataClassification {
    Public,
    #[default]
    Internal,
    Confidential,
    Restricted,
}

/// A DAG of tasks. Task ids are unique within the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Dag {
    /// At least one task; ids unique, parents among them, no cycle.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub tasks: Vec<TaskSpec>,
}

impl Dag {
    /// Tasks of `tasks` no task among them names as a parent, in order.
    pub fn sinks_of(tasks: &[TaskSpec]) -> impl Iterator<Item = &TaskSpec> {
        tasks.iter().filter(|t| !tasks.iter().any(|c| c.parents.contains(&t.id)))
    }

    /// The DAG's only sink, when it has exactly one: the task whose output is its result.
    pub fn only_sink(&self) -> Option<&TaskSpec> {
        let mut sinks = Self::sinks_of(&self.tasks);
        match (sinks.next(), sinks.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9_.\-]{1,64}$")))]
    pub id: String,
    pub kind: TaskKind,
    /// Named inputs: literals, or references to a parent's output.
    #[serde(default)]
    pub inputs: BTreeMap<String, TaskInput>,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub requirements: Requirements,
    /// The attempt's timeout in seconds (at most a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400)))]
    pub timeout_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub max_retries: Option<u32>,
    /// Result caching (default on): a task whose output is determined by its inputs (greedy
    /// inference, embeddings, aggregation, pure tools) reuses the tenant's earlier output for the
    /// same inputs, model weights and executor version; `false` always runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// The task's output is a [`SubDag`] that the scheduler validates and appends to the job
    /// when the task succeeds (a map over a list known only at run time, a model's plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<Expand>,
}

impl TaskSpec {
    /// Whether its attempts run in a worker's pool for light work (`worker_registered.
    /// light_slots`): aggregations, and tools named by a literal `tool` input other than `shell`
    /// (which runs arbitrary commands). Light work moves data or waits; it should not queue
    /// behind inference for the slots that run models.
    pub fn runs_light(&self) -> bool {
        match self.kind {
            TaskKind::Aggregation => true,
            TaskKind::ToolExecution => {
                let named = match self.inputs.get("tool") {
                    Some(TaskInput::Literal(serde_json::Value::String(tool))) => Some(tool.as_str()),
                    _ => None,
                };
                named.is_some_and(crate::worker::tool_runs_light)
                    && self.requirements.tools.iter().all(|t| crate::worker::tool_runs_light(t))
            }
            TaskKind::LlmInference | TaskKind::Embedding => false,
        }
    }
}

/// How an expanding task's output joins its job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Expand {
    /// Appended instead when the output is not a valid sub-DAG (the reason is recorded on the
    /// job's `job_expanded`); without it such an output fails the task for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<SubDag>,
}

/// Tasks appended to a running job by the task that output them. Their ids are local: the job
/// sees `{expanding task}.{id}`. A task here may name as parent another task here or a task of
/// the job the expanding task depends on; tasks without a parent here run after the expanding
/// task. The expanding task's children wait for the whole sub-DAG, and read `output`'s result
/// where they read the expanding task's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SubDag {
    pub tasks: Vec<TaskSpec>,
    /// The task (local id) whose output stands for the expanding task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    LlmInference,
    Embedding,
    ToolExecution,
    Aggregation,
}

/// A task input: `{"literal": <json>}` or `{"output": {"task": "split", "pointer": "/chunks/0"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskInput {
    Literal(Value),
    Output(OutputRef),
}

/// A reference to a parent's output, optionally narrowed by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputRef {
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// What a worker must offer to run a task. `model` and `tools` are hard constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Executor slots the attempt occupies.
    #[serde(default = "one")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1024)))]
    pub cpu_slots: u32,
    /// Memory the attempt needs, in MiB (0 = unknown).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 1_048_576)))]
    pub memory_mb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Preferred locality labels (`key=value`); a soft preference unless a policy requires it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<String>,
}

fn one() -> u32 {
    1
}

impl Default for Requirements {
    fn default() -> Self {
        Self { cpu_slots: 1, memory_mb: 0, model: None, tools: Vec::new(), locality: Vec::new() }
    }
}
