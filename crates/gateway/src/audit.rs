//! Writing the audit trail from the API: submissions (accepted and refused), cancellations,
//! dead-letter requeues and admin reads. The record is written after the action took effect; if
//! the audit store fails the action stands (it is in the log) and the failure is logged loudly.
//! Here too: the chain's key, the anchors a gateway writes to the log, and verification against
//! them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use splai_events::{AuditAnchor, Envelope, Event, Topic};
use splai_ingest::intake::Gate;
use splai_ingest::log::{EventReader, EventWriter, LogError};
use splai_store::Store;
use splai_store::audit::{Anchor, AuditEntry, AuditVerdict};
use splai_telemetry::chain;
use tokio::sync::watch;

use crate::auth::Caller;
use crate::state::AppState;
use splai_events::now_ms;

pub async fn record(st: &AppState, caller: &Caller, action: &str, subject: &str, detail: Value) {
    record_all(st, caller, vec![(action.to_string(), subject.to_string(), detail)]).await;
}

/// Several records of one request, `(action, subject, detail)` in order, in one transaction.
pub async fn record_all(st: &AppState, caller: &Caller, records: Vec<(String, String, Value)>) {
    let entries: Vec<AuditEntry> = records
        .into_iter()
        .map(|(action, subject, detail)| AuditEntry {
            tenant: caller.tenant.clone(),
            actor: caller.actor.clone(),
            action,
            subject,
            detail,
        })
        .collect();
    if let Err(error) = st.store.audit_all(&entries, now_ms() as i64).await {
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        tracing::error!(%error, ?actions, "writing the audit records failed");
    }
}

/// The audit chain's HMAC key: `gateway.audit_key`, else one derived from `gateway.signing_key`
/// (required with auth on), else none (an unkeyed chain: `keyed: false` in every verdict).
pub fn key(g: &splai_config::GatewaySettings) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    if !g.audit_key.is_empty() {
        return g.audit_key.as_bytes().to_vec();
    }
    if g.signing_key.is_empty() {
        return Vec::new();
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(g.signing_key.as_bytes()).expect("any key length");
    mac.update(b"splai audit chain v1");
    mac.finalize().into_bytes().to_vec()
}

/// Write the chain's head to the log every `interval` while it grows, until `shutdown`.
pub async fn anchor_loop(
    writer: EventWriter,
    store: Store,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut anchored = 0i64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match store.audit_head().await {
            Ok(Some((seq, hash))) if seq > anchored => {
                let anchor = AuditAnchor { seq: seq as u64, hash };
                let envelope = Envelope::new(
                    format!("audit-anchor-{seq}"),
                    now_ms(),
                    "system",
                    Event::AuditAnchor(anchor),
                );
                match writer.append(&[envelope]).await {
                    Ok(_) => anchored = seq,
                    Err(error) => {
                        tracing::warn!(error = %chain(&error), "writing the audit anchor to the log failed; retrying")
                    }
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reading the audit head failed"),
        }
    }
}

/// Why verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("reading the audit anchors from the log: {0}")]
    Log(#[from] LogError),
    #[error("reading the audit anchors from the log took over 30 s")]
    Timeout,
    #[error(transparent)]
    Store(#[from] splai_store::StoreError),
}

/// Every audit anchor on the log (a gateway's, signed: with auth on the gate refuses others), read
/// from the start of `control` up to its end now.
pub async fn anchors(writer: &EventWriter, gate: Option<Arc<Gate>>) -> Result<Vec<Anchor>, AuditError> {
    let envelopes = EventReader::read_to_end(writer, Topic::Control, gate, Duration::from_secs(30))
        .await?
        .ok_or(AuditError::Timeout)?;
    let found = envelopes
        .into_iter()
        .filter_map(|e| match &e.event {
            Event::AuditAnchor(a) => Some(Anchor { seq: a.seq as i64, hash: a.hash.clone(), ts_ms: e.ts_ms }),
            _ => None,
        })
        .collect();
    Ok(found)
}

/// Check the chain against the anchors on the log.
pub async fn verify(
    store: &Store,
    writer: &EventWriter,
    gate: Option<Arc<Gate>>,
) -> Result<AuditVerdict, AuditError> {
    let anchors = anchors(writer, gate).await?;
    Ok(store.audit_verify(&anchors).await?)
}
