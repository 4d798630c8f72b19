//! A one-pass envelope reader for the common case: the header fields, then `kind` before `body`
//! (the order [`crate::encode`] writes), the body read straight into its type. The derived
//! `Deserialize` of [`Envelope`] buffers the whole event first (`flatten`), which cost more than
//! the rest of decoding. Anything unusual (body before kind, a repeated field) is an error here,
//! and the caller falls back to the derived path, so what decodes, and how, does not change.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};

use crate::{Envelope, Event};

pub(crate) struct Fast(pub Envelope);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    V,
    Id,
    TsMs,
    Tenant,
    Traceparent,
    Epoch,
    Kind,
    Body,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Fast {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastVisitor)
    }
}

struct FastVisitor;

/// Set a field once; a repeated one sends the caller to the derived path.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> Visitor<'de> for FastVisitor {
    type Value = Fast;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fast, A::Error> {
        let (mut v, mut id, mut ts_ms, mut tenant, mut traceparent) = (None, None, None, None, None);
        let mut epoch = None;
        // Borrowed from the input: a kind with escapes fails here and takes the derived path.
        let (mut kind, mut event): (Option<&'de str>, Option<Event>) = (None, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::V => once(&mut v, map.next_value::<u32>()?, "v")?,
                Field::Id => once(&mut id, map.next_value::<String>()?, "id")?,
                Field::TsMs => once(&mut ts_ms, map.next_value::<u64>()?, "ts_ms")?,
                Field::Tenant => once(&mut tenant, map.next_value::<String>()?, "tenant")?,
                Field::Traceparent => {
                    once(&mut traceparent, map.next_value::<Option<String>>()?, "traceparent")?
                }
                Field::Epoch => once(&mut epoch, map.next_value::<Option<u64>>()?, "epoch")?,
                Field::Kind => once(&mut kind, map.next_value::<&'de str>()?, "kind")?,
                Field::Body => {
                    let kind = kind.ok_or_else(|| de::Error::custom("body before kind"))?;
                    once(&mut event, body(kind, &mut map)?, "body")?;
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = de::Error::missing_field;
        Ok(Fast(Envelope {
            v: v.ok_or_else(|| missing("v"))?,
            id: id.ok_or_else(|| missing("id"))?,
            ts_ms: ts_ms.ok_or_else(|| missing("ts_ms"))?,
            tenant: tenant.ok_or_else(|| missing("tenant"))?,
            traceparent: traceparent.flatten(),
            epoch: epoch.flatten(),
            event: event.ok_or_else(|| missing("body"))?,
        }))
    }
}

/// The body of `kind`, read as its type.
fn body<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Event, A::Error> {
    fn next<'de, A: MapAccess<'de>, T: DeserializeOwned>(map: &mut A) -> Result<T, A::Error> {
        map.next_value::<T>()
    }
    Ok(match kind {
        "job_request" => Event::JobRequest(next(map)?),
        "cancel_job" => Event::CancelJob(next(map)?),
        "requeue_dead_letter" => Event::RequeueDeadLetter(next(map)?),
        "archive_job" => Event::ArchiveJob(next(map)?),
        "audit_anchor" => Event::AuditAnchor(next(map)?),
        "snapshot_written" => Event::SnapshotWritten(next(map)?),
        "scheduler_lease" => Event::SchedulerLease(next(map)?),
        "epoch_fence" => Event::EpochFence(next(map)?),
        "worker_registered" => Event::WorkerRegistered(next(map)?),
        "heartbeat" => Event::Heartbeat(next(map)?),
        "worker_leaving" => Event::WorkerLeaving(next(map)?),
        "assign" => Event::Assign(next(map)?),
        "revoke" => Event::Revoke(next(map)?),
        "task_unschedulable" => Event::TaskUnschedulable(next(map)?),
        "job_refused" => Event::JobRefused(next(map)?),
        "job_accepted" => Event::JobAccepted(next(map)?),
        "attempt_started" => Event::AttemptStarted(next(map)?),
        "attempt_progress" => Event::AttemptProgress(next(map)?),
        "attempt_succeeded" => Event::AttemptSucceeded(next(map)?),
        "attempt_failed" => Event::AttemptFailed(next(map)?),
        "job_admitted" => Event::JobAdmitted(next(map)?),
        "job_expanded" => Event::JobExpanded(next(map)?),
        "job_rejected" => Event::JobRejected(next(map)?),
        "task_state_changed" => Event::TaskStateChanged(next(map)?),
        "job_state_changed" => Event::JobStateChanged(next(map)?),
        "scope_metrics" => Event::ScopeMetrics(next(map)?),
        "cluster_metrics" => Event::ClusterMetrics(next(map)?),
        "policy_decision" => Event::PolicyDecision(next(map)?),
        "dead_letter" => Event::DeadLetter(next(map)?),
        other => return Err(de::Error::unknown_variant(other, Event::KINDS)),
    })
}
