//! The audit log: append-only, one hash chain over every record. A record's hash is
//! sha256(previous hash ‖ canonical content), the content being the JSON array
//! `[seq, ts_ms, tenant, actor, action, subject, detail]`; the first record's previous hash is 64
//! zeros. Editing, deleting or reordering any record breaks the chain from there on, and
//! [`Store::audit_verify`] names the first record that does not check out.
//!
//! Appends from several gateways race for the next `seq`; the primary key and the unique hash
//! turn a lost race into a retry, so the chain never forks.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::query(what)
}

/// What happened, by whom, to what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub tenant: String,
    pub actor: String,
    /// e.g. `job.submit`, `job.reject`, `job.cancel`, `dead_letter.requeue`, `admin.read`,
    /// `policy.decision`.
    pub action: String,
    pub subject: String,
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts_ms: i64,
    pub tenant: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must have after `prev_hash`.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.ts_ms,
            &self.tenant,
            &self.actor,
            &self.action,
            &self.subject,
            &self.detail,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn chain_hash(
    prev: &str,
    seq: i64,
    ts_ms: i64,
    tenant: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let canonical = serde_json::json!([seq, ts_ms, tenant, actor, action, subject, detail]).to_string();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The outcome of re-checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditVerdict {
    pub ok: bool,
    pub records: i64,
    /// The first record that does not check out, and why.
    pub first_broken_seq: Option<i64>,
    pub reason: Option<String>,
}

/// Filters of an audit listing; `after_seq` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub after_seq: i64,
    pub limit: i64,
}

const COLUMNS: &str = "seq, ts_ms, tenant, actor, action, subject, detail, prev_hash, hash";

fn record(r: &sqlx::any::AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        seq: r.try_get(0)?,
        ts_ms: r.try_get(1)?,
        tenant: r.try_get(2)?,
        actor: r.try_get(3)?,
        action: r.try_get(4)?,
        subject: r.try_get(5)?,
        detail: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

impl Store {
    /// Append one record to the chain.
    pub async fn audit(&self, entry: &AuditEntry, ts_ms: i64) -> Result<AuditRecord, StoreError> {
        let detail = entry.detail.to_string();
        let mut last_error = None;
        for _ in 0..20 {
            let head = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(self.pool())
                .await
                .map_err(q("read the audit head"))?;
            let (prev_seq, prev_hash): (i64, String) = match head {
                Some(r) => (
                    r.try_get(0).map_err(q("read the audit head"))?,
                    r.try_get(1).map_err(q("read the audit head"))?,
                ),
                None => (0, GENESIS.to_string()),
            };
            let rec = AuditRecord {
                seq: prev_seq + 1,
                ts_ms,
                tenant: entry.tenant.clone(),
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                subject: entry.subject.clone(),
                detail: detail.clone(),
                hash: String::new(),
                prev_hash,
            };
            let rec = AuditRecord { hash: rec.expected_hash(), ..rec };
            let inserted = sqlx::query(
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
            .execute(self.pool())
            .await;
            match inserted {
                Ok(_) => return Ok(rec),
                // Another writer took this seq: read the new head and try again.
                Err(e) if is_unique_violation(&e) => last_error = Some(e),
                Err(e) => return Err(StoreError::Query { query: "append audit record", source: e }),
            }
        }
        Err(StoreError::Query {
            query: "append audit record (20 lost races)",
            source: last_error.unwrap_or(sqlx::Error::PoolTimedOut),
        })
    }

    /// Records in chain order after `after_seq`.
    pub async fn audit_list(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 AND ($2 IS NULL OR tenant = $2)
               AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR subject = $4)
               AND ($5 IS NULL OR ts_ms >= $5) AND ($6 IS NULL OR ts_ms < $6)
             ORDER BY seq LIMIT $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.after_seq)
            .bind(f.tenant.clone())
            .bind(f.action.clone())
            .bind(f.subject.clone())
            .bind(f.since_ms)
            .bind(f.until_ms)
            .bind(f.limit)
            .fetch_all(self.pool())
            .await
            .map_err(q("list audit records"))?;
        rows.iter().map(record).collect::<Result<_, _>>().map_err(q("read audit records"))
    }

    /// Re-check the whole chain, page by page.
    pub async fn audit_verify(&self) -> Result<AuditVerdict, StoreError> {
        let (mut prev_hash, mut expected_seq, mut count) = (GENESIS.to_string(), 1i64, 0i64);
        loop {
            let page = self
                .audit_list(&AuditFilter { after_seq: expected_seq - 1, limit: 1000, ..Default::default() })
                .await?;
            if page.is_empty() {
                return Ok(AuditVerdict { ok: true, records: count, first_broken_seq: None, reason: None });
            }
            for rec in page {
                let broken = |reason: String| AuditVerdict {
                    ok: false,
                    records: count,
                    first_broken_seq: Some(rec.seq.min(expected_seq)),
                    reason: Some(reason),
                };
                if rec.seq != expected_seq {
                    return Ok(broken(format!("record {expected_seq} is missing (next is {})", rec.seq)));
                }
                if rec.prev_hash != prev_hash {
                    return Ok(broken(format!(
                        "record {} does not follow record {}'s hash",
                        rec.seq,
                        rec.seq - 1
                    )));
                }
                if rec.hash != rec.expected_hash() {
                    return Ok(broken(format!("record {}'s content does not match its hash", rec.seq)));
                }
                prev_hash = rec.hash.clone();
                expected_seq += 1;
                count += 1;
            }
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE constraint failed")
                || d.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}
