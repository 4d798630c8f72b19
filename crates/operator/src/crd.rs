//! The custom resources, as Rust types: the CRD YAML in `deploy/crds/` is generated from these
//! (`splai operator crds`), and a test keeps the two equal.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
// The request's own enums, so the CRD accepts exactly what the API does.
pub use splai_events::{DataClassification, JobType, Priority, TaskKind};

/// A SPLAI job as a Kubernetes object: the operator submits it once and mirrors its state.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "splai.io",
    version = "v1alpha1",
    kind = "SPLAIJob",
    root = "SplaiJob",
    plural = "splaijobs",
    shortname = "sjob",
    namespaced,
    status = "SplaiJobStatus",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Job","type":"string","jsonPath":".status.jobId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SplaiJobSpec {
    /// The job template.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// The template's input (e.g. `{prompt: …}` for `chat`, `{text: …}` for `batch_analysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub input: Option<serde_json::Value>,
    /// The DAG of an `explicit` job (`{tasks: […]}`), as in the REST API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub dag: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classification: Option<DataClassification>,
    /// Whole-job timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_retries: Option<u32>,
    /// Tenant to submit as when the gateway runs without auth; with auth the operator's token
    /// decides the tenant and this must be empty or equal to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// What the operator writes back.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplaiJobStatus {
    /// `Submitted`, `Queued`, `Running`, `Succeeded`, `Failed`, `Cancelled`, `Rejected` or `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The SPLAI job id (the object's uid, so a resubmission is idempotent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// `succeeded/total` tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The job's result (the output of its final task), once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub result: Option<serde_json::Value>,
    /// Why it failed, was rejected or cannot be submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A pool of executors: what `deploy/k8s/executor.yaml` runs, as an object (its status is the
/// pool's live workers as the gateway sees them).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "splai.io",
    version = "v1alpha1",
    kind = "SPLAIWorker",
    root = "SplaiWorker",
    plural = "splaiworkers",
    shortname = "sworker",
    namespaced,
    status = "SplaiWorkerStatus",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Live","type":"integer","jsonPath":".status.liveWorkers"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SplaiWorkerSpec {
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Concurrent attempts per executor (one per core is the default layout).
    #[schemars(range(min = 1))]
    pub slots: u32,
    /// Locality labels (`key=value`) placement rules can require.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Container resources per executor, e.g. `{cpu: "2", memory: "2Gi"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    /// Whether the `shell` tool is on (off unless an operator turns it on).
    #[serde(default)]
    pub shell_tool: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SplaiWorkerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_workers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_slots: Option<i32>,
}

/// The policy gate's rules (the format of `policy.file`, see docs/design/governance.md).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "splai.io",
    version = "v1alpha1",
    kind = "SPLAIPolicy",
    root = "SplaiPolicy",
    plural = "splaipolicies",
    shortname = "spolicy",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct SplaiPolicySpec {
    /// What an admission check with no matching rule decides (default `allow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<PolicyAction>,
    /// First matching rule wins.
    pub rules: Vec<PolicyRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    pub name: String,
    /// `allow` or `deny` (admission rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
    /// `admission` or `placement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<PolicyStage>,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_types: Option<Vec<JobType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<Vec<Priority>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classifications: Option<Vec<DataClassification>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kinds: Option<Vec<TaskKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Placement: labels a worker must carry to run the matching tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_worker_labels: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    Allow,
    Deny,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStage {
    Admission,
    Placement,
}

/// Any JSON object, kept as is by the API server.
fn free_form(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}
