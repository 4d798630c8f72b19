//! The versioned envelope every message travels in.

use serde::{Deserialize, Serialize};

use crate::{
    ArchiveJob, Assign, AttemptFailed, AttemptProgress, AttemptStarted, AttemptSucceeded, AuditAnchor,
    CancelJob, ClusterMetrics, DeadLetter, EpochFence, Heartbeat, JobAccepted, JobAdmitted, JobExpanded,
    JobRefused, JobRejected, JobRequest, JobStateChanged, PolicyDecision, RequeueDeadLetter, Revoke,
    SchedulerLease, ScopeMetrics, SnapshotWritten, TaskStateChanged, TaskUnschedulable, Topic, WorkerLeaving,
    WorkerRegistered,
};

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// `{v, id, ts_ms, tenant, traceparent, kind, body}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Envelope {
    /// The contract version: [`ENVELOPE_VERSION`] (a reader refuses any other).
    #[cfg_attr(feature = "schema", schemars(extend("const" = crate::ENVELOPE_VERSION)))]
    pub v: u32,
    /// Dedup key: a consumer that sees an id twice applies it once.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub id: String,
    /// Producer wall clock, epoch ms.
    pub ts_ms: u64,
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub tenant: String,
    /// W3C trace context (`00-<trace>-<span>-<flags>`), absent when tracing is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The leadership epoch of the scheduler that wrote this decision (absent: no leadership
    /// in use, or not a scheduler's record). See [`crate::EpochFence`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(flatten)]
    pub event: Event,
}

/// Every event kind; `kind` is the snake_case variant name and `body` its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Event {
    #[cfg_attr(feature = "schema", schemars(title = "JobRequestRecord"))]
    JobRequest(JobRequest),
    #[cfg_attr(feature = "schema", schemars(title = "CancelJobRecord"))]
    CancelJob(CancelJob),
    #[cfg_attr(feature = "schema", schemars(title = "RequeueDeadLetterRecord"))]
    RequeueDeadLetter(RequeueDeadLetter),
    #[cfg_attr(feature = "schema", schemars(title = "ArchiveJobRecord"))]
    ArchiveJob(ArchiveJob),
    #[cfg_attr(feature = "schema", schemars(title = "AuditAnchorRecord"))]
    AuditAnchor(AuditAnchor),
    #[cfg_attr(feature = "schema", schemars(title = "SnapshotWrittenRecord"))]
    SnapshotWritten(SnapshotWritten),
    #[cfg_attr(feature = "schema", schemars(title = "SchedulerLeaseRecord"))]
    SchedulerLease(SchedulerLease),
    #[cfg_attr(feature = "schema", schemars(title = "EpochFenceRecord"))]
    EpochFence(EpochFence),
    #[cfg_attr(feature = "schema", schemars(title = "WorkerRegisteredRecord"))]
    WorkerRegistered(WorkerRegistered),
    #[cfg_attr(feature = "schema", schemars(title = "HeartbeatRecord"))]
    Heartbeat(Heartbeat),
    #[cfg_attr(feature = "schema", schemars(title = "WorkerLeavingRecord"))]
    WorkerLeaving(WorkerLeaving),
    #[cfg_attr(feature = "schema", schemars(title = "AssignRecord"))]
    Assign(Assign),
    #[cfg_attr(feature = "schema", schemars(title = "RevokeRecord"))]
    Revoke(Revoke),
    #[cfg_attr(feature = "schema", schemars(title = "TaskUnschedulableRecord"))]
    TaskUnschedulable(TaskUnschedulable),
    #[cfg_attr(feature = "schema", schemars(title = "JobRefusedRecord"))]
    JobRefused(JobRefused),
    #[cfg_attr(feature = "schema", schemars(title = "JobAcceptedRecord"))]
    JobAccepted(JobAccepted),
    #[cfg_attr(feature = "schema", schemars(title = "AttemptStartedRecord"))]
    AttemptStarted(AttemptStarted),
    #[cfg_attr(feature = "schema", schemars(title = "AttemptProgressRecord"))]
    AttemptProgress(AttemptProgress),
    #[cfg_attr(feature = "schema", schemars(title = "AttemptSucceededRecord"))]
    AttemptSucceeded(AttemptSucceeded),
    #[cfg_attr(feature = "schema", schemars(title = "AttemptFailedRecord"))]
    AttemptFailed(AttemptFailed),
    #[cfg_attr(feature = "schema", schemars(title = "JobAdmittedRecord"))]
    JobAdmitted(JobAdmitted),
    #[cfg_attr(feature = "schema", schemars(title = "JobExpandedRecord"))]
    JobExpanded(JobExpanded),
    #[cfg_attr(feature = "schema", schemars(title = "JobRejectedRecord"))]
    JobRejected(JobRejected),
    #[cfg_attr(feature = "schema", schemars(title = "TaskStateChangedRecord"))]
    TaskStateChanged(TaskStateChanged),
    #[cfg_attr(feature = "schema", schemars(title = "JobStateChangedRecord"))]
    JobStateChanged(JobStateChanged),
    #[cfg_attr(feature = "schema", schemars(title = "PolicyDecisionRecord"))]
    PolicyDecision(PolicyDecision),
    #[cfg_attr(feature = "schema", schemars(title = "ScopeMetricsRecord"))]
    ScopeMetrics(ScopeMetrics),
    #[cfg_attr(feature = "schema", schemars(title = "ClusterMetricsRecord"))]
    ClusterMetrics(ClusterMetrics),
    #[cfg_attr(feature = "schema", schemars(title = "DeadLetterRecord"))]
    DeadLetter(DeadLetter),
}

impl Event {
    /// Every `kind` string this build understands.
    pub const KINDS: &'static [&'static str] = &[
        "job_request",
        "cancel_job",
        "requeue_dead_letter",
        "archive_job",
        "audit_anchor",
        "snapshot_written",
        "scheduler_lease",
        "epoch_fence",
        "worker_registered",
        "heartbeat",
        "worker_leaving",
        "assign",
        "revoke",
        "task_unschedulable",
        "job_refused",
        "job_accepted",
        "attempt_started",
        "attempt_progress",
        "attempt_succeeded",
        "attempt_failed",
        "job_admitted",
        "job_expanded",
        "job_rejected",
        "task_state_changed",
        "job_state_changed",
        "policy_decision",
        "scope_metrics",
        "cluster_metrics",
        "dead_letter",
    ];

    /// The `kind` string of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::JobRequest(_) => "job_request",
            Event::CancelJob(_) => "cancel_job",
            Event::RequeueDeadLetter(_) => "requeue_dead_letter",
            Event::ArchiveJob(_) => "archive_job",
            Event::AuditAnchor(_) => "audit_anchor",
            Event::SnapshotWritten(_) => "snapshot_written",
            Event::SchedulerLease(_) => "scheduler_lease",
            Event::EpochFence(_) => "epoch_fence",
            Event::WorkerRegistered(_) => "worker_registered",
            Event::Heartbeat(_) => "heartbeat",
            Event::WorkerLeaving(_) => "worker_leaving",
            Event::Assign(_) => "assign",
            Event::Revoke(_) => "revoke",
            Event::TaskUnschedulable(_) => "task_unschedulable",
            Event::JobRefused(_) => "job_refused",
            Event::JobAccepted(_) => "job_accepted",
            Event::AttemptStarted(_) => "attempt_started",
            Event::AttemptProgress(_) => "attempt_progress",
            Event::AttemptSucceeded(_) => "attempt_succeeded",
            Event::AttemptFailed(_) => "attempt_failed",
            Event::JobAdmitted(_) => "job_admitted",
            Event::JobExpanded(_) => "job_expanded",
            Event::JobRejected(_) => "job_rejected",
            Event::TaskStateChanged(_) => "task_state_changed",
            Event::JobStateChanged(_) => "job_state_changed",
            Event::PolicyDecision(_) => "policy_decision",
            Event::ScopeMetrics(_) => "scope_metrics",
            Event::ClusterMetrics(_) => "cluster_metrics",
            Event::DeadLetter(_) => "dead_letter",
        }
    }

    /// The topic this event belongs on.
    pub fn topic(&self) -> Topic {
        match self {
            Event::JobRequest(_) => Topic::Jobs,
            Event::CancelJob(_)
            | Event::RequeueDeadLetter(_)
            | Event::ArchiveJob(_)
            | Event::AuditAnchor(_)
            | Event::SnapshotWritten(_)
            | Event::SchedulerLease(_) => Topic::Control,
            Event::EpochFence(f) => f.topic,
            Event::WorkerRegistered(_) | Event::Heartbeat(_) | Event::WorkerLeaving(_) => Topic::Heartbeats,
            Event::Assign(_)
            | Event::Revoke(_)
            | Event::TaskUnschedulable(_)
            | Event::JobRefused(_)
            | Event::JobAccepted(_) => Topic::Assignments,
            Event::AttemptStarted(_)
            | Event::AttemptProgress(_)
            | Event::AttemptSucceeded(_)
            | Event::AttemptFailed(_) => Topic::TaskEvents,
            Event::JobAdmitted(_)
            | Event::JobExpanded(_)
            | Event::JobRejected(_)
            | Event::TaskStateChanged(_)
            | Event::JobStateChanged(_)
            | Event::PolicyDecision(_) => Topic::JobEvents,
            Event::DeadLetter(_) => Topic::DeadLetter,
            Event::ScopeMetrics(_) | Event::ClusterMetrics(_) => Topic::Metrics,
        }
    }
}

impl Envelope {
    /// A v1 envelope.
    pub fn new(id: impl Into<String>, ts_ms: u64, tenant: impl Into<String>, event: Event) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            id: id.into(),
            ts_ms,
            tenant: tenant.into(),
            traceparent: None,
            epoch: None,
            event,
        }
    }

    /// The partitioning key: the job id for job-scoped events, the worker id for worker-scoped
    /// ones. Events with one key keep their order.
    pub fn key(&self) -> &str {
        match &self.event {
            Event::JobRequest(r) => r.job_id.as_deref().unwrap_or(&self.id),
            Event::CancelJob(e) => &e.job_id,
            Event::RequeueDeadLetter(e) => &e.job_id,
            Event::ArchiveJob(e) => &e.job_id,
            Event::AuditAnchor(_) => "audit",
            Event::SnapshotWritten(_) | Event::SchedulerLease(_) => "scheduler",
            // Chosen by the writer so that it lands on the fence's partition.
            Event::EpochFence(_) => &self.id,
            Event::WorkerRegistered(e) => &e.worker_id,
            Event::Heartbeat(e) => &e.worker_id,
            Event::WorkerLeaving(e) => &e.worker_id,
            Event::Assign(e) => &e.worker_id,
            Event::Revoke(e) => &e.worker_id,
            Event::TaskUnschedulable(e) => &e.attempt.job_id,
            Event::JobRefused(e) => &e.job_id,
            Event::JobAccepted(e) => &e.job_id,
            Event::AttemptStarted(e) => &e.attempt.job_id,
            Event::AttemptProgress(e) => &e.attempt.job_id,
            Event::AttemptSucceeded(e) => &e.attempt.job_id,
            Event::AttemptFailed(e) => &e.attempt.job_id,
            Event::JobAdmitted(e) => &e.job_id,
            Event::JobExpanded(e) => &e.job_id,
            Event::JobRejected(e) => &e.job_id,
            Event::TaskStateChanged(e) => &e.job_id,
            Event::JobStateChanged(e) => &e.job_id,
            Event::PolicyDecision(e) => &e.job_id,
            Event::ScopeMetrics(e) => &e.scope,
            Event::ClusterMetrics(_) => "cluster",
            Event::DeadLetter(e) => match (&e.job_id, &e.source) {
                (Some(job), _) => job,
                (None, Some(src)) => &src.topic,
                (None, None) => &self.id,
            },
        }
    }

    /// Builder: attach a W3C traceparent.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }
}
