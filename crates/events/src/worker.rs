//! Worker lifecycle on the `heartbeats` topic (key: worker id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::AttemptId;

/// A worker announces what it can run. Sent at start and whenever capabilities change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerRegistered {
    pub worker_id: String,
    pub cores: u32,
    /// Total memory, MiB.
    pub memory_mb: u64,
    /// Attempts it runs at once.
    pub slots: u32,
    /// Light attempts (tools other than `shell`, aggregations) it runs at once from a pool of
    /// their own, beside `slots`; 0: light attempts take ordinary slots.
    #[serde(default, skip_serializing_if = "crate::worker::is_zero")]
    pub light_slots: u32,
    /// Language models it decodes in an inference engine, with the sequences that engine takes
    /// at once: their `llm_inference` attempts fill these, beside `slots`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engines: BTreeMap<String, u32>,
    pub models: Vec<String>,
    pub tools: Vec<String>,
    /// Locality labels, e.g. `zone=eu-1`, `site=on-prem`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Heartbeat interval the worker promises, ms.
    pub heartbeat_interval_ms: u64,
    #[serde(default)]
    pub version: String,
}

/// Periodic liveness and measured utilization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Heartbeat {
    pub worker_id: String,
    /// Monotone per worker process.
    pub seq: u64,
    /// CPU utilization over the last interval, 0–100 × cores.
    pub cpu_pct: f64,
    pub memory_used_mb: u64,
    pub running: Vec<AttemptId>,
    #[serde(default)]
    pub warm_models: Vec<String>,
    /// Per engine (model): sequences it decodes now, and those waiting for one of its places.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub engines: BTreeMap<String, EngineLoad>,
}

/// What one inference engine of a worker is doing at a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EngineLoad {
    pub active: u32,
    pub waiting: u32,
}

/// A worker leaves on purpose (shutdown); its capacity goes at once instead of after the ttl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkerLeaving {
    pub worker_id: String,
    pub reason: String,
    /// Attempts it hands back unfinished.
    #[serde(default)]
    pub handed_back: Vec<AttemptId>,
}

/// Whether a tool's attempts may run in a light pool: every tool but `shell`.
pub fn tool_runs_light(tool: &str) -> bool {
    tool != "shell"
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
