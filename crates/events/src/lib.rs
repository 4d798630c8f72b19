//! The SPLAI wire contract.
//!
//! Every fact in SPLAI is an [`Envelope`] on a topic: `{v, id, ts_ms, tenant, traceparent, epoch, kind, body}`
//! encoded as one JSON object. `kind` names the event and `body` carries it. `id` is a dedup key,
//! `traceparent` carries the W3C trace context so one job is one trace across processes.
//!
//! This crate is deliberately passive: plain `pub` structs with serde, a codec with typed errors,
//! and the topic vocabulary. It depends on nothing internal so every process agrees on one language.
//! Golden samples of the wire format live in `crates/events/samples/` and are checked by tests.

mod assignment;
mod attempt;
mod codec;
mod control;
mod dead_letter;
mod envelope;
mod fast;
mod fence;
mod job;
mod job_events;
#[cfg(feature = "schema")]
pub mod schema;
mod topic;
mod worker;

pub use assignment::{
    Assign, JobAccepted, JobRefused, ResolvedInput, Revoke, RevokeReason, TaskUnschedulable,
};
pub use attempt::{
    ArtifactRef, AttemptFailed, AttemptId, AttemptProgress, AttemptStarted, AttemptSucceeded, Provenance,
    Usage,
};
pub use codec::{DecodeError, decode, decode_str, encode};
pub use control::{
    ArchiveJob, AuditAnchor, CancelJob, EpochFence, LogPosition, RequeueDeadLetter, SchedulerLease,
    SnapshotWritten,
};
pub use dead_letter::{DeadLetter, PayloadEncoding, SourcePosition};
pub use envelope::{ENVELOPE_VERSION, Envelope, Event};
pub use fence::EpochFilter;
pub use job::{
    Dag, DataClassification, Expand, JobRequest, JobType, OutputRef, Priority, Requirements, SubDag,
    TaskInput, TaskKind, TaskSpec,
};
pub use job_events::{
    AttemptState, ClusterMetrics, JobAdmitted, JobExpanded, JobRejected, JobState, JobStateChanged,
    Percentiles, PolicyDecision, PolicyStage, ScopeMetrics, TaskState, TaskStateChanged,
};
pub use topic::Topic;

/// Wall-clock time, epoch ms: the clock every envelope's `ts_ms` and every deadline is read from
/// (0 before 1970, which no machine here reports).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The name a unit enum variant has on the wire (`TaskKind::LlmInference` → `llm_inference`);
/// empty for values that do not serialise to a string.
pub fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Unit enums print as their wire name (`JobState::Succeeded` → `succeeded`).
macro_rules! display_as_wire_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&wire_name(self))
            }
        }
    )*};
}
display_as_wire_name!(JobState, TaskState, AttemptState, JobType, Priority, TaskKind, DataClassification);

/// A name no variant of the enum has on the wire.
#[derive(Debug, thiserror::Error)]
#[error("`{name}` is not a {what}")]
pub struct UnknownName {
    pub name: String,
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The unit enum variant named `name` on the wire ([`wire_name`]'s inverse).
pub fn from_wire<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, UnknownName> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|source| UnknownName {
        name: name.to_string(),
        what: std::any::type_name::<T>().rsplit("::").next().unwrap_or("value"),
        source,
    })
}
pub use worker::{EngineLoad, Heartbeat, WorkerLeaving, WorkerRegistered, tool_runs_light};
