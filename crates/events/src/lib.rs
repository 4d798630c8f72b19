//! The SPLAI wire contract.
//!
//! Every fact in SPLAI is an [`Envelope`] on a topic: `{v, id, ts_ms, tenant, traceparent, kind, body}`
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
mod job;
mod job_events;
mod topic;
mod worker;

pub use assignment::{Assign, JobRefused, ResolvedInput, Revoke, RevokeReason, TaskUnschedulable};
pub use attempt::{
    ArtifactRef, AttemptFailed, AttemptId, AttemptProgress, AttemptStarted, AttemptSucceeded, Provenance,
    Usage,
};
pub use codec::{DecodeError, decode, decode_str, encode};
pub use control::{ArchiveJob, AuditAnchor, CancelJob, RequeueDeadLetter};
pub use dead_letter::{DeadLetter, PayloadEncoding, SourcePosition};
pub use envelope::{ENVELOPE_VERSION, Envelope, Event};
pub use job::{
    Dag, DataClassification, Expand, JobRequest, JobType, OutputRef, Priority, Requirements, SubDag,
    TaskInput, TaskKind, TaskSpec,
};
pub use job_events::{
    JobAdmitted, JobExpanded, JobRejected, JobState, JobStateChanged, PolicyDecision, PolicyStage, TaskState,
    TaskStateChanged,
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
pub use worker::{Heartbeat, WorkerLeaving, WorkerRegistered};
