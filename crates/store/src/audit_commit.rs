//! Group commit for the audit chain. Each record's hash covers the one before, so appends are a
//! sequence: concurrent appends that each read the head and insert `seq + 1` lost races to one
//! another and retried (up to a submit's 230 ms with eight clients). Here, appends that arrive
//! while one is written wait for it, then all go into the next transaction together, chained in
//! arrival order. Another process appending meanwhile (a second gateway) still shows as a lost
//! race on `seq`, and the batch is chained again on the new head.

use std::sync::Mutex;

use sqlx::Row;
use tokio::sync::oneshot;

use crate::audit::{AuditEntry, AuditRecord, GENESIS, is_unique_violation};
use crate::{Store, StoreError};

/// Appends waiting for a transaction, and the lock its writer holds.
#[derive(Debug, Default)]
pub(crate) struct AuditQueue {
    waiting: Mutex<Vec<Waiting>>,
    writer: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Waiting {
    entry: AuditEntry,
    ts_ms: i64,
    done: oneshot::Sender<Result<AuditRecord, StoreError>>,
}

const QUERY: &str = "append audit record";

impl Store {
    /// Append `entry` to the audit chain, in the next group commit.
    pub async fn audit(&self, entry: &AuditEntry, ts_ms: i64) -> Result<AuditRecord, StoreError> {
        let mut records = self.audit_all(std::slice::from_ref(entry), ts_ms).await?;
        records.pop().ok_or_else(|| lost("the audit writer answered nothing"))
    }

    /// Append `entries` to the audit chain one after the other, in the next group commit (one
    /// transaction for all of them, however many callers share it).
    pub async fn audit_all(
        &self,
        entries: &[AuditEntry],
        ts_ms: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let queue = self.audit_queue();
        let answers: Vec<_> = {
            let mut waiting = queue.waiting.lock().expect("audit queue lock");
            entries
                .iter()
                .map(|entry| {
                    let (done, answer) = oneshot::channel();
                    waiting.push(Waiting { entry: entry.clone(), ts_ms, done });
                    answer
                })
                .collect()
        };
        {
            let _writer = queue.writer.lock().await;
            let batch = std::mem::take(&mut *queue.waiting.lock().expect("audit queue lock"));
            if !batch.is_empty() {
                self.commit_audit(batch).await;
            }
        }
        // An earlier writer may have taken these entries; either way it answered.
        let mut records = Vec::with_capacity(answers.len());
        for answer in answers {
            records.push(answer.await.unwrap_or_else(|_| Err(lost("the audit writer stopped")))?);
        }
        Ok(records)
    }

    /// Chain `batch` on the current head and insert it in one transaction, again on a new head
    /// when another process took the next `seq`; answer every caller.
    async fn commit_audit(&self, batch: Vec<Waiting>) {
        let mut outcome = Err(lost("20 lost races"));
        for _ in 0..20 {
            outcome = self.try_commit_audit(&batch).await;
            match &outcome {
                Err(StoreError::Query { source, .. }) if is_unique_violation(source) => continue,
                _ => break,
            }
        }
        match outcome {
            Ok(records) => {
                for (w, rec) in batch.into_iter().zip(records) {
                    w.done.send(Ok(rec)).ok();
                }
            }
            Err(error) => {
                let message = error.to_string();
                let mut batch = batch.into_iter();
                if let Some(first) = batch.next() {
                    first.done.send(Err(error)).ok();
                }
                for w in batch {
                    w.done.send(Err(lost(&message))).ok();
                }
            }
        }
    }

    async fn try_commit_audit(&self, batch: &[Waiting]) -> Result<Vec<AuditRecord>, StoreError> {
        let q = |source| StoreError::Query { query: QUERY, source };
        let head = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(q)?;
        let (mut seq, mut prev_hash): (i64, String) = match head {
            Some(r) => (r.try_get(0).map_err(q)?, r.try_get(1).map_err(q)?),
            None => (0, GENESIS.to_string()),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await.map_err(q)?;
        let mut records = Vec::with_capacity(batch.len());
        for w in batch {
            seq += 1;
            let rec = AuditRecord {
                seq,
                ts_ms: w.ts_ms,
                tenant: w.entry.tenant.clone(),
                actor: w.entry.actor.clone(),
                action: w.entry.action.clone(),
                subject: w.entry.subject.clone(),
                detail: w.entry.detail.to_string(),
                hash: String::new(),
                prev_hash: std::mem::take(&mut prev_hash),
            };
            let rec = AuditRecord { hash: rec.expected_hash(self.audit_key()), ..rec };
            sqlx::query(
                "INSERT INTO audit_events (seq, ts_ms, tenant, actor, action, subject, detail, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(rec.seq)
            .bind(rec.ts_ms)
            .bind(&rec.tenant)
            .bind(&rec.actor)
            .bind(&rec.action)
            .bind(&rec.subject)
            .bind(&rec.detail)
            .bind(&rec.prev_hash)
            .bind(&rec.hash)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
            prev_hash = rec.hash.clone();
            records.push(rec);
        }
        tx.commit().await.map_err(q)?;
        Ok(records)
    }
}

/// The error each caller after the first gets when a batch fails (the cause is not `Clone`).
fn lost(message: &str) -> StoreError {
    StoreError::Query { query: QUERY, source: sqlx::Error::Protocol(message.to_string()) }
}
