//! JSON Schemas of the wire contract, generated from these types (feature `schema`): the
//! envelope with every kind, and each kind's body alone. `splai contract generate` writes them to
//! `contract/v{ENVELOPE_VERSION}/`, where producers in other languages generate their types from.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::{
    ArchiveJob, Assign, AttemptFailed, AttemptProgress, AttemptStarted, AttemptSucceeded, AuditAnchor,
    CancelJob, ClusterMetrics, DeadLetter, Envelope, EpochFence, Heartbeat, JobAccepted, JobAdmitted,
    JobExpanded, JobRefused, JobRejected, JobRequest, JobStateChanged, PolicyDecision, RequeueDeadLetter,
    Revoke, SchedulerLease, ScopeMetrics, SnapshotWritten, TaskStateChanged, TaskUnschedulable,
    WorkerLeaving, WorkerRegistered,
};

/// The envelope: `{v, id, ts_ms, tenant, traceparent, epoch, kind, body}` with every kind's body.
pub fn envelope() -> Schema {
    of::<Envelope>()
}

/// A job request alone (the REST API's `POST /v1/jobs` takes it too).
pub fn job_request() -> Schema {
    of::<JobRequest>()
}

/// Each event kind's `body`, by kind, in [`crate::Event::KINDS`] order.
pub fn bodies() -> Vec<(&'static str, Schema)> {
    macro_rules! bodies {
        ($($kind:literal => $body:ty),* $(,)?) => { vec![$(($kind, of::<$body>())),*] };
    }
    bodies! {
        "job_request" => JobRequest,
        "cancel_job" => CancelJob,
        "requeue_dead_letter" => RequeueDeadLetter,
        "archive_job" => ArchiveJob,
        "audit_anchor" => AuditAnchor,
        "snapshot_written" => SnapshotWritten,
        "scheduler_lease" => SchedulerLease,
        "epoch_fence" => EpochFence,
        "worker_registered" => WorkerRegistered,
        "heartbeat" => Heartbeat,
        "worker_leaving" => WorkerLeaving,
        "assign" => Assign,
        "revoke" => Revoke,
        "task_unschedulable" => TaskUnschedulable,
        "job_refused" => JobRefused,
        "job_accepted" => JobAccepted,
        "attempt_started" => AttemptStarted,
        "attempt_progress" => AttemptProgress,
        "attempt_succeeded" => AttemptSucceeded,
        "attempt_failed" => AttemptFailed,
        "job_admitted" => JobAdmitted,
        "job_expanded" => JobExpanded,
        "job_rejected" => JobRejected,
        "task_state_changed" => TaskStateChanged,
        "job_state_changed" => JobStateChanged,
        "policy_decision" => PolicyDecision,
        "scope_metrics" => ScopeMetrics,
        "cluster_metrics" => ClusterMetrics,
        "dead_letter" => DeadLetter,
    }
}

/// JSON Schema 2020-12, the draft code generators (datamodel-code-generator, quicktype) read.
fn of<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_body_schema_in_kind_order() {
        let kinds: Vec<_> = bodies().into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, crate::Event::KINDS);
    }

    #[test]
    fn the_envelope_schema_pins_the_version_and_names_every_kind() {
        let schema = serde_json::to_value(envelope()).unwrap();
        assert_eq!(schema["properties"]["v"]["const"], crate::ENVELOPE_VERSION);
        let text = schema.to_string();
        for kind in crate::Event::KINDS {
            assert!(
                text.contains(&format!("\"const\":\"{kind}\"")),
                "{kind} missing from the envelope schema"
            );
        }
    }
}
